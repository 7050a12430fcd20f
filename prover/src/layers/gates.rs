//! Prover half of a structured circuit's gate layer (`verinfer_verifier::layers::gates`): the
//! two-phase GKR layer prover, then, with products, the merge sumcheck to one point.

use super::{from_verify, hand_down, LayerProver};
use crate::gkr::prove_gate_terms;
use crate::sumcheck::{prove as prove_sumcheck, ProductProver};
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, GatesOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_verifier::layers::gates::{gkr_phases, terms};
use verinfer_verifier::layers::Claim;
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::Transcript;

impl<F: ProofField> LayerProver<F> for GatesOp {
    /// `inner`, when given, replaces the input for the GKR phases only (a dishonest prover, see
    /// `prove_layer_with_inner`).
    fn prove(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        input: Cow<'_, [F]>,
        inner: Option<&[F]>,
        claim: &Claim<F>,
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        let terms = terms::<F>(self, layer, batch).map_err(from_verify)?;
        let has_mul = gkr_phases(self) == 2;
        let step = prove_gate_terms(
            &terms,
            has_mul,
            inner.unwrap_or(&input).to_vec(),
            &[(F::one(), claim.point.clone())],
            claim.value,
            transcript,
        );
        if !has_mul {
            let (_, point) = step.points.into_iter().next().unwrap_or_default();
            let proof = LayerProof {
                kind: LayerKind::Gates,
                sumchecks: step.sumchecks,
                evals: step.evals,
                opened: vec![],
            };
            return Ok((
                proof,
                Claim {
                    point,
                    value: step.claim,
                },
            ));
        }
        let weighted: Vec<(F, &[F])> = step
            .points
            .iter()
            .map(|(c, p)| (*c, p.as_slice()))
            .collect();
        let e = mle::eq_table_combined(&weighted);
        let mut p = ProductProver::new(e, input.into_owned());
        let out = prove_sumcheck(&mut p, step.claim, transcript);
        Ok(hand_down(
            LayerKind::Gates,
            (step.sumchecks, step.evals),
            out,
            &[],
            transcript,
        ))
    }
}
