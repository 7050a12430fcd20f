//! Model → [`LayeredCircuit`]: quantization (docs/protocol.md §3), layout (§4) and the exact worst-case
//! bound analysis that picks the field (§6).
//!
//! **Layers.** `Conv2d`, `Dense`, `SumPool` and `Activation` become one [`CircuitLayer`] each.
//! `Flatten` emits nothing: the layers after it keep the multi-dimensional layout of the tensor
//! (a dense layer reads its real positions in row-major order). A `Reshape` to a 1-D shape or to
//! the current layout is free too; any other `Reshape` becomes an [`Op::Gates`] layer of
//! [`Gate::Relay`] gates (and `Gate::Const(0)` at the output's padding positions).
//!
//! **Bound analysis.** [`crate::bounds`] runs it (its items are re-exported here); this module
//! stores each layer's `bound_bits` and picks or checks the field from them.

pub use crate::bounds::{bound_analysis, stage_bounds, LayerBound, StageBounds, UNBOUNDED_BITS};
use crate::circuit::{
    ActivationOp, AddOp, BranchOp, Conv2dOp, DenseOp, Exact, ForkOp, GatesOp, MaxPoolSpec, MulOp,
    PolynomialOp, RequantOp, SumPoolOp,
};
use crate::circuit::{
    CircuitLayer, FieldChoice, LayeredCircuit, Layout, Op, QuantParams, MAX_ITEM_VARS,
};
use crate::field::FieldId;
use crate::gates::{Gate, GateLayer};
use crate::model::{Layer, Model, ModelError};
use crate::ops::{MAX_LIFT, MAX_REQUANT_BITS, MIN_REQUANT_BITS};
use crate::quant::{self, QuantError};
use thiserror::Error;

/// Largest number of weights of one layer the compiler accepts.
pub const MAX_WEIGHTS: usize = 1 << 28;

/// Largest number of multiply-accumulates per item (the bound analysis costs about as much as
/// one inference).
pub const MAX_MACS_PER_ITEM: u64 = 1 << 36;

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
    #[error("layer {layer} ({op}): {}{source}", depth_hint(.source))]
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
    /// A requantization checkpoint that cannot be placed as asked.
    #[error("layer {layer} (requant): {msg}")]
    Requant {
        /// Index of the model layer.
        layer: usize,
        /// What is wrong.
        msg: String,
    },
    /// A residual connection that cannot be compiled as asked.
    #[error("layer {layer} (add): {msg}")]
    Residual {
        /// Index of the model layer.
        layer: usize,
        /// What is wrong.
        msg: String,
    },
    /// A checkpoint's input needs more bits than a checkpoint reads.
    #[error(
        "{at}: the segment before this checkpoint needs {} bits, over the {max} a checkpoint \
         reads; place a requantization checkpoint earlier",
        show_bits(*.bits)
    )]
    SegmentTooWide {
        /// Index of the circuit layer of the checkpoint.
        layer: usize,
        /// Where, for people.
        at: String,
        /// Bits of the checkpoint's input.
        bits: u32,
        /// Bits it reads at most.
        max: u32,
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

/// What to do when a value does not quantize because the scale grew with depth.
fn depth_hint(source: &QuantError) -> &'static str {
    match source {
        QuantError::OutOfRange { scale_bits, .. } if *scale_bits >= 64 => {
            "the scale grew with depth (every x² doubles it; place requantization checkpoints, \
             e.g. with `verinfer calibrate`): "
        }
        QuantError::ScaleOverflow => {
            "place requantization checkpoints, e.g. with `verinfer calibrate`: "
        }
        _ => "",
    }
}

pub(crate) fn show_bits(bits: u32) -> String {
    if bits >= UNBOUNDED_BITS {
        "more than 1024".into()
    } else {
        bits.to_string()
    }
}

/// Compiles `model` with quantization `params` for `field` (docs/protocol.md §3, §4, §6): validates,
/// quantizes, lays out ([`lower`]), runs the bound analysis and picks or checks the field
/// ([`Lowered::finish`]).
pub fn compile(
    model: &Model,
    params: &QuantParams,
    field: FieldChoice,
) -> Result<LayeredCircuit, CompileError> {
    lower(model, params)?.finish(field)
}

/// A model quantized and laid out, before the bound analysis and the field choice: what the
/// compiler makes of each model layer, and which model layer each circuit layer comes from.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The circuit; its `bound_bits` are 0 and its field is not chosen yet.
    pub circuit: LayeredCircuit,
    /// The model layer each circuit layer comes from (`Flatten` and free `Reshape` layers emit
    /// none).
    pub origin: Vec<usize>,
}

impl Lowered {
    /// The circuit layer that computes the output of model layer `n`: the last one coming from
    /// a model layer at or before `n` (`None`: the input, e.g. for a leading flatten).
    pub fn circuit_layer(&self, n: usize) -> Option<usize> {
        circuit_layer_of(&self.origin, n)
    }

    /// Fractional bits of the output of model layer `n`, as the compiler quantizes it.
    pub fn scale_after(&self, n: usize) -> u32 {
        match self.circuit_layer(n) {
            Some(i) => self.circuit.layers[i].scale_bits,
            None => self.circuit.input_scale,
        }
    }

    /// Runs the bound analysis, checks every checkpoint's input width and picks or checks the
    /// field: the rest of [`compile`].
    pub fn finish(self, field: FieldChoice) -> Result<LayeredCircuit, CompileError> {
        let Lowered {
            mut circuit,
            origin,
        } = self;
        if circuit.layers.is_empty() {
            return Err(CompileError::NoLayers);
        }
        let bounds = bound_analysis(&circuit)?;
        for (layer, b) in circuit.layers.iter_mut().zip(&bounds) {
            layer.bound_bits = b.bits();
        }
        // A checkpoint reads its input as i128: what counts is the bits of the values it reads
        // (the previous layer's output), not that layer's intermediate sums.
        for (i, layer) in circuit.layers.iter().enumerate() {
            let Some(max) = layer.op.spec().max_input_bits() else {
                continue;
            };
            let bits = match layer.op.reads(i).first().copied().unwrap_or(i) {
                0 => circuit.input_bits(),
                t => bounds[t - 1].output_bits,
            };
            if bits > max {
                return Err(CompileError::SegmentTooWide {
                    layer: i,
                    at: place(&circuit, &origin, Some(i)),
                    bits,
                    max,
                });
            }
        }
        let (field_id, reason) = choose_field(&circuit, &origin, field)?;
        circuit.field = field_id;
        circuit.field_reason = reason;
        Ok(circuit)
    }
}

/// The circuit layer that computes the output of model layer `n`, given the model layer each
/// circuit layer comes from ([`Lowered::origin`]): the last one at or before `n` (`None`: the
/// input).
pub fn circuit_layer_of(origin: &[usize], n: usize) -> Option<usize> {
    origin.iter().rposition(|&m| m <= n)
}

/// The circuit layer (the last one) whose checkpoint can also take the exact function of model
/// layer `li`: a checkpoint that computes the previous model layer's output, reached from its own
/// model layer only through ReLU / max-pool layers merged into it, none of whose outputs another
/// layer reads, and without a function of the kind being added yet (`pool`: a max-pool).
fn merge_target(
    model: &Model,
    origin: &[usize],
    layers: &[CircuitLayer],
    li: usize,
    pool: bool,
) -> Option<usize> {
    let k = layers.len().checked_sub(1)?;
    let Op::Requant(op) = &layers[k].op else {
        return None;
    };
    if (pool && op.pool.is_some()) || (!pool && !op.then.is_none()) {
        return None;
    }
    let from = *origin.get(k)?;
    let between = model.layers.get(from..li)?;
    let exact_only = between.iter().enumerate().all(|(j, l)| {
        (j == 0 && matches!(l, Layer::Requant(_) | Layer::Relu(_) | Layer::MaxPool(_)))
            || matches!(l, Layer::Relu(_) | Layer::MaxPool(_))
    });
    let read_elsewhere = model
        .layers
        .iter()
        .any(|l| l.reference().is_some_and(|r| (from..li).contains(&r)));
    (exact_only && !read_elsewhere).then_some(k)
}

/// Integer bits (beside the sign) of the checkpoint the compiler inserts for an exact ReLU that no
/// settings file gave one: real values up to `2^15` pass, larger ones saturate (`verinfer
/// calibrate` places checkpoints sized to the data instead).
pub const EXACT_CHECKPOINT_INT_BITS: u32 = 15;

/// Quantizes and lays out `model` with `params` (docs/protocol.md §3, §4): the first half of
/// [`compile`], which every model that validates and quantizes passes, however wide its values.
pub fn lower(model: &Model, params: &QuantParams) -> Result<Lowered, CompileError> {
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
    // The circuit tensor holding each model layer's output.
    let mut tensor_of: Vec<usize> = Vec::with_capacity(model.layers.len());
    // Circuit tensor t: the input, or the output of circuit layer t − 1.
    let tensor = |layers: &[CircuitLayer], t: usize| -> (Layout, u32) {
        match t.checked_sub(1).and_then(|k| layers.get(k)) {
            Some(l) => (l.output.clone(), l.scale_bits),
            None => (input.clone(), s_in),
        }
    };
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
                let mut q = quant::quantize_activation(a, scale, params.coef_bits).map_err(qerr)?;
                // A tiny top coefficient can round to zero: the integer polynomial then has a
                // lower degree (at the same scale), which is the one to prove.
                while q.coefficients.len() > 1 && q.coefficients.last() == Some(&0) {
                    q.coefficients.pop();
                }
                // Quadratics keep their own kind: a degree-3 sumcheck with a dedicated kernel.
                let op = if q.coefficients.len() <= 3 {
                    Op::Activation(ActivationOp {
                        a: q.coefficient(2),
                        b: q.coefficient(1),
                        c: q.coefficient(0),
                    })
                } else {
                    Op::Polynomial(PolynomialOp {
                        coefficients: q.coefficients,
                    })
                };
                // Element-wise: keeps the current (possibly multi-dimensional) layout.
                Some((op, cur.clone(), q.scale_bits, a.name()))
            }
            Layer::Requant(r) => {
                let bad = |msg: String| CompileError::Requant { layer: li, msg };
                if !(MIN_REQUANT_BITS..=MAX_REQUANT_BITS).contains(&r.bits) {
                    return Err(bad(format!(
                        "bits {} outside {MIN_REQUANT_BITS}..={MAX_REQUANT_BITS}",
                        r.bits
                    )));
                }
                let Some(out_scale) = scale.checked_sub(r.shift) else {
                    return Err(bad(format!(
                        "shift {} exceeds the tensor's {scale} fractional bits",
                        r.shift
                    )));
                };
                let op = Op::Requant(RequantOp::new(r.shift, r.bits));
                let label = format!("requant >>{} to {} bits", r.shift, r.bits);
                Some((op, cur.clone(), out_scale, label))
            }
            Layer::Relu(_) | Layer::MaxPool(_) => {
                let (then, pool) = match layer {
                    Layer::Relu(r) => (
                        match r.slope_shift {
                            None => Exact::Relu,
                            Some(shift) => Exact::LeakyRelu { shift },
                        },
                        None,
                    ),
                    Layer::MaxPool(p) => (
                        Exact::None,
                        Some(MaxPoolSpec {
                            window: p.window,
                            stride: p.stride(),
                        }),
                    ),
                    _ => (Exact::None, None),
                };
                let out = match &pool {
                    Some(_) => Layout::new(out_dims.clone()),
                    None => cur.clone(),
                };
                check_layout(&out, li, op_name)?;
                let what = |then: &Exact| match (then, pool.is_some()) {
                    (_, true) => "max_pool".to_string(),
                    (t, false) => t.name(),
                };
                // The checkpoint that computes the previous output takes the function too when
                // only exact functions lie between (a ReLU and a max-pool commute with each
                // other and with the clamp) and nothing else reads what they replace; otherwise
                // one goes in (the scale rule: back to the input's fractional bits,
                // EXACT_CHECKPOINT_INT_BITS integer bits).
                match merge_target(model, &origin, &layers, li, then.is_none()) {
                    Some(k) => {
                        let last = &mut layers[k];
                        if let Op::Requant(op) = &mut last.op {
                            if !then.is_none() {
                                op.then = then;
                            }
                            if pool.is_some() {
                                op.pool = pool;
                            }
                        }
                        last.label = format!("{}, then exact {}", last.label, what(&then));
                        last.output = out.clone();
                        cur = out;
                        None
                    }
                    None => {
                        let shift = scale.saturating_sub(s_in);
                        let bits = s_in
                            .saturating_add(EXACT_CHECKPOINT_INT_BITS + 1)
                            .min(MAX_REQUANT_BITS);
                        let op = Op::Requant(RequantOp {
                            shift,
                            bits,
                            then,
                            pool,
                        });
                        let label =
                            format!("exact {} (requant >>{shift} to {bits} bits)", what(&then));
                        Some((op, out, scale - shift, label))
                    }
                }
            }
            Layer::Add(a) => {
                let bad = |msg: String| CompileError::Residual { layer: li, msg };
                let other = tensor_of.get(a.with).copied().unwrap_or(0);
                let (other_layout, s_other) = tensor(&layers, other);
                if other_layout != cur {
                    return Err(bad(format!(
                        "adds layer {}'s output in layout {:?} to one in layout {:?}; both \
                         operands must be laid out alike (a flatten on one side only?)",
                        a.with, other_layout.dims, cur.dims
                    )));
                }
                let s = scale.max(s_other);
                let lift = [s - scale, s - s_other];
                if lift.iter().any(|&l| l > MAX_LIFT) {
                    return Err(bad(format!(
                        "its operands' scales 2^{scale} and 2^{s_other} differ by more than \
                         {MAX_LIFT} bits"
                    )));
                }
                let verb = if a.subtract { "subtract" } else { "add" };
                let label = match lift {
                    [0, 0] => format!("{verb} layer {}", a.with),
                    [l, 0] => format!("{verb} layer {} (this <<{l})", a.with),
                    [_, l] => format!("{verb} layer {} (<<{l})", a.with),
                };
                let op = Op::Add(AddOp {
                    with: other,
                    lift,
                    subtract: a.subtract,
                });
                Some((op, cur.clone(), s, label))
            }
            Layer::Mul(m) => {
                let other = tensor_of.get(m.with).copied().unwrap_or(0);
                let (other_layout, s_other) = tensor(&layers, other);
                if other_layout != cur {
                    return Err(CompileError::Residual {
                        layer: li,
                        msg: format!(
                            "multiplies layer {}'s output in layout {:?} with one in layout \
                             {:?}; both operands must be laid out alike",
                            m.with, other_layout.dims, cur.dims
                        ),
                    });
                }
                let s = scale.checked_add(s_other).ok_or_else(|| {
                    too_large(format!("its scale 2^{scale}·2^{s_other} overflows"))
                })?;
                let label = format!("multiply by layer {}", m.with);
                Some((Op::Mul(MulOp { with: other }), cur.clone(), s, label))
            }
            Layer::Branch(b) => {
                let from = tensor_of.get(b.from).copied().unwrap_or(0);
                let (layout, s) = tensor(&layers, from);
                let label = format!("branch from layer {}", b.from);
                Some((Op::Branch(BranchOp { from }), layout, s, label))
            }
            Layer::Flatten => None,
            Layer::Scale { shift } => {
                if model.layers.iter().any(|l| l.reference() == Some(li)) {
                    return Err(too_large(
                        "a scale layer's output may only be read by the next layer".into(),
                    ));
                }
                scale = scale
                    .checked_add(*shift)
                    .ok_or_else(|| too_large(format!("scale 2^{scale} + {shift} overflows")))?;
                None
            }
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
            // A branch reads the tensor it passes on, every other kind the current one.
            let input_layout = match op {
                Op::Branch(_) => output.clone(),
                _ => cur.clone(),
            };
            layers.push(CircuitLayer {
                op,
                input: input_layout,
                output: output.clone(),
                scale_bits: out_scale,
                bound_bits: 0,
                label,
            });
            origin.push(li);
            cur = output;
            scale = out_scale;
        }
        tensor_of.push(layers.len());
    }
    if !layers.is_empty() {
        insert_forks(&mut layers, &mut origin, s_in);
    }
    let circuit = LayeredCircuit {
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
    Ok(Lowered { circuit, origin })
}

/// Places a fork after every tensor that several layers read (the verifier merges claims only
/// at forks): the fork reads the tensor, and every reader reads the fork's output instead.
fn insert_forks(layers: &mut Vec<CircuitLayer>, origin: &mut Vec<usize>, input_scale: u32) {
    let readers = crate::circuit::readers(layers);
    // Last tensor first, so the tensors still to visit keep their indices.
    for t in (0..readers.len()).rev().filter(|&t| readers[t] > 1) {
        for l in layers.iter_mut() {
            match &mut l.op {
                Op::Add(AddOp { with: r, .. })
                | Op::Mul(MulOp { with: r })
                | Op::Branch(BranchOp { from: r })
                    if *r >= t =>
                {
                    *r += 1
                }
                _ => {}
            }
        }
        let (layout, scale_bits) = match t {
            0 => (layers[0].input.clone(), input_scale),
            _ => (layers[t - 1].output.clone(), layers[t - 1].scale_bits),
        };
        layers.insert(
            t,
            CircuitLayer {
                op: Op::Fork(ForkOp {}),
                input: layout.clone(),
                output: layout,
                scale_bits,
                bound_bits: 0,
                label: "fork".into(),
            },
        );
        let o = t
            .checked_sub(1)
            .and_then(|p| origin.get(p).copied())
            .unwrap_or(0);
        origin.insert(t, o);
    }
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
    let input_bits = circuit.input_bits();
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
