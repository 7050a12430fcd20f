"""Prove and verify quantized neural-network inference with GKR, from Python.

The calls mirror the ``verinfer`` command line, with numpy arrays in and out::

    import verinfer
    circuit = verinfer.compile("net.onnx", settings="net.settings.json")
    proof = verinfer.prove(circuit, x)               # server
    verified = verinfer.verify(circuit, x, proof)    # client: raises VerificationError if not
    print(verified.argmax, verified.soundness_bits)

Files, flags and messages are the command line's: a model is a path to ``.onnx`` or the JSON
model IR, a settings file a path, an input a numpy array (any numeric dtype, shape
``input_shape`` or ``(batch, *input_shape)``) or a path to a JSON or ``.npy`` input file, and
a proof the bytes of a proof file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import VerificationError, VerinferError

__all__ = [
    "Calibration",
    "Circuit",
    "Inferred",
    "Proof",
    "VerificationError",
    "Verified",
    "VerinferError",
    "calibrate",
    "compile",
    "infer",
    "prove",
    "verify",
]

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Any


def _flags(input_bits, weight_bits, coef_bits, weight_scale, field, input_range, relu=None) -> Dict[str, Any]:
    """The quantization flags as the native calls take them (``input_range`` as "lo,hi")."""
    if input_range is not None and not isinstance(input_range, str):
        try:
            lo, hi = input_range
        except (TypeError, ValueError):
            raise VerinferError("--input-range: expected (lo, hi)") from None
        input_range = f"{float(lo)!r},{float(hi)!r}"
    return dict(
        input_bits=input_bits,
        weight_bits=weight_bits,
        coef_bits=coef_bits,
        weight_scale=weight_scale,
        field=field,
        input_range=input_range,
        relu=relu,
    )


def _path(p: PathLike, what: str) -> str:
    if isinstance(p, (str, os.PathLike)):
        return os.fspath(p)
    raise VerinferError(f"{what}: expected a path, got {type(p).__name__}")


def _input(x: Union[ArrayLike, PathLike]) -> Union[bytes, str]:
    """A path as is, or an array as the bytes of a ``.npy`` file, which the command line's
    reader then checks (dtype, shape, range) with its own messages."""
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise VerinferError(f"x: not an array of numbers ({e})") from None
    if a.dtype.hasobject or a.dtype.kind not in "biufc":
        raise VerinferError(
            f"x: unsupported dtype '{a.dtype}' (use float32, float64 or an integer type)"
        )
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


class Circuit:
    """A model compiled with its quantization flags and settings (``verinfer.compile``).

    Prover and verifier must compile the same model with the same flags and settings: the
    ``digest`` covers them all, and a proof for another circuit is rejected.
    """

    def __init__(self, native: "_native.Circuit", model: str, settings: Optional[str]):
        self._native = native
        self._info = json.loads(native.info_json())
        self.model = model
        self.settings = settings

    @property
    def name(self) -> str:
        """The model's name (bound into the digest)."""
        return self._info["name"]

    @property
    def digest(self) -> str:
        """The circuit digest, hex."""
        return self._info["digest"]

    @property
    def field(self) -> str:
        """The proof field: ``"m127"`` (2^127 - 1) or ``"bn254"``."""
        return self._info["field"]

    @property
    def field_reason(self) -> str:
        """Why the compiler picked that field."""
        return self._native.field_reason

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """Per-item input shape (an input may add a leading batch dimension)."""
        return tuple(self._info["input_shape"])

    @property
    def input_range(self) -> Tuple[float, float]:
        """The declared input range: values outside it are refused."""
        return tuple(self._info["input_range"])

    @property
    def output_shape(self) -> Tuple[int, ...]:
        """Per-item output shape."""
        return tuple(self._info["output_shape"])

    @property
    def scale_bits(self) -> int:
        """Fractional bits of the output integers."""
        return self._info["output_scale_bits"]

    @property
    def max_bits(self) -> int:
        """Worst-case bits of any value in the circuit."""
        return self._info["max_bits"]

    @property
    def quantization(self) -> Dict[str, Any]:
        """``input_bits``, ``weight_bits``, ``coef_bits``, ``weight_scale``."""
        return dict(self._info["quantization"])

    @property
    def layers(self) -> List[Dict[str, Any]]:
        """The compiled layers, input first: ``kind``, ``label``, ``input_dims``,
        ``output_dims``, ``scale_bits``, ``bound_bits`` (as the server's ``/v1/model``)."""
        return [dict(layer) for layer in self._info["layers"]]

    @property
    def notes(self) -> List[str]:
        """The ONNX importer's notes (e.g. a dropped trailing Softmax)."""
        return list(self._native.notes)

    def __repr__(self) -> str:
        return (
            f"Circuit(name={self.name!r}, field={self.field!r}, "
            f"input_shape={self.input_shape}, digest={self.digest[:16]}...)"
        )


class _Output:
    """An output batch: exact integers at ``scale_bits`` fractional bits."""

    def __init__(self, circuit: Circuit, values: Sequence[int], floats: Sequence[float]):
        shape = (len(values) // max(1, int(np.prod(circuit.output_shape))),) + circuit.output_shape
        # Object dtype: the integers exceed 64 bits.
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        self.output = out.reshape(shape)
        self.scale_bits: int = circuit.scale_bits
        self._floats = np.asarray(floats, dtype=np.float64).reshape(shape)

    def dequantized(self) -> np.ndarray:
        """The output as float64: ``output / 2**scale_bits``."""
        return self._floats.copy()

    @property
    def argmax(self) -> np.ndarray:
        """Index of the largest value of each batch item (the first on ties)."""
        flat = self.output.reshape(self.output.shape[0], -1)
        return np.array([list(r).index(max(r)) for r in flat], dtype=np.int64)


class Proof(_Output):
    """A proof and the output it claims (``verinfer.prove``, ``Proof.from_bytes``)."""

    def __init__(self, circuit, values, floats, data: bytes, witness_ms=None, prove_ms=None):
        super().__init__(circuit, values, floats)
        self._bytes = bytes(data)
        self.witness_ms: Optional[float] = witness_ms
        self.prove_ms: Optional[float] = prove_ms

    def to_bytes(self) -> bytes:
        """The proof file (the command line's format: ``verinfer verify --proof``)."""
        return self._bytes

    @classmethod
    def from_bytes(cls, data: bytes, circuit: Circuit) -> "Proof":
        """Reads a proof file for ``circuit`` (its claimed output is shaped and scaled by the
        circuit). Bytes that do not decode raise ``VerificationError``: a proof file is the
        claim under test."""
        values, floats = _native.claimed(circuit._native, bytes(data))
        return cls(circuit, values, floats, data)

    def __len__(self) -> int:
        return len(self._bytes)

    def __repr__(self) -> str:
        return f"Proof(batch={self.output.shape[0]}, bytes={len(self._bytes)})"


class Verified(_Output):
    """What a valid proof established (``verinfer.verify``)."""

    def __init__(self, circuit, values, floats, batch: int, soundness_bits: float, ms: float):
        super().__init__(circuit, values, floats)
        self.batch = batch
        self.soundness_bits = soundness_bits
        self.verify_ms = ms

    def __repr__(self) -> str:
        return f"Verified(batch={self.batch}, soundness_bits={self.soundness_bits:.1f})"


class Inferred(_Output):
    """Quantized inference without a proof (``verinfer.infer``)."""

    def __repr__(self) -> str:
        return f"Inferred(batch={self.output.shape[0]})"


class Calibration:
    """What ``verinfer.calibrate`` wrote: the settings (also as a dict) and its report."""

    def __init__(self, path: str, settings_json: str, report: str, notes: List[str]):
        self.path = path
        self.settings: Dict[str, Any] = json.loads(settings_json)
        self.report = report
        self.notes = notes

    def __str__(self) -> str:
        return self.report

    def __repr__(self) -> str:
        return f"Calibration(path={self.path!r}, checkpoints={len(self.settings.get('requant', []))})"


def compile(
    model: PathLike,
    settings: Optional[PathLike] = None,
    *,
    input_bits: Optional[int] = None,
    weight_bits: Optional[int] = None,
    coef_bits: Optional[int] = None,
    weight_scale: Optional[str] = None,
    field: Optional[str] = None,
    input_range: Optional[Union[str, Tuple[float, float]]] = None,
    relu: Optional[str] = None,
) -> Circuit:
    """Compiles a model file (``.onnx`` or the JSON IR) with a settings file and the command
    line's quantization flags (each overrides the settings file's key)."""
    model = _path(model, "model")
    settings = None if settings is None else _path(settings, "settings")
    native = _native.compile(
        model,
        settings,
        **_flags(input_bits, weight_bits, coef_bits, weight_scale, field, input_range, relu),
    )
    return Circuit(native, model, settings)


def _circuit(c: Any) -> Circuit:
    if not isinstance(c, Circuit):
        raise VerinferError(f"circuit: expected a verinfer.Circuit, got {type(c).__name__}")
    return c


def prove(circuit: Circuit, x: Union[ArrayLike, PathLike], *, max_memory: Optional[str] = None) -> Proof:
    """Runs the quantized inference on ``x`` and proves it. ``max_memory`` (e.g. ``"8G"``)
    refuses a batch whose estimated proving memory is larger (default: half the RAM)."""
    circuit = _circuit(circuit)
    values, floats, data, witness_ms, prove_ms = _native.prove(circuit._native, _input(x), max_memory)
    return Proof(circuit, values, floats, data, witness_ms, prove_ms)


def verify(circuit: Circuit, x: Union[ArrayLike, PathLike], proof: Union[Proof, bytes]) -> Verified:
    """Checks that ``proof`` shows ``circuit`` maps ``x`` to the output it carries; raises
    ``VerificationError`` with the reason if not."""
    circuit = _circuit(circuit)
    data = proof.to_bytes() if isinstance(proof, Proof) else proof
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise VerinferError(f"proof: expected a verinfer.Proof or bytes, got {type(proof).__name__}")
    values, floats, batch, bits, ms = _native.verify(circuit._native, _input(x), bytes(data))
    return Verified(circuit, values, floats, batch, bits, ms)


def infer(circuit: Circuit, x: Union[ArrayLike, PathLike], *, max_memory: Optional[str] = None) -> Inferred:
    """The quantized inference alone (no proof): exactly the output a proof would carry."""
    circuit = _circuit(circuit)
    values, floats = _native.infer(circuit._native, _input(x), max_memory)
    return Inferred(circuit, values, floats)


def calibrate(
    model: PathLike,
    data: Union[ArrayLike, PathLike],
    settings: PathLike,
    *,
    labels: Optional[Union[Sequence[int], PathLike]] = None,
    bits: int = 16,
    headroom: int = 1,
    input_bits: Optional[int] = None,
    weight_bits: Optional[int] = None,
    coef_bits: Optional[int] = None,
    weight_scale: Optional[str] = None,
    field: Optional[str] = None,
    input_range: Optional[Union[str, Tuple[float, float]]] = None,
    relu: Optional[str] = None,
) -> Calibration:
    """``verinfer calibrate``: chooses requantization checkpoints from sample data and writes
    them to the settings file ``settings`` (then ``compile(model, settings)``). ``data``: an
    array of samples, or a path (JSON, ``.npy``, or a labelled set such as
    ``models/digits/test_set.json``); ``labels``: class indices, or a path to them."""
    model = _path(model, "model")
    settings = _path(settings, "settings")
    flags = _flags(input_bits, weight_bits, coef_bits, weight_scale, field, input_range, relu)
    with tempfile.TemporaryDirectory(prefix="verinfer-") as tmp:
        # The command line's calibration reads files: arrays are handed to it as files.
        if not isinstance(data, (str, os.PathLike)):
            path = os.path.join(tmp, "data.npy")
            with open(path, "wb") as f:
                f.write(_input(data))
            data = path
        if labels is not None and not isinstance(labels, (str, os.PathLike)):
            path = os.path.join(tmp, "labels.json")
            try:
                listed = [int(v) for v in np.asarray(labels).ravel()]
            except (ValueError, TypeError) as e:
                raise VerinferError(f"labels: not a list of class indices ({e})") from None
            with open(path, "w") as f:
                json.dump(listed, f)
            labels = path
        text, report, notes = _native.calibrate(
            model,
            os.fspath(data),
            settings,
            None if labels is None else os.fspath(labels),
            bits,
            headroom,
            **flags,
        )
    return Calibration(settings, text, report, notes)
