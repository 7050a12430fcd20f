//! Activation `Y = a·X² + b·X + c` (element-wise, `c` at real positions only): one degree-3
//! sumcheck `y − c·Ĩ(r) = Σ_x eq(r,x)·(a·X(x)² + b·X(x))`, ending in `X̃(p) = χ`.

use super::{field_const, verify_elementwise, Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{ActivationOp, CircuitLayer};
use verinfer_circuits::field::ProofField;

/// What prover and verifier both derive from the claim on the output: the coefficients in the
/// field and the sumcheck's claimed sum.
#[derive(Clone, Copy, Debug)]
pub struct ActivationSetup<F> {
    /// Coefficient of X².
    pub a: F,
    /// Coefficient of X.
    pub b: F,
    /// `y − c·Ĩ(r)`: the constant only sits at real positions.
    pub target: F,
}

/// The setup of an activation layer's sumcheck for the claim `Ỹ(r) = y`.
pub fn setup<F: ProofField>(
    op: &ActivationOp,
    layer: &CircuitLayer,
    batch: usize,
    claim: &Claim<F>,
) -> Result<ActivationSetup<F>, VerifyError> {
    let (a, b, c) = (
        field_const::<F>(op.a)?,
        field_const::<F>(op.b)?,
        field_const::<F>(op.c)?,
    );
    let target = claim.value - c * layer.output.real_indicator(batch, &claim.point);
    Ok(ActivationSetup { a, b, target })
}

impl<F: ProofField> LayerRule<F> for ActivationOp {
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        Shape {
            kind: LayerKind::Activation,
            sumchecks: vec![(layer.input.vars(batch), 3)],
            evals: 1,
            final_checks: 1,
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
        let s = setup(self, layer, batch, claim)?;
        verify_elementwise(
            layer,
            batch,
            claim,
            proof,
            transcript,
            index,
            (s.target, 3),
            |chi| s.a * chi * chi + s.b * chi,
            "activation final evaluation",
        )
    }
}
