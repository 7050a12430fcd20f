//! Prover half of the polynomial activation (`verinfer_verifier::layers::polynomial`): the
//! eq-factored kernel of any degree ([`EqPolyProver`]) over the input table.

use super::{from_verify, hand_down, LayerProver};
use crate::eq_poly::EqPolyProver;
use crate::sumcheck::prove as prove_sumcheck;
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, PolynomialOp};
use verinfer_circuits::field::ProofField;
use verinfer_verifier::layers::{polynomial::setup, Claim};
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::Transcript;

impl<F: ProofField> LayerProver<F> for PolynomialOp {
    fn prove(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        input: Cow<'_, [F]>,
        _inner: Option<&[F]>,
        claim: &Claim<F>,
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        let s = setup(self, layer, batch, claim).map_err(from_verify)?;
        if s.coefficients.len() < 2 || input.len() != 1 << claim.point.len() {
            return Err(ProveError::Layer(
                "a polynomial layer's table does not fit its claim".into(),
            ));
        }
        let mut p = EqPolyProver::new(&claim.point, input.into_owned(), s.coefficients, s.target);
        let out = prove_sumcheck(&mut p, s.target, transcript);
        Ok(hand_down(
            LayerKind::Polynomial,
            (vec![], vec![]),
            out,
            &[],
            transcript,
        ))
    }
}
