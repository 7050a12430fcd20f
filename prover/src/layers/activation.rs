//! Prover half of the activation reduction (`verinfer_verifier::layers::activation`): the
//! eq-factored degree-3 kernel ([`EqQuadProver`]) over the input table.

use super::{from_verify, hand_down, LayerProver};
use crate::eq_kernel::EqQuadProver;
use crate::sumcheck::prove as prove_sumcheck;
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{ActivationOp, CircuitLayer};
use verinfer_circuits::field::ProofField;
use verinfer_verifier::layers::{activation::setup, Claim};
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::Transcript;

impl<F: ProofField> LayerProver<F> for ActivationOp {
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
        let mut p = EqQuadProver::new(&claim.point, input.into_owned(), s.a, s.b, s.target);
        let out = prove_sumcheck(&mut p, s.target, transcript);
        Ok(hand_down(
            LayerKind::Activation,
            (vec![], vec![]),
            out,
            &[],
            transcript,
        ))
    }
}
