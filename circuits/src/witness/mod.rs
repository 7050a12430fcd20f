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
//! **Files.** This module holds the engine (validation, the per-layer choice of arithmetic,
//! stages, field tables); the number types are `verinfer_poly::ring`; the product kernel is
//! `gemm`, the narrower-product checks `narrow`, and each layer kind's kernel ([`KernelRule`])
//! and bound rule ([`crate::bounds::BoundRule`]) sit in a file named for it (`dense`, `conv`,
//! `sum_pool`, `activation`, `gates`), reached through the one dispatch `Op::kind`.
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

use crate::bounds::{elementwise, BoundRule, Domain};
use crate::circuit::{bits_of, CircuitLayer, LayeredCircuit, Layout};
use crate::circuit::{ActivationOp, Conv2dOp, DenseOp, GatesOp, SumPoolOp};
use crate::field::{from_i128_unchecked, from_i64, to_i128, Bn254, ProofField};
use crate::gates::{Gate, MAX_LAYER_VARS};
use std::borrow::Cow;
use thiserror::Error;
use verinfer_poly::ring::Num;

mod activation;
mod add;
mod branch;
mod conv;
mod dense;
mod fork;
mod gates;
mod gemm;
mod mul;
mod narrow;
mod parallel;
mod polynomial;
mod requant;
mod sum_pool;

use gemm::*;
use narrow::*;
use parallel::*;

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
    infer_each(circuit, batch, input, &|_| false, &mut |_, _| {})
}

/// [`infer`], also handing every stage `keep` selects to `seen` as integers, without keeping
/// it (e.g. the inputs of the checkpoints, to count the values they clamp): stage `s` (0 is
/// the input, `i + 1` the output of layer `i`, so stage `i` is the input of layer `i`),
/// compact and batch-major, in one or more consecutive pieces (a stage in machine integers
/// narrower than `i128` is converted a piece at a time).
pub fn infer_each(
    circuit: &LayeredCircuit,
    batch: usize,
    input: &[i128],
    keep: &dyn Fn(usize) -> bool,
    seen: &mut dyn FnMut(usize, &[i128]),
) -> Result<Vec<i128>, WitnessError> {
    const PIECE: usize = 1 << 16;
    let mut failed = None;
    let last = run::<Bn254>(circuit, batch, input, |si, stage| {
        if !keep(si) || failed.is_some() {
            return;
        }
        match stage {
            Stage::I128(v) => seen(si, v),
            Stage::I64(v) => {
                for piece in v.chunks(PIECE) {
                    let wide: Vec<i128> = piece.iter().map(|&x| i128::from(x)).collect();
                    seen(si, &wide);
                }
            }
            Stage::Field(v) => {
                for (k, piece) in v.chunks(PIECE).enumerate() {
                    let wide: Result<Vec<i128>, usize> = piece
                        .iter()
                        .enumerate()
                        .map(|(j, &f)| to_i128(f).map_err(|_| k * PIECE + j))
                        .collect();
                    match wide {
                        Ok(wide) => seen(si, &wide),
                        Err(index) => {
                            failed = Some(WitnessError::ValueTooWide { stage: si, index });
                            return;
                        }
                    }
                }
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
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

/// The arithmetic each layer of `circuit` runs in, from the declared bounds of its output and
/// of every tensor it reads.
pub fn arithmetic(circuit: &LayeredCircuit) -> Vec<Arith> {
    layer_bits(circuit).into_iter().map(arith_for).collect()
}

/// Per layer, the declared bits of its output and of every tensor it reads, whichever is more.
fn layer_bits(circuit: &LayeredCircuit) -> Vec<u32> {
    let input_bits = circuit.input_bits();
    let tensor_bits = |t: usize| match t {
        0 => input_bits,
        _ => circuit.layers.get(t - 1).map_or(0, |l| l.bound_bits),
    };
    circuit
        .layers
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let read = l.op.reads(k).into_iter().map(tensor_bits).max();
            read.unwrap_or(0).max(l.bound_bits)
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

/// A stage's values, compact and batch-major, in the arithmetic of the layer that produced it.
#[derive(Clone, Debug)]
pub(crate) enum Stage<F> {
    /// Machine integers modulo 2^64.
    I64(Vec<i64>),
    /// Machine integers modulo 2^128.
    I128(Vec<i128>),
    /// Proof-field elements.
    Field(Vec<F>),
}

/// A layer kind's integer kernel, generic over the number type (`i64`, `i128` or the proof
/// field): exact whenever the true values fit the type (see the module docs).
pub(crate) trait KernelRule {
    /// Whether the kind is element-wise and may overwrite its input ([`Self::run_in_place`]).
    const ELEMENTWISE: bool = false;

    /// The layer (this op) on `batch` items of compact input `x`.
    fn run<T: Num>(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError>;

    /// The layer overwriting its input; only called when [`Self::ELEMENTWISE`].
    fn run_in_place<T: Num>(&self, _x: &mut [T]) {}

    /// The weight facts that let a linear kind pick a narrower exact product (`narrow`), or
    /// `None` (other kinds, or too few columns per weight for it to pay).
    fn linear<'a>(&'a self, _layer: &CircuitLayer, _batch: usize) -> Option<Linear<'a>> {
        None
    }

    /// `W ⊛ x` without the bias on `i64` operands whose largest magnitude has `x_bits` bits,
    /// with `‖W‖₁·2^x_bits < 2^62` (on 16-bit operands when `narrow::fits_i16`); `None` for
    /// kinds without weights.
    fn products(
        &self,
        _layer: &CircuitLayer,
        _lin: &Linear,
        _batch: usize,
        _x: &[i64],
        _x_bits: u32,
    ) -> Option<Vec<i64>> {
        None
    }
}

/// A kind that passes its (one) input on unchanged: its kernel and bound rule are the identity.
pub(crate) trait PassThrough {}

impl<K: PassThrough> KernelRule for K {
    const ELEMENTWISE: bool = true;

    fn run<T: Num>(
        &self,
        _li: usize,
        _layer: &CircuitLayer,
        _batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        Ok(x.to_vec())
    }
}

impl<K: PassThrough> BoundRule for K {
    fn bound<D: Domain>(
        &self,
        _layer: &CircuitLayer,
        x: &[D::Val],
        _inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        Some(x.to_vec())
    }
}

/// [`KernelRule`] on each number type, callable on the dispatched kind.
pub(crate) trait Kernel<F> {
    /// The kernel on `i64`.
    fn run_i64(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[i64],
    ) -> Result<Vec<i64>, WitnessError>;
    /// The kernel on `i128`.
    fn run_i128(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[i128],
    ) -> Result<Vec<i128>, WitnessError>;
    /// The kernel on the field.
    fn run_field(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[F],
    ) -> Result<Vec<F>, WitnessError>;
    /// [`KernelRule::ELEMENTWISE`].
    fn elementwise(&self) -> bool;
    /// [`KernelRule::run_in_place`] on a stage of any arithmetic.
    fn in_place(&self, stage: &mut Stage<F>);
    /// [`KernelRule::linear`].
    fn weight_facts<'a>(&'a self, layer: &CircuitLayer, batch: usize) -> Option<Linear<'a>>;
    /// [`KernelRule::products`].
    fn weight_products(
        &self,
        layer: &CircuitLayer,
        lin: &Linear,
        batch: usize,
        x: &[i64],
        x_bits: u32,
    ) -> Option<Vec<i64>>;
}

impl<F: ProofField, K: KernelRule> Kernel<F> for K {
    fn run_i64(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[i64],
    ) -> Result<Vec<i64>, WitnessError> {
        self.run(li, layer, batch, x)
    }

    fn run_i128(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[i128],
    ) -> Result<Vec<i128>, WitnessError> {
        self.run(li, layer, batch, x)
    }

    fn run_field(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[F],
    ) -> Result<Vec<F>, WitnessError> {
        self.run(li, layer, batch, x)
    }

    fn elementwise(&self) -> bool {
        K::ELEMENTWISE
    }

    fn in_place(&self, stage: &mut Stage<F>) {
        match stage {
            Stage::I64(v) => self.run_in_place(v),
            Stage::I128(v) => self.run_in_place(v),
            Stage::Field(v) => self.run_in_place(v),
        }
    }

    fn weight_facts<'a>(&'a self, layer: &CircuitLayer, batch: usize) -> Option<Linear<'a>> {
        self.linear(layer, batch)
    }

    fn weight_products(
        &self,
        layer: &CircuitLayer,
        lin: &Linear,
        batch: usize,
        x: &[i64],
        x_bits: u32,
    ) -> Option<Vec<i64>> {
        self.products(layer, lin, batch, x, x_bits)
    }
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

/// Checks that one layer's output fits the protocol's sizes (the layouts it reads are checked
/// by `LayeredCircuit::check`).
fn check_layer(li: usize, layer: &CircuitLayer, batch: usize) -> Result<(), WitnessError> {
    let op = layer.op.name();
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
    for (li, layer) in circuit.layers.iter().enumerate() {
        for t in layer.op.reads(li) {
            if t > li || circuit.tensor(t) != Some(&layer.input) {
                return Err(WitnessError::Shape {
                    layer: li,
                    op: layer.op.name(),
                    reason: format!(
                        "input layout {:?} differs from the layout of stage {t} it reads",
                        layer.input.dims
                    ),
                });
            }
        }
        check_layer(li, layer, batch)?;
        // The shape rules the prover and verifier apply too, so a witness exists exactly for
        // the circuits they accept.
        layer.check().map_err(|reason| WitnessError::Shape {
            layer: li,
            op: layer.op.name(),
            reason,
        })?;
    }
    // Who reads what (each stage read, only forks read by several layers).
    circuit
        .check_readers()
        .map_err(|reason| WitnessError::Shape {
            layer: 0,
            op: "circuit",
            reason,
        })?;
    let bits = layer_bits(circuit);
    let capacity = F::ID.signed_capacity_bits();
    if let Some((li, &b)) = bits.iter().enumerate().find(|(_, &b)| b > capacity) {
        return Err(WitnessError::FieldTooSmall {
            layer: li,
            bits: b,
            capacity,
        });
    }
    let plan: Vec<Arith> = bits.into_iter().map(arith_for).collect();

    let first = if circuit.input_bits() <= 62 {
        Stage::I64(input.iter().map(|&v| v as i64).collect())
    } else {
        Stage::I128(input.to_vec())
    };
    // Each stage goes to `sink` when the layer after it runs, and is dropped after the last
    // layer that reads it, so its memory is reused; an element-wise layer that is the only
    // reader of its input, in the same arithmetic, overwrites it.
    let last_reads = circuit.last_reads();
    let mut stages: Vec<Option<Stage<F>>> = Vec::with_capacity(circuit.layers.len() + 1);
    stages.push(Some(first));
    for (li, (layer, arith)) in circuit.layers.iter().zip(plan).enumerate() {
        let reads = layer.op.reads(li);
        let kind = layer.op.kind::<F>();
        let own = reads == [li] && last_reads.get(li) == Some(&li);
        let cur = stages[li].as_ref().ok_or_else(|| internal(li, layer))?;
        sink(li, cur);
        let same = matches!(
            (arith, cur),
            (Arith::I64, Stage::I64(_))
                | (Arith::I128, Stage::I128(_))
                | (Arith::Field, Stage::Field(_))
        );
        let next = if own && same && kind.elementwise() {
            let mut stage = stages[li].take().ok_or_else(|| internal(li, layer))?;
            kind.in_place(&mut stage);
            stage
        } else {
            let operands: Vec<&Stage<F>> = reads
                .iter()
                .map(|&t| stages.get(t).and_then(Option::as_ref))
                .collect::<Option<_>>()
                .ok_or_else(|| internal(li, layer))?;
            let next = match operands.as_slice() {
                [x] => step(li, layer, batch, arith, x)?,
                many => step(li, layer, batch, arith, &concat(many, arith, li)?)?,
            };
            for &t in &reads {
                if last_reads.get(t).is_some_and(|&l| l <= li) {
                    stages[t] = None;
                }
            }
            next
        };
        stages.push(Some(next));
    }
    let last = stages.pop().flatten().ok_or(WitnessError::EmptyBatch)?;
    sink(circuit.layers.len(), &last);
    Ok(last)
}

/// Several operands as one stage in `arith`, one after another (how a kind that reads two
/// tensors gets its input).
fn concat<F: ProofField>(
    stages: &[&Stage<F>],
    arith: Arith,
    li: usize,
) -> Result<Stage<F>, WitnessError> {
    Ok(match arith {
        Arith::I64 => {
            let mut v = Vec::new();
            for s in stages {
                v.extend_from_slice(&as_i64(s, li)?);
            }
            Stage::I64(v)
        }
        Arith::I128 => {
            let mut v = Vec::new();
            for s in stages {
                v.extend_from_slice(&as_i128(s, li)?);
            }
            Stage::I128(v)
        }
        Arith::Field => Stage::Field(
            stages
                .iter()
                .flat_map(|s| as_field(s).into_owned())
                .collect(),
        ),
    })
}

/// Layer `li` on the stage `cur`, in the arithmetic `arith`.
fn step<F: ProofField>(
    li: usize,
    layer: &CircuitLayer,
    batch: usize,
    arith: Arith,
    cur: &Stage<F>,
) -> Result<Stage<F>, WitnessError> {
    let kind = layer.op.kind::<F>();
    Ok(match arith {
        Arith::I64 => {
            let x = as_i64(cur, li)?;
            match linear_narrow_i64(layer, batch, &x) {
                Some(y) => Stage::I64(y),
                None => Stage::I64(kind.run_i64(li, layer, batch, &x)?),
            }
        }
        Arith::I128 => {
            let x = as_i128(cur, li)?;
            match linear_by_limbs(layer, batch, &x) {
                Some(y) => Stage::I128(y),
                None => Stage::I128(kind.run_i128(li, layer, batch, &x)?),
            }
        }
        Arith::Field => Stage::Field(kind.run_field(li, layer, batch, &as_field(cur))?),
    })
}

/// An invariant the validation established does not hold (never expected).
/// The two operands of a kind that reads two tensors, handed over concatenated (values or
/// bounds alike); `None` for an odd length.
fn halves<T>(x: &[T]) -> Option<(&[T], &[T])> {
    (x.len() % 2 == 0).then(|| x.split_at(x.len() / 2))
}

/// [`halves`] for a kernel: a malformed input is the layer's error.
fn operands<'a, T>(
    li: usize,
    layer: &CircuitLayer,
    x: &'a [T],
) -> Result<(&'a [T], &'a [T]), WitnessError> {
    halves(x).ok_or_else(|| internal(li, layer))
}

fn internal(li: usize, layer: &CircuitLayer) -> WitnessError {
    WitnessError::Shape {
        layer: li,
        op: layer.op.name(),
        reason: "layouts do not fit the op".into(),
    }
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
