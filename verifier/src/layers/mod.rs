//! Verification of the structured layer reductions, one file per layer kind: [`activation`],
//! [`sum_pool`], [`dense`], [`conv`], [`gates`] (docs/protocol.md, "Layer reductions").
//!
//! Each kind's file holds what prover and verifier agree on (the claim a layer's first sumcheck
//! starts from, how points split, the window tables, the proof's [`Shape`]) and the verifier
//! half, as an implementation of [`LayerRule`] on the kind's op struct; the prover half in
//! `verinfer_prover::layers::<kind>` calls the same functions instead of restating them.
//! [`rule`] is the one dispatch over the op.
//!
//! Each rule takes a claim `Ỹ(r) = y` on a layer's output MLE and the layer's proof, and returns
//! a claim `X̃(p) = χ` on its input MLE. None touches a value per multiply-accumulate: the
//! verifier's work per layer is its weights, its bias, O(k·n) for the window predicates of a
//! convolution or pooling, and O(number of variables) otherwise.
//!
//! | kind | reduction | sumchecks (degree) | evals |
//! |---|---|---|---|
//! | activation `Y = aX² + bX + c` | `y − c·Ĩ(r) = Σ_x eq(r,x)(aX² + bX)` | 1 (3) | `X̃(p)` |
//! | sum-pool | `y = Σ_x G(x)X(x)`, `G = eq_b ⊗ eq_c ⊗ S_row ⊗ S_col` (none when aligned) | 1 (2) | `X̃(p)` |
//! | dense | `y − B̃(r_o)Ĩ(r_b) = Σ_k W̃(r_o,k)·X̃(k, r_b)` | 1 (2) | `X̃(t, r_b)` |
//! | conv2d | (1) `y − B̃Ĩ = Σ_{c,u,v} W̃(r_o,c,u,v)·T(c,u,v)`; (2) `T̃(t) = Σ_x G(x)X(x)` | 2 (2, 2) | `T̃(t)`, `X̃(p)` |
//! | gates | two-phase GKR layer, then one merge sumcheck to a single point | 1–3 (2) | 1–3 |
//!
//! `S_row(row) = Σ_{u,i: s·i+u−p=row} κ(u)·eq(r_i,i)` is the window table of
//! `verinfer_circuits::predicates`, with `κ(u) = eq(t_u,u)` for a convolution and 1 for pooling.

pub mod activation;
pub mod add;
pub mod branch;
pub mod conv;
pub mod dense;
pub mod fork;
pub mod gates;
pub mod mul;
pub mod polynomial;
pub mod requant;
pub mod sum_pool;

pub use conv::conv_kernel_vars;
pub use sum_pool::aligned_pool_point;

use crate::proof::{LayerKind, LayerProof};
use crate::transcript::{label, Transcript};
use crate::VerifyError;
use ark_ff::Field;
use verinfer_circuits::circuit::{CircuitLayer, Layout, Op};
use verinfer_circuits::field::{from_i128, from_i64, ProofField};
use verinfer_circuits::mle;
use verinfer_circuits::predicates::{mle_at, window_table, Axis};

/// A claim `Ṽ(point) = value` on one stage's MLE (point in index-bit order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim<F> {
    /// The point.
    pub point: Vec<F>,
    /// The claimed value.
    pub value: F,
}

/// What a layer's proof must look like, derived from the circuit and the batch alone: the
/// verifier refuses any other before it reads a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The kind byte.
    pub kind: LayerKind,
    /// Per sumcheck, in protocol order: (variables, round degree).
    pub sumchecks: Vec<(usize, usize)>,
    /// Claimed evaluations.
    pub evals: usize,
    /// Final checks the verifier makes (each may fail with probability 1/|F| on a false claim).
    pub final_checks: u64,
}

impl Shape {
    /// The layer's term in the soundness error, in units of 1/|F|: Σ over sumchecks of
    /// variables × degree, plus one per final check.
    pub fn degree_sum(&self) -> u64 {
        self.sumchecks
            .iter()
            .map(|(v, d)| (v * d) as u64)
            .sum::<u64>()
            + self.final_checks
    }

    /// Checks a proof's kind and counts (the sumcheck verifier checks rounds and degrees).
    fn check<F>(&self, proof: &LayerProof<F>, layer: usize) -> Result<(), VerifyError> {
        // Only a checkpoint opens a tensor (its length is checked where it is read).
        if proof.kind != self.kind
            || proof.sumchecks.len() != self.sumchecks.len()
            || proof.evals.len() != self.evals
            || (self.kind != LayerKind::Checkpoint && !proof.opened.is_empty())
        {
            return Err(VerifyError::ProofShape(format!(
                "layer {layer}: expected a {:?} proof with {} sumchecks and {} evaluations",
                self.kind,
                self.sumchecks.len(),
                self.evals
            )));
        }
        Ok(())
    }
}

/// One structured layer reduction as the verifier runs it. Implemented by each op struct in
/// its kind's file.
pub trait LayerRule<F: ProofField> {
    /// Whether the layer only relabels variables (an aligned sum-pool): its proof is empty, the
    /// claim on its input follows from the output claim, and its input table is never read.
    fn relabels(&self, _layer: &CircuitLayer) -> bool {
        false
    }

    /// The proof this layer must carry for a batch of `batch`.
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape;

    /// Checks `proof` (whose [`Shape`] the caller has checked) and reduces `claim` on the
    /// layer's output to a claim on its input. `index` (0-based) labels errors. By default a
    /// refusal: a kind that reads two tensors implements [`Self::reduce`] instead.
    fn verify(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        _claim: &Claim<F>,
        _proof: &LayerProof<F>,
        _transcript: &mut Transcript,
        index: usize,
    ) -> Result<Claim<F>, VerifyError> {
        Err(VerifyError::ProofShape(format!(
            "layer {index}: this layer hands down a claim on each of its two operands"
        )))
    }

    /// Reduces the claims the layer's readers handed down on its output (one, but one per
    /// reader at a fork) to one claim per tensor it reads, in the order of `Op::reads` (two for
    /// an add). By default: [`Self::verify`] on the one claim.
    fn reduce(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        claims: &[Claim<F>],
        proof: &LayerProof<F>,
        transcript: &mut Transcript,
        index: usize,
    ) -> Result<Vec<Claim<F>>, VerifyError> {
        let claim = add::single(claims, index)?;
        Ok(vec![
            self.verify(layer, batch, claim, proof, transcript, index)?
        ])
    }
}

/// The rule of an op: the one dispatch over the op kinds in this crate.
pub fn rule<F: ProofField>(op: &Op) -> &dyn LayerRule<F> {
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

/// What a verified layer hands down: a claim on each tensor it reads (`Op::reads` order) and
/// the degree sum its checks add to the soundness error.
#[derive(Clone, Debug)]
pub struct LayerOutcome<F> {
    /// Claims on the tensors the layer reads.
    pub claims: Vec<Claim<F>>,
    /// Σ of round degrees plus final checks of this layer.
    pub degree_sum: u64,
}

/// Reduces the claims on `layer`'s output (one, or one per reader at a fork) to claims on the
/// tensors it reads, checking `proof`. `index` labels errors (0-based layer index).
pub fn verify_layer<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    claims: &[Claim<F>],
    proof: &LayerProof<F>,
    transcript: &mut Transcript,
    index: usize,
) -> Result<LayerOutcome<F>, VerifyError> {
    let vars = layer.output.vars(batch);
    if claims.is_empty() || claims.iter().any(|c| c.point.len() != vars) {
        return Err(VerifyError::ProofShape(format!(
            "layer {index}: claim point has the wrong number of variables"
        )));
    }
    let rule = rule::<F>(&layer.op);
    let shape = rule.shape(layer, batch);
    shape.check(proof, index)?;
    let claims = rule.reduce(layer, batch, claims, proof, transcript, index)?;
    Ok(LayerOutcome {
        claims,
        degree_sum: shape.degree_sum(),
    })
}

/// The axes of a windowed op (rows, then columns) from its layouts.
pub fn axes(
    input: &Layout,
    output: &Layout,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> [Axis; 2] {
    let d = |l: &Layout, i: usize| l.dims.get(i).copied().unwrap_or(1);
    [
        Axis {
            input: d(input, 1),
            output: d(output, 1),
            window: kernel[0],
            stride: stride[0],
            padding: padding[0],
        },
        Axis {
            input: d(input, 2),
            output: d(output, 2),
            window: kernel[1],
            stride: stride[1],
            padding: padding[1],
        },
    ]
}

/// The window tables `(S_row, S_col)` of a windowed layer over its input's padded rows and
/// columns, from the eq tables of the output point's rows and columns; `kappa` weights the
/// kernel positions (a convolution), `None` weights them 1 (pooling).
pub fn window_tables<F: Field>(
    input: &Layout,
    [ah, aw]: [Axis; 2],
    (eq_i, eq_j): (&[F], &[F]),
    kappa: Option<(&[F], &[F])>,
) -> (Vec<F>, Vec<F>) {
    let padded = input.padded_dims();
    (
        window_table(ah, padded[1], kappa.map(|k| k.0), eq_i),
        window_table(aw, padded[2], kappa.map(|k| k.1), eq_j),
    )
}

/// `G̃(p)` for `G = eq(r_b,·) ⊗ eq(r_c,·) ⊗ S_row ⊗ S_col`: each pair is (the output-side
/// point or table, the input-side point) of one factor.
fn window_product<F: ProofField>(
    (r_b, p_b): (&[F], &[F]),
    (r_c, p_c): (&[F], &[F]),
    (s_row, p_h): (&[F], &[F]),
    (s_col, p_w): (&[F], &[F]),
) -> F {
    mle::eq_eval(r_b, p_b) * mle::eq_eval(r_c, p_c) * mle_at(s_row, p_h) * mle_at(s_col, p_w)
}

/// Reads the evaluation `k` a layer proof claims and absorbs it, as the prover did before the
/// next challenge.
fn take_eval<F: ProofField>(proof: &LayerProof<F>, k: usize, transcript: &mut Transcript) -> F {
    let v = proof.evals[k];
    transcript.append_scalar(label::LAYER_EVAL, &v);
    v
}

/// A final check: the value a sumcheck ended on must equal what the layer's relation gives.
fn final_check<F: PartialEq>(
    ended_on: F,
    relation: F,
    index: usize,
    what: &'static str,
) -> Result<(), VerifyError> {
    if ended_on != relation {
        return Err(VerifyError::LayerCheck {
            layer: index + 1,
            what,
        });
    }
    Ok(())
}

fn field_const<F: ProofField>(v: i128) -> Result<F, VerifyError> {
    from_i128(v).map_err(|e| VerifyError::Circuit(e.into()))
}

/// `Σ_o eq_o[o]·B[o]`: the bias MLE at `r_o`.
pub fn bias_at<F: ProofField>(bias: &[i128], eq_o: &[F]) -> Result<F, VerifyError> {
    let mut acc = F::zero();
    for (b, e) in bias.iter().zip(eq_o) {
        if *b != 0 {
            acc += field_const::<F>(*b)? * e;
        }
    }
    Ok(acc)
}

/// `Σ_o eq_o[o]·Σ_k W[o,k]·g[k]`: a weight matrix's MLE at a point, given the eq weights of the
/// output rows and of the (real) input positions.
///
/// Weights are small integers, so when rows are long compared with the weights' range, each row
/// is summed into one bucket per weight value with additions only and the buckets are weighted
/// once: `Σ_k W[k]·g[k] = Σ_v v·(Σ_{W[k]=v} g[k])`. Otherwise each term is one multiplication.
pub fn weight_mle<F: ProofField>(weight: &[i64], row_len: usize, g: &[F], eq_o: &[F]) -> F {
    if row_len == 0 {
        return F::zero();
    }
    let (lo, hi) = weight
        .iter()
        .fold((0i64, 0i64), |(lo, hi), w| (lo.min(*w), hi.max(*w)));
    let span = (hi as i128 - lo as i128 + 1) as usize;
    let use_buckets = span <= 1024 && row_len >= 4 * span;
    let values: Vec<F> = if use_buckets {
        (lo..=hi).map(from_i64::<F>).collect()
    } else {
        Vec::new()
    };
    let mut buckets = vec![F::zero(); if use_buckets { span } else { 0 }];
    let mut acc = F::zero();
    for (row, e) in weight.chunks(row_len).zip(eq_o) {
        let dot = if use_buckets {
            buckets.iter_mut().for_each(|b| *b = F::zero());
            for (w, gk) in row.iter().zip(g) {
                buckets[(*w - lo) as usize] += gk;
            }
            buckets
                .iter()
                .zip(&values)
                .filter(|(_, v)| !v.is_zero())
                .map(|(b, v)| *b * v)
                .sum()
        } else {
            row.iter()
                .zip(g)
                .filter(|(w, _)| **w != 0)
                .map(|(w, gk)| *gk * from_i64::<F>(*w))
                .sum::<F>()
        };
        acc += *e * dot;
    }
    acc
}

/// The element-wise activation check `target = Σ_x eq(r,x)·f(X(x))` (one sumcheck of round
/// degree `degree`, ending in `X̃(ρ) = χ` with `eq(r,ρ)·f(χ)` checked against it), shared by the
/// quadratic and the polynomial kinds; returns the claim `X̃(ρ) = χ`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify_elementwise<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    claim: &Claim<F>,
    proof: &LayerProof<F>,
    transcript: &mut Transcript,
    index: usize,
    (target, degree): (F, usize),
    f: impl Fn(F) -> F,
    what: &'static str,
) -> Result<Claim<F>, VerifyError> {
    let n = layer.input.vars(batch);
    let sc = crate::sumcheck::verify(&proof.sumchecks[0], target, n, degree, transcript)?;
    let chi = take_eval(proof, 0, transcript);
    let e = verinfer_circuits::mle::eq_eval(&claim.point, &sc.point);
    final_check(sc.value, e * f(chi), index, what)?;
    Ok(Claim {
        point: sc.point,
        value: chi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{UniformRand, Zero};
    use rand::{Rng, SeedableRng};
    use verinfer_circuits::field::M127;

    #[test]
    fn weight_mle_matches_naive_sum() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        // Short rows of wide weights (multiplications) and long rows of small ones (buckets).
        for (rows, len, range) in [
            (3usize, 5usize, 1000i64),
            (4, 300, 3),
            (2, 64, 16),
            (5, 40, 128),
        ] {
            let w: Vec<i64> = (0..rows * len)
                .map(|_| rng.gen_range(-range..range))
                .collect();
            let g: Vec<M127> = (0..len).map(|_| M127::rand(&mut rng)).collect();
            let e: Vec<M127> = (0..rows).map(|_| M127::rand(&mut rng)).collect();
            let mut want = M127::zero();
            for o in 0..rows {
                for k in 0..len {
                    want += e[o] * g[k] * from_i64::<M127>(w[o * len + k]);
                }
            }
            assert_eq!(weight_mle(&w, len, &g, &e), want, "{rows}x{len} ±{range}");
        }
    }
}
