//! Prover half of a branch (`verinfer_verifier::layers::branch`): an empty proof; the claim
//! passes to the earlier tensor unchanged.

use super::LayerProver;
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{BranchOp, CircuitLayer};
use verinfer_circuits::field::ProofField;
use verinfer_verifier::layers::Claim;
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::Transcript;

impl<F: ProofField> LayerProver<F> for BranchOp {
    fn prove(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        _input: Cow<'_, [F]>,
        _inner: Option<&[F]>,
        claim: &Claim<F>,
        _transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        Ok((
            LayerProof {
                kind: LayerKind::Branch,
                sumchecks: vec![],
                evals: vec![],
                opened: vec![],
            },
            claim.clone(),
        ))
    }
}
