//! Verification of the generic GKR protocol for layered gate circuits.
//!
//! Layer `i` is a sum of terms over the layer below (see `verinfer_circuits::gates`):
//! `V_i(g) = Σ mul(g,x,y)·V(x)·V(y) + Σ lin(g,x)·V(x) + cst(g)`. Given a claim on
//! `Σ_k α_k Ṽ_i(z_k)`, with `E(g) = Σ_k α_k eq(z_k, g)`:
//!
//! 1. **Phase 1** (sumcheck over `x`, degree 2): `claim − Σ_g E(g)cst(g) = Σ_x Ṽ(x)·A(x)` with
//!    `A(x) = Σ_{g,y} E(g)mul(g,x,y)V(y) + Σ_g E(g)lin(g,x)`. It ends at `u`; the prover sends
//!    `v_u = Ṽ(u)`.
//! 2. **Phase 2** (sumcheck over `y`, degree 2, only when the layer has products):
//!    `e₁ − v_u·liñ(E,u) = Σ_y v_u·mul̃(E,u,y)·Ṽ(y)`. It ends at `v`; the prover sends
//!    `v_v = Ṽ(v)`, and the verifier checks `e₂ = v_u·mul̃(E,u,v)·v_v` itself. Without products
//!    the check is `e₁ = v_u·liñ(E,u)`.
//! 3. The two claims `Ṽ(u) = v_u`, `Ṽ(v) = v_v` become one with a random `α`: the next layer's
//!    claim is `v_u + α·v_v` on `eq(u,·) + α·eq(v,·)`.
//!
//! At the input the verifier evaluates `Ṽ_0` at `u` and `v` itself. Its work per layer is linear
//! in the layer's gates: this is the generic fallback; the CNN layers have structured proofs
//! whose verifier never touches a gate list.

use crate::proof::{LayerKind, LayerProof, Proof, SumcheckProof};
use crate::sumcheck;
use crate::transcript::label;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::field::{soundness_bits, ProofField};
use verinfer_circuits::gates::{GateCircuit, LayerTerms};
use verinfer_circuits::mle;

/// What a successful verification establishes, with its statistical strength.
#[derive(Clone, Debug, PartialEq)]
pub struct GkrReport {
    /// Layers checked.
    pub layers: usize,
    /// −log2 of the probability that a false statement passed.
    pub soundness_bits: f64,
}

/// Checks a proof that `circuit` maps `input` to `output` over `F` (a fresh transcript is bound to
/// the statement, and `proof` must carry the same output and the circuit's digest).
pub fn verify<F: ProofField>(
    circuit: &GateCircuit,
    input: &[F],
    output: &[F],
    proof: &Proof<F>,
) -> Result<GkrReport, VerifyError> {
    circuit.validate()?;
    let digest = circuit.digest(F::ID);
    if proof.digest != digest {
        return Err(VerifyError::DigestMismatch);
    }
    if proof.output != output {
        return Err(VerifyError::OutputMismatch);
    }
    let mut transcript = Transcript::new(&digest, input, output);
    verify_as_subprotocol(circuit, input, output, &proof.layers, &mut transcript)?;
    Ok(GkrReport {
        layers: circuit.layers.len(),
        soundness_bits: soundness_bits(F::ID, circuit.soundness_degree_sum()),
    })
}

/// The GKR verifier inside an outer transcript that has already absorbed the statement.
pub fn verify_as_subprotocol<F: ProofField>(
    circuit: &GateCircuit,
    input: &[F],
    output: &[F],
    layers: &[LayerProof<F>],
    transcript: &mut Transcript,
) -> Result<(), VerifyError> {
    circuit.validate()?;
    let depth = circuit.layers.len();
    if input.len() != circuit.input_size {
        return Err(VerifyError::Shape(format!(
            "input has {} values, the circuit takes {}",
            input.len(),
            circuit.input_size
        )));
    }
    if output.len() != circuit.output_size() {
        return Err(VerifyError::Shape(format!(
            "output has {} values, the circuit gives {}",
            output.len(),
            circuit.output_size()
        )));
    }
    if layers.len() != depth {
        return Err(VerifyError::ProofShape(format!(
            "{} layer proofs for {depth} layers",
            layers.len()
        )));
    }
    let r: Vec<F> = transcript.challenges(label::OUTPUT_POINT, circuit.layer_vars(depth));
    let mut claim = mle::evaluate_padded(output, &r);
    let mut points: Vec<(F, Vec<F>)> = vec![(F::one(), r)];

    for (lp, i) in layers.iter().zip((1..=depth).rev()) {
        let (c, p) = verify_gate_layer(circuit, i, lp, claim, &points, transcript)?;
        claim = c;
        points = p;
    }
    let at_input: F = points
        .iter()
        .map(|(c, p)| *c * mle::evaluate_padded(input, p))
        .sum();
    if at_input != claim {
        return Err(VerifyError::InputCheck);
    }
    Ok(())
}

/// The claim handed to the layer below: its value and the weighted points it is made on
/// (`Σ_k c_k·Ṽ(p_k) = value`).
pub type Handoff<F> = (F, Vec<(F, Vec<F>)>);

fn verify_gate_layer<F: ProofField>(
    circuit: &GateCircuit,
    i: usize,
    lp: &LayerProof<F>,
    claim: F,
    points: &[(F, Vec<F>)],
    transcript: &mut Transcript,
) -> Result<Handoff<F>, VerifyError> {
    // A gate layer opens nothing: any opened value makes the proof malformed.
    if lp.kind != LayerKind::GkrGates || !lp.opened.is_empty() {
        return Err(VerifyError::ProofShape(format!(
            "layer {i}: expected a gate-layer proof"
        )));
    }
    let terms = circuit.terms::<F>(i)?;
    verify_gate_terms(
        &terms,
        circuit.has_mul(i),
        circuit.layer_vars(i - 1),
        &lp.sumchecks,
        &lp.evals,
        claim,
        points,
        transcript,
        i,
    )
}

/// One gate layer given as terms: checks phase 1 (and phase 2 when `has_mul`) and returns the
/// claim on the layer below (one point, or two combined with a random `α`). `sumchecks` and
/// `evals` must hold exactly one entry per phase. `layer` only labels errors.
#[allow(clippy::too_many_arguments)]
pub fn verify_gate_terms<F: ProofField>(
    terms: &LayerTerms<F>,
    has_mul: bool,
    below: usize,
    sumchecks: &[SumcheckProof<F>],
    evals: &[F],
    claim: F,
    points: &[(F, Vec<F>)],
    transcript: &mut Transcript,
    layer: usize,
) -> Result<Handoff<F>, VerifyError> {
    let phases = if has_mul { 2 } else { 1 };
    if sumchecks.len() != phases || evals.len() != phases {
        return Err(VerifyError::ProofShape(format!(
            "layer {layer}: expected a gate-layer proof with {phases} sumchecks and {phases} evaluations"
        )));
    }
    let weighted: Vec<(F, &[F])> = points.iter().map(|(c, p)| (*c, p.as_slice())).collect();
    let eq_z = mle::eq_table_combined(&weighted);

    let phase1 = sumcheck::verify(
        &sumchecks[0],
        claim - terms.cst_at(&eq_z),
        below,
        2,
        transcript,
    )?;
    let v_u = evals[0];
    transcript.append_scalar(label::GKR_EVAL_U, &v_u);
    let eq_u = mle::eq_table(&phase1.point);
    let lin = terms.lin_at(&eq_z, &eq_u);
    if !has_mul {
        if phase1.value != v_u * lin {
            return Err(VerifyError::LayerCheck {
                layer,
                what: "phase-1 final evaluation",
            });
        }
        return Ok((v_u, vec![(F::one(), phase1.point)]));
    }
    let phase2 = sumcheck::verify(
        &sumchecks[1],
        phase1.value - v_u * lin,
        below,
        2,
        transcript,
    )?;
    let v_v = evals[1];
    transcript.append_scalar(label::GKR_EVAL_V, &v_v);
    let eq_v = mle::eq_table(&phase2.point);
    if phase2.value != v_u * terms.mul_at(&eq_z, &eq_u, &eq_v) * v_v {
        return Err(VerifyError::LayerCheck {
            layer,
            what: "phase-2 final evaluation",
        });
    }
    let alpha: F = transcript.challenge(label::GKR_COMBINE);
    Ok((
        v_u + alpha * v_v,
        vec![(F::one(), phase1.point), (alpha, phase2.point)],
    ))
}
