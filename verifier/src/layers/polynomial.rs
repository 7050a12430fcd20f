//! Polynomial activation `Y = Σ_k C_k·X^k` of degree `d ≥ 3` (element-wise, `C_0` at real
//! positions only): one sumcheck of round degree `d + 1`,
//! `y − C_0·Ĩ(r) = Σ_x eq(r,x)·Σ_{k≥1} C_k·X(x)^k`, ending in `X̃(p) = χ`.

use super::{field_const, verify_elementwise, Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, PolynomialOp};
use verinfer_circuits::field::ProofField;

/// What prover and verifier both derive from the claim on the output: the coefficients in the
/// field, the constant's dropped, and the sumcheck's claimed sum.
#[derive(Clone, Debug)]
pub struct PolynomialSetup<F> {
    /// `0, C_1, …, C_d` in the field (the constant moved into the target).
    pub coefficients: Vec<F>,
    /// `y − C_0·Ĩ(r)`: the constant only sits at real positions.
    pub target: F,
}

impl<F: ProofField> PolynomialSetup<F> {
    /// `Σ_k C_k·v^k` without the constant (Horner).
    pub fn eval(&self, v: F) -> F {
        self.coefficients
            .iter()
            .rev()
            .fold(F::zero(), |acc, c| acc * v + c)
    }
}

/// The setup of a polynomial layer's sumcheck for the claim `Ỹ(r) = y`.
pub fn setup<F: ProofField>(
    op: &PolynomialOp,
    layer: &CircuitLayer,
    batch: usize,
    claim: &Claim<F>,
) -> Result<PolynomialSetup<F>, VerifyError> {
    let mut coefficients = op
        .coefficients
        .iter()
        .map(|&c| field_const::<F>(c))
        .collect::<Result<Vec<F>, _>>()?;
    let c0 = coefficients.first_mut().map_or(F::zero(), std::mem::take);
    let target = claim.value - c0 * layer.output.real_indicator(batch, &claim.point);
    Ok(PolynomialSetup {
        coefficients,
        target,
    })
}

/// Round degree of the layer's sumcheck: the polynomial's degree plus the eq factor.
pub fn round_degree(op: &PolynomialOp) -> usize {
    op.degree() + 1
}

impl<F: ProofField> LayerRule<F> for PolynomialOp {
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        Shape {
            kind: LayerKind::Polynomial,
            sumchecks: vec![(layer.input.vars(batch), round_degree(self))],
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
            (s.target, round_degree(self)),
            |chi| s.eval(chi),
            "polynomial final evaluation",
        )
    }
}
