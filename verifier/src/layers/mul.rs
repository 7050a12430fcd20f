//! Element-wise product `Z = X ⊙ W` (`X` the previous output, `W` the tensor `with`, same
//! layout): one degree-3 sumcheck `z = Σ_x eq(r,x)·X(x)·W(x)`, ending in `X̃(ρ) = χ_X` and
//! `W̃(ρ) = χ_W`; one claim handed down each operand, at the same point (the product is zero at
//! padding because both factors are).

use super::add::single;
use super::{final_check, take_eval, Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::sumcheck;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, MulOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;

impl<F: ProofField> LayerRule<F> for MulOp {
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        Shape {
            kind: LayerKind::Mul,
            sumchecks: vec![(layer.input.vars(batch), 3)],
            evals: 2,
            final_checks: 1,
        }
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
        let claim = single(claims, index)?;
        let n = layer.input.vars(batch);
        let sc = sumcheck::verify(&proof.sumchecks[0], claim.value, n, 3, transcript)?;
        let x = take_eval(proof, 0, transcript);
        let w = take_eval(proof, 1, transcript);
        let e = mle::eq_eval(&claim.point, &sc.point);
        final_check(sc.value, e * x * w, index, "product of its operands")?;
        Ok(vec![
            Claim {
                point: sc.point.clone(),
                value: x,
            },
            Claim {
                point: sc.point,
                value: w,
            },
        ])
    }
}
