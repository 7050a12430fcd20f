//! Prover half of the residual add (`verinfer_verifier::layers::add`): both operands'
//! evaluations at the output claim's point.

use super::LayerProver;
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{AddOp, CircuitLayer};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_verifier::layers::Claim;
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::{label, Transcript};

impl<F: ProofField> LayerProver<F> for AddOp {
    fn reduce(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        index: usize,
        tables: &mut [Cow<'_, [F]>],
        claims: &[Claim<F>],
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Vec<Claim<F>>), ProveError> {
        let claim = super::single(claims)?;
        let mut evals = Vec::with_capacity(2);
        let mut down = Vec::with_capacity(2);
        for t in [index, self.with] {
            let table = tables
                .get(t)
                .ok_or_else(|| ProveError::Layer(format!("no table for tensor {t}")))?;
            let v = mle::evaluate(table, &claim.point);
            transcript.append_scalar(label::LAYER_EVAL, &v);
            evals.push(v);
            down.push(Claim {
                point: claim.point.clone(),
                value: v,
            });
        }
        Ok((
            LayerProof {
                kind: LayerKind::Add,
                sumchecks: vec![],
                evals,
                opened: vec![],
            },
            down,
        ))
    }
}
