//! Requantization checkpoint `Y' = requant(Y)`: no sumcheck. The layer's proof opens `Y`
//! ([`crate::opening`]); the verifier checks the claim on `Ỹ'` against its own evaluation of the
//! requantized tensor, then starts the segment below from a fresh point `p` with its own `Ỹ(p)`.

use super::{final_check, Claim, LayerRule, Shape};
use crate::opening::{CheckpointOpening, ClearOpening};
use crate::proof::{LayerKind, LayerProof};
use crate::transcript::{label, Transcript};
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, RequantOp};
use verinfer_circuits::field::ProofField;

impl<F: ProofField> LayerRule<F> for RequantOp {
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        let n = layer.input.vars(batch);
        Shape {
            kind: LayerKind::Checkpoint,
            sumchecks: vec![],
            evals: 0,
            // The claim on Ỹ' (one check), and Ỹ at a fresh point: a false Y passes the segment
            // below with probability at most n/|F| (Schwartz–Zippel on an n-variate MLE).
            final_checks: 1 + n as u64,
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
        let opening = ClearOpening {
            values: &proof.opened,
        };
        let above =
            opening.evaluate_requantized(self, &layer.input, &layer.output, batch, &claim.point)?;
        final_check(
            above,
            claim.value,
            index,
            "checkpoint requantized evaluation",
        )?;
        let point: Vec<F> = transcript.challenges(label::CHECKPOINT_POINT, layer.input.vars(batch));
        let value = opening.evaluate(&layer.input, batch, &point)?;
        Ok(Claim { point, value })
    }
}
