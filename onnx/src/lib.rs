//! Import PyTorch-exported ONNX models into the verinfer model IR
//! ([`verinfer_circuits::model::Model`]).
//!
//! The importer reads the ONNX protobuf itself (a hand-written `prost` subset of `onnx.proto`,
//! see [`proto`]), decodes the weights (inline, `raw_data`, or an external `.onnx.data` file next
//! to the model), folds constants and scalar factors, and emits the layers the prover
//! supports. It handles graphs from both `torch.onnx.export` exporters (TorchScript,
//! `dynamo=False`, and the dynamo exporter), opsets 13 to 18 (others, and a missing opset, are refused). Untrusted bytes never panic: every
//! failure is an [`OnnxError`] whose one-line message names the offending node.
//!
//! # Supported operators
//!
//! | ONNX op | becomes |
//! |---|---|
//! | `Conv` (2-D, group 1, dilation 1, any stride, symmetric pads or `auto_pad` that pads symmetrically) | `Conv2d` (+ bias) |
//! | `Gemm` (`transA = 0`, any `transB`, `alpha`/`beta` scale W and C) | `Dense` |
//! | `MatMul(x, W)` with constant `W [in, out]` (+ a following `Add` of a bias) | `Dense` |
//! | `BatchNormalization` (inference) directly after `Conv` / `Gemm` / `MatMul` | folded into that layer |
//! | `BatchNormalization` or a per-channel constant anywhere else (after an add, a pool, an activation: a pre-activation residual block) | its own per-channel layer: a 1×1 `Conv2d` (a `Dense` on vectors) with diagonal weights |
//! | `Add` / `Sub` / `Mul` / `Div` by a per-channel constant directly after a linear layer | folded into its weights / bias |
//! | `Mul`, `Add`, `Sub`, `Neg`, `Pow(·, 2)`, `Mul`/`Div` by a scalar, `Add`/`Sub` of a scalar | a quadratic polynomial, emitted as `Activation` (`Square`, `SquarePlusX` or `Quadratic`) or folded (below) |
//! | `AveragePool` (no padding, `ceil_mode` only when exact) | `SumPool`, with a factor `1/(kh·kw)` folded (below) |
//! | `GlobalAveragePool`, `ReduceMean` / `ReduceSum` over the spatial axes | `SumPool` over the whole image (+ `Flatten` without `keepdims`) |
//! | `Flatten` (axis 1), `Reshape`, `Squeeze`, `Unsqueeze` (batch axis untouched) | `Flatten` / `Reshape`, or nothing when the shape is unchanged |
//! | `Identity`, `Dropout`, `Cast` to a float type | nothing |
//! | trailing `Softmax` / `LogSoftmax` | dropped, with a note (argmax is unchanged) |
//! | `Constant`, `ConstantOfShape`, `Shape`, `Gather`, `Slice`, `Concat`, `Unsqueeze`, `Squeeze`, `Reshape`, `Cast`, `Transpose`, `Add`/`Sub`/`Mul`/`Div`/`Neg`/`Pow`/`Sqrt`/`Reciprocal` of constants | folded at import time (e.g. `x.view(x.size(0), -1)`) |
//! | `Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Gelu`, `Erf`, `Clip`, … | refused: use `x * x` or `x * x + x` |
//! | `MaxPool`, `GlobalMaxPool` | refused: use sum-pooling `F.avg_pool2d(x, k) * (k*k)` |
//! | `Conv` with `group > 1` or dilation > 1, asymmetric pads | refused |
//! | `Add` / `Sub` of two computed values (a residual connection) | `Add` (the operand on the latest layer's output is its input, the other its `with`; a pending factor on the latest one is folded back into its linear layer) |
//! | a value read again after later layers (a residual block's input, read by its shortcut) | `Branch` from the layer that computed it, then the shortcut's layers |
//! | `Concat` of activations, a branch from the model input | refused |
//! | anything else | refused: unsupported op |
//!
//! # Symbolic polynomials and folding
//!
//! Every elementwise tensor is tracked as `a·t² + b·t + c` in an *anchor* `t`, the output of the
//! last non-elementwise layer. When a non-elementwise consumer (a linear layer, a pool, a
//! reshape, the graph output) reads a polynomial:
//!
//! | polynomial | result |
//! |---|---|
//! | `t` | nothing |
//! | `t²` / `t² + t` / other degree 2 / degree 3 to 31 | `Activation::Square` / `SquarePlusX` / `Quadratic{a,b,c}` / `Polynomial{coefficients}` |
//! | `k·t` before `Conv` / `Gemm` / `MatMul` | weights multiplied by `k` (forward fold) |
//! | `k·t + c` before `SumPool` / `Flatten` / `Reshape` | carried through (a pool divides `k` by its window area) |
//! | `k·t + c` with `c ≠ 0` | folded backward into the last linear layer (`W ← k·W`, `b ← k·b + c`, `c` divided by the window area of every sum-pool in between); if there is no such layer, forward into a `Dense` or unpadded `Conv` bias (`b ← b + c·ΣW`) |
//! | `k·t` at the graph output | folded backward into the last linear layer, through `SumPool` / `Flatten` / `Reshape` only |
//!
//! So `F.avg_pool2d(x, 2) * 4` is an exact `SumPool` (`0.25 · 4 = 1`), a bare average pool before
//! a linear layer scales that layer's weights, and `x * x`, `x ** 2`, `torch.square(x)`,
//! `x * x + x`, `x * (x + 1)`, `0.5 * x ** 2 + x` all become one activation. Anything that cannot
//! fold (a degree above 2, a factor between an activation and the output, two anchors mixed) is
//! an error naming the node.
//!
//! # Input range and name
//!
//! The input range comes from [`ImportOptions::input_range`], else from the metadata property
//! `verinfer.input_range` (`"lo,hi"`), else `[-1, 1]` with a note. The model name is the metadata
//! property `verinfer.name`, else the graph name (unless it is an exporter default such as
//! `main_graph`), else the file stem.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use prost::Message;
use verinfer_circuits::model::{Model, ModelError};
use verinfer_circuits::settings::TensorNames;

mod convert;
pub mod proto;
mod tensor;

/// Options for [`import_file`] and [`import_bytes`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportOptions {
    /// The declared input range `[lo, hi]`; overrides the file's `verinfer.input_range`.
    pub input_range: Option<[f64; 2]>,
}

/// The result of an import: the model and human-readable notes on what the importer did
/// (dropped softmax, folded factors, the default input range, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The model; it passes [`Model::validate`].
    pub model: Model,
    /// Notes for the user, one sentence each.
    pub notes: Vec<String>,
    /// What the model's ONNX value names stand for, for a settings file's checkpoints: the
    /// layer computing each value (up to a scalar factor folded into the next linear layer,
    /// such as an average pool's `1/k²`), or why no layer does (e.g. `x*x` inside `x*x + x`).
    pub names: TensorNames,
}

/// Why an ONNX file could not be imported. Every message is one line.
#[derive(thiserror::Error, Debug)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX protobuf.
    #[error("not a valid ONNX model: {0}")]
    Decode(String),
    /// A constant tensor (initializer or attribute) is malformed or unreadable.
    #[error("tensor '{name}': {msg}")]
    Tensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// An operator the prover cannot support; the message says what to use instead.
    #[error("{node} ({op}) is not supported: {hint}")]
    Unsupported {
        /// The node, as `node 'name'` or `node #index`.
        node: String,
        /// Its op type.
        op: String,
        /// Why, and what to use instead.
        hint: String,
    },
    /// A supported operator used in a way the importer cannot convert.
    #[error("{node} ({op}): {msg}")]
    Node {
        /// The node, as `node 'name'` or `node #index`.
        node: String,
        /// Its op type.
        op: String,
        /// What is wrong.
        msg: String,
    },
    /// A problem with the graph as a whole (inputs, outputs, structure).
    #[error("graph: {0}")]
    Graph(String),
    /// The model's operator-set version is missing, ambiguous or outside 13 to 18.
    #[error("opset: {0}")]
    Opset(String),
    /// A malformed `verinfer.*` metadata property.
    #[error("metadata property '{key}': {msg}")]
    Metadata {
        /// The key.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// The converted model failed validation.
    #[error("the imported model is invalid: {0}")]
    Model(#[from] ModelError),
}

/// Makes untrusted text safe for a one-line message: control characters escaped, long text cut.
pub(crate) fn clean(s: &str) -> String {
    const MAX: usize = 120;
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Largest ONNX file [`import_file`] reads (external data files are bounded by the tensor
/// sizes they must hold).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// Opens `path` for reading only if it is a regular file (symbolic links followed).
///
/// Devices, FIFOs and sockets are refused before they are opened: opening a FIFO blocks until
/// a writer appears, and `/dev/zero` never ends, so reading either would hang or exhaust
/// memory. The handle is checked again after opening, in case the path was swapped between
/// the two looks.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    fn regular(meta: &std::fs::Metadata) -> std::io::Result<()> {
        if meta.is_file() {
            Ok(())
        } else {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "a device, FIFO or socket"
            };
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a regular file ({what})"),
            ))
        }
    }
    regular(&std::fs::metadata(path)?)?;
    let f = std::fs::File::open(path)?;
    regular(&f.metadata()?)?;
    Ok(f)
}

/// Reads a whole regular file ([`open_regular`]) of at most `limit` bytes. The limit is
/// enforced while reading (at most `limit + 1` bytes are ever read), so a file that grows, or
/// whose size the metadata misreports, cannot make it allocate more. An over-long file is an
/// error of kind [`std::io::ErrorKind::FileTooLarge`].
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let f = open_regular(path)?;
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("file is larger than {limit} bytes"),
        )
    };
    let size = f.metadata()?.len();
    if size > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Imports an ONNX file; external data files are resolved relative to its directory.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<Imported, OnnxError> {
    let bytes = read_regular(path, MAX_MODEL_BYTES).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = path.file_stem().and_then(|s| s.to_str());
    import_impl(&bytes, Some(&dir), opts, stem)
}

/// Imports an ONNX model from bytes. With `base_dir` `None`, a model whose weights live in an
/// external data file is an error.
pub fn import_bytes(
    bytes: &[u8],
    base_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Imported, OnnxError> {
    import_impl(bytes, base_dir, opts, None)
}

fn import_impl(
    bytes: &[u8],
    base_dir: Option<&Path>,
    opts: &ImportOptions,
    stem: Option<&str>,
) -> Result<Imported, OnnxError> {
    let model =
        proto::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(clean(&e.to_string())))?;
    convert::convert(&model, base_dir, opts, stem)
}
