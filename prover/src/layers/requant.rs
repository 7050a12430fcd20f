//! Prover half of a requantization checkpoint (`verinfer_verifier::layers::requant`): no
//! sumcheck; the proof opens the tensor before requantization, and the segment below starts
//! from the same fresh point the verifier draws.

use super::LayerProver;
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, RequantOp};
use verinfer_circuits::field::{to_i128, ProofField};
use verinfer_circuits::mle;
use verinfer_verifier::layers::Claim;
use verinfer_verifier::opening::absorb_tensor;
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::{label, Transcript};

impl<F: ProofField> LayerProver<F> for RequantOp {
    fn absorb_opening(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        input: &[F],
        transcript: &mut Transcript,
    ) {
        // The field elements themselves: the verifier converts the opened integers back to
        // exactly these before it hashes them.
        absorb_tensor(transcript, &layer.input.gather(batch, input));
    }

    fn open(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        input: &[F],
    ) -> Result<Option<Vec<i128>>, ProveError> {
        let values = layer
            .input
            .gather(batch, input)
            .into_iter()
            .map(|v| to_i128(v))
            .collect::<Result<Vec<i128>, _>>()
            .map_err(|e| ProveError::Layer(format!("a checkpoint value: {e}")))?;
        Ok(Some(values))
    }

    fn prove(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        input: Cow<'_, [F]>,
        _inner: Option<&[F]>,
        _claim: &Claim<F>,
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        let opened = LayerProver::<F>::open(self, layer, batch, &input)?.unwrap_or_default();
        let point: Vec<F> = transcript.challenges(label::CHECKPOINT_POINT, layer.input.vars(batch));
        let value = mle::evaluate(&input, &point);
        Ok((
            LayerProof {
                kind: LayerKind::Checkpoint,
                sumchecks: vec![],
                evals: vec![],
                opened,
            },
            Claim { point, value },
        ))
    }
}
