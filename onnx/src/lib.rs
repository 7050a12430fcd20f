//! ONNX import (skeleton; filled in by the ONNX work).
#![forbid(unsafe_code)]
