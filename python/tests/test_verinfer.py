"""Tests of the Python package against the committed models and the command line.

The command line comes from $VERINFER_BIN, else the workspace's target folder ($CARGO_TARGET_DIR
or target/, debug or release): .ci/run builds it with `cargo test --workspace` first.
"""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import verinfer

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "models" / "digits" / "digits_square_plus_x.onnx"
TEST_SET = ROOT / "models" / "digits" / "test_set.json"
DEEP = ROOT / "models" / "deep"


def cli_binary() -> Path:
    if os.environ.get("VERINFER_BIN"):
        return Path(os.environ["VERINFER_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("release", "debug"):
        exe = target / profile / "verinfer"
        if exe.is_file():
            return exe
    pytest.fail("no verinfer binary: build it (cargo build) or set VERINFER_BIN")


def cli(*args):
    return subprocess.run([str(cli_binary()), *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def digits():
    return verinfer.compile(DIGITS)


@pytest.fixture(scope="module")
def test_set():
    d = json.loads(TEST_SET.read_text())
    return np.array(d["images"], dtype=np.float64), np.array(d["labels"])


def test_circuit_description(digits):
    assert digits.name == "digits-square_plus_x"
    assert digits.field == "m127"
    assert digits.input_shape == (1, 8, 8)
    assert digits.output_shape == (10,)
    assert len(digits.digest) == 64
    assert [layer["kind"] for layer in digits.layers][0] == "conv2d"
    assert {"kind", "label", "input_dims", "output_dims", "scale_bits", "bound_bits"} <= set(
        digits.layers[0]
    )
    # The digest is the command line's.
    assert digits.digest in cli("inspect", "--model", DIGITS).stdout


def test_round_trip(digits, test_set):
    x, labels = test_set
    x = x[:16]
    proof = verinfer.prove(digits, x)
    assert proof.output.shape == (16, 10)
    assert proof.output.dtype == object
    assert all(type(v) is int for v in proof.output.ravel())
    # The values exceed 64 bits: exact Python integers, not floats.
    assert max(abs(v) for v in proof.output.ravel()) > 2**64
    assert np.array_equal(proof.dequantized(), np.array(proof.output, dtype=np.float64) / 2.0**proof.scale_bits)

    verified = verinfer.verify(digits, x, proof)
    assert verified.batch == 16
    assert verified.soundness_bits > 100
    assert (verified.output == proof.output).all()
    assert (verified.argmax == labels[:16]).mean() > 0.9

    again = verinfer.Proof.from_bytes(proof.to_bytes(), digits)
    assert (again.output == proof.output).all()
    assert verinfer.verify(digits, x, again.to_bytes()).batch == 16

    # One item without the batch dimension.
    one = verinfer.prove(digits, x[0])
    assert one.output.shape == (1, 10)
    assert (one.output[0] == proof.output[0]).all()


def test_proof_file_is_the_clis(digits, test_set, tmp_path):
    x = test_set[0][:3]
    np.save(tmp_path / "x.npy", x)
    proof = verinfer.prove(digits, x)
    (tmp_path / "x.proof").write_bytes(proof.to_bytes())
    r = cli("verify", "--model", DIGITS, "--input", tmp_path / "x.npy", "--proof", tmp_path / "x.proof")
    assert r.returncode == 0 and r.stdout.startswith("VALID"), r.stdout + r.stderr
    assert cli("prove", "--model", DIGITS, "--input", tmp_path / "x.npy", "--proof", tmp_path / "c.proof").returncode == 0
    verinfer.verify(digits, tmp_path / "x.npy", (tmp_path / "c.proof").read_bytes())


def test_tampered_proof_rejected(digits, test_set):
    x = test_set[0][:4]
    good = verinfer.prove(digits, x).to_bytes()
    rejected = 0
    # Every byte after the header, in steps, and the last one.
    positions = list(range(40, len(good), max(1, len(good) // 60))) + [len(good) - 1]
    for i in positions:
        bad = bytearray(good)
        bad[i] ^= 0x01
        assert bytes(bad) != good
        with pytest.raises(verinfer.VerificationError) as e:
            verinfer.verify(digits, x, bytes(bad))
        assert str(e.value) and "\n" not in str(e.value)
        rejected += 1
    assert rejected == len(positions)
    # A valid proof for another input.
    with pytest.raises(verinfer.VerificationError):
        verinfer.verify(digits, test_set[0][4:8], good)
    # Truncated: the claim under test does not decode.
    with pytest.raises(verinfer.VerificationError):
        verinfer.verify(digits, x, good[:-1])
    with pytest.raises(verinfer.VerificationError):
        verinfer.Proof.from_bytes(good[:10], digits)


def test_agrees_with_cli_infer_on_the_test_set(digits, test_set, tmp_path):
    x, labels = test_set
    np.save(tmp_path / "x.npy", x)
    r = cli("infer", "--model", DIGITS, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.json")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "y.json").read_text())
    inferred = verinfer.infer(digits, x)
    assert list(inferred.output.shape) == report["shape"] == [360, 10]
    assert [int(v) for v in report["values"]] == list(inferred.output.ravel())
    assert list(inferred.argmax) == report["argmax"]
    assert list(inferred.dequantized().ravel()) == report["dequantized"]
    # and the proved output is that inference.
    proof = verinfer.prove(digits, x)
    assert (proof.output == inferred.output).all()
    assert verinfer.verify(digits, x, proof).batch == 360
    assert (inferred.argmax == labels).mean() > 0.95


def upsampled(images, k):
    return np.kron(images, np.ones((1, 1, k, k)))


@pytest.mark.parametrize("name,scale", [("lenet5", 4), ("resnet", 2)])
def test_deep_models_with_settings(test_set, name, scale, tmp_path):
    settings = DEEP / f"{name}.settings.json"
    c = verinfer.compile(DEEP / f"{name}.onnx", settings)
    x = upsampled(test_set[0][:2], scale)
    assert x.shape[1:] == c.input_shape
    proof = verinfer.prove(c, x)
    v = verinfer.verify(c, x, proof)
    assert (v.output == proof.output).all()
    np.save(tmp_path / "x.npy", x)
    r = cli("infer", "--model", DEEP / f"{name}.onnx", "--settings", settings, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.json")
    assert r.returncode == 0, r.stderr
    assert [int(s) for s in json.loads((tmp_path / "y.json").read_text())["values"]] == list(v.output.ravel())
    # Other settings compile another circuit: the proof is rejected.
    other = verinfer.compile(DEEP / f"{name}.onnx", DEEP / f"{name}.6bit.perlayer.settings.json")
    assert other.digest != c.digest
    with pytest.raises(verinfer.VerificationError, match="digest"):
        verinfer.verify(other, x, proof)


def test_calibrate(test_set, tmp_path):
    out = tmp_path / "s.json"
    cal = verinfer.calibrate(DIGITS, TEST_SET, out, bits=12)
    assert out.is_file() and cal.settings == json.loads(out.read_text())
    assert len(cal.settings["requant"]) == 2
    assert "accuracy" in cal.report
    c = verinfer.compile(DIGITS, out)
    assert c.max_bits < verinfer.compile(DIGITS).max_bits
    x, labels = test_set
    assert (verinfer.infer(c, x).argmax == labels).mean() > 0.95
    # Arrays and label lists, as files for the command line: the same settings.
    out2 = tmp_path / "s2.json"
    cal2 = verinfer.calibrate(DIGITS, x, out2, labels=list(labels), bits=12)
    assert cal2.settings == cal.settings
    r = cli("calibrate", "--model", DIGITS, "--data", TEST_SET, "--bits", 12, "--settings", tmp_path / "s3.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "s3.json").read_text()) == cal.settings


def test_arrays_of_any_layout_and_dtype(digits, test_set):
    x = test_set[0][:4]
    want = verinfer.infer(digits, x).output
    fortran = np.asfortranarray(x)
    strided = np.repeat(x, 2, axis=0)[::2]
    assert not strided.flags["C_CONTIGUOUS"]
    for arr in (fortran, strided, x.astype(np.float32), x.tolist(), (x * 16).astype(np.uint8) / 16):
        assert (verinfer.infer(digits, arr).output == want).all()
    ints = np.zeros((2, 1, 8, 8), dtype=np.int16)
    assert verinfer.infer(digits, ints).output.shape == (2, 10)


def same_message_as_cli(tmp_path, content, suffix=".json"):
    """The Python message for a bad input file equals the command line's (after `error: `)."""
    path = tmp_path / f"bad{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    r = cli("infer", "--model", DIGITS, "--input", path)
    assert r.returncode == 2
    with pytest.raises(verinfer.VerinferError) as e:
        verinfer.infer(verinfer.compile(DIGITS), path)
    assert r.stderr.strip() == f"error: {e.value}"
    return str(e.value)


def test_bad_input_files_give_the_clis_messages(tmp_path):
    assert "outside the declared input range" in same_message_as_cli(tmp_path, json.dumps([[[2.0] * 8] * 8]))
    assert "expects" in same_message_as_cli(tmp_path, json.dumps([[1.0, 2.0]]))
    assert "JSON" in same_message_as_cli(tmp_path, "[[[0.5")
    np.save(tmp_path / "c.npy", np.zeros((1, 1, 8, 8), dtype=np.complex64))
    assert "dtype" in same_message_as_cli(tmp_path, (tmp_path / "c.npy").read_bytes(), ".npy")


@pytest.mark.parametrize(
    "bad,needle",
    [
        (np.full((1, 1, 8, 8), np.nan), "outside the declared input range"),
        (np.full((1, 1, 8, 8), 1.5), "outside the declared input range"),
        (np.full((1, 1, 8, 8), -np.inf), "outside the declared input range"),
        (np.zeros((1, 1, 8, 7)), "the model expects [1, 8, 8]"),
        (np.zeros((3, 2, 1, 8, 8)), "the model expects"),
        (np.zeros((0, 1, 8, 8)), "empty"),
        (np.zeros(()), "the model expects"),
        (np.array([["a"] * 8] * 8), "dtype"),
        (np.zeros((1, 1, 8, 8), dtype=object), "dtype"),
        (np.zeros((1, 1, 8, 8), dtype=bool), "dtype"),
        (np.zeros((1, 1, 8, 8), dtype=np.complex128), "dtype"),
        (np.zeros((1, 1, 8, 8), dtype=np.float16), "dtype"),
        ([[1.0, 2.0], [3.0]], "not an array of numbers"),
        ({"input": 1}, "dtype"),
        (None, "dtype"),
    ],
)
def test_bad_arrays_raise(digits, bad, needle):
    for call in (verinfer.infer, verinfer.prove):
        with pytest.raises(verinfer.VerinferError) as e:
            call(digits, bad)
        assert needle in str(e.value) and "\n" not in str(e.value)
    good = verinfer.prove(digits, np.zeros((1, 1, 8, 8)))
    with pytest.raises(verinfer.VerinferError):
        verinfer.verify(digits, bad, good)


def test_bad_models_settings_flags_and_types(digits, tmp_path):
    with pytest.raises(verinfer.VerinferError, match="cannot read"):
        verinfer.compile(tmp_path / "missing.onnx")
    (tmp_path / "s.json").write_text('{"format": "verinfer-settings/1", "input_bits": 99, "x": 1}')
    r = cli("inspect", "--model", DIGITS, "--settings", tmp_path / "s.json")
    with pytest.raises(verinfer.VerinferError) as e:
        verinfer.compile(DIGITS, tmp_path / "s.json")
    assert r.stderr.strip() == f"error: {e.value}"
    with pytest.raises(verinfer.VerinferError, match="--field"):
        verinfer.compile(DIGITS, field="p17")
    with pytest.raises(verinfer.VerinferError, match="--input-range"):
        verinfer.compile(DIGITS, input_range=(1, 0))
    with pytest.raises(verinfer.VerinferError, match="--max-memory"):
        verinfer.prove(digits, np.zeros((1, 1, 8, 8)), max_memory="lots")
    with pytest.raises(verinfer.VerinferError, match="memory budget"):
        verinfer.prove(digits, np.zeros((4, 1, 8, 8)), max_memory="1K")
    with pytest.raises(verinfer.VerinferError, match="circuit"):
        verinfer.prove("digits", np.zeros((1, 1, 8, 8)))
    with pytest.raises(verinfer.VerinferError, match="proof"):
        verinfer.verify(digits, np.zeros((1, 1, 8, 8)), 12)
    with pytest.raises(verinfer.VerificationError):
        verinfer.verify(digits, np.zeros((1, 1, 8, 8)), b"")
    # A proof over the other field is refused by its header.
    bn = verinfer.compile(DIGITS, field="bn254")
    with pytest.raises(verinfer.VerificationError, match="the proof is over m127"):
        verinfer.verify(bn, np.zeros((1, 1, 8, 8)), verinfer.prove(digits, np.zeros((1, 1, 8, 8))))


def test_long_calls_release_the_gil(digits, test_set):
    """Another Python thread keeps running while a proof is being made."""
    x = np.tile(test_set[0], (16, 1, 1, 1))
    data = verinfer._input(x)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    t = threading.Thread(target=tick)
    t.start()
    try:
        t0 = time.perf_counter()
        verinfer._native.prove(digits._native, data, None)
        t1 = time.perf_counter()
    finally:
        done.set()
        t.join()
    assert t1 - t0 > 0.02
    # Ticks in the middle half of the native call: none if it held the GIL.
    lo, hi = t0 + (t1 - t0) / 4, t1 - (t1 - t0) / 4
    assert sum(lo < s < hi for s in ticks) > 3
