//! Residual add `Z = X·2^l₀ + W·2^l₁` (`X` the previous output, `W` the tensor `with`, same
//! layout): no sumcheck. The prover sends `X̃(r)` and `W̃(r)`; the verifier checks
//! `z = 2^l₀·X̃(r) + 2^l₁·W̃(r)` (exact as polynomials: all three tensors are zero at padding) and
//! hands one claim down each branch, at the same point.

use super::{field_const, final_check, take_eval, Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{AddOp, CircuitLayer};
use verinfer_circuits::field::ProofField;

impl<F: ProofField> LayerRule<F> for AddOp {
    fn shape(&self, _layer: &CircuitLayer, _batch: usize) -> Shape {
        Shape {
            kind: LayerKind::Add,
            sumchecks: vec![],
            evals: 2,
            // The check is an identity in the claimed values: a false claim on Z leaves a false
            // claim on X or W, checked below; no new chance of error.
            final_checks: 0,
        }
    }

    fn reduce(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        claims: &[Claim<F>],
        proof: &LayerProof<F>,
        transcript: &mut Transcript,
        index: usize,
    ) -> Result<Vec<Claim<F>>, VerifyError> {
        let claim = single(claims, index)?;
        let x = take_eval(proof, 0, transcript);
        let w = take_eval(proof, 1, transcript);
        let [fx, fw] = self.factors();
        let (fx, fw) = (field_const::<F>(fx)?, field_const::<F>(fw)?);
        final_check(claim.value, fx * x + fw * w, index, "add of its operands")?;
        Ok(vec![
            Claim {
                point: claim.point.clone(),
                value: x,
            },
            Claim {
                point: claim.point.clone(),
                value: w,
            },
        ])
    }
}

/// The one claim a layer that is not a fork receives.
pub(super) fn single<F>(claims: &[Claim<F>], index: usize) -> Result<&Claim<F>, VerifyError> {
    match claims {
        [c] => Ok(c),
        _ => Err(VerifyError::ProofShape(format!(
            "layer {index}: {} claims on its output, expected one",
            claims.len()
        ))),
    }
}
