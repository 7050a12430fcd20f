"""Type stubs of the native module (``verinfer._native``); use the package ``verinfer``."""

from typing import List, Optional, Tuple, Union

class VerinferError(ValueError):
    """A model, settings file, input or flag that cannot be used (the CLI's exit code 2)."""

class VerificationError(VerinferError):
    """A rejected proof, with the reason (the CLI's ``REJECTED: ...``, exit code 1)."""

class Circuit:
    """A compiled model."""
    def info_json(self) -> str: ...
    @property
    def field_reason(self) -> str: ...
    @property
    def notes(self) -> List[str]: ...

Input = Union[bytes, str]
Values = Tuple[List[int], List[float]]

def compile(
    model: str,
    settings: Optional[str] = None,
    input_bits: Optional[int] = None,
    weight_bits: Optional[int] = None,
    coef_bits: Optional[int] = None,
    weight_scale: Optional[str] = None,
    field: Optional[str] = None,
    input_range: Optional[str] = None,
    relu: Optional[str] = None,
) -> Circuit: ...
def prove(
    circuit: Circuit, x: Input, max_memory: Optional[str] = None
) -> Tuple[List[int], List[float], bytes, float, float]: ...
def verify(
    circuit: Circuit, x: Input, proof: bytes
) -> Tuple[List[int], List[float], int, float, float]: ...
def claimed(circuit: Circuit, proof: bytes) -> Values: ...
def infer(circuit: Circuit, x: Input, max_memory: Optional[str] = None) -> Values: ...
def calibrate(
    model: str,
    data: str,
    settings: str,
    labels: Optional[str] = None,
    bits: int = 16,
    headroom: int = 1,
    input_bits: Optional[int] = None,
    weight_bits: Optional[int] = None,
    coef_bits: Optional[int] = None,
    weight_scale: Optional[str] = None,
    field: Optional[str] = None,
    input_range: Optional[str] = None,
    relu: Optional[str] = None,
) -> Tuple[str, str, List[str]]: ...
