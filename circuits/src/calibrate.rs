//! Choosing requantization checkpoints from sample data (`verinfer calibrate`): where they go,
//! and how far each one shifts, from the float range of each tensor on the samples
//! ([`crate::float`]) and the scales the compiler gives the integers ([`crate::compile`]).
//!
//! **Where.** After every activation (unless the model already has a checkpoint there). If the
//! model still does not compile because a segment between two checkpoints needs more bits than
//! a checkpoint reads or the field holds, one more checkpoint goes on the output of the last
//! dense or convolution layer of that segment before the value that overflows, and the
//! compiler is asked again, until the model compiles or the segment has no such layer left
//! ([`CalibrateError::Segment`]).
//!
//! **How far** ([`kept_bits`], [`shift_for`]). In model order, each checkpoint is placed after
//! the ones before it are, the model is lowered, and the compiler's scale `s` of the tensor
//! (its fractional bits) is read. With `R` the largest |value| of the tensor on the samples,
//! the checkpoint keeps the most fractional bits `f` with `R·2^f ≤ 2^(B−1−h)`: the samples use
//! at most `B − 1 − h` of the `B` signed bits it keeps, `h` bits of headroom for values larger
//! than the samples'. Its shift is `k = s − f`; `k < 0` (the tensor has fewer fractional bits
//! than would fit) becomes 0, a clamp only; `f < 0` (even the integer part does not fit)
//! becomes `k = s`, and values beyond the clamp saturate.

use crate::circuit::{FieldChoice, LayeredCircuit, Op, QuantParams};
use crate::compile::{circuit_layer_of, lower, show_bits, CompileError};
use crate::field::FieldId;
use crate::model::{Layer, Model};
use crate::ops::{MAX_REQUANT_BITS, MIN_REQUANT_BITS};
use crate::quant::QuantError;
use crate::settings::{RequantAt, Settings, SettingsError, TensorNames};
use thiserror::Error;

/// How to calibrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Quantization of inputs, weights and coefficients.
    pub params: QuantParams,
    /// The field to compile for.
    pub field: FieldChoice,
    /// Signed bits every checkpoint keeps (`B`).
    pub bits: u32,
    /// Bits of headroom above the samples' largest value (`h`).
    pub headroom: u32,
}

impl Options {
    /// Refuses a width a checkpoint cannot keep, and headroom that leaves the samples no bit.
    pub fn check(&self) -> Result<(), CalibrateError> {
        if !(MIN_REQUANT_BITS..=MAX_REQUANT_BITS).contains(&self.bits) {
            return Err(CalibrateError::Bits(self.bits));
        }
        if self.headroom.saturating_add(2) > self.bits {
            return Err(CalibrateError::Headroom {
                headroom: self.headroom,
                bits: self.bits,
            });
        }
        Ok(())
    }
}

/// Why calibration failed. One line each.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CalibrateError {
    /// Checkpoint width outside what a checkpoint keeps.
    #[error("--bits {0}: a checkpoint keeps {MIN_REQUANT_BITS} to {MAX_REQUANT_BITS} signed bits")]
    Bits(u32),
    /// Headroom that leaves no bit for the samples.
    #[error("--headroom {headroom}: at most {} with --bits {bits} (one bit is the sign, one at least for the values)", bits.saturating_sub(2))]
    Headroom {
        /// The headroom asked for.
        headroom: u32,
        /// The checkpoint width.
        bits: u32,
    },
    /// Not one range per model layer.
    #[error("{got} tensor ranges for a model of {layers} layers")]
    Ranges {
        /// Ranges given.
        got: usize,
        /// Layers of the model.
        layers: usize,
    },
    /// A float value on the samples is infinite or NaN.
    #[error("layer:{layer} ({op}) is not finite on the samples (the float model overflows)")]
    NotFinite {
        /// The model layer.
        layer: usize,
        /// Its operation.
        op: &'static str,
    },
    /// The model does not compile for a reason no checkpoint changes.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A checkpoint could not be placed (a bug: calibration names only layers it may use).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A segment overflows and has no dense or convolution output left to checkpoint.
    #[error(
        "the segment from {from} to {to} needs {} bits, over {limit}, and has no dense or conv \
         output left to put a checkpoint on; use fewer fractional bits (--input-bits, \
         --weight-bits, --coef-bits){}",
        show_bits(*.bits),
        if *.bits > FieldId::Bn254.signed_capacity_bits() { "" } else { " or a smaller --bits" }
    )]
    Segment {
        /// Where it starts: `the input` or `layer:N (op)`, the tensor of the checkpoint before.
        from: String,
        /// The tensor whose values overflow, `layer:N (op)`.
        to: String,
        /// Bits it needs.
        bits: u32,
        /// What it exceeds, e.g. `the 126 bits a checkpoint reads`.
        limit: String,
    },
}

/// Why a checkpoint is where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// It follows an activation.
    Activation,
    /// The segment it splits would overflow without it.
    Segment,
}

/// One chosen checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model layer whose output it requantizes (0-based, before any checkpoint is placed:
    /// the `layer:N` of a settings file).
    pub layer: usize,
    /// Why it is there.
    pub why: Why,
    /// The tensor's largest |value| on the samples.
    pub max_abs: f64,
    /// The tensor's fractional bits before the checkpoint (the compiler's scale).
    pub scale: u32,
    /// The fractional bits the rule asks for ([`kept_bits`]; `None`: the samples are all 0).
    pub wanted: Option<i64>,
    /// Fractional bits dropped.
    pub shift: u32,
    /// Signed bits kept.
    pub bits: u32,
}

impl Checkpoint {
    /// Fractional bits of the tensor after the checkpoint.
    pub fn kept(&self) -> u32 {
        self.scale - self.shift
    }
}

/// The calibrated model.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The checkpoints, in model order.
    pub checkpoints: Vec<Checkpoint>,
    /// The model with the checkpoints placed.
    pub model: Model,
    /// It, compiled.
    pub circuit: LayeredCircuit,
    /// The layer of [`Plan::model`] each circuit layer comes from.
    pub origin: Vec<usize>,
    /// The layer of the original model each layer of [`Plan::model`] computes the output of
    /// (a checkpoint: the layer it follows).
    placed: Vec<usize>,
}

impl Plan {
    /// The circuit layer that computes (the integers of) the output of original model layer
    /// `n`, before its checkpoint if it has one; `None`: the input.
    pub fn circuit_layer(&self, n: usize) -> Option<usize> {
        let at = self.placed.iter().position(|&m| m == n)?;
        circuit_layer_of(&self.origin, at)
    }

    /// The checkpoints as a settings file's `requant` list, each tensor named by `name`
    /// (e.g. `layer:N`, or an ONNX value name).
    pub fn requant(&self, name: impl Fn(usize) -> String) -> Vec<RequantAt> {
        self.checkpoints
            .iter()
            .map(|c| RequantAt {
                tensor: name(c.layer),
                shift: c.shift,
                bits: c.bits,
            })
            .collect()
    }

    /// The worst-case bits of the segment that starts after circuit layer `after` (`None`: at
    /// the input, whose bits count too) and ends before the next checkpoint or at the output.
    pub fn segment_bits(&self, after: Option<usize>) -> u32 {
        let start = after.map_or(0, |i| i + 1);
        let input = match after {
            None => self.circuit.input_bits(),
            Some(_) => 0,
        };
        self.circuit.layers[start.min(self.circuit.layers.len())..]
            .iter()
            .take_while(|l| !matches!(l.op, Op::Requant(_)))
            .map(|l| l.bound_bits)
            .fold(input, u32::max)
    }
}

/// The most fractional bits `f` with `max_abs · 2^f ≤ 2^(bits − 1 − headroom)`, exactly (powers
/// of two are compared, not logarithms); `None` when `max_abs` is 0 (any `f` fits) or not a
/// finite number.
pub fn kept_bits(max_abs: f64, bits: u32, headroom: u32) -> Option<i64> {
    if !(max_abs.is_finite() && max_abs > 0.0) {
        return None;
    }
    let target = i64::from(bits) - 1 - i64::from(headroom);
    Some(target - ceil_log2(max_abs))
}

/// The smallest `e` with `x ≤ 2^e`, for finite `x > 0`.
fn ceil_log2(x: f64) -> i64 {
    let pow2 = |e: i64| 2f64.powi(e.clamp(-1100, 1100) as i32);
    // log2 may land on the wrong side of an integer: settle it with exact powers of two.
    let mut e = x.log2().ceil() as i64;
    while pow2(e) < x {
        e += 1;
    }
    while pow2(e - 1) >= x {
        e -= 1;
    }
    e
}

/// The shift that keeps `kept` of a tensor's `scale` fractional bits: `scale − kept`, at least
/// 0 (a tensor with fewer fractional bits is only clamped) and at most `scale` (the compiler
/// refuses a shift beyond the tensor's fractional bits); `None` (all samples 0) shifts nothing.
pub fn shift_for(scale: u32, kept: Option<i64>) -> u32 {
    match kept {
        None => 0,
        Some(f) => (i64::from(scale) - f).clamp(0, i64::from(scale)) as u32,
    }
}

/// Chooses the checkpoints of `model` (see the module docs); `max_abs[n]` is the largest
/// |value| of model layer `n`'s output on the samples.
pub fn plan(model: &Model, max_abs: &[f64], opts: &Options) -> Result<Plan, CalibrateError> {
    opts.check()?;
    if max_abs.len() != model.layers.len() {
        return Err(CalibrateError::Ranges {
            got: max_abs.len(),
            layers: model.layers.len(),
        });
    }
    if let Some(n) = max_abs.iter().position(|x| !x.is_finite()) {
        return Err(CalibrateError::NotFinite {
            layer: n,
            op: model.layers[n].op_name(),
        });
    }
    model.validate().map_err(CompileError::from)?;
    // A layer may take a checkpoint unless it is one or the model already follows it with one.
    let free = |n: usize| {
        !matches!(model.layers[n], Layer::Requant(_))
            && !matches!(model.layers.get(n + 1), Some(Layer::Requant(_)))
    };
    let mut positions: Vec<(usize, Why)> = (0..model.layers.len())
        .filter(|&n| matches!(model.layers[n], Layer::Activation(_)) && free(n))
        .map(|n| (n, Why::Activation))
        .collect();
    loop {
        let (err, to, overflow) = match attempt(model, max_abs, &positions, opts) {
            Ok(plan) => return Ok(plan),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Wide { err, to, overflow }) => (err, to, overflow),
        };
        // The segment starts after the last checkpoint before the tensor that overflows.
        let start = (0..to).rev().find(|&n| {
            matches!(model.layers[n], Layer::Requant(_)) || positions.iter().any(|p| p.0 == n)
        });
        let linear = |n: usize| matches!(model.layers[n], Layer::Conv2d(_) | Layer::Dense(_));
        let split = (start.map_or(0, |s| s + 1)..to)
            .rev()
            .find(|&n| linear(n) && free(n) && !positions.iter().any(|p| p.0 == n));
        match (split, overflow) {
            (Some(n), _) => {
                positions.push((n, Why::Segment));
                positions.sort_by_key(|p| p.0);
            }
            (None, Some((bits, limit))) => {
                let name = |n: usize| format!("layer:{n} ({})", model.layers[n].op_name());
                return Err(CalibrateError::Segment {
                    from: start.map_or_else(|| "the input".to_string(), name),
                    to: name(to),
                    bits,
                    limit,
                });
            }
            // A value that does not quantize at the scale the segment reaches: the
            // compiler's own message says which.
            (None, None) => return Err(err.into()),
        }
    }
}

/// Why one attempt at a plan failed.
enum Failure {
    /// Nothing another checkpoint changes.
    Fatal(CalibrateError),
    /// A segment too wide: the values of original model layer `to` overflow, needing the
    /// bits and exceeding the limit of `overflow` (`None`: a number that does not quantize at
    /// the scale reached there).
    Wide {
        err: CompileError,
        to: usize,
        overflow: Option<(u32, String)>,
    },
}

impl Failure {
    /// Sorts a compile error of a model with checkpoints placed: `placed[m]` is the original
    /// layer of its layer `m`, and `origin` (once lowered) the layer of each circuit layer.
    fn of(err: CompileError, origin: &[usize], placed: &[usize]) -> Self {
        let capacity = |field: FieldId| field.signed_capacity_bits();
        let at_circuit = |i: usize| origin.get(i).and_then(|&m| placed.get(m)).copied();
        let (to, overflow) = match &err {
            CompileError::SegmentTooWide {
                layer, bits, max, ..
            } => (
                at_circuit(*layer),
                Some((*bits, format!("the {max} bits a checkpoint reads"))),
            ),
            CompileError::FieldTooSmall {
                layer: Some(layer),
                bits,
                field,
                ..
            } => (
                at_circuit(*layer),
                Some((
                    *bits,
                    format!("the {} signed bits of {field}", capacity(*field)),
                )),
            ),
            CompileError::NoFieldFits {
                layer: Some(layer),
                bits,
                ..
            } => (
                at_circuit(*layer),
                Some((
                    *bits,
                    format!(
                        "the {} signed bits of the largest field (bn254)",
                        capacity(FieldId::Bn254)
                    ),
                )),
            ),
            // Numbers quantized at the scale a segment reaches (biases, constant terms).
            CompileError::Quant {
                layer,
                source:
                    QuantError::OutOfRange { .. }
                    | QuantError::ScaleOverflow
                    | QuantError::Coefficient { .. },
                ..
            } => (placed.get(*layer).copied(), None),
            _ => (None, None),
        };
        match to {
            Some(to) => Failure::Wide { err, to, overflow },
            None => Failure::Fatal(err.into()),
        }
    }
}

/// The plan with checkpoints at `positions`, if the model compiles with them.
fn attempt(
    model: &Model,
    max_abs: &[f64],
    positions: &[(usize, Why)],
    opts: &Options,
) -> Result<Plan, Failure> {
    let checkpoints = choose(model, max_abs, positions, opts)?;
    let (placed_model, placed) =
        place(model, &checkpoints).map_err(|e| Failure::Fatal(e.into()))?;
    let lowered = lower(&placed_model, &opts.params).map_err(|e| Failure::of(e, &[], &placed))?;
    let origin = lowered.origin.clone();
    let circuit = lowered
        .finish(opts.field)
        .map_err(|e| Failure::of(e, &origin, &placed))?;
    Ok(Plan {
        checkpoints,
        model: placed_model,
        circuit,
        origin,
        placed,
    })
}

/// The shift of each checkpoint at `positions` (in model order), each read off the model up to
/// its tensor, lowered with the checkpoints before it.
fn choose(
    model: &Model,
    max_abs: &[f64],
    positions: &[(usize, Why)],
    opts: &Options,
) -> Result<Vec<Checkpoint>, Failure> {
    let mut chosen: Vec<Checkpoint> = Vec::with_capacity(positions.len());
    for &(layer, why) in positions {
        let (mut prefix, placed) = place(model, &chosen).map_err(|e| Failure::Fatal(e.into()))?;
        let at = placed.iter().position(|&m| m == layer).unwrap_or(layer);
        // The layers after the tensor do not change its scale (and may not quantize yet).
        prefix.layers.truncate(at + 1);
        let lowered = lower(&prefix, &opts.params).map_err(|e| Failure::of(e, &[], &placed))?;
        let scale = lowered.scale_after(at);
        let wanted = kept_bits(max_abs[layer], opts.bits, opts.headroom);
        chosen.push(Checkpoint {
            layer,
            why,
            max_abs: max_abs[layer],
            scale,
            wanted,
            shift: shift_for(scale, wanted),
            bits: opts.bits,
        });
    }
    Ok(chosen)
}

/// `model` with `checkpoints` placed (through the settings file's own placement, so a written
/// file places them the same way), and for each of its layers the original layer it computes
/// the output of.
fn place(model: &Model, checkpoints: &[Checkpoint]) -> Result<(Model, Vec<usize>), SettingsError> {
    let settings = Settings {
        requant: checkpoints
            .iter()
            .map(|c| RequantAt {
                tensor: format!("layer:{}", c.layer),
                shift: c.shift,
                bits: c.bits,
            })
            .collect(),
        ..Settings::default()
    };
    let mut placed_model = model.clone();
    settings.place_checkpoints(&mut placed_model, &TensorNames::default())?;
    let mut placed = Vec::with_capacity(placed_model.layers.len());
    for n in 0..model.layers.len() {
        placed.push(n);
        if checkpoints.iter().any(|c| c.layer == n) {
            placed.push(n);
        }
    }
    Ok((placed_model, placed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::float;
    use crate::model::{Activation, Dense};

    #[test]
    fn kept_bits_is_the_largest_that_fits() {
        // B = 16, h = 1: the samples may use 2^14 = 16384. 3·2^12 = 12288 fits, 3·2^13 = 24576
        // does not: f = 12.
        assert_eq!(kept_bits(3.0, 16, 1), Some(12));
        // Exactly on the boundary: 4·2^12 = 2^14 fits; anything above 4 needs one bit less.
        assert_eq!(kept_bits(4.0, 16, 1), Some(12));
        assert_eq!(kept_bits(4.0f64.next_up(), 16, 1), Some(11));
        assert_eq!(kept_bits(4.0f64.next_down(), 16, 1), Some(12));
        assert_eq!(kept_bits(0.5, 16, 1), Some(15));
        assert_eq!(kept_bits(0.5, 16, 0), Some(16));
        assert_eq!(kept_bits(1.0, 2, 0), Some(1));
        // Larger than the bits: a negative f (the integer part does not fit).
        assert_eq!(kept_bits(1e6, 16, 1), Some(14 - 20));
        assert_eq!(kept_bits(f64::MAX, 62, 1), Some(60 - 1024));
        assert_eq!(kept_bits(f64::MIN_POSITIVE / 4.0, 16, 1), Some(14 + 1024));
        assert_eq!(kept_bits(0.0, 16, 1), None);
        assert_eq!(kept_bits(f64::NAN, 16, 1), None);
        // The defining property, on many values: R·2^f ≤ 2^(B−1−h) < R·2^(f+1).
        let mut x = 1.0e-9f64;
        while x < 1.0e12 {
            for (b, h) in [(16, 1), (12, 1), (8, 0), (62, 3)] {
                let f = kept_bits(x, b, h).unwrap() as i32;
                let room = 2f64.powi(b as i32 - 1 - h as i32);
                assert!(x * 2f64.powi(f) <= room, "{x} {b} {h}: {f}");
                assert!(x * 2f64.powi(f + 1) > room, "{x} {b} {h}: {f}");
            }
            x *= 1.37;
        }
    }

    #[test]
    fn shift_keeps_f_bits_clamped_to_the_scale() {
        // A tensor at scale 24 with max 3.0 at B = 16, h = 1 keeps 12 bits: shift 12.
        assert_eq!(shift_for(24, kept_bits(3.0, 16, 1)), 12);
        // Fewer fractional bits than would fit: k = 10 − 12 < 0 becomes 0 (a clamp only).
        assert_eq!(shift_for(10, Some(12)), 0);
        assert_eq!(shift_for(12, Some(12)), 0);
        // f < 0: at most the whole scale.
        assert_eq!(shift_for(10, Some(-3)), 10);
        // All samples zero: nothing to learn, nothing shifted.
        assert_eq!(shift_for(10, None), 0);
    }

    fn dense(n_in: usize, n_out: usize, seed: usize) -> Layer {
        Layer::Dense(Dense {
            in_features: n_in,
            out_features: n_out,
            weight: (0..n_in * n_out)
                .map(|i| ((i * 7 + seed * 13) % 11) as f64 / 10.0 - 0.5)
                .collect(),
            bias: Some((0..n_out).map(|i| (i % 3) as f64 / 10.0 - 0.1).collect()),
        })
    }

    fn model(layers: Vec<Layer>) -> Model {
        Model {
            name: "chain".into(),
            input_shape: vec![6],
            input_range: [-1.0, 1.0],
            layers,
        }
    }

    fn samples() -> Vec<f64> {
        (0..6 * 20)
            .map(|i| ((i * 37) % 41) as f64 / 20.0 - 1.0)
            .collect()
    }

    fn max_abs(m: &Model) -> Vec<f64> {
        let run = float::run(m, &samples()).unwrap();
        (0..m.layers.len())
            .map(|i| {
                let (lo, hi) = run.extremes(i).unwrap();
                lo.abs().max(hi.abs())
            })
            .collect()
    }

    fn options(bits: u32) -> Options {
        Options {
            params: QuantParams::default(),
            field: FieldChoice::Auto,
            bits,
            headroom: 1,
        }
    }

    #[test]
    fn one_checkpoint_per_activation_with_the_compilers_scale() {
        // dense (scale 8 + 8) → x² (scale 32) → dense → x²+x → dense.
        let m = model(vec![
            dense(6, 6, 0),
            Layer::Activation(Activation::Square),
            dense(6, 6, 1),
            Layer::Activation(Activation::SquarePlusX),
            dense(6, 3, 2),
        ]);
        let ranges = max_abs(&m);
        let p = plan(&m, &ranges, &options(16)).unwrap();
        let at: Vec<usize> = p.checkpoints.iter().map(|c| c.layer).collect();
        assert_eq!(at, [1, 3]);
        let first = &p.checkpoints[0];
        assert_eq!(first.scale, 32);
        let f = kept_bits(ranges[1], 16, 1).unwrap();
        assert_eq!(i64::from(first.shift), 32 - f);
        assert_eq!(i64::from(first.kept()), f);
        // After it: scale f; the dense layer adds 8 weight bits and x²+x doubles.
        let second = &p.checkpoints[1];
        assert_eq!(i64::from(second.scale), 2 * (f + 8));
        assert!(p.checkpoints.iter().all(|c| c.why == Why::Activation));
        // The plan's circuit is what a settings file naming the same checkpoints compiles to.
        let mut again = m.clone();
        Settings {
            requant: p.requant(|n| format!("layer:{n}")),
            ..Settings::default()
        }
        .place_checkpoints(&mut again, &TensorNames::default())
        .unwrap();
        let c = compile(&again, &QuantParams::default(), FieldChoice::Auto).unwrap();
        assert_eq!(c.digest(), p.circuit.digest());
        // Segment bits: the input's segment ends at the first checkpoint.
        let r0 = p.circuit_layer(1).unwrap() + 1;
        assert!(matches!(p.circuit.layers[r0].op, Op::Requant(_)));
        assert_eq!(
            p.segment_bits(None),
            p.circuit.layers[..r0]
                .iter()
                .map(|l| l.bound_bits)
                .max()
                .unwrap()
        );
    }

    /// Eight dense layers before each x²: the activation checkpoints alone leave segments of
    /// about 170 bits, over the 126 a checkpoint reads, so calibration adds one on the last
    /// dense output before each activation.
    #[test]
    fn long_segments_get_checkpoints_on_linear_outputs() {
        let mut layers = Vec::new();
        for block in 0..2 {
            for k in 0..8 {
                layers.push(dense(6, 6, block * 8 + k));
            }
            layers.push(Layer::Activation(Activation::Square));
        }
        layers.push(dense(6, 3, 99));
        let m = model(layers);
        let ranges = max_abs(&m);
        // The activation checkpoints alone do not compile.
        let Ok(only_activations) = choose(
            &m,
            &ranges,
            &[(8, Why::Activation), (17, Why::Activation)],
            &options(16),
        ) else {
            panic!("the scales of the activation checkpoints");
        };
        let (placed, _) = place(&m, &only_activations).unwrap();
        let e = compile(&placed, &QuantParams::default(), FieldChoice::Auto).unwrap_err();
        assert!(matches!(e, CompileError::SegmentTooWide { .. }), "{e}");

        let p = plan(&m, &ranges, &options(16)).unwrap();
        let at: Vec<(usize, Why)> = p.checkpoints.iter().map(|c| (c.layer, c.why)).collect();
        assert_eq!(
            at,
            [
                (7, Why::Segment),
                (8, Why::Activation),
                (16, Why::Segment),
                (17, Why::Activation)
            ]
        );
        // Every shift follows the rule on the scale the compiler gave that tensor.
        for c in &p.checkpoints {
            assert_eq!(c.shift, shift_for(c.scale, kept_bits(c.max_abs, 16, 1)));
        }
        assert!(p.circuit.max_bits() <= 126, "{}", p.circuit.max_bits());
    }

    #[test]
    fn a_segment_without_linear_layers_cannot_be_split() {
        // x² of an input at 62 fractional bits needs about 2·64 bits: over the 126 a
        // checkpoint reads, and there is no dense or conv output to checkpoint first.
        let mut m = model(vec![
            Layer::Activation(Activation::Square),
            Layer::Activation(Activation::Square),
        ]);
        m.input_range = [-4.0, 4.0];
        let mut opts = options(16);
        opts.params.input_bits = 62;
        let e = plan(&m, &max_abs(&m), &opts).unwrap_err();
        let CalibrateError::Segment { from, to, bits, .. } = &e else {
            panic!("{e}");
        };
        assert_eq!(
            (from.as_str(), to.as_str()),
            ("the input", "layer:0 (activation)")
        );
        assert!(*bits > 126, "{e}");
        let text = e.to_string();
        assert!(text.contains("the 126 bits a checkpoint reads"), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn bad_options_are_refused() {
        let m = model(vec![dense(6, 3, 0)]);
        let r = max_abs(&m);
        assert_eq!(
            plan(&m, &r, &options(1)).unwrap_err(),
            CalibrateError::Bits(1)
        );
        assert_eq!(
            plan(&m, &r, &options(63)).unwrap_err(),
            CalibrateError::Bits(63)
        );
        let mut o = options(8);
        o.headroom = 7;
        assert!(matches!(
            plan(&m, &r, &o).unwrap_err(),
            CalibrateError::Headroom { .. }
        ));
        assert!(matches!(
            plan(&m, &[], &options(8)).unwrap_err(),
            CalibrateError::Ranges { got: 0, layers: 1 }
        ));
        assert!(matches!(
            plan(&m, &[f64::INFINITY], &options(8)).unwrap_err(),
            CalibrateError::NotFinite { layer: 0, .. }
        ));
        // A model without activations and narrow enough gets no checkpoint.
        assert!(plan(&m, &r, &options(8)).unwrap().checkpoints.is_empty());
    }
}
