//! Integer inference and the field witness of every stage (docs/protocol.md §9).
//!
//! [`infer`] is plain quantized inference: exact integer arithmetic on machine integers, the
//! baseline the prover's cost is compared against. [`witness`] runs the same engine, keeps every
//! stage, and converts each stage once into a zero-padded field table in the layout of
//! [`crate::circuit`] (docs/protocol.md §4).
//!
//! **Arithmetic per layer.** Each layer runs in the narrowest machine type its bounds allow
//! ([`arithmetic`]): `i64` when the layer's `bound_bits` and its input's bits are at most 62,
//! `i128` up to 126 bits, and beyond that the proof field itself (BN254 for [`infer`]). The
//! integer types use wrapping operations: integer arithmetic modulo 2^64 (or 2^128) is a ring
//! homomorphism, so every stage value is exact whenever the *true* value fits the type, which is
//! what the bound analysis guarantees (docs/protocol.md §6), whatever the size of partial sums. The bounds
//! are trusted: a hand-built circuit whose `bound_bits` understate its values gets values reduced
//! modulo 2^64 or 2^128 (never a panic). The field tables therefore agree bit for bit with
//! evaluating the circuit in the field.
//!
//! **Storage.** Stages are kept compact while computing (batch-major, each item's real values in
//! real row-major order), which is what a dense layer reads after a free flatten. Only the
//! witness tables are padded.
//!
//! **Kernels.** Dense and convolution layers share one register-tiled product kernel
//! `C[m][n] = Σ_k A[m][k]·B[n][k]` with contiguous inner loops over `k` (both operands
//! row-major in `k`), weights held in a 4×2 (i64) or 2×2 (i128, field) tile of accumulators, and
//! blocking over `k` and `n` to keep the data block in cache:
//! - dense: `A` = weights `[out][in]`, `B` = the batch `[item][in]`; rayon splits the output
//!   rows, so every weight row is streamed once, then one transpose adds the bias;
//! - conv: per item, `B` = im2col patches `[position][c·kh·kw]` built for one block of output
//!   positions at a time (about 64 KiB, in L2), the product written in place into the item's
//!   `[out][row][col]` output; rayon splits the batch items, or for a single item the output
//!   channels of each block.
//!
//! Sum-pooling, activations and gate layers are element-wise loops split over items and planes.
//!
//! **Narrower products when the data allow.** For a dense or conv layer with at least 4 columns
//! per weight (batch items for dense, output positions for conv), the engine also computes the
//! largest L1 norm of an output's weights, `‖W‖₁`, and the largest |x| of the actual input; the
//! product `‖W‖₁·max|x|` bounds every partial sum. When it is below 2^31 (and weights and inputs
//! fit 16 bits), the product runs on 16-bit operands with 32-bit sums (SSE2 `pmaddwd`, about
//! 3× the 64-bit rate). An `i128` layer whose bound allows it runs as one to three 64-bit
//! products over limbs of its input instead of 128-bit multiply-accumulates. These checks are
//! rigorous (they do not trust `bound_bits`) and leave every value unchanged; they only pick the
//! cheapest exact kernel.

use crate::circuit::{bits_of, CircuitLayer, LayeredCircuit, Layout, Op};
use crate::circuit::{ActivationOp, Conv2dOp, DenseOp, GatesOp, SumPoolOp};
use crate::field::{from_i128_unchecked, from_i64, to_i128, Bn254, ProofField};
use crate::gates::{Gate, MAX_LAYER_VARS};
use std::borrow::Cow;
use thiserror::Error;
use verinfer_poly::ring::Num;

/// Work (in multiply-accumulates or element operations) from which a kernel uses rayon.
const PAR_WORK: usize = 1 << 15;

/// Errors of input validation, circuit shape checks and value ranges.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WitnessError {
    /// The batch is empty.
    #[error("batch size must be at least 1")]
    EmptyBatch,
    /// The input does not have `batch · item_len` values.
    #[error("expected {expected} input values ({batch} items of {per_item}), got {got}")]
    InputLength {
        /// Number of values the circuit wants.
        expected: usize,
        /// Number given.
        got: usize,
        /// Batch size.
        batch: usize,
        /// Values per item.
        per_item: usize,
    },
    /// An input value outside the circuit's declared input range.
    #[error("input value {value} at index {index} is outside the declared range [{min}, {max}]")]
    InputOutOfRange {
        /// Index in the flat, batch-major input.
        index: usize,
        /// The value.
        value: i128,
        /// Smallest allowed value.
        min: i128,
        /// Largest allowed value.
        max: i128,
    },
    /// A layer whose declared layouts do not match its operation (or the previous layer).
    #[error("layer {layer} ({op}): {reason}")]
    Shape {
        /// Index of the layer in `circuit.layers`.
        layer: usize,
        /// Name of the operation.
        op: &'static str,
        /// What does not match.
        reason: String,
    },
    /// A stage that would be larger than the protocol supports.
    #[error("stage {stage} would need more than 2^{max_vars} padded values")]
    TooLarge {
        /// Stage index (0 is the input, `i + 1` the output of layer `i`).
        stage: usize,
        /// Largest supported number of variables.
        max_vars: usize,
    },
    /// A layer whose values need more bits than the field's signed capacity.
    #[error(
        "layer {layer} needs {bits} bits, more than the field's signed capacity of {capacity}"
    )]
    FieldTooSmall {
        /// Index of the layer.
        layer: usize,
        /// Bits the layer needs.
        bits: u32,
        /// Signed capacity of the field in bits.
        capacity: u32,
    },
    /// A value that does not fit in an `i128` where one is needed (the output, or the input of
    /// a layer whose bounds promised a machine integer).
    #[error("stage {stage}: value at index {index} does not fit in 128 bits")]
    ValueTooWide {
        /// Stage index (0 is the input, `i + 1` the output of layer `i`).
        stage: usize,
        /// Index in the compact, batch-major stage.
        index: usize,
    },
    /// A gate layer that writes a nonzero value at a padding position of its output.
    #[error("layer {layer} (gates): item {item}, gate {gate} is a padding position but evaluates to a nonzero value")]
    NonZeroPadding {
        /// Index of the layer.
        layer: usize,
        /// Batch item.
        item: usize,
        /// The gate (padded per-item offset).
        gate: usize,
    },
}

/// The machine arithmetic one layer runs in (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// Wrapping `i64`: the layer and its input need at most 62 bits.
    I64,
    /// Wrapping `i128`: at most 126 bits.
    I128,
    /// The proof field itself (BN254 for [`infer`]).
    Field,
}

/// The value tables of every stage of a circuit on one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness<F> {
    /// Number of real batch items.
    pub batch: usize,
    /// `layers[0]` is the input and `layers[i + 1]` the output of circuit layer `i`, each a
    /// zero-padded table of length `layout.len_padded(batch)` (item `b` at offset
    /// `b · item_len_padded()`, padded batch items all zero).
    pub layers: Vec<Vec<F>>,
    /// The real output values, batch-major (each item in real row-major order).
    pub output: Vec<i128>,
}

/// Plain quantized integer inference: the real output, batch-major.
///
/// `input` holds `batch · circuit.input.item_len()` quantized values, batch-major, each within
/// `[circuit.input_min, circuit.input_max]`.
pub fn infer(
    circuit: &LayeredCircuit,
    batch: usize,
    input: &[i128],
) -> Result<Vec<i128>, WitnessError> {
    let last = run::<Bn254>(circuit, batch, input, |_, _| {})?;
    stage_to_i128(last, circuit.layers.len())
}

/// Every stage of the circuit on `input`, as zero-padded field tables, plus the real output.
///
/// Same engine and input rules as [`infer`]; each stage is converted to field elements once.
pub fn witness<F: ProofField>(
    circuit: &LayeredCircuit,
    batch: usize,
    input: &[i128],
) -> Result<Witness<F>, WitnessError> {
    witness_tables(circuit, batch, input, &|_| true)
}

/// [`witness`], converting to field tables only the stages `keep` selects (stage 0 is the
/// input, stage `i + 1` the output of layer `i`); the others are left empty. Conversion costs
/// about as much as the integer inference itself, and a prover does not read every stage (an
/// aligned sum-pool's input, for one), so it asks only for the tables it needs.
pub fn witness_tables<F: ProofField>(
    circuit: &LayeredCircuit,
    batch: usize,
    input: &[i128],
    keep: &dyn Fn(usize) -> bool,
) -> Result<Witness<F>, WitnessError> {
    let mut layers: Vec<Vec<F>> = Vec::with_capacity(circuit.layers.len() + 1);
    let last = run::<F>(circuit, batch, input, |si, stage| {
        let layout = match si.checked_sub(1) {
            None => &circuit.input,
            Some(li) => &circuit.layers[li].output,
        };
        layers.push(if keep(si) {
            to_table(stage, layout, batch)
        } else {
            Vec::new()
        });
    })?;
    let output = stage_to_i128(last, circuit.layers.len())?;
    Ok(Witness {
        batch,
        layers,
        output,
    })
}

/// The arithmetic each layer of `circuit` runs in, from the declared bounds.
pub fn arithmetic(circuit: &LayeredCircuit) -> Vec<Arith> {
    let mut in_bits = input_bits(circuit);
    circuit
        .layers
        .iter()
        .map(|l| {
            let bits = in_bits.max(l.bound_bits);
            in_bits = l.bound_bits;
            arith_for(bits)
        })
        .collect()
}

fn arith_for(bits: u32) -> Arith {
    if bits <= 62 {
        Arith::I64
    } else if bits <= 126 {
        Arith::I128
    } else {
        Arith::Field
    }
}

fn input_bits(circuit: &LayeredCircuit) -> u32 {
    bits_of(
        circuit
            .input_min
            .unsigned_abs()
            .max(circuit.input_max.unsigned_abs()),
    )
}

/// A stage's values, compact and batch-major, in the arithmetic of the layer that produced it.
#[derive(Clone, Debug)]
enum Stage<F> {
    I64(Vec<i64>),
    I128(Vec<i128>),
    Field(Vec<F>),
}

/// Reads a stage as `i128`s; `stage` names it in errors.
fn as_i128<F: ProofField>(s: &Stage<F>, stage: usize) -> Result<Cow<'_, [i128]>, WitnessError> {
    Ok(match s {
        Stage::I64(v) => Cow::Owned(v.iter().map(|&x| x as i128).collect()),
        Stage::I128(v) => Cow::Borrowed(v),
        Stage::Field(v) => Cow::Owned(
            v.iter()
                .enumerate()
                .map(|(index, &f)| {
                    to_i128(f).map_err(|_| WitnessError::ValueTooWide { stage, index })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    })
}

/// Reads a stage as `i64`s (wrapping, see the module docs).
fn as_i64<F: ProofField>(s: &Stage<F>, stage: usize) -> Result<Cow<'_, [i64]>, WitnessError> {
    Ok(match s {
        Stage::I64(v) => Cow::Borrowed(v),
        Stage::I128(v) => Cow::Owned(v.iter().map(|&x| x as i64).collect()),
        Stage::Field(_) => Cow::Owned(as_i128(s, stage)?.iter().map(|&x| x as i64).collect()),
    })
}

/// Reads a stage as field elements.
fn as_field<F: ProofField>(s: &Stage<F>) -> Cow<'_, [F]> {
    match s {
        Stage::I64(v) => Cow::Owned(v.iter().map(|&x| from_i64(x)).collect()),
        Stage::I128(v) => Cow::Owned(v.iter().map(|&x| embed_i128(x)).collect()),
        Stage::Field(v) => Cow::Borrowed(v),
    }
}

fn stage_to_i128<F: ProofField>(s: Stage<F>, stage: usize) -> Result<Vec<i128>, WitnessError> {
    match s {
        Stage::I128(v) => Ok(v),
        other => Ok(as_i128(&other, stage)?.into_owned()),
    }
}

/// `v mod p`, the same element as [`from_i128_unchecked`], without the 128-bit division
/// arkworks' `From<u128>` performs.
#[inline]
fn embed_i128<F: ProofField>(v: i128) -> F {
    if let Ok(s) = i64::try_from(v) {
        return from_i64(s);
    }
    let mag = v.unsigned_abs();
    let mut big = F::BigInt::from(mag as u64);
    let limbs = big.as_mut();
    if limbs.len() < 2 {
        return from_i128_unchecked(v);
    }
    limbs[1] = (mag >> 64) as u64;
    match F::from_bigint(big) {
        Some(f) if v < 0 => -f,
        Some(f) => f,
        None => from_i128_unchecked(v),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation and the engine
// ---------------------------------------------------------------------------------------------

fn check_input(circuit: &LayeredCircuit, batch: usize, input: &[i128]) -> Result<(), WitnessError> {
    if batch == 0 {
        return Err(WitnessError::EmptyBatch);
    }
    check_layout(&circuit.input, batch, 0, None)?;
    let per_item = circuit.input.item_len();
    let expected = per_item.checked_mul(batch).ok_or(WitnessError::TooLarge {
        stage: 0,
        max_vars: MAX_LAYER_VARS,
    })?;
    if input.len() != expected {
        return Err(WitnessError::InputLength {
            expected,
            got: input.len(),
            batch,
            per_item,
        });
    }
    let (min, max) = (circuit.input_min, circuit.input_max);
    if let Some((index, &value)) = input.iter().enumerate().find(|(_, &v)| v < min || v > max) {
        return Err(WitnessError::InputOutOfRange {
            index,
            value,
            min,
            max,
        });
    }
    Ok(())
}

/// Checks that a layout's padded table of `batch` items stays within `2^MAX_LAYER_VARS`
/// entries (so no size computation can overflow) and has no empty dim.
fn check_layout(
    l: &Layout,
    batch: usize,
    stage: usize,
    layer: Option<(usize, &'static str)>,
) -> Result<(), WitnessError> {
    let too_large = WitnessError::TooLarge {
        stage,
        max_vars: MAX_LAYER_VARS,
    };
    if batch > 1 << MAX_LAYER_VARS {
        return Err(too_large);
    }
    let mut vars = crate::circuit::batch_vars(batch);
    for &d in &l.dims {
        if d == 0 {
            let reason = "layout has an empty dimension".to_string();
            return Err(match layer {
                Some((layer, op)) => WitnessError::Shape { layer, op, reason },
                None => WitnessError::Shape {
                    layer: 0,
                    op: "input",
                    reason,
                },
            });
        }
        if d > 1 << MAX_LAYER_VARS {
            return Err(too_large);
        }
        vars += d.next_power_of_two().trailing_zeros() as usize;
    }
    if vars > MAX_LAYER_VARS {
        return Err(too_large);
    }
    Ok(())
}

/// Checks one layer against its op and the previous stage's layout.
fn check_layer(
    li: usize,
    layer: &CircuitLayer,
    prev: &Layout,
    batch: usize,
) -> Result<(), WitnessError> {
    let op = layer.op.name();
    let bad = |reason: String| WitnessError::Shape {
        layer: li,
        op,
        reason,
    };
    if &layer.input != prev {
        return Err(bad(format!(
            "input layout {:?} differs from the previous stage's {:?}",
            layer.input.dims, prev.dims
        )));
    }
    check_layout(&layer.output, batch, li + 1, Some((li, op)))?;
    // The op's own shape rules are `CircuitLayer::check`, which `run` applies next.
    Ok(())
}

fn three(d: &[usize]) -> Option<[usize; 3]> {
    d.try_into().ok()
}

/// Validates everything, then computes every stage, handing each to `sink(stage index, stage)`
/// once the next stage is computed (stage 0 is the input); returns the last stage.
fn run<F: ProofField>(
    circuit: &LayeredCircuit,
    batch: usize,
    input: &[i128],
    mut sink: impl FnMut(usize, &Stage<F>),
) -> Result<Stage<F>, WitnessError> {
    check_input(circuit, batch, input)?;
    let mut prev = &circuit.input;
    for (li, layer) in circuit.layers.iter().enumerate() {
        check_layer(li, layer, prev, batch)?;
        // The shape rules the prover and verifier apply too, so a witness exists exactly for
        // the circuits they accept.
        layer.check().map_err(|reason| WitnessError::Shape {
            layer: li,
            op: layer.op.name(),
            reason,
        })?;
        prev = &layer.output;
    }
    let plan = arithmetic(circuit);
    let capacity = F::ID.signed_capacity_bits();
    let mut in_bits = input_bits(circuit);
    for (li, layer) in circuit.layers.iter().enumerate() {
        let bits = in_bits.max(layer.bound_bits);
        if bits > capacity {
            return Err(WitnessError::FieldTooSmall {
                layer: li,
                bits,
                capacity,
            });
        }
        in_bits = layer.bound_bits;
    }
    if in_bits > capacity {
        return Err(WitnessError::FieldTooSmall {
            layer: 0,
            bits: in_bits,
            capacity,
        });
    }

    let first = if input_bits(circuit) <= 62 {
        Stage::I64(input.iter().map(|&v| v as i64).collect())
    } else {
        Stage::I128(input.to_vec())
    };
    // Each stage goes to `sink` once the next one no longer needs it, then is dropped, so its
    // memory is reused; an activation in the same arithmetic overwrites its input.
    let mut cur = first;
    for (li, (layer, arith)) in circuit.layers.iter().zip(plan).enumerate() {
        let same = matches!(
            (arith, &cur),
            (Arith::I64, Stage::I64(_))
                | (Arith::I128, Stage::I128(_))
                | (Arith::Field, Stage::Field(_))
        );
        match &layer.op {
            &Op::Activation(ActivationOp { a, b, c }) if same => {
                sink(li, &cur);
                match &mut cur {
                    Stage::I64(v) => activation_in_place(v, a, b, c),
                    Stage::I128(v) => activation_in_place(v, a, b, c),
                    Stage::Field(v) => activation_in_place(v, a, b, c),
                }
            }
            _ => {
                let next = step(li, layer, batch, arith, &cur)?;
                sink(li, &cur);
                cur = next;
            }
        }
    }
    sink(circuit.layers.len(), &cur);
    Ok(cur)
}

/// Layer `li` on the stage `cur`, in the arithmetic `arith`.
fn step<F: ProofField>(
    li: usize,
    layer: &CircuitLayer,
    batch: usize,
    arith: Arith,
    cur: &Stage<F>,
) -> Result<Stage<F>, WitnessError> {
    Ok(match arith {
        Arith::I64 => {
            let x = as_i64(cur, li)?;
            match linear_narrow_i64(layer, batch, &x) {
                Some(y) => Stage::I64(y),
                None => Stage::I64(apply::<i64>(li, layer, batch, &x)?),
            }
        }
        Arith::I128 => {
            let x = as_i128(cur, li)?;
            match linear_by_limbs(layer, batch, &x) {
                Some(y) => Stage::I128(y),
                None => Stage::I128(apply::<i128>(li, layer, batch, &x)?),
            }
        }
        Arith::Field => Stage::Field(apply::<F>(li, layer, batch, &as_field(cur))?),
    })
}

/// One layer on a validated circuit.
fn apply<T: Num>(
    li: usize,
    layer: &CircuitLayer,
    batch: usize,
    x: &[T],
) -> Result<Vec<T>, WitnessError> {
    Ok(match &layer.op {
        Op::Conv2d(Conv2dOp { weight, bias, .. }) => {
            let g = conv_geom(layer).ok_or_else(|| internal(li, layer))?;
            let wt = T::weights(weight);
            let b: Vec<T> = bias.iter().map(|&v| T::cst(v)).collect();
            conv(&g, &wt, &b, x, batch)
        }
        Op::Dense(DenseOp {
            in_features,
            out_features,
            weight,
            bias,
        }) => {
            let wt = T::weights(weight);
            let b: Vec<T> = bias.iter().map(|&v| T::cst(v)).collect();
            dense(&wt, &b, *in_features, *out_features, x, batch)
        }
        Op::SumPool(SumPoolOp { window, stride }) => {
            let d = &layer.input.dims;
            let o = &layer.output.dims;
            sum_pool(
                x,
                batch * d[0],
                [d[1], d[2]],
                [o[1], o[2]],
                *window,
                *stride,
            )
        }
        Op::Activation(ActivationOp { a, b, c }) => {
            activation(x, T::cst(*a), T::cst(*b), T::cst(*c))
        }
        Op::Gates(GatesOp { layer: g }) => {
            gates(li, &g.gates, &layer.input, &layer.output, x, batch)?
        }
    })
}

/// An invariant the validation established does not hold (never expected).
fn internal(li: usize, layer: &CircuitLayer) -> WitnessError {
    WitnessError::Shape {
        layer: li,
        op: layer.op.name(),
        reason: "layouts do not fit the op".into(),
    }
}

/// The geometry of a validated convolution layer.
fn conv_geom(layer: &CircuitLayer) -> Option<ConvGeom> {
    let Op::Conv2d(Conv2dOp {
        in_channels,
        out_channels,
        kernel,
        stride,
        padding,
        ..
    }) = &layer.op
    else {
        return None;
    };
    let [_, h, w] = three(&layer.input.dims)?;
    let [_, ho, wo] = three(&layer.output.dims)?;
    Some(ConvGeom {
        c: *in_channels,
        h,
        w,
        o: *out_channels,
        ho,
        wo,
        kh: kernel[0],
        kw: kernel[1],
        sh: stride[0],
        sw: stride[1],
        ph: padding[0],
        pw: padding[1],
    })
}

/// Facts about the weights of a dense or conv layer that decide whether a narrower kernel is
/// exact on given data.
struct Linear<'a> {
    weight: &'a [i64],
    bias: &'a [i128],
    /// Outputs per item (`out_features`, or `out_channels × positions`).
    item: usize,
    /// Output rows of the weight matrix.
    rows: usize,
    /// Bits of the largest L1 norm of one output's weights.
    norm_bits: u32,
    /// Bits of the largest |weight|.
    w_bits: u32,
}

/// The weight facts of a dense or conv layer, or `None` for other ops and for products with
/// fewer than 4 columns per weight (where the product streams the weights, narrower types
/// hardly pay, and computing the norm, one more pass over the weights, does not).
fn linear_info(layer: &CircuitLayer, batch: usize) -> Option<Linear<'_>> {
    let item = layer.output.item_len();
    let (weight, bias, rows, cols) = match &layer.op {
        Op::Conv2d(Conv2dOp {
            weight,
            bias,
            out_channels,
            ..
        }) => (weight, bias, *out_channels, item / (*out_channels).max(1)),
        Op::Dense(DenseOp {
            weight,
            bias,
            out_features,
            ..
        }) => (weight, bias, *out_features, batch),
        _ => return None,
    };
    if cols < 4 || rows == 0 {
        return None;
    }
    let (norm, or) = max_row_norm(weight, (weight.len() / rows).max(1));
    Some(Linear {
        weight,
        bias,
        item,
        rows,
        norm_bits: bits_of(norm),
        w_bits: bits_of(or as u128),
    })
}

/// The largest L1 norm of a row of `per` weights, and the OR of all magnitudes.
fn max_row_norm(weight: &[i64], per: usize) -> (u128, u64) {
    let row = |r: &[i64]| -> (u128, u64) {
        // A 64-bit sum is exact when the largest |w| times the row length stays below 2^64;
        // the OR of the magnitudes bounds the largest one.
        let (sum, or) = r.iter().fold((0u64, 0u64), |(s, o), &w| {
            let a = w.unsigned_abs();
            (s.wrapping_add(a), o | a)
        });
        if bits_of(or as u128) + bits_of(r.len() as u128) <= 63 {
            (sum as u128, or)
        } else {
            (r.iter().map(|w| w.unsigned_abs() as u128).sum(), or)
        }
    };
    let merge = |a: (u128, u64), b: (u128, u64)| (a.0.max(b.0), a.1 | b.1);
    #[cfg(feature = "parallel")]
    if weight.len() >= PAR_WORK * 8 {
        use rayon::prelude::*;
        return weight.par_chunks(per).map(row).reduce(|| (0, 0), merge);
    }
    weight.chunks(per).map(row).fold((0, 0), merge)
}

/// Whether 16-bit operands with 32-bit accumulators compute `W ⊛ x` exactly for |x| < 2^x_bits:
/// every partial sum is below `‖W‖₁·max|x| < 2^31`.
fn fits_i16(lin: &Linear, x_bits: u32) -> bool {
    lin.w_bits <= 15 && x_bits <= 15 && lin.norm_bits + x_bits <= 31
}

/// `W ⊛ x` without the bias, for |x| < 2^x_bits with `norm_bits + x_bits ≤ 62` (so every value
/// and partial sum fits): on 16-bit operands (SSE2 `pmaddwd`) when [`fits_i16`], else on i64.
fn products(
    layer: &CircuitLayer,
    lin: &Linear,
    batch: usize,
    x: &[i64],
    x_bits: u32,
) -> Option<Vec<i64>> {
    let narrow = fits_i16(lin, x_bits);
    match &layer.op {
        Op::Conv2d(Conv2dOp { .. }) => {
            let g = conv_geom(layer)?;
            let kk = g.c * g.kh * g.kw;
            if narrow {
                let w16: Vec<i16> = lin.weight.iter().map(|&w| w as i16).collect();
                let x16: Vec<i16> = x.iter().map(|&v| v as i16).collect();
                let npos = g.ho * g.wo;
                Some(conv_core(
                    &g,
                    &x16,
                    batch,
                    0i16,
                    |m0, m, p, cnt, out| {
                        gemm16(&w16[m0 * kk..(m0 + m) * kk], p, kk, m, cnt, out, npos, 1)
                    },
                    |_| {},
                ))
            } else {
                Some(conv(&g, lin.weight, &vec![0i64; g.o], x, batch))
            }
        }
        Op::Dense(DenseOp {
            in_features: k,
            out_features: o,
            ..
        }) => {
            let (k, o) = (*k, *o);
            if narrow {
                let w16: Vec<i16> = lin.weight.iter().map(|&w| w as i16).collect();
                let x16: Vec<i16> = x.iter().map(|&v| v as i16).collect();
                let outt = dense_core(k, o, batch, |m0, m, chunk| {
                    gemm16(
                        &w16[m0 * k..(m0 + m) * k],
                        &x16,
                        k,
                        m,
                        batch,
                        chunk,
                        batch,
                        1,
                    )
                });
                Some(dense_finish(outt, o, batch, |v, _| v))
            } else {
                Some(dense(lin.weight, &vec![0i64; o], k, o, x, batch))
            }
        }
        _ => None,
    }
}

/// Adds the bias at every output position (`[b][o]` for dense, `[b][o][pos]` for conv).
fn add_bias<T: Copy + Send>(out: &mut [T], lin: &Linear, f: impl Fn(T, i128) -> T + Sync + Send) {
    let per_o = (lin.item / lin.rows).max(1);
    let par = out.len() >= PAR_WORK;
    for_chunks(out, lin.item, par, |_, chunk| {
        for (i, v) in chunk.iter_mut().enumerate() {
            *v = f(*v, lin.bias[i / per_o]);
        }
    });
}

/// An `i64` dense or conv layer on 16-bit operands, when the weights and the actual data
/// allow it exactly ([`fits_i16`]); `None` otherwise.
fn linear_narrow_i64(layer: &CircuitLayer, batch: usize, x: &[i64]) -> Option<Vec<i64>> {
    let x_bits = bits_of(x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0) as u128);
    if x_bits > 15 {
        return None;
    }
    let lin = linear_info(layer, batch)?;
    if !fits_i16(&lin, x_bits) {
        return None;
    }
    let mut out = products(layer, &lin, batch, x, x_bits)?;
    // Truncating the bias is reduction modulo 2^64, like every i64 layer (the bounds say the
    // true values fit).
    add_bias(&mut out, &lin, |v, b| v.wrapping_add(b as i64));
    Some(out)
}

/// An `i128` dense or conv layer as at most three 64-bit products over limbs of the input, when
/// the weights and the actual data allow it; `None` for other ops or when they do not.
///
/// With `x = Σ_l x_l·2^(l·k)` (`x_l ∈ [0, 2^k)` for the low limbs, the top limb signed), each
/// limb product `S_l = W ⊛ x_l` is bounded by `‖W‖₁·2^k`, with `‖W‖₁` the largest L1 norm of an
/// output's weights (computed from the weights) and `k` from the largest |x| of this input.
/// When that bound is below 2^62, every `S_l` is exact in `i64`, and so is
/// `Σ_l S_l·2^(l·k) + B` in wrapping `i128` (the layer's values fit 126 bits). This rigorous
/// check replaces 128-bit multiply-accumulates (two multiplies each) by one to three 64-bit
/// ones; worst-case bounds are usually far above the actual values.
fn linear_by_limbs(layer: &CircuitLayer, batch: usize, x: &[i128]) -> Option<Vec<i128>> {
    let lin = linear_info(layer, batch)?;
    let xb = bits_of(x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0));
    let (limbs, k) = (1..=3usize)
        .map(|l| (l, xb.div_ceil(l as u32)))
        .find(|&(_, k)| lin.norm_bits + k <= 62)?;
    let mut out: Vec<i128> = Vec::new();
    for l in 0..limbs {
        let shift = l as u32 * k;
        let plane: Vec<i64> = if l + 1 == limbs {
            // The top limb keeps the sign (arithmetic shift).
            x.iter().map(|&v| (v >> shift) as i64).collect()
        } else {
            let mask = (1i128 << k) - 1;
            x.iter().map(|&v| ((v >> shift) & mask) as i64).collect()
        };
        let s = products(layer, &lin, batch, &plane, k)?;
        if l == 0 {
            out = s.into_iter().map(i128::from).collect();
        } else {
            let par = out.len() >= PAR_WORK;
            for_chunks(&mut out, PAR_WORK, par, |ci, chunk| {
                let src = &s[ci * PAR_WORK..][..chunk.len()];
                for (o, &v) in chunk.iter_mut().zip(src) {
                    *o = o.wrapping_add((v as i128).wrapping_shl(shift));
                }
            });
        }
    }
    add_bias(&mut out, &lin, |v, b| v.wrapping_add(b));
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Parallel helpers
// ---------------------------------------------------------------------------------------------

/// Runs `f(chunk index, chunk)` over `out.chunks_mut(chunk)`, on rayon when `par`.
fn for_chunks<T: Send>(
    out: &mut [T],
    chunk: usize,
    par: bool,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunk = chunk.max(1);
    #[cfg(feature = "parallel")]
    if par && out.len() > chunk && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
        return;
    }
    let _ = par;
    out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
}

/// `(0..n).map(f).collect()`, on rayon when `par`.
fn map_collect<T: Send, U: Sync>(
    src: &[U],
    par: bool,
    f: impl Fn(&U) -> T + Sync + Send,
) -> Vec<T> {
    #[cfg(feature = "parallel")]
    if par {
        use rayon::prelude::*;
        return src.par_iter().with_min_len(1 << 12).map(f).collect();
    }
    let _ = par;
    src.iter().map(f).collect()
}

// ---------------------------------------------------------------------------------------------
// The product kernel
// ---------------------------------------------------------------------------------------------

/// Depth of a `k` block: the data block `NC × KC` stays in L2, a weight tile in L1.
const KC: usize = 256;
/// Width of an `n` block.
const NC: usize = 64;

/// `out[mi·rs_m + ni·rs_n] = Σ_kk a[mi·k + kk]·b[ni·k + kk]` for `mi < m`, `ni < n`.
#[allow(clippy::too_many_arguments)]
fn gemm<T: Num>(
    a: &[T::W],
    b: &[T],
    k: usize,
    m: usize,
    n: usize,
    out: &mut [T],
    rs_m: usize,
    rs_n: usize,
) {
    if T::WIDE {
        gemm_tiled::<T, 2, 2>(a, b, k, m, n, out, rs_m, rs_n)
    } else {
        gemm_tiled::<T, 4, 2>(a, b, k, m, n, out, rs_m, rs_n)
    }
}

/// Geometry of one product tile.
#[derive(Clone, Copy)]
struct TileAt {
    k: usize,
    mi: usize,
    ni: usize,
    k0: usize,
    k1: usize,
    rs_m: usize,
    rs_n: usize,
    first: bool,
}

#[allow(clippy::too_many_arguments)]
fn gemm_tiled<T: Num, const MR: usize, const NR: usize>(
    a: &[T::W],
    b: &[T],
    k: usize,
    m: usize,
    n: usize,
    out: &mut [T],
    rs_m: usize,
    rs_n: usize,
) {
    let mut n0 = 0;
    while n0 < n {
        let n1 = (n0 + NC).min(n);
        let mut k0 = 0;
        while k0 < k {
            let k1 = (k0 + KC).min(k);
            let mut mi = 0;
            while mi < m {
                let mr = MR.min(m - mi);
                let mut ni = n0;
                while ni < n1 {
                    let nr = NR.min(n1 - ni);
                    let at = TileAt {
                        k,
                        mi,
                        ni,
                        k0,
                        k1,
                        rs_m,
                        rs_n,
                        first: k0 == 0,
                    };
                    match (mr, nr) {
                        (4, 2) => tile::<T, 4, 2>(a, b, out, at),
                        (4, 1) => tile::<T, 4, 1>(a, b, out, at),
                        (3, 2) => tile::<T, 3, 2>(a, b, out, at),
                        (3, 1) => tile::<T, 3, 1>(a, b, out, at),
                        (2, 2) => tile::<T, 2, 2>(a, b, out, at),
                        (2, 1) => tile::<T, 2, 1>(a, b, out, at),
                        (1, 2) => tile::<T, 1, 2>(a, b, out, at),
                        _ => tile::<T, 1, 1>(a, b, out, at),
                    }
                    ni += nr;
                }
                mi += mr;
            }
            k0 = k1;
        }
        n0 = n1;
    }
}

/// One `R × C` tile over the `k` block `[k0, k1)`, accumulated in registers.
#[inline(always)]
fn tile<T: Num, const R: usize, const C: usize>(a: &[T::W], b: &[T], out: &mut [T], at: TileAt) {
    let len = at.k1 - at.k0;
    let ar: [&[T::W]; R] = std::array::from_fn(|r| &a[(at.mi + r) * at.k + at.k0..][..len]);
    let br: [&[T]; C] = std::array::from_fn(|c| &b[(at.ni + c) * at.k + at.k0..][..len]);
    let mut acc = [[T::zero(); C]; R];
    for kk in 0..len {
        let xs: [T; C] = std::array::from_fn(|c| br[c][kk]);
        for r in 0..R {
            let w = ar[r][kk];
            for c in 0..C {
                acc[r][c] = acc[r][c].mac(w, xs[c]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let o = &mut out[(at.mi + r) * at.rs_m + (at.ni + c) * at.rs_n];
            *o = if at.first { v } else { o.add(v) };
        }
    }
}

/// Width of an `n` block of the 16-bit kernel.
const NC16: usize = 128;

/// [`gemm`] on 16-bit operands with wrapping 32-bit accumulators (exact when every partial sum
/// fits, see [`fits_i16`]). The inner loop is a plain multiply-accumulate over `k` that LLVM
/// turns into SSE2 `pmaddwd`: eight products per instruction.
#[allow(clippy::too_many_arguments)]
fn gemm16(
    a: &[i16],
    b: &[i16],
    k: usize,
    m: usize,
    n: usize,
    out: &mut [i64],
    rs_m: usize,
    rs_n: usize,
) {
    let mut n0 = 0;
    while n0 < n {
        let n1 = (n0 + NC16).min(n);
        let mut mi = 0;
        while mi < m {
            let mr = 2.min(m - mi);
            let mut ni = n0;
            while ni < n1 {
                let nr = 2.min(n1 - ni);
                let at = TileAt {
                    k,
                    mi,
                    ni,
                    k0: 0,
                    k1: k,
                    rs_m,
                    rs_n,
                    first: true,
                };
                match (mr, nr) {
                    (2, 2) => tile16::<2, 2>(a, b, out, at),
                    (2, 1) => tile16::<2, 1>(a, b, out, at),
                    (1, 2) => tile16::<1, 2>(a, b, out, at),
                    _ => tile16::<1, 1>(a, b, out, at),
                }
                ni += nr;
            }
            mi += mr;
        }
        n0 = n1;
    }
}

/// One `R × C` tile of [`gemm16`] over all of `k`.
#[inline(always)]
fn tile16<const R: usize, const C: usize>(a: &[i16], b: &[i16], out: &mut [i64], at: TileAt) {
    let len = at.k1 - at.k0;
    let ar: [&[i16]; R] = std::array::from_fn(|r| &a[(at.mi + r) * at.k + at.k0..][..len]);
    let br: [&[i16]; C] = std::array::from_fn(|c| &b[(at.ni + c) * at.k + at.k0..][..len]);
    let mut acc = [[0i32; C]; R];
    for kk in 0..len {
        for r in 0..R {
            let w = i32::from(ar[r][kk]);
            for c in 0..C {
                acc[r][c] = acc[r][c].wrapping_add(w.wrapping_mul(i32::from(br[c][kk])));
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[(at.mi + r) * at.rs_m + (at.ni + c) * at.rs_n] = i64::from(v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

/// `Y[b][o] = Σ_k W[o][k]·X[b][k] + B[o]`.
fn dense<T: Num>(w: &[T::W], bias: &[T], k: usize, o: usize, x: &[T], batch: usize) -> Vec<T> {
    let outt = dense_core(k, o, batch, |m0, m, chunk| {
        gemm::<T>(&w[m0 * k..(m0 + m) * k], x, k, m, batch, chunk, batch, 1)
    });
    dense_finish(outt, o, batch, |v, oi| v.add(bias[oi]))
}

/// The products of a dense layer, transposed: `outt[o][b]`, computed by `gemm(first row, rows,
/// out rows)` on tasks that each own whole weight rows (so the weights are streamed once).
fn dense_core<O: Copy + Default + Send>(
    k: usize,
    o: usize,
    batch: usize,
    gemm: impl Fn(usize, usize, &mut [O]) + Sync + Send,
) -> Vec<O> {
    let work = o.saturating_mul(k).saturating_mul(batch);
    // Output rows per task: a multiple of the tile height, at least PAR_WORK work, and about
    // 32 tasks for load balance.
    let min_rows = (PAR_WORK / k.saturating_mul(batch).max(1)).max(1);
    let rows = min_rows.max(o.div_ceil(32)).next_multiple_of(4);
    let mut outt = vec![O::default(); o * batch];
    for_chunks(&mut outt, rows * batch, work >= PAR_WORK, |ci, chunk| {
        gemm(ci * rows, chunk.len() / batch, chunk)
    });
    outt
}

/// `out[b][o] = f(outt[o][b], o)`.
fn dense_finish<O: Copy + Sync, Y: Copy + Default + Send>(
    outt: Vec<O>,
    o: usize,
    batch: usize,
    f: impl Fn(O, usize) -> Y + Sync + Send,
) -> Vec<Y> {
    let mut out = vec![Y::default(); batch * o];
    for_chunks(&mut out, o, o * batch >= PAR_WORK, |bi, row| {
        for (oi, v) in row.iter_mut().enumerate() {
            *v = f(outt[oi * batch + bi], oi);
        }
    });
    out
}

/// Shape of a convolution.
struct ConvGeom {
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
}

/// `Y[o,i,j] = Σ_{c,u,v} W[o,c,u,v]·X[c, sh·i+u−ph, sw·j+v−pw] + B[o]` for every item.
fn conv<T: Num>(g: &ConvGeom, w: &[T::W], bias: &[T], x: &[T], batch: usize) -> Vec<T> {
    let kk = g.c * g.kh * g.kw;
    let npos = g.ho * g.wo;
    conv_core(
        g,
        x,
        batch,
        T::zero(),
        |m0, m, patches, cnt, out| {
            gemm::<T>(
                &w[m0 * kk..(m0 + m) * kk],
                patches,
                kk,
                m,
                cnt,
                out,
                npos,
                1,
            )
        },
        |item| {
            for (row, &b) in item.chunks_mut(npos).zip(bias) {
                for v in row {
                    *v = v.add(b);
                }
            }
        },
    )
}

/// The output `[b][o][pos]` of a convolution, written in place. Per item, for each block of
/// output positions: im2col patches `[pos][c·kh·kw]` (`zero` outside the image), then
/// `gemm(first weight row, rows, patches, positions, out)` where `out` starts at the block's
/// first position of the first row (row stride `positions`). Then `finish(item)`.
///
/// Rayon splits items when the batch has several; a single item splits each block's product
/// over groups of output channels (the patches are built once per block).
fn conv_core<X: Copy + Send + Sync, O: Copy + Default + Send + Sync>(
    g: &ConvGeom,
    x: &[X],
    batch: usize,
    zero: X,
    gemm: impl Fn(usize, usize, &[X], usize, &mut [O]) + Sync + Send,
    finish: impl Fn(&mut [O]) + Sync + Send,
) -> Vec<O> {
    let kk = g.c * g.kh * g.kw;
    let npos = g.ho * g.wo;
    let item_in = g.c * g.h * g.w;
    let item_out = g.o * npos;
    let per_item_work = item_out.saturating_mul(kk);
    // Positions per im2col block: about 64 KiB of patches (in L2, and below the allocator's
    // mmap threshold), at least one tile.
    let block = ((1usize << 16) / (kk * std::mem::size_of::<X>()).max(1))
        .clamp(2, npos.max(2))
        .next_multiple_of(2);
    let par_items = batch > 1 && per_item_work.saturating_mul(batch) >= PAR_WORK;
    let par_groups = !par_items && block.min(npos) * kk * g.o >= 2 * PAR_WORK;
    // Output channels per task when one item is split: whole register tiles, about 8 tasks.
    let group = g.o.div_ceil(8).next_multiple_of(4);
    let mut out = vec![O::default(); batch * item_out];
    for_chunks(&mut out, item_out, par_items, |bi, item| {
        let xi = &x[bi * item_in..(bi + 1) * item_in];
        let mut patches = Vec::new();
        let mut p0 = 0;
        while p0 < npos {
            let cnt = block.min(npos - p0);
            im2col(g, xi, p0, cnt, zero, &mut patches);
            if par_groups {
                for_chunks(item, group * npos, true, |gi, rows| {
                    gemm(
                        gi * group,
                        rows.len() / npos,
                        &patches,
                        cnt,
                        &mut rows[p0..],
                    )
                });
            } else {
                gemm(0, g.o, &patches, cnt, &mut item[p0..]);
            }
            p0 += cnt;
        }
        finish(item);
    });
    out
}

/// Fills `p` with the patches of output positions `p0 .. p0 + cnt` of one item, row-major
/// `[pos][c][u][v]`, `zero` where the window leaves the image.
fn im2col<T: Copy>(g: &ConvGeom, x: &[T], p0: usize, cnt: usize, zero: T, p: &mut Vec<T>) {
    let kk = g.c * g.kh * g.kw;
    p.clear();
    p.resize(cnt * kk, zero);
    for (pi, patch) in p.chunks_exact_mut(kk).enumerate() {
        let pos = p0 + pi;
        let (i, j) = (pos / g.wo, pos % g.wo);
        for c in 0..g.c {
            let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for u in 0..g.kh {
                // Row sh·i + u − ph, skipped when outside [0, h).
                let Some(row) = (g.sh * i + u).checked_sub(g.ph).filter(|&r| r < g.h) else {
                    continue;
                };
                let src = &plane[row * g.w..(row + 1) * g.w];
                let dst = &mut patch[(c * g.kh + u) * g.kw..][..g.kw];
                for (v, d) in dst.iter_mut().enumerate() {
                    if let Some(&s) = (g.sw * j + v)
                        .checked_sub(g.pw)
                        .and_then(|col| src.get(col))
                    {
                        *d = s;
                    }
                }
            }
        }
    }
}

/// `Y[c,i,j] = Σ_{u<kh, v<kw} X[c, sh·i+u, sw·j+v]` over `planes` (batch × channel) planes.
fn sum_pool<T: Num>(
    x: &[T],
    planes: usize,
    [h, w]: [usize; 2],
    [ho, wo]: [usize; 2],
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
) -> Vec<T> {
    let mut out = vec![T::zero(); planes * ho * wo];
    let par = planes * ho * wo * kh * kw >= PAR_WORK;
    for_chunks(&mut out, ho * wo, par, |pl, dst| {
        let src = &x[pl * h * w..(pl + 1) * h * w];
        for (i, drow) in dst.chunks_exact_mut(wo).enumerate() {
            for u in 0..kh {
                let srow = &src[(sh * i + u) * w..][..w];
                for v in 0..kw {
                    for (j, d) in drow.iter_mut().enumerate() {
                        *d = d.add(srow[sw * j + v]);
                    }
                }
            }
        }
    });
    out
}

/// `Y = (a·X + b)·X + c` element-wise.
fn activation<T: Num>(x: &[T], a: T, b: T, c: T) -> Vec<T> {
    map_collect(x, x.len() >= PAR_WORK, |&v| a.mul(v).add(b).mul(v).add(c))
}

/// [`activation`] overwriting its input.
fn activation_in_place<T: Num>(x: &mut [T], a: i128, b: i128, c: i128) {
    let (a, b, c) = (T::cst(a), T::cst(b), T::cst(c));
    let par = x.len() >= PAR_WORK;
    for_chunks(x, PAR_WORK, par, |_, chunk| {
        for v in chunk {
            *v = a.mul(*v).add(b).mul(*v).add(c);
        }
    });
}

/// Explicit gates per item, on the padded per-item layouts.
fn gates<T: Num>(
    li: usize,
    gates: &[Gate],
    input: &Layout,
    output: &Layout,
    x: &[T],
    batch: usize,
) -> Result<Vec<T>, WitnessError> {
    let (in_len, out_len) = (input.item_len(), output.item_len());
    let in_offs = input.padded_offsets();
    let out_offs = output.padded_offsets();
    let mut real = vec![false; output.item_len_padded()];
    for &o in &out_offs {
        real[o] = true;
    }
    let in_pad = input.item_len_padded();
    let per_item = |bi: usize, dst: &mut [T]| -> Result<(), WitnessError> {
        let mut wires = vec![T::zero(); in_pad];
        for (&off, &v) in in_offs.iter().zip(&x[bi * in_len..(bi + 1) * in_len]) {
            wires[off] = v;
        }
        let v = |w: u32| wires[w as usize];
        let vals: Vec<T> = gates
            .iter()
            .map(|gate| match *gate {
                Gate::Add(a, b) => v(a).add(v(b)),
                Gate::Sub(a, b) => v(a).sub(v(b)),
                Gate::Mul(a, b) => v(a).mul(v(b)),
                Gate::Scale(a, c) => v(a).mul(T::cst(c)),
                Gate::AddConst(a, c) => v(a).add(T::cst(c)),
                Gate::Relay(a) => v(a),
                Gate::Const(c) => T::cst(c),
            })
            .collect();
        if let Some(gate) = (0..vals.len()).find(|&gi| !real[gi] && !vals[gi].is_zero()) {
            return Err(WitnessError::NonZeroPadding {
                layer: li,
                item: bi,
                gate,
            });
        }
        for (d, &off) in dst.iter_mut().zip(&out_offs) {
            *d = vals.get(off).copied().unwrap_or(T::zero());
        }
        Ok(())
    };
    let mut out = vec![T::zero(); batch * out_len];
    let par = batch > 1 && batch * gates.len() >= PAR_WORK;
    let items: Vec<usize> = (0..batch).collect();
    #[cfg(feature = "parallel")]
    if par {
        use rayon::prelude::*;
        return out
            .par_chunks_mut(out_len.max(1))
            .zip(items.par_iter())
            .try_for_each(|(dst, &bi)| per_item(bi, dst))
            .map(|()| out);
    }
    let _ = par;
    for (dst, &bi) in out.chunks_mut(out_len.max(1)).zip(&items) {
        per_item(bi, dst)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Field tables
// ---------------------------------------------------------------------------------------------

/// The zero-padded field table of a compact stage.
fn to_table<F: ProofField>(s: &Stage<F>, layout: &Layout, batch: usize) -> Vec<F> {
    match s {
        Stage::I64(v) => scatter(v, layout, batch, |&x| from_i64(x)),
        Stage::I128(v) => scatter(v, layout, batch, |&x| embed_i128(x)),
        Stage::Field(v) => scatter(v, layout, batch, |&x| x),
    }
}

/// Scatters compact real values into the padded layout, converting each once. The table is
/// built by one indexed (parallel) map that writes every entry exactly once, zero or value: no
/// zero-fill pass before the scatter.
fn scatter<T: Sync, F: ProofField>(
    v: &[T],
    layout: &Layout,
    batch: usize,
    conv: impl Fn(&T) -> F + Sync + Send,
) -> Vec<F> {
    let len = layout.len_padded(batch);
    let ilp = layout.item_len_padded();
    let padded = layout.padded_dims();
    let (rw, pw) = match (layout.dims.last(), padded.last()) {
        (Some(&r), Some(&p)) => (r, p),
        _ => (1, 1),
    };
    // Real row start (per item) of every padded row of an item, if the row is real.
    let outer = &layout.dims[..layout.dims.len().saturating_sub(1)];
    let outer_p = &padded[..padded.len().saturating_sub(1)];
    let rows_p = ilp / pw;
    let row_map: Vec<Option<usize>> = (0..rows_p)
        .map(|r| {
            let mut rest = r;
            let mut real = 0;
            let mut stride = 1;
            for (&d, &p) in outer.iter().zip(outer_p).rev() {
                let i = rest % p;
                rest /= p;
                if i >= d {
                    return None;
                }
                real += i * stride;
                stride *= d;
            }
            Some(real * rw)
        })
        .collect();
    let item_len = layout.item_len();
    // Padded sizes are powers of two: index bits are (item, row, column).
    let (col_bits, row_bits) = (pw.trailing_zeros(), rows_p.trailing_zeros());
    let entry = |t: usize| -> F {
        let col = t & (pw - 1);
        let grow = t >> col_bits;
        let (bi, r) = (grow >> row_bits, grow & (rows_p - 1));
        match row_map[r] {
            Some(start) if bi < batch && col < rw => conv(&v[bi * item_len + start + col]),
            _ => F::zero(),
        }
    };
    #[cfg(feature = "parallel")]
    if len >= PAR_WORK / 4 && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        return (0..len)
            .into_par_iter()
            .with_min_len(PAR_WORK / 4)
            .map(entry)
            .collect();
    }
    (0..len).map(entry).collect()
}
