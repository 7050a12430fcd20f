//! The generic GKR prover for layered gate circuits: the two-phase (Libra) linear-time sumcheck
//! per layer. The protocol and its transcript order are documented in `verinfer_verifier::gkr`,
//! which this module mirrors step for step.

use crate::sumcheck::{prove as prove_sumcheck, ProductProver};
use crate::ProveError;
use ark_ff::Field;
use rayon::prelude::*;
use verinfer_circuits::field::ProofField;
use verinfer_circuits::gates::{GateCircuit, LayerTerms};
use verinfer_circuits::mle::{self, PAR_THRESHOLD};
use verinfer_verifier::proof::{LayerKind, LayerProof, Proof};
use verinfer_verifier::transcript::label;
use verinfer_verifier::Transcript;

/// Evaluates `circuit` on `input` and proves the result. Returns the output (unpadded) and the
/// proof, which carries the circuit digest and the output.
pub fn prove<F: ProofField>(
    circuit: &GateCircuit,
    input: &[F],
) -> Result<(Vec<F>, Proof<F>), ProveError> {
    circuit.validate()?;
    let values = circuit.evaluate(input)?;
    let output = values.last().cloned().unwrap_or_default();
    let digest = circuit.digest(F::ID);
    let mut transcript = Transcript::new(&digest, input, &output);
    let layers = prove_as_subprotocol(circuit, &values, &mut transcript)?;
    Ok((
        output.clone(),
        Proof {
            digest,
            output,
            layers,
        },
    ))
}

/// The GKR prover inside an outer transcript that has already absorbed the statement.
/// `values[i]` are layer `i`'s wire values (unpadded), as from `GateCircuit::evaluate`.
pub fn prove_as_subprotocol<F: ProofField>(
    circuit: &GateCircuit,
    values: &[Vec<F>],
    transcript: &mut Transcript,
) -> Result<Vec<LayerProof<F>>, ProveError> {
    let depth = circuit.layers.len();
    let r: Vec<F> = transcript.challenges(label::OUTPUT_POINT, circuit.layer_vars(depth));
    let mut claim = mle::evaluate_padded(&values[depth], &r);
    let mut points: Vec<(F, Vec<F>)> = vec![(F::one(), r)];
    let mut proofs = Vec::with_capacity(depth);
    for i in (1..=depth).rev() {
        let terms = circuit.terms::<F>(i)?;
        let below = padded(&values[i - 1], circuit.layer_vars(i - 1));
        let step = prove_gate_terms(
            &terms,
            circuit.has_mul(i),
            below,
            &points,
            claim,
            transcript,
        );
        proofs.push(LayerProof {
            kind: LayerKind::GkrGates,
            sumchecks: step.sumchecks,
            evals: step.evals,
            opened: vec![],
        });
        claim = step.claim;
        points = step.points;
    }
    Ok(proofs)
}

/// What one gate layer's proof produced: its messages and the claim handed down.
#[derive(Clone, Debug)]
pub struct GateStep<F> {
    /// Phase-1 (and phase-2) sumcheck transcripts.
    pub sumchecks: Vec<verinfer_verifier::SumcheckProof<F>>,
    /// `Ṽ(u)` (and `Ṽ(v)`).
    pub evals: Vec<F>,
    /// Value of the claim on the layer below.
    pub claim: F,
    /// Weighted points of that claim.
    pub points: Vec<(F, Vec<F>)>,
}

/// Proves one gate layer given as terms over `below` (the padded values of the layer below),
/// for the claim `Σ_k c_k·Ṽ(z_k) = claim` with `points = [(c_k, z_k)]`. Mirrors
/// `verinfer_verifier::gkr::verify_gate_terms`.
pub fn prove_gate_terms<F: ProofField>(
    terms: &LayerTerms<F>,
    has_mul: bool,
    below: Vec<F>,
    points: &[(F, Vec<F>)],
    claim: F,
    transcript: &mut Transcript,
) -> GateStep<F> {
    let weighted: Vec<(F, &[F])> = points.iter().map(|(c, p)| (*c, p.as_slice())).collect();
    let eq_z = mle::eq_table_combined(&weighted);

    let a = phase1_table(terms, &eq_z, &below);
    let mut p1 = ProductProver::new(below.clone(), a);
    let out1 = prove_sumcheck(&mut p1, claim - terms.cst_at(&eq_z), transcript);
    let v_u = out1.finals[0];
    transcript.append_scalar(label::GKR_EVAL_U, &v_u);

    if !has_mul {
        return GateStep {
            sumchecks: vec![out1.proof],
            evals: vec![v_u],
            claim: v_u,
            points: vec![(F::one(), out1.point)],
        };
    }
    let eq_u = mle::eq_table(&out1.point);
    let m = phase2_table(terms, &eq_z, &eq_u, v_u, below.len());
    let claim2 = dot(&m, &below);
    let mut p2 = ProductProver::new(m, below);
    let out2 = prove_sumcheck(&mut p2, claim2, transcript);
    let v_v = out2.finals[1];
    transcript.append_scalar(label::GKR_EVAL_V, &v_v);
    let alpha: F = transcript.challenge(label::GKR_COMBINE);
    GateStep {
        sumchecks: vec![out1.proof, out2.proof],
        evals: vec![v_u, v_v],
        claim: v_u + alpha * v_v,
        points: vec![(F::one(), out1.point), (alpha, out2.point)],
    }
}

/// A copy of `v` zero-padded to 2^vars entries.
pub fn padded<F: Field>(v: &[F], vars: usize) -> Vec<F> {
    let mut t = Vec::with_capacity(1 << vars);
    t.extend_from_slice(v);
    t.resize(1 << vars, F::zero());
    t
}

/// `Σ a[i]·b[i]`, parallel above the threshold.
pub fn dot<F: Field>(a: &[F], b: &[F]) -> F {
    if a.len() >= PAR_THRESHOLD {
        a.par_iter().zip(b.par_iter()).map(|(x, y)| *x * y).sum()
    } else {
        a.iter().zip(b).map(|(x, y)| *x * y).sum()
    }
}

/// Scatters `items` into a zeroed table of `len` entries, in parallel: each rayon worker fills a
/// private table and the tables are summed, so no two threads write the same entry.
fn scatter<F: Field, T: Sync>(
    len: usize,
    items: &[T],
    add: impl Fn(&mut [F], &T) + Sync,
) -> Vec<F> {
    let threads = rayon::current_num_threads();
    if items.len() < PAR_THRESHOLD || threads == 1 {
        let mut t = vec![F::zero(); len];
        items.iter().for_each(|it| add(&mut t, it));
        return t;
    }
    let chunk = items.len().div_ceil(threads);
    let mut partial: Vec<Vec<F>> = items
        .par_chunks(chunk)
        .map(|c| {
            let mut t = vec![F::zero(); len];
            c.iter().for_each(|it| add(&mut t, it));
            t
        })
        .collect();
    let mut acc = partial.pop().unwrap_or_else(|| vec![F::zero(); len]);
    for t in &partial {
        mle::add_assign(&mut acc, t);
    }
    acc
}

/// `A(x) = Σ_{g,y} E(g)·c·V(y)` over product terms `+ Σ_g E(g)·c` over linear terms.
fn phase1_table<F: Field>(terms: &LayerTerms<F>, eq_z: &[F], below: &[F]) -> Vec<F> {
    let mut a = scatter(below.len(), &terms.mul, |t: &mut [F], &(g, x, y, c)| {
        t[x as usize] += eq_z[g as usize] * c * below[y as usize];
    });
    let lin = scatter(below.len(), &terms.lin, |t: &mut [F], &(g, x, c)| {
        t[x as usize] += eq_z[g as usize] * c;
    });
    mle::add_assign(&mut a, &lin);
    a
}

/// `M(y) = v_u·Σ_{g,x} E(g)·eq(u,x)·c` over product terms.
fn phase2_table<F: Field>(
    terms: &LayerTerms<F>,
    eq_z: &[F],
    eq_u: &[F],
    v_u: F,
    len: usize,
) -> Vec<F> {
    let mut m = scatter(len, &terms.mul, |t: &mut [F], &(g, x, y, c)| {
        t[y as usize] += eq_z[g as usize] * eq_u[x as usize] * c;
    });
    if len >= PAR_THRESHOLD {
        m.par_iter_mut().for_each(|v| *v *= v_u);
    } else {
        m.iter_mut().for_each(|v| *v *= v_u);
    }
    m
}
