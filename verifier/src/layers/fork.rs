//! Fork `Y = X`, read by several layers: one degree-2 sumcheck merges the claims `Ỹ(r_j) = y_j`
//! they hand down. With coefficients `α_j` drawn after all of them,
//! `Σ_j α_j·y_j = Σ_x (Σ_j α_j·eq(r_j, x))·X(x)`, ending in `X̃(p) = χ`; the verifier evaluates
//! the weight `Σ_j α_j·eq(r_j, p)` itself.

use super::{final_check, take_eval, Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::sumcheck;
use crate::transcript::{label, Transcript};
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, ForkOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;

/// The merge coefficients and the merged claim's sum `Σ_j α_j·y_j`, as prover and verifier
/// both derive them (the coefficients come from the transcript).
pub fn merge<F: ProofField>(claims: &[Claim<F>], transcript: &mut Transcript) -> (Vec<F>, F) {
    let alphas: Vec<F> = transcript.challenges(label::FORK_COEFFICIENT, claims.len());
    let target = claims.iter().zip(&alphas).map(|(c, a)| *a * c.value).sum();
    (alphas, target)
}

impl<F: ProofField> LayerRule<F> for ForkOp {
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        Shape {
            kind: LayerKind::Fork,
            sumchecks: vec![(layer.input.vars(batch), 2)],
            evals: 1,
            // The random combination (a false claim survives it with probability 1/|F|) and
            // the final evaluation.
            final_checks: 2,
        }
    }

    fn verify(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        claim: &Claim<F>,
        proof: &LayerProof<F>,
        transcript: &mut Transcript,
        index: usize,
    ) -> Result<Claim<F>, VerifyError> {
        let mut merged = self.reduce(
            layer,
            batch,
            std::slice::from_ref(claim),
            proof,
            transcript,
            index,
        )?;
        merged.pop().ok_or(VerifyError::ProofShape(format!(
            "layer {index}: a fork hands down one claim"
        )))
    }

    fn reduce(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        claims: &[Claim<F>],
        proof: &LayerProof<F>,
        transcript: &mut Transcript,
        index: usize,
    ) -> Result<Vec<Claim<F>>, VerifyError> {
        let n = layer.input.vars(batch);
        let (alphas, target) = merge(claims, transcript);
        let sc = sumcheck::verify(&proof.sumchecks[0], target, n, 2, transcript)?;
        let chi = take_eval(proof, 0, transcript);
        let weight: F = claims
            .iter()
            .zip(&alphas)
            .map(|(c, a)| *a * mle::eq_eval(&c.point, &sc.point))
            .sum();
        final_check(sc.value, weight * chi, index, "fork merged evaluation")?;
        Ok(vec![Claim {
            point: sc.point,
            value: chi,
        }])
    }
}
