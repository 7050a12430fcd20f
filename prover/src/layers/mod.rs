//! Provers of the structured layer reductions, one file per layer kind (activation, sum_pool,
//! dense, conv, gates), each the prover half of the same file in `verinfer_verifier::layers`:
//! the claim targets, point splits, window tables and proof shapes come from there, so the two
//! halves cannot drift apart; the transcript order is documented there.
//!
//! Every prover builds its sumcheck tables from the layer's input table (the padded field
//! witness) and the integer weights, in time linear in the input, the weights and, for a
//! convolution, `C·H·W·k` for the kernel table (the inference cost divided by the output
//! channels and the kernel width).

mod activation;
mod add;
mod branch;
mod conv;
mod dense;
mod fork;
mod gates;
mod mul;
mod polynomial;
mod requant;
mod sum_pool;

use crate::sumcheck::SumcheckOutput;
use crate::ProveError;
use ark_ff::Field;
use rayon::prelude::*;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, Op};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle::PAR_THRESHOLD;
use verinfer_verifier::layers::Claim;
use verinfer_verifier::proof::{LayerKind, LayerProof, SumcheckProof};
use verinfer_verifier::transcript::label;
use verinfer_verifier::{Transcript, VerifyError};

/// Proves one layer: reduces `claim` on the layer's output to a claim on its input, whose
/// padded field table is `input` (folded in place when owned, copied when borrowed).
pub fn prove_layer<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    input: Cow<'_, [F]>,
    claim: &Claim<F>,
    transcript: &mut Transcript,
) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
    prover::<F>(&layer.op).prove(layer, batch, input, None, claim, transcript)
}

/// A deliberately dishonest [`prove_layer`], for soundness tests only: the layer's inner
/// sumchecks (a convolution's kernel sumcheck, a gate layer's phases) are computed from `inner`
/// while its last reduction, the one that hands the claim down, runs on `input`. A prover that
/// fabricates its input this way passes every check but the layer's last one
/// (docs/soundness.md), which is how the tests show that check is there. Layers with a single
/// sumcheck ignore `inner`.
#[doc(hidden)]
pub fn prove_layer_with_inner<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    input: Cow<'_, [F]>,
    inner: &[F],
    claim: &Claim<F>,
    transcript: &mut Transcript,
) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
    prover::<F>(&layer.op).prove(layer, batch, input, Some(inner), claim, transcript)
}

/// One structured layer reduction as the prover runs it, implemented by each op struct in its
/// kind's file next to nothing but the prover's own work: everything both halves agree on comes
/// from `verinfer_verifier::layers::<kind>`.
pub trait LayerProver<F: ProofField> {
    /// Reduces `claim` on the layer's output to a claim on its input, whose padded field table
    /// is `input`, writing the messages to `transcript`. `inner`, for the soundness tests only,
    /// replaces the input in the layer's inner sumchecks ([`prove_layer_with_inner`]).
    /// By default a refusal: a kind that reads two tensors implements [`Self::reduce`] instead.
    fn prove(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        _input: Cow<'_, [F]>,
        _inner: Option<&[F]>,
        _claim: &Claim<F>,
        _transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        Err(ProveError::Layer(
            "this layer hands down a claim on each of its two operands".into(),
        ))
    }

    /// Binds the tensor the layer opens (a checkpoint's input, from its padded table `input`)
    /// into the transcript, as the verifier's [`CheckpointOpening::absorb`] does from the
    /// opened integers, before the first challenge. Nothing for layers that open nothing.
    ///
    /// [`CheckpointOpening::absorb`]: verinfer_verifier::opening::CheckpointOpening::absorb
    fn absorb_opening(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        _input: &[F],
        _transcript: &mut Transcript,
    ) {
    }

    /// The tensor the layer opens (a checkpoint's input, from its padded table `input`), which
    /// the transcript binds before the first challenge; `None` for layers that open nothing.
    fn open(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        _input: &[F],
    ) -> Result<Option<Vec<i128>>, ProveError> {
        Ok(None)
    }

    /// Reduces the claims on the layer's output (one, or one per reader at a fork) to one claim
    /// per tensor it reads (`Op::reads` order), given every stage's table (`tables[t]`, stage 0
    /// the input); a table the layer folds is taken, leaving it empty. By default:
    /// [`Self::prove`] on the one claim, folding the table of stage `index`.
    fn reduce(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        index: usize,
        tables: &mut [Cow<'_, [F]>],
        claims: &[Claim<F>],
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Vec<Claim<F>>), ProveError> {
        let claim = single(claims)?;
        let input = take_table(tables, index)?;
        let (lp, down) = self.prove(layer, batch, input, None, claim, transcript)?;
        Ok((lp, vec![down]))
    }
}

/// Takes the table of stage `index` (leaving it empty) for a layer that folds it.
fn take_table<'a, F>(tables: &mut [Cow<'a, [F]>], index: usize) -> Result<Cow<'a, [F]>, ProveError>
where
    [F]: ToOwned<Owned = Vec<F>>,
{
    tables
        .get_mut(index)
        .map(std::mem::take)
        .ok_or_else(|| ProveError::Layer(format!("no table for tensor {index}")))
}

/// The one claim a layer that is not a fork receives.
fn single<F>(claims: &[Claim<F>]) -> Result<&Claim<F>, ProveError> {
    match claims {
        [c] => Ok(c),
        _ => Err(ProveError::Layer(format!(
            "{} claims on a layer's output, expected one",
            claims.len()
        ))),
    }
}

/// The prover of an op: the one dispatch over the op kinds in this crate.
pub fn prover<F: ProofField>(op: &Op) -> &dyn LayerProver<F> {
    match op {
        Op::Activation(op) => op,
        Op::SumPool(op) => op,
        Op::Dense(op) => op,
        Op::Conv2d(op) => op,
        Op::Gates(op) => op,
        Op::Requant(op) => op,
        Op::Add(op) => op,
        Op::Branch(op) => op,
        Op::Fork(op) => op,
        Op::Polynomial(op) => op,
        Op::Mul(op) => op,
    }
}

/// Ends a layer on its last sumcheck, whose second table is the layer's input: absorbs the
/// input's evaluation there (the claim handed down, its point extended by `rest`) and assembles
/// the layer proof after the earlier `sumchecks` and `evals`.
fn hand_down<F: ProofField>(
    kind: LayerKind,
    (mut sumchecks, mut evals): (Vec<SumcheckProof<F>>, Vec<F>),
    out: SumcheckOutput<F>,
    rest: &[F],
    transcript: &mut Transcript,
) -> (LayerProof<F>, Claim<F>) {
    let chi = out.finals[1];
    transcript.append_scalar(label::LAYER_EVAL, &chi);
    sumchecks.push(out.proof);
    evals.push(chi);
    let mut point = out.point;
    point.extend_from_slice(rest);
    (
        LayerProof {
            kind,
            sumchecks,
            evals,
            opened: vec![],
        },
        Claim { point, value: chi },
    )
}

/// A setup step shared with the verifier failed: the circuit is malformed.
pub(crate) fn from_verify(e: VerifyError) -> ProveError {
    match e {
        VerifyError::Circuit(c) => ProveError::Circuit(c),
        other => ProveError::Layer(other.to_string()),
    }
}

/// The Kronecker product of tables, first factor outermost (highest bits).
pub fn kron<F: Field>(factors: &[Vec<F>]) -> Vec<F> {
    let mut acc = vec![F::one()];
    for f in factors {
        let mut next = vec![F::zero(); acc.len() * f.len()];
        let fl = f.len();
        if next.len() >= PAR_THRESHOLD {
            next.par_chunks_mut(fl)
                .zip(acc.par_iter())
                .for_each(|(chunk, a)| {
                    for (d, x) in chunk.iter_mut().zip(f) {
                        *d = *a * x;
                    }
                });
        } else {
            for (chunk, a) in next.chunks_mut(fl).zip(&acc) {
                for (d, x) in chunk.iter_mut().zip(f) {
                    *d = *a * x;
                }
            }
        }
        acc = next;
    }
    acc
}

/// `Σ_b eq_b[b]·X[b·per + k]` for every per-item position `k`.
pub fn batch_fold<F: Field>(x: &[F], eq_b: &[F], per: usize) -> Vec<F> {
    let fold = |k0: usize, k1: usize| -> Vec<F> {
        let mut acc = vec![F::zero(); k1 - k0];
        for (item, e) in x.chunks(per).zip(eq_b) {
            for (a, v) in acc.iter_mut().zip(&item[k0..k1]) {
                *a += *e * v;
            }
        }
        acc
    };
    if x.len() >= PAR_THRESHOLD {
        let chunk = 1024.min(per);
        let ranges: Vec<(usize, usize)> = (0..per)
            .step_by(chunk)
            .map(|s| (s, (s + chunk).min(per)))
            .collect();
        ranges
            .into_par_iter()
            .flat_map_iter(|(a, b)| fold(a, b))
            .collect()
    } else {
        fold(0, per)
    }
}
