//! Branch `Y = T_from`: no proof. The claim on its output is a claim on the earlier tensor
//! `from` (same layout, same point), which the caller hands to that tensor.

use super::{Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{BranchOp, CircuitLayer};
use verinfer_circuits::field::ProofField;

impl<F: ProofField> LayerRule<F> for BranchOp {
    fn relabels(&self, _layer: &CircuitLayer) -> bool {
        true
    }

    fn shape(&self, _layer: &CircuitLayer, _batch: usize) -> Shape {
        Shape {
            kind: LayerKind::Branch,
            sumchecks: vec![],
            evals: 0,
            final_checks: 0,
        }
    }

    fn verify(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        claim: &Claim<F>,
        _proof: &LayerProof<F>,
        _transcript: &mut Transcript,
        _index: usize,
    ) -> Result<Claim<F>, VerifyError> {
        Ok(claim.clone())
    }
}
