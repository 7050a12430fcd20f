//! The model IR: a sequence of CNN layers with float weights, as users write or import it. Each
//! layer reads the previous one's output; an `add` also reads an earlier layer's, and a
//! `branch` continues from an earlier layer's instead (residual networks).
//!
//! It is serialised as JSON (the "model file" of the README). Shapes are per item: the batch
//! dimension is not part of the model, it comes with the input. Tensors are `[C, H, W]` for
//! images and `[F]` for feature vectors; weights are row-major (`Conv2d`: `[out, in, kh, kw]`,
//! `Dense`: `[out, in]`).
//!
//! A model is quantized and compiled by `compile` (docs/protocol.md §3, §6).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest degree of a polynomial activation (its sumcheck has round degree `d + 1`, and the
/// proof format caps round degrees at 32).
pub const MAX_ACTIVATION_DEGREE: usize = 31;

/// A polynomial activation: the quadratics of the literature by name, or any polynomial of degree
/// 2 to [`MAX_ACTIVATION_DEGREE`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Activation {
    /// `x²` (CryptoNets, SafetyNets).
    Square,
    /// `x² + x` (Ali et al.), a better quadratic stand-in for ReLU.
    SquarePlusX,
    /// `a·x² + b·x + c`.
    Quadratic {
        /// Coefficient of x².
        a: f64,
        /// Coefficient of x.
        b: f64,
        /// Constant term.
        c: f64,
    },
    /// `c_0 + c_1·x + … + c_d·x^d`.
    Polynomial {
        /// `[c_0, …, c_d]`, constant first.
        coefficients: Vec<f64>,
    },
}

impl Activation {
    /// The coefficients `[c_0, …, c_d]`, constant first: three for the named quadratics (which
    /// stay quadratics even when `a = 0`), a polynomial's without trailing zeros (at least one).
    pub fn coefficients(&self) -> Vec<f64> {
        match self {
            Activation::Square => vec![0.0, 0.0, 1.0],
            Activation::SquarePlusX => vec![0.0, 1.0, 1.0],
            Activation::Quadratic { a, b, c } => vec![*c, *b, *a],
            Activation::Polynomial { coefficients } => {
                let mut c = coefficients.clone();
                while c.len() > 1 && c.last() == Some(&0.0) {
                    c.pop();
                }
                if c.is_empty() {
                    c.push(0.0);
                }
                c
            }
        }
    }

    /// The degree `d` the circuit proves: the length of [`Self::coefficients`] minus one.
    pub fn degree(&self) -> usize {
        self.coefficients().len() - 1
    }

    /// `p(x)` in `f64` (Horner).
    pub fn eval(&self, x: f64) -> f64 {
        horner(&self.coefficients(), x)
    }

    /// Why the activation cannot be compiled: a coefficient that is not finite, or a polynomial
    /// of degree outside `1..=`[`MAX_ACTIVATION_DEGREE`] (a named quadratic always passes).
    pub fn check(&self) -> Result<(), String> {
        let c = self.coefficients();
        if let Some(x) = c.iter().find(|x| !x.is_finite()) {
            return Err(format!("activation coefficient {x} is not a finite number"));
        }
        if let Activation::Polynomial { coefficients } = self {
            if coefficients.len() > MAX_ACTIVATION_DEGREE + 1 {
                return Err(format!(
                    "a polynomial activation has {} coefficients; at most {} (degree {MAX_ACTIVATION_DEGREE})",
                    coefficients.len(),
                    MAX_ACTIVATION_DEGREE + 1
                ));
            }
            if c.len() < 2 {
                return Err(format!(
                    "a polynomial activation of degree 0 ({coefficients:?}) is a constant: give at least c_0 and c_1"
                ));
            }
        }
        Ok(())
    }

    /// Short name for tables and reports.
    pub fn name(&self) -> String {
        match self {
            Activation::Square => "square".into(),
            Activation::SquarePlusX => "square_plus_x".into(),
            Activation::Quadratic { a, b, c } => format!("quadratic({a},{b},{c})"),
            Activation::Polynomial { .. } => format!("polynomial(degree {})", self.degree()),
        }
    }
}

/// `Σ c_k·x^k` by Horner's rule, `c` constant first.
pub fn horner(c: &[f64], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &ck| acc * x + ck)
}

/// A 2-D convolution (group 1, dilation 1), zero padding on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    #[serde(default = "one_one")]
    pub stride: [usize; 2],
    /// Zero padding `[rows, cols]` added on each side.
    #[serde(default)]
    pub padding: [usize; 2],
    /// Weights, row-major `[out, in, kh, kw]`.
    pub weight: Vec<f64>,
    /// One bias per output channel.
    #[serde(default)]
    pub bias: Option<Vec<f64>>,
}

/// A fully connected layer `y = W·x + b`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// Input features (the flattened size of the input).
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Weights, row-major `[out, in]`.
    pub weight: Vec<f64>,
    /// One bias per output.
    #[serde(default)]
    pub bias: Option<Vec<f64>>,
}

/// A requantization checkpoint on the integers of the tensor before it:
/// `Y' = clamp(⌊(Y + 2^(shift−1)) / 2^shift⌋, −2^(bits−1), 2^(bits−1) − 1)` (for `shift = 0`, the
/// clamp only), at scale `s − shift`. In the float model it is the identity: it only keeps the
/// integers of a deep network inside the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    /// Fractional bits dropped (rounding half up).
    pub shift: u32,
    /// Signed bits kept (2..=62).
    pub bits: u32,
}

/// A residual connection: the previous layer's output plus (or minus) the output of an earlier
/// layer `with` (same shape), the operand at the lower scale lifted by an exact power of two to
/// the other's (`Z = A·2^(s−sA) ± B·2^(s−sB)`, `s = max(sA, sB)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Add {
    /// The model layer (0-based, before this one) whose output is the other operand.
    pub with: usize,
    /// Subtract that operand instead (`A − B`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subtract: bool,
}

/// The start of a side branch: passes on the output of an earlier layer `from` instead of the
/// previous layer's (e.g. the input of a residual block, for its 1×1 shortcut convolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    /// The model layer (0-based, before this one) whose output it passes on.
    pub from: usize,
}

/// Sum-pooling: each output is the plain sum of its window (no division, no max).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumPool {
    /// Window `[height, width]`.
    pub window: [usize; 2],
    /// Stride `[vertical, horizontal]`; defaults to the window.
    #[serde(default)]
    pub stride: Option<[usize; 2]>,
}

impl SumPool {
    /// The stride, defaulting to the window.
    pub fn stride(&self) -> [usize; 2] {
        self.stride.unwrap_or(self.window)
    }
}

/// One layer of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Layer {
    /// 2-D convolution with optional bias.
    Conv2d(Conv2d),
    /// Fully connected layer with optional bias (flattens its input row-major).
    Dense(Dense),
    /// Sum-pooling over spatial windows.
    SumPool(SumPool),
    /// Row-major flattening of `[C, H, W]` to `[C·H·W]`.
    Flatten,
    /// Row-major relabelling to another shape of the same size.
    Reshape {
        /// The new per-item shape.
        shape: Vec<usize>,
    },
    /// Element-wise polynomial activation.
    Activation(Activation),
    /// A requantization checkpoint.
    Requant(Requant),
    /// A residual connection: the previous output plus an earlier layer's.
    Add(Add),
    /// Continues from an earlier layer's output (a side branch).
    Branch(Branch),
    /// A rectified linear unit (or a leaky one), compiled as an exact function at a checkpoint.
    Relu(Relu),
    /// Max-pooling over the windows a sum-pool of the same `window` and `stride` sums, compiled
    /// as an exact function at a checkpoint.
    MaxPool(SumPool),
    /// The previous output times an earlier layer's, element-wise (Lee et al.'s `x·p(x)`).
    Mul(Mul),
    /// Divides by `2^shift` exactly: the integers stay, only their scale grows (no circuit
    /// layer). Only the next layer may read its output.
    Scale {
        /// Bits the scale grows by.
        shift: u32,
    },
}

/// An element-wise product: the previous layer's output times the output of an earlier layer
/// `with` (same shape); the scales add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mul {
    /// The model layer (0-based, before this one) whose output is the other factor.
    pub with: usize,
}

/// `max(x, 0)`, or LeakyReLU `x` for `x ≥ 0` and `x·2^−slope_shift` below. The compiler makes it
/// an exact function of a requantization checkpoint: the one placed right before it, or one it
/// inserts (docs/protocol.md §5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relu {
    /// LeakyReLU with negative slope `2^−slope_shift` (1..=30); absent for ReLU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope_shift: Option<u32>,
}

impl Relu {
    /// The function on a real number.
    pub fn eval(&self, x: f64) -> f64 {
        match self.slope_shift {
            _ if x >= 0.0 => x,
            None => 0.0,
            Some(k) => x / 2f64.powi(k.min(1000) as i32),
        }
    }
}

impl Layer {
    /// The earlier model layer this layer reads besides (`add`) or instead of (`branch`) the
    /// previous one.
    pub fn reference(&self) -> Option<usize> {
        match self {
            Layer::Add(a) => Some(a.with),
            Layer::Mul(m) => Some(m.with),
            Layer::Branch(b) => Some(b.from),
            _ => None,
        }
    }

    fn reference_mut(&mut self) -> Option<&mut usize> {
        match self {
            Layer::Add(a) => Some(&mut a.with),
            Layer::Mul(m) => Some(&mut m.with),
            Layer::Branch(b) => Some(&mut b.from),
            _ => None,
        }
    }
}

/// A model: input shape and range, and its layers in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// A name for reports.
    #[serde(default)]
    pub name: String,
    /// Per-item input shape, `[C, H, W]` or `[F]`.
    pub input_shape: Vec<usize>,
    /// Declared range of input values `[lo, hi]` (floats, before quantization). The bound
    /// analysis relies on it; inputs outside it are refused.
    #[serde(default = "default_range")]
    pub input_range: [f64; 2],
    /// Layers, input to output.
    pub layers: Vec<Layer>,
}

fn one_one() -> [usize; 2] {
    [1, 1]
}

fn default_range() -> [f64; 2] {
    [-1.0, 1.0]
}

/// Largest total size of one tensor (per item) the compiler accepts.
pub const MAX_TENSOR_ELEMS: usize = 1 << 26;

/// Why a model is malformed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    /// A shape does not fit a layer.
    #[error("layer {layer} ({op}): {msg}")]
    Shape {
        /// Index of the layer (0-based).
        layer: usize,
        /// The layer's operation.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The input shape is unusable.
    #[error("input shape {0:?}: expected [C, H, W] or [F] with every dimension ≥ 1 and at most 2^26 values")]
    InputShape(Vec<usize>),
    /// The declared input range is empty or not finite.
    #[error("input range [{0}, {1}] is empty or not finite")]
    InputRange(f64, f64),
    /// A weight, bias or coefficient is NaN or infinite.
    #[error("layer {0}: weights must be finite numbers")]
    NonFinite(usize),
    /// The model has no layers.
    #[error("the model has no layers")]
    Empty,
    /// The JSON could not be parsed.
    #[error("model file: {0}")]
    Json(String),
}

impl Layer {
    /// Short name of the operation.
    pub fn op_name(&self) -> &'static str {
        match self {
            Layer::Conv2d(_) => "conv2d",
            Layer::Dense(_) => "dense",
            Layer::SumPool(_) => "sum_pool",
            Layer::Flatten => "flatten",
            Layer::Reshape { .. } => "reshape",
            Layer::Activation(_) => "activation",
            Layer::Requant(_) => "requant",
            Layer::Add(_) => "add",
            Layer::Branch(_) => "branch",
            Layer::Relu(_) => "relu",
            Layer::MaxPool(_) => "max_pool",
            Layer::Mul(_) => "mul",
            Layer::Scale { .. } => "scale",
        }
    }
}

/// The product of `dims`, or `None` on overflow.
fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The per-item output shape of `layer` on an input of per-item shape `input`.
pub fn output_shape(
    layer: &Layer,
    input: &[usize],
    index: usize,
) -> Result<Vec<usize>, ModelError> {
    let op = layer.op_name();
    let err = |msg: String| ModelError::Shape {
        layer: index,
        op,
        msg,
    };
    let total =
        checked_product(input).ok_or_else(|| err(format!("input shape {input:?} is too large")))?;
    // n + 2p, saturating (an absurd padding then fails the weight-count check).
    let span = |n: usize, p: usize| {
        p.checked_mul(2)
            .and_then(|p| p.checked_add(n))
            .unwrap_or(usize::MAX)
    };
    match layer {
        Layer::Conv2d(c) => {
            let [ch, h, w] = <[usize; 3]>::try_from(input)
                .map_err(|_| err(format!("needs a [C, H, W] input, got {input:?}")))?;
            if ch != c.in_channels {
                return Err(err(format!(
                    "expects {} input channels, got {ch}",
                    c.in_channels
                )));
            }
            let [kh, kw] = c.kernel;
            let [sh, sw] = c.stride;
            let [ph, pw] = c.padding;
            if kh == 0 || kw == 0 || sh == 0 || sw == 0 || c.out_channels == 0 {
                return Err(err("kernel, stride and channels must be positive".into()));
            }
            if span(h, ph) < kh || span(w, pw) < kw {
                return Err(err(format!(
                    "kernel {kh}x{kw} larger than padded input {h}x{w}"
                )));
            }
            if ph >= kh || pw >= kw {
                return Err(err("padding must be smaller than the kernel".into()));
            }
            let expect = checked_product(&[c.out_channels, ch, kh, kw]).unwrap_or(usize::MAX);
            if c.weight.len() != expect {
                return Err(err(format!(
                    "weight has {} values, expected {expect}",
                    c.weight.len()
                )));
            }
            if let Some(b) = &c.bias {
                if b.len() != c.out_channels {
                    return Err(err(format!(
                        "bias has {} values, expected {}",
                        b.len(),
                        c.out_channels
                    )));
                }
            }
            Ok(vec![
                c.out_channels,
                (span(h, ph) - kh) / sh + 1,
                (span(w, pw) - kw) / sw + 1,
            ])
        }
        Layer::Dense(d) => {
            if total != d.in_features {
                return Err(err(format!(
                    "expects {} input features, got {total} (shape {input:?})",
                    d.in_features
                )));
            }
            if d.out_features == 0 {
                return Err(err("needs at least one output".into()));
            }
            let expect = d.out_features.saturating_mul(d.in_features);
            if d.weight.len() != expect {
                return Err(err(format!(
                    "weight has {} values, expected {expect}",
                    d.weight.len()
                )));
            }
            if let Some(b) = &d.bias {
                if b.len() != d.out_features {
                    return Err(err(format!(
                        "bias has {} values, expected {}",
                        b.len(),
                        d.out_features
                    )));
                }
            }
            Ok(vec![d.out_features])
        }
        Layer::SumPool(p) | Layer::MaxPool(p) => {
            let [ch, h, w] = <[usize; 3]>::try_from(input)
                .map_err(|_| err(format!("needs a [C, H, W] input, got {input:?}")))?;
            let [kh, kw] = p.window;
            let [sh, sw] = p.stride();
            if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
                return Err(err("window and stride must be positive".into()));
            }
            if kh > h || kw > w {
                return Err(err(format!("window {kh}x{kw} larger than input {h}x{w}")));
            }
            Ok(vec![ch, (h - kh) / sh + 1, (w - kw) / sw + 1])
        }
        Layer::Flatten => Ok(vec![total]),
        Layer::Reshape { shape } => {
            if checked_product(shape) != Some(total) || shape.is_empty() || shape.len() > 3 {
                return Err(err(format!("cannot reshape {input:?} to {shape:?}")));
            }
            Ok(shape.clone())
        }
        Layer::Activation(_) | Layer::Requant(_) | Layer::Relu(_) | Layer::Scale { .. } => {
            Ok(input.to_vec())
        }
        Layer::Add(_) | Layer::Mul(_) | Layer::Branch(_) => Err(err(
            "reads an earlier layer's output: its shape needs the whole model".into(),
        )),
    }
}

/// [`output_shape`] for a layer of a model whose earlier shapes are known (`shapes[0]` the
/// input, `shapes[i + 1]` the output of layer `i`, for every layer before `index`): also
/// handles `add` (both operands of one shape) and `branch`.
pub fn output_shape_in(
    layer: &Layer,
    shapes: &[Vec<usize>],
    index: usize,
) -> Result<Vec<usize>, ModelError> {
    let err = |msg: String| ModelError::Shape {
        layer: index,
        op: layer.op_name(),
        msg,
    };
    let prev = shapes.get(index).map(Vec::as_slice).unwrap_or(&[]);
    let Some(at) = layer.reference() else {
        return output_shape(layer, prev, index);
    };
    if at >= index {
        return Err(err(format!(
            "refers to layer {at}, which is not before it (layers 0..{index})"
        )));
    }
    let other = shapes.get(at + 1).cloned().unwrap_or_default();
    match layer {
        Layer::Add(_) | Layer::Mul(_) if other != prev => Err(err(format!(
            "combines layer {at}'s output of shape {other:?} with one of shape {prev:?}"
        ))),
        _ => Ok(other),
    }
}

impl Model {
    /// Parses a model from JSON and validates it.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let m: Model = serde_json::from_str(text).map_err(|e| ModelError::Json(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Inserts `layer` right after layer `after`: every reference to layer `after` or a later
    /// one moves with it, so whatever read layer `after`'s output now reads the new layer's
    /// (a checkpoint applies before any consumer reads the tensor).
    pub fn insert_after(&mut self, after: usize, layer: Layer) {
        for l in &mut self.layers {
            if let Some(r) = l.reference_mut() {
                if *r >= after {
                    *r += 1;
                }
            }
        }
        let at = (after + 1).min(self.layers.len());
        self.layers.insert(at, layer);
    }

    /// Serialises the model as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks shapes, sizes and numbers; returns the per-item shape after every layer
    /// (`shapes[0]` is the input, `shapes[i + 1]` the output of layer `i`).
    pub fn validate(&self) -> Result<Vec<Vec<usize>>, ModelError> {
        let s = &self.input_shape;
        if !(s.len() == 1 || s.len() == 3)
            || s.contains(&0)
            || checked_product(s).is_none_or(|n| n > MAX_TENSOR_ELEMS)
        {
            return Err(ModelError::InputShape(s.clone()));
        }
        let [lo, hi] = self.input_range;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(ModelError::InputRange(lo, hi));
        }
        if self.layers.is_empty() {
            return Err(ModelError::Empty);
        }
        let mut shapes = vec![s.clone()];
        for (i, layer) in self.layers.iter().enumerate() {
            let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
            let ok = match layer {
                Layer::Conv2d(c) => finite(&c.weight) && c.bias.as_deref().is_none_or(finite),
                Layer::Dense(d) => finite(&d.weight) && d.bias.as_deref().is_none_or(finite),
                Layer::Activation(a) => {
                    a.check().map_err(|msg| ModelError::Shape {
                        layer: i,
                        op: layer.op_name(),
                        msg,
                    })?;
                    true
                }
                _ => true,
            };
            if !ok {
                return Err(ModelError::NonFinite(i));
            }
            let out = output_shape_in(layer, &shapes, i)?;
            if out.contains(&0) || checked_product(&out).is_none_or(|n| n > MAX_TENSOR_ELEMS) {
                return Err(ModelError::Shape {
                    layer: i,
                    op: layer.op_name(),
                    msg: format!("output shape {out:?} is empty or too large"),
                });
            }
            shapes.push(out);
        }
        // A layer whose output nothing reads (a branch right after it skips it) is a mistake
        // the prover could not even prove: say which.
        let n = self.layers.len();
        let mut read = vec![false; n];
        for (i, layer) in self.layers.iter().enumerate() {
            if i > 0 && !matches!(layer, Layer::Branch(_)) {
                read[i - 1] = true;
            }
            if let Some(r) = layer.reference() {
                if let Some(x) = read.get_mut(r) {
                    *x = true;
                }
            }
        }
        if let Some(i) = (0..n.saturating_sub(1)).find(|&i| !read[i]) {
            return Err(ModelError::Shape {
                layer: i,
                op: self.layers[i].op_name(),
                msg: "its output is never read (the branch after it starts from another layer)"
                    .into(),
            });
        }
        Ok(shapes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Model {
        Model {
            name: "tiny".into(),
            input_shape: vec![1, 5, 7],
            input_range: [0.0, 1.0],
            layers: vec![
                Layer::Conv2d(Conv2d {
                    in_channels: 1,
                    out_channels: 2,
                    kernel: [3, 2],
                    stride: [2, 1],
                    padding: [1, 1],
                    weight: vec![0.5; 12],
                    bias: Some(vec![0.1, -0.1]),
                }),
                Layer::Activation(Activation::SquarePlusX),
                Layer::SumPool(SumPool {
                    window: [2, 2],
                    stride: None,
                }),
                Layer::Flatten,
                Layer::Dense(Dense {
                    in_features: 8,
                    out_features: 3,
                    weight: vec![0.25; 24],
                    bias: None,
                }),
            ],
        }
    }

    #[test]
    fn shapes_and_json_round_trip() {
        let m = tiny();
        let shapes = m.validate().unwrap();
        assert_eq!(shapes[1], vec![2, 3, 8]);
        assert_eq!(shapes[3], vec![2, 1, 4]);
        assert_eq!(shapes[5], vec![3]);
        let back = Model::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn inserted_layers_keep_references_on_their_tensors() {
        // conv(0) → act(1) → branch from 0 (2) → add act (3): a checkpoint after the act moves
        // the add's operand onto the checkpoint (it applies before any reader); one after the
        // conv moves the branch onto it; one after the add moves nothing.
        let mut m = tiny();
        m.layers.truncate(2);
        m.layers.push(Layer::Branch(Branch { from: 0 }));
        m.layers.push(Layer::Add(Add {
            with: 1,
            subtract: false,
        }));
        m.validate().unwrap();
        let rq = || Layer::Requant(Requant { shift: 1, bits: 8 });
        m.insert_after(1, rq());
        assert_eq!(m.layers[2], rq());
        assert_eq!(m.layers[3], Layer::Branch(Branch { from: 0 }));
        assert_eq!(m.layers[4].reference(), Some(2));
        m.insert_after(0, rq());
        assert_eq!(m.layers[4], Layer::Branch(Branch { from: 1 }));
        assert_eq!(m.layers[5].reference(), Some(3));
        m.insert_after(5, rq());
        assert_eq!(m.layers[5].reference(), Some(3));
        m.validate().unwrap();
    }

    #[test]
    fn bad_models_are_refused() {
        let mut m = tiny();
        m.layers[4] = Layer::Dense(Dense {
            in_features: 9,
            out_features: 3,
            weight: vec![0.0; 27],
            bias: None,
        });
        assert!(matches!(
            m.validate(),
            Err(ModelError::Shape { layer: 4, .. })
        ));
        let mut m = tiny();
        if let Layer::Conv2d(c) = &mut m.layers[0] {
            c.weight[0] = f64::NAN;
        }
        assert_eq!(m.validate(), Err(ModelError::NonFinite(0)));
        assert!(Model::from_json("{\"input_shape\": [3]}").is_err());
        // Residual references: to a later layer, of another shape, and a skipped layer.
        let mut m = tiny();
        m.layers.insert(
            2,
            Layer::Add(Add {
                with: 2,
                subtract: false,
            }),
        );
        assert!(matches!(
            m.validate(),
            Err(ModelError::Shape { layer: 2, .. })
        ));
        let mut m = tiny();
        m.layers.insert(
            3,
            Layer::Add(Add {
                with: 0,
                subtract: false,
            }),
        );
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains("combines layer 0's output of shape"), "{e}");
        let mut m = tiny();
        m.layers.insert(2, Layer::Branch(Branch { from: 0 }));
        let e = m.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("layer 1 (activation): its output is never read"),
            "{e}"
        );
        m.layers.insert(
            3,
            Layer::Add(Add {
                with: 1,
                subtract: true,
            }),
        );
        assert!(m.validate().is_ok());
        assert!(Model::from_json("not json").is_err());
    }
}
