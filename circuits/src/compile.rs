//! Model → [`LayeredCircuit`]: quantization (docs/protocol.md §3), layout (§4) and the exact worst-case
//! bound analysis that picks the field (§6).
//!
//! **Layers.** `Conv2d`, `Dense`, `SumPool` and `Activation` become one [`CircuitLayer`] each.
//! `Flatten` emits nothing: the layers after it keep the multi-dimensional layout of the tensor
//! (a dense layer reads its real positions in row-major order). A `Reshape` to a 1-D shape or to
//! the current layout is free too; any other `Reshape` becomes an [`Op::Gates`] layer of
//! [`Gate::Relay`] gates (and `Gate::Const(0)` at the output's padding positions).
//!
//! **Bound analysis** ([`bound_analysis`]). Every real input element starts with the interval
//! `[input_min, input_max]`; each layer maps per-element intervals with the actual integer
//! weights: a linear output gets `Σ_k [min(W·lo_k, W·hi_k), max(W·lo_k, W·hi_k)] + B` (zero
//! padding contributes exactly 0), an activation the exact min/max of its quadratic over the
//! integers of the interval (endpoints and the integers around the vertex), a pooling output the
//! sum of its window. The first layer's intervals are attained; later ones are per-element worst
//! cases. A layer's `bound_bits` also covers the intermediate magnitudes an integer evaluation
//! passes through ([`LayerBound`]). Arithmetic is checked `i128`; a layer that overflows it is
//! analysed from then on with `f64` magnitude bounds, rounded up with a relative margin of
//! 2^-20 per layer (such values need more than 126 bits, i.e. BN254 or no field at all).

use crate::circuit::{
    bits_of, CircuitLayer, FieldChoice, LayeredCircuit, Layout, Op, QuantParams, MAX_ITEM_VARS,
};
use crate::circuit::{ActivationOp, Conv2dOp, DenseOp, GatesOp, SumPoolOp};
use crate::field::FieldId;
use crate::gates::{Gate, GateLayer};
use crate::model::{Layer, Model, ModelError};
use crate::quant::{self, QuantError};
use thiserror::Error;

/// Largest number of weights of one layer the compiler accepts.
pub const MAX_WEIGHTS: usize = 1 << 28;

/// Largest number of multiply-accumulates per item (the bound analysis costs about as much as
/// one inference).
pub const MAX_MACS_PER_ITEM: u64 = 1 << 36;

/// The `bound_bits` reported for a magnitude beyond the `f64` range: "more than 1024 bits".
pub const UNBOUNDED_BITS: u32 = 1025;

/// Relative safety margin applied to `f64` magnitude bounds after each layer.
const F64_MARGIN: f64 = 1.0 + 1.0 / (1u64 << 20) as f64;

/// Why a model could not be compiled.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CompileError {
    /// The model itself is malformed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The declared input range does not quantize.
    #[error("input range at --input-bits {input_bits}: {source}")]
    InputRange {
        /// The input scale.
        input_bits: u32,
        /// What went wrong.
        source: QuantError,
    },
    /// A layer's weights, bias or coefficients do not quantize.
    #[error("layer {layer} ({op}): {source}")]
    Quant {
        /// Index of the model layer.
        layer: usize,
        /// Its operation.
        op: &'static str,
        /// What went wrong.
        source: QuantError,
    },
    /// A layer beyond the compiler's size limits.
    #[error("layer {layer} ({op}): {msg}")]
    TooLarge {
        /// Index of the model layer (the number of layers for the input).
        layer: usize,
        /// Its operation.
        op: &'static str,
        /// Which limit.
        msg: String,
    },
    /// Only Flatten / Reshape layers: nothing to prove.
    #[error("the model has no arithmetic layer (only flatten / free reshapes)")]
    NoLayers,
    /// A circuit whose layers do not fit together (hand-built circuits).
    #[error("invalid circuit: {0}")]
    Invalid(String),
    /// A value needs more bits than the requested field holds.
    #[error(
        "{at} needs {} bits but {field} holds {capacity} signed bits; {hint}",
        show_bits(*.bits)
    )]
    FieldTooSmall {
        /// Index of the circuit layer (`None`: the input).
        layer: Option<usize>,
        /// Where, for people: circuit layer index, label and model layer index.
        at: String,
        /// Bits needed.
        bits: u32,
        /// The requested field.
        field: FieldId,
        /// Its signed capacity in bits.
        capacity: u32,
        /// What to do about it.
        hint: String,
    },
    /// A value needs more bits than any shipped field holds.
    #[error(
        "{at} needs {} bits, more than any shipped field holds (bn254: 252 signed bits); use \
         fewer fractional bits (--weight-bits, --input-bits, --coef-bits)",
        show_bits(*.bits)
    )]
    NoFieldFits {
        /// Index of the circuit layer (`None`: the input).
        layer: Option<usize>,
        /// Where, for people.
        at: String,
        /// Bits needed.
        bits: u32,
    },
}

fn show_bits(bits: u32) -> String {
    if bits >= UNBOUNDED_BITS {
        "more than 1024".into()
    } else {
        bits.to_string()
    }
}

/// The result of the bound analysis for one layer. Bits mean `|v| < 2^bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerBound {
    /// Bits of the largest |output value|.
    pub output_bits: u32,
    /// Bits of the largest intermediate magnitude: `Σ|W|·max|X| + |B|` for linear layers,
    /// `Σ max|X|` over a pooling window, `|a|·M² + |b|·M + |c|` for an activation on `|X| ≤ M`.
    pub intermediate_bits: u32,
    /// Whether the intervals were computed exactly in `i128` (else `f64` upper bounds).
    pub exact: bool,
}

impl LayerBound {
    /// The layer's `bound_bits`: the larger of the output and intermediate bits.
    pub fn bits(&self) -> u32 {
        self.output_bits.max(self.intermediate_bits)
    }
}

/// Compiles `model` with quantization `params` for `field` (docs/protocol.md §3, §4, §6): validates,
/// quantizes, lays out, runs the bound analysis and picks or checks the field.
pub fn compile(
    model: &Model,
    params: &QuantParams,
    field: FieldChoice,
) -> Result<LayeredCircuit, CompileError> {
    let shapes = model.validate()?;
    let input = Layout::new(model.input_shape.clone());
    check_layout(&input, model.layers.len(), "input")?;
    let s_in = params.input_bits;
    let [lo, hi] = model.input_range;
    let range_err = |source| CompileError::InputRange {
        input_bits: s_in,
        source,
    };
    let input_min = quant::quantize(lo, s_in).map_err(range_err)?;
    let input_max = quant::quantize(hi, s_in).map_err(range_err)?;

    let mut layers: Vec<CircuitLayer> = Vec::new();
    // Model layer index of each circuit layer.
    let mut origin: Vec<usize> = Vec::new();
    let mut cur = input.clone();
    let mut scale = s_in;
    let mut macs: u64 = 0;
    for (li, layer) in model.layers.iter().enumerate() {
        let op_name = layer.op_name();
        let qerr = |source| CompileError::Quant {
            layer: li,
            op: op_name,
            source,
        };
        let too_large = |msg: String| CompileError::TooLarge {
            layer: li,
            op: op_name,
            msg,
        };
        let out_dims = shapes.get(li + 1).cloned().unwrap_or_default();
        let emitted: Option<(Op, Layout, u32, String)> = match layer {
            Layer::Conv2d(c) => {
                check_weights(c.weight.len(), &too_large)?;
                let q = quant::quantize_linear(
                    &c.weight,
                    c.bias.as_deref(),
                    c.out_channels,
                    scale,
                    params,
                )
                .map_err(qerr)?;
                let label = format!(
                    "conv2d {}→{} {}x{} s{} p{}",
                    c.in_channels,
                    c.out_channels,
                    c.kernel[0],
                    c.kernel[1],
                    pair(c.stride),
                    pair(c.padding)
                );
                let op = Op::Conv2d(Conv2dOp {
                    in_channels: c.in_channels,
                    out_channels: c.out_channels,
                    kernel: c.kernel,
                    stride: c.stride,
                    padding: c.padding,
                    weight: q.weight,
                    bias: q.bias,
                });
                Some((op, Layout::new(out_dims), q.scale_bits, label))
            }
            Layer::Dense(d) => {
                check_weights(d.weight.len(), &too_large)?;
                let q = quant::quantize_linear(
                    &d.weight,
                    d.bias.as_deref(),
                    d.out_features,
                    scale,
                    params,
                )
                .map_err(qerr)?;
                let label = format!("dense {}→{}", d.in_features, d.out_features);
                let op = Op::Dense(DenseOp {
                    in_features: d.in_features,
                    out_features: d.out_features,
                    weight: q.weight,
                    bias: q.bias,
                });
                Some((op, Layout::new(out_dims), q.scale_bits, label))
            }
            Layer::SumPool(p) => {
                let stride = p.stride();
                let label = format!("sum_pool {}x{}/{}", p.window[0], p.window[1], pair(stride));
                let op = Op::SumPool(SumPoolOp {
                    window: p.window,
                    stride,
                });
                Some((op, Layout::new(out_dims), scale, label))
            }
            Layer::Activation(a) => {
                let q = quant::quantize_activation(a, scale, params.coef_bits).map_err(qerr)?;
                let op = Op::Activation(ActivationOp {
                    a: q.a,
                    b: q.b,
                    c: q.c,
                });
                // Element-wise: keeps the current (possibly multi-dimensional) layout.
                Some((op, cur.clone(), q.scale_bits, a.name()))
            }
            Layer::Flatten => None,
            Layer::Reshape { shape } => {
                if shape.len() == 1 || *shape == cur.dims {
                    None
                } else {
                    let out = Layout::new(shape.clone());
                    check_layout(&out, li, op_name)?;
                    let layer = relay_gates(&cur, &out).ok_or_else(|| {
                        too_large("a wire index does not fit in 32 bits".to_string())
                    })?;
                    let label = format!("reshape {}→{}", dims_text(&cur.dims), dims_text(shape));
                    Some((Op::Gates(GatesOp { layer }), out, scale, label))
                }
            }
        };
        if let Some((op, output, out_scale, label)) = emitted {
            check_layout(&output, li, op_name)?;
            macs = macs.saturating_add(op.macs(&output));
            if macs > MAX_MACS_PER_ITEM {
                return Err(too_large(format!(
                    "the model needs more than 2^36 multiply-accumulates per item (limit {MAX_MACS_PER_ITEM})"
                )));
            }
            layers.push(CircuitLayer {
                op,
                input: cur.clone(),
                output: output.clone(),
                scale_bits: out_scale,
                bound_bits: 0,
                label,
            });
            origin.push(li);
            cur = output;
            scale = out_scale;
        }
    }
    if layers.is_empty() {
        return Err(CompileError::NoLayers);
    }

    let mut circuit = LayeredCircuit {
        name: model.name.clone(),
        field: FieldId::M127,
        field_reason: String::new(),
        params: *params,
        input,
        input_scale: s_in,
        input_min,
        input_max,
        layers,
    };
    let bounds = bound_analysis(&circuit)?;
    for (layer, b) in circuit.layers.iter_mut().zip(&bounds) {
        layer.bound_bits = b.bits();
    }
    let (field_id, reason) = choose_field(&circuit, &origin, field)?;
    circuit.field = field_id;
    circuit.field_reason = reason;
    Ok(circuit)
}

/// `"2"` for `[2, 2]`, `"2x1"` for `[2, 1]`.
fn pair(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("{}x{}", v[0], v[1])
    }
}

/// `"2x4x4"` for `[2, 4, 4]`.
fn dims_text(dims: &[usize]) -> String {
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

fn check_weights(n: usize, too_large: &dyn Fn(String) -> CompileError) -> Result<(), CompileError> {
    if n > MAX_WEIGHTS {
        return Err(too_large(format!(
            "{n} weights, more than the limit of 2^28"
        )));
    }
    Ok(())
}

fn check_layout(l: &Layout, layer: usize, op: &'static str) -> Result<(), CompileError> {
    // Checked product of padded dims: refuse before anything allocates.
    let mut padded: usize = 1;
    for d in &l.dims {
        padded = d
            .checked_next_power_of_two()
            .and_then(|p| padded.checked_mul(p))
            .unwrap_or(usize::MAX);
    }
    if l.dims.is_empty() || padded > (1usize << MAX_ITEM_VARS) {
        return Err(CompileError::TooLarge {
            layer,
            op,
            msg: format!(
                "tensor {:?} needs more than 2^{MAX_ITEM_VARS} padded positions per item",
                l.dims
            ),
        });
    }
    Ok(())
}

/// The relabelling `input → output` (same real size) as relay gates per item: output padded
/// offset of real index `i` ← input padded offset of real index `i`; zero at output padding.
/// `None` when a wire index does not fit 32 bits.
pub fn relay_gates(input: &Layout, output: &Layout) -> Option<GateLayer> {
    let mut gates = vec![Gate::Const(0); output.item_len_padded()];
    for (i, off) in output.padded_offsets().into_iter().enumerate() {
        let src = u32::try_from(input.padded_offset(i)).ok()?;
        *gates.get_mut(off)? = Gate::Relay(src);
    }
    Some(GateLayer { gates })
}

/// Where a layer is, for error messages.
fn place(circuit: &LayeredCircuit, origin: &[usize], layer: Option<usize>) -> String {
    match layer {
        None => "the input".into(),
        Some(i) => {
            let label = circuit
                .layers
                .get(i)
                .map(|l| l.label.as_str())
                .unwrap_or("?");
            match origin.get(i) {
                Some(m) => format!("layer {i} ({label}, model layer {m})"),
                None => format!("layer {i} ({label})"),
            }
        }
    }
}

fn choose_field(
    circuit: &LayeredCircuit,
    origin: &[usize],
    choice: FieldChoice,
) -> Result<(FieldId, String), CompileError> {
    let input_bits = bits_of(
        circuit
            .input_min
            .unsigned_abs()
            .max(circuit.input_max.unsigned_abs()),
    );
    // (None = input, bits), in order.
    let stages: Vec<(Option<usize>, u32)> = std::iter::once((None, input_bits))
        .chain(
            circuit
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| (Some(i), l.bound_bits)),
        )
        .collect();
    let max = stages.iter().map(|s| s.1).max().unwrap_or(0);
    let first_over = |cap: u32| stages.iter().find(|s| s.1 > cap).copied();
    let (m127, bn254) = (
        FieldId::M127.signed_capacity_bits(),
        FieldId::Bn254.signed_capacity_bits(),
    );
    // A value beyond every shipped field: name the first stage that exceeds BN254.
    if let Some((layer, bits)) = first_over(bn254) {
        return Err(CompileError::NoFieldFits {
            layer,
            at: place(circuit, origin, layer),
            bits,
        });
    }
    match choice {
        FieldChoice::Auto => {
            if max <= m127 {
                Ok((
                    FieldId::M127,
                    format!("auto: max {max} bits fits m127 ({m127} signed bits)"),
                ))
            } else {
                Ok((
                    FieldId::Bn254,
                    format!(
                        "auto: max {max} bits exceeds m127 ({m127} signed bits), fits bn254 \
                         ({bn254} signed bits)"
                    ),
                ))
            }
        }
        FieldChoice::M127 | FieldChoice::Bn254 => {
            let field = if choice == FieldChoice::M127 {
                FieldId::M127
            } else {
                FieldId::Bn254
            };
            let cap = field.signed_capacity_bits();
            if let Some((layer, bits)) = first_over(cap) {
                let mut hint =
                    "use fewer fractional bits (--weight-bits, --input-bits, --coef-bits)"
                        .to_string();
                if field == FieldId::M127 {
                    hint.push_str(" or --field bn254");
                }
                return Err(CompileError::FieldTooSmall {
                    layer,
                    at: place(circuit, origin, layer),
                    bits,
                    field,
                    capacity: cap,
                    hint,
                });
            }
            Ok((
                field,
                format!("requested {field}: max {max} bits fits ({cap} signed bits)"),
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bound analysis
// ---------------------------------------------------------------------------------------------

/// Runs the worst-case bound analysis (see the module docs) on a circuit's integer ops, from its
/// declared input range: one [`LayerBound`] per layer. [`compile`] stores `bits()` of each as the
/// layer's `bound_bits`; running it on a circuit file checks that its bounds are honest.
pub fn bound_analysis(circuit: &LayeredCircuit) -> Result<Vec<LayerBound>, CompileError> {
    analyse(circuit, false).map(|(bounds, _)| bounds)
}

/// The per-element bounds of every stage found by the bound analysis: `[0]` is the input,
/// `[i + 1]` the output of layer `i` (for diagnostics and tests; it keeps every stage in memory).
pub fn stage_bounds(circuit: &LayeredCircuit) -> Result<Vec<StageBounds>, CompileError> {
    analyse(circuit, true).map(|(_, stages)| stages)
}

/// The bound analysis; keeps every stage's bounds when `keep`.
fn analyse(
    circuit: &LayeredCircuit,
    keep: bool,
) -> Result<(Vec<LayerBound>, Vec<StageBounds>), CompileError> {
    circuit.check().map_err(CompileError::Invalid)?;
    if circuit.input_min > circuit.input_max {
        return Err(CompileError::Invalid(format!(
            "empty input range [{}, {}]",
            circuit.input_min, circuit.input_max
        )));
    }
    let mut state = StageBounds::Exact(vec![
        (circuit.input_min, circuit.input_max);
        circuit.input.item_len()
    ]);
    let mut out = Vec::with_capacity(circuit.layers.len());
    let mut kept = Vec::new();
    for (i, layer) in circuit.layers.iter().enumerate() {
        let exact = match &state {
            StageBounds::Exact(v) => step::<Exact>(layer, v),
            StageBounds::Magnitude(_) => None,
        };
        let (next, bound) = match exact {
            Some((vals, output_bits, intermediate_bits)) => (
                StageBounds::Exact(vals),
                LayerBound {
                    output_bits,
                    intermediate_bits,
                    exact: true,
                },
            ),
            None => {
                let mags = state.magnitudes();
                let (vals, output_bits, intermediate_bits) = step::<Approx>(layer, &mags)
                    .ok_or_else(|| {
                        CompileError::Invalid(format!("layer {i}: bound analysis failed"))
                    })?;
                (
                    StageBounds::Magnitude(vals),
                    LayerBound {
                        output_bits,
                        intermediate_bits,
                        exact: false,
                    },
                )
            }
        };
        out.push(bound);
        if keep {
            kept.push(std::mem::replace(&mut state, next));
        } else {
            state = next;
        }
    }
    if keep {
        kept.push(state);
    }
    Ok((out, kept))
}

/// Per-element bounds of the real values of one stage (one item), in real row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum StageBounds {
    /// Exact intervals `[lo, hi]`.
    Exact(Vec<(i128, i128)>),
    /// Upper bounds on `|v|` (after an `i128` overflow).
    Magnitude(Vec<f64>),
}

impl StageBounds {
    /// Whether `v` is within the bound of element `index` (false for an index out of range).
    pub fn contains(&self, index: usize, v: i128) -> bool {
        match self {
            StageBounds::Exact(iv) => iv.get(index).is_some_and(|&(lo, hi)| lo <= v && v <= hi),
            StageBounds::Magnitude(m) => {
                m.get(index).is_some_and(|&m| v.unsigned_abs() as f64 <= m)
            }
        }
    }

    /// Upper bounds on `|v|` per element.
    fn magnitudes(&self) -> Vec<f64> {
        match self {
            StageBounds::Exact(v) => v
                .iter()
                .map(|&(lo, hi)| lo.unsigned_abs().max(hi.unsigned_abs()) as f64 * F64_MARGIN)
                .collect(),
            StageBounds::Magnitude(m) => m.clone(),
        }
    }
}

/// An abstract domain of per-element bounds. Operations return `None` when they cannot be
/// represented (overflow of the exact domain).
trait Domain {
    /// Bound of one value.
    type Val: Copy;
    /// Accumulator of a sum of weighted terms.
    type Acc;
    /// The bound of an exact zero.
    fn zero() -> Self::Val;
    /// The bound of a constant.
    fn constant(c: i128) -> Self::Val;
    /// A sum starting at `bias`.
    fn acc(bias: i128) -> Self::Acc;
    /// Adds `w·x`.
    fn mac(acc: &mut Self::Acc, w: i128, x: Self::Val) -> Option<()>;
    /// The sum's bound and the bits of its intermediate magnitudes.
    fn finish(acc: Self::Acc) -> (Self::Val, u32);
    /// Bits of the largest |value|.
    fn bits(v: Self::Val) -> u32;
    /// `a·x² + b·x + c` and the bits of its intermediate magnitudes.
    fn quadratic(a: i128, b: i128, c: i128, x: Self::Val) -> Option<(Self::Val, u32)>;
    /// `x + y`.
    fn add(x: Self::Val, y: Self::Val) -> Option<Self::Val>;
    /// `x − y`.
    fn sub(x: Self::Val, y: Self::Val) -> Option<Self::Val>;
    /// `x · y`.
    fn mul(x: Self::Val, y: Self::Val) -> Option<Self::Val>;
}

/// Exact `i128` intervals.
struct Exact;

/// Checked sum of weighted intervals: its interval and `Σ|w|·max|x|` (+|bias|).
struct ExactAcc {
    lo: i128,
    hi: i128,
    abs: u128,
}

impl Domain for Exact {
    type Val = (i128, i128);
    type Acc = ExactAcc;

    fn zero() -> Self::Val {
        (0, 0)
    }

    fn constant(c: i128) -> Self::Val {
        (c, c)
    }

    fn acc(bias: i128) -> ExactAcc {
        ExactAcc {
            lo: bias,
            hi: bias,
            abs: bias.unsigned_abs(),
        }
    }

    fn mac(acc: &mut ExactAcc, w: i128, (lo, hi): Self::Val) -> Option<()> {
        if w == 0 {
            return Some(());
        }
        let p = w.checked_mul(lo)?;
        let q = w.checked_mul(hi)?;
        acc.lo = acc.lo.checked_add(p.min(q))?;
        acc.hi = acc.hi.checked_add(p.max(q))?;
        acc.abs = acc
            .abs
            .checked_add(p.unsigned_abs().max(q.unsigned_abs()))?;
        Some(())
    }

    fn finish(acc: ExactAcc) -> (Self::Val, u32) {
        ((acc.lo, acc.hi), bits_of(acc.abs))
    }

    fn bits(v: Self::Val) -> u32 {
        bits_of(v.0.unsigned_abs().max(v.1.unsigned_abs()))
    }

    fn quadratic(a: i128, b: i128, c: i128, (lo, hi): Self::Val) -> Option<(Self::Val, u32)> {
        // f(x) for integer x, checked. |a·x| ≤ |a·x²| for x ≠ 0, so a·x overflowing means the
        // true a·x² does too.
        let f = |x: i128| -> Option<i128> {
            a.checked_mul(x)?
                .checked_mul(x)?
                .checked_add(b.checked_mul(x)?)?
                .checked_add(c)
        };
        let mut cands = [lo, hi, lo, lo];
        if a != 0 {
            // Vertex x* = −b / (2a); over the integers the extremum is at ⌊x*⌋ or ⌊x*⌋ + 1.
            let num = b.checked_neg()?;
            let den = a.checked_mul(2)?;
            let fl = div_floor(num, den)?;
            cands[2] = fl.max(lo).min(hi);
            cands[3] = fl.saturating_add(1).max(lo).min(hi);
        }
        let mut min = i128::MAX;
        let mut max = i128::MIN;
        for x in cands {
            let y = f(x)?;
            min = min.min(y);
            max = max.max(y);
        }
        // Intermediates: |a|·M² + |b|·M + |c|.
        let m = lo.unsigned_abs().max(hi.unsigned_abs());
        let inter = a
            .unsigned_abs()
            .checked_mul(m)?
            .checked_mul(m)?
            .checked_add(b.unsigned_abs().checked_mul(m)?)?
            .checked_add(c.unsigned_abs())?;
        Some(((min, max), bits_of(inter)))
    }

    fn add(x: Self::Val, y: Self::Val) -> Option<Self::Val> {
        Some((x.0.checked_add(y.0)?, x.1.checked_add(y.1)?))
    }

    fn sub(x: Self::Val, y: Self::Val) -> Option<Self::Val> {
        Some((x.0.checked_sub(y.1)?, x.1.checked_sub(y.0)?))
    }

    fn mul(x: Self::Val, y: Self::Val) -> Option<Self::Val> {
        let c = [
            x.0.checked_mul(y.0)?,
            x.0.checked_mul(y.1)?,
            x.1.checked_mul(y.0)?,
            x.1.checked_mul(y.1)?,
        ];
        Some((c.iter().copied().min()?, c.iter().copied().max()?))
    }
}

/// `⌊num / den⌋` for `den ≠ 0`, checked.
fn div_floor(num: i128, den: i128) -> Option<i128> {
    let q = num.checked_div(den)?;
    let r = num.checked_rem(den)?;
    if r != 0 && ((r < 0) != (den < 0)) {
        q.checked_sub(1)
    } else {
        Some(q)
    }
}

/// `f64` upper bounds on magnitudes.
struct Approx;

/// `x·y` with `0·∞ = 0`.
fn mul_mag(x: f64, y: f64) -> f64 {
    if x == 0.0 || y == 0.0 {
        0.0
    } else {
        x * y
    }
}

/// Bits of an integer whose magnitude is at most `m`.
fn bits_f64(m: f64) -> u32 {
    if m.is_nan() || m.is_infinite() {
        return UNBOUNDED_BITS;
    }
    if m < 1.0 {
        // An integer of magnitude below 1 is 0.
        return 0;
    }
    // m = f·2^e with 1 ≤ f < 2, so |v| ≤ m < 2^(e+1).
    let e = ((m.to_bits() >> 52) & 0x7ff) as u32;
    e.saturating_sub(1023) + 1
}

impl Domain for Approx {
    type Val = f64;
    type Acc = f64;

    fn zero() -> f64 {
        0.0
    }

    fn constant(c: i128) -> f64 {
        c.unsigned_abs() as f64 * F64_MARGIN
    }

    fn acc(bias: i128) -> f64 {
        bias.unsigned_abs() as f64
    }

    fn mac(acc: &mut f64, w: i128, x: f64) -> Option<()> {
        *acc += mul_mag(w.unsigned_abs() as f64, x);
        Some(())
    }

    fn finish(acc: f64) -> (f64, u32) {
        let m = acc * F64_MARGIN;
        (m, bits_f64(m))
    }

    fn bits(v: f64) -> u32 {
        bits_f64(v)
    }

    fn quadratic(a: i128, b: i128, c: i128, x: f64) -> Option<(f64, u32)> {
        let m = (mul_mag(a.unsigned_abs() as f64, mul_mag(x, x))
            + mul_mag(b.unsigned_abs() as f64, x)
            + c.unsigned_abs() as f64)
            * F64_MARGIN;
        Some((m, bits_f64(m)))
    }

    fn add(x: f64, y: f64) -> Option<f64> {
        Some((x + y) * F64_MARGIN)
    }

    fn sub(x: f64, y: f64) -> Option<f64> {
        Some((x + y) * F64_MARGIN)
    }

    fn mul(x: f64, y: f64) -> Option<f64> {
        Some(mul_mag(x, y) * F64_MARGIN)
    }
}

/// One layer in domain `D`: the output bounds (real row-major), the output bits and the
/// intermediate bits. Assumes a checked circuit (layouts fit the op).
fn step<D: Domain>(layer: &CircuitLayer, x: &[D::Val]) -> Option<(Vec<D::Val>, u32, u32)> {
    let mut inter = 0u32;
    let i = &layer.input.dims;
    let o = &layer.output.dims;
    let vals: Vec<D::Val> = match &layer.op {
        Op::Conv2d(Conv2dOp {
            in_channels,
            kernel,
            stride,
            padding,
            weight,
            bias,
            ..
        }) => {
            let (&[_, h, w], &[oc, oh, ow]) = (i.as_slice(), o.as_slice()) else {
                return None;
            };
            let ic = *in_channels;
            let [kh, kw] = *kernel;
            let [sh, sw] = *stride;
            let [ph, pw] = *padding;
            let mut out = Vec::with_capacity(oc * oh * ow);
            for oo in 0..oc {
                let b = *bias.get(oo)?;
                for r in 0..oh {
                    for col in 0..ow {
                        let mut acc = D::acc(b);
                        for ch in 0..ic {
                            for u in 0..kh {
                                // Input row s·r + u − p; out of range = zero padding.
                                let Some(ir) = (r * sh + u).checked_sub(ph).filter(|&v| v < h)
                                else {
                                    continue;
                                };
                                for v in 0..kw {
                                    let Some(icol) =
                                        (col * sw + v).checked_sub(pw).filter(|&v| v < w)
                                    else {
                                        continue;
                                    };
                                    let wt = *weight.get(((oo * ic + ch) * kh + u) * kw + v)?;
                                    let xv = *x.get((ch * h + ir) * w + icol)?;
                                    D::mac(&mut acc, i128::from(wt), xv)?;
                                }
                            }
                        }
                        let (v, bits) = D::finish(acc);
                        inter = inter.max(bits);
                        out.push(v);
                    }
                }
            }
            out
        }
        Op::Dense(DenseOp {
            in_features,
            out_features,
            weight,
            bias,
        }) => {
            let mut out = Vec::with_capacity(*out_features);
            for oo in 0..*out_features {
                let mut acc = D::acc(*bias.get(oo)?);
                let row = weight.get(oo * in_features..(oo + 1) * in_features)?;
                for (&wt, &xv) in row.iter().zip(x) {
                    D::mac(&mut acc, i128::from(wt), xv)?;
                }
                let (v, bits) = D::finish(acc);
                inter = inter.max(bits);
                out.push(v);
            }
            out
        }
        Op::SumPool(SumPoolOp { window, stride }) => {
            let (&[c, h, w], &[_, oh, ow]) = (i.as_slice(), o.as_slice()) else {
                return None;
            };
            let mut out = Vec::with_capacity(c * oh * ow);
            for ch in 0..c {
                for r in 0..oh {
                    for col in 0..ow {
                        let mut acc = D::acc(0);
                        for u in 0..window[0] {
                            for v in 0..window[1] {
                                let (ir, icol) = (r * stride[0] + u, col * stride[1] + v);
                                if ir >= h || icol >= w {
                                    return None;
                                }
                                D::mac(&mut acc, 1, *x.get((ch * h + ir) * w + icol)?)?;
                            }
                        }
                        let (v, bits) = D::finish(acc);
                        inter = inter.max(bits);
                        out.push(v);
                    }
                }
            }
            out
        }
        Op::Activation(ActivationOp { a, b, c }) => {
            let mut out = Vec::with_capacity(x.len());
            for &xv in x {
                let (v, bits) = D::quadratic(*a, *b, *c, xv)?;
                inter = inter.max(bits);
                out.push(v);
            }
            out
        }
        Op::Gates(GatesOp { layer: gl }) => {
            // Input value at a padded offset: the real value there, or zero padding.
            let mut at: Vec<D::Val> = vec![D::zero(); layer.input.item_len_padded()];
            for (k, off) in layer.input.padded_offsets().into_iter().enumerate() {
                *at.get_mut(off)? = *x.get(k)?;
            }
            let get = |w: u32| at.get(w as usize).copied();
            let mut gates = Vec::with_capacity(gl.gates.len());
            for g in &gl.gates {
                let v = match *g {
                    Gate::Add(p, q) => D::add(get(p)?, get(q)?)?,
                    Gate::Sub(p, q) => D::sub(get(p)?, get(q)?)?,
                    Gate::Mul(p, q) => D::mul(get(p)?, get(q)?)?,
                    Gate::Scale(p, k) => D::mul(get(p)?, D::constant(k))?,
                    Gate::AddConst(p, k) => D::add(get(p)?, D::constant(k))?,
                    Gate::Relay(p) => get(p)?,
                    Gate::Const(k) => D::constant(k),
                };
                // Gates at padding positions count too (they should be zero).
                inter = inter.max(D::bits(v));
                gates.push(v);
            }
            layer
                .output
                .padded_offsets()
                .into_iter()
                .map(|off| gates.get(off).copied().unwrap_or_else(D::zero))
                .collect()
        }
    };
    let out_bits = vals.iter().map(|&v| D::bits(v)).max().unwrap_or(0);
    Some((vals, out_bits, inter))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::circuit::WeightScale;
    use crate::model::{Activation, Conv2d, Dense, SumPool};

    #[test]
    fn div_floor_rounds_down() {
        assert_eq!(div_floor(7, 2), Some(3));
        assert_eq!(div_floor(-7, 2), Some(-4));
        assert_eq!(div_floor(7, -2), Some(-4));
        assert_eq!(div_floor(-7, -2), Some(3));
        assert_eq!(div_floor(-6, 3), Some(-2));
        assert_eq!(div_floor(0, -3), Some(0));
        assert_eq!(div_floor(i128::MIN, -1), None);
        assert_eq!(div_floor(1, 0), None);
    }

    #[test]
    fn bits_f64_bounds_integers() {
        assert_eq!(bits_f64(0.0), 0);
        assert_eq!(bits_f64(0.99), 0);
        assert_eq!(bits_f64(1.0), 1);
        assert_eq!(bits_f64(1.99), 1);
        assert_eq!(bits_f64(2.0), 2);
        assert_eq!(bits_f64(255.0), 8);
        assert_eq!(bits_f64(256.0), 9);
        assert_eq!(bits_f64(2f64.powi(136)), 137);
        assert_eq!(bits_f64(f64::INFINITY), UNBOUNDED_BITS);
        assert_eq!(bits_f64(f64::NAN), UNBOUNDED_BITS);
        assert_eq!(show_bits(UNBOUNDED_BITS), "more than 1024");
    }

    /// The f64 magnitude domain (used after an i128 overflow) bounds the exact intervals of
    /// every element of every layer, and its bits are never below the exact ones.
    #[test]
    fn magnitude_domain_dominates_exact() {
        let model = Model {
            name: String::new(),
            input_shape: vec![2, 5, 4],
            input_range: [-1.0, 1.0],
            layers: vec![
                Layer::Conv2d(Conv2d {
                    in_channels: 2,
                    out_channels: 2,
                    kernel: [3, 3],
                    stride: [1, 2],
                    padding: [1, 1],
                    weight: (0..36).map(|i| (i as f64 - 17.0) / 20.0).collect(),
                    bias: Some(vec![0.3, -0.7]),
                }),
                Layer::Activation(Activation::Quadratic {
                    a: -0.5,
                    b: 2.0,
                    c: -0.25,
                }),
                Layer::SumPool(SumPool {
                    window: [2, 1],
                    stride: None,
                }),
                Layer::Reshape {
                    shape: vec![1, 4, 2],
                },
                Layer::Dense(Dense {
                    in_features: 8,
                    out_features: 3,
                    weight: (0..24).map(|i| (i as f64 - 11.0) / 7.0).collect(),
                    bias: Some(vec![1.0, 0.0, -2.0]),
                }),
            ],
        };
        let params = QuantParams {
            input_bits: 5,
            weight_bits: 6,
            coef_bits: 3,
            weight_scale: WeightScale::Uniform,
        };
        let c = compile(&model, &params, FieldChoice::Auto).unwrap();
        assert_eq!(c.layers.len(), 5);
        let n = c.input.item_len();
        let mut ex = vec![(c.input_min, c.input_max); n];
        let mut ap = vec![c.input_min.unsigned_abs().max(c.input_max.unsigned_abs()) as f64; n];
        for layer in &c.layers {
            let (e, eo, ei) = step::<Exact>(layer, &ex).unwrap();
            let (a, ao, ai) = step::<Approx>(layer, &ap).unwrap();
            assert_eq!(e.len(), a.len());
            for (&(lo, hi), &m) in e.iter().zip(&a) {
                assert!(lo <= hi);
                assert!(
                    lo.unsigned_abs().max(hi.unsigned_abs()) as f64 <= m,
                    "{}",
                    layer.label
                );
            }
            assert!(ao >= eo && ai >= ei, "{}", layer.label);
            ex = e;
            ap = a;
        }
    }

    #[test]
    fn hand_built_circuits_are_checked() {
        let model = Model {
            name: String::new(),
            input_shape: vec![3],
            input_range: [-1.0, 1.0],
            layers: vec![Layer::Activation(Activation::Square)],
        };
        let c = compile(&model, &QuantParams::default(), FieldChoice::Auto).unwrap();
        let mut bad = c.clone();
        bad.layers[0].output = Layout::new(vec![4]);
        assert!(matches!(
            bound_analysis(&bad),
            Err(CompileError::Invalid(_))
        ));
        let mut bad = c.clone();
        (bad.input_min, bad.input_max) = (1, 0);
        assert!(matches!(
            bound_analysis(&bad),
            Err(CompileError::Invalid(_))
        ));
        // Generic gates: Mul squares the interval, Sub widens it.
        let mut g = c;
        g.layers[0].op = Op::Gates(GatesOp {
            layer: GateLayer {
                gates: vec![
                    Gate::Mul(0, 1),
                    Gate::Sub(1, 2),
                    Gate::Scale(2, -3),
                    Gate::Const(0),
                ],
            },
        });
        let s = stage_bounds(&g).unwrap();
        assert_eq!(
            s[1],
            StageBounds::Exact(vec![(-65536, 65536), (-512, 512), (-768, 768)])
        );
    }
}
