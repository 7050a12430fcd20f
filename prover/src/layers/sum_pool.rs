//! Prover half of sum-pooling (`verinfer_verifier::layers::sum_pool`): nothing for an aligned
//! pool, else a product sumcheck of the input against the window predicate `G`.

use super::{hand_down, kron, LayerProver};
use crate::sumcheck::{prove as prove_sumcheck, ProductProver};
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, SumPoolOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_circuits::predicates::split_point;
use verinfer_verifier::layers::sum_pool::{aligned_pool_point, pool_windows};
use verinfer_verifier::layers::Claim;
use verinfer_verifier::layers::LayerRule;
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::Transcript;

impl<F: ProofField> LayerProver<F> for SumPoolOp {
    fn prove(
        &self,
        layer: &CircuitLayer,
        _batch: usize,
        input: Cow<'_, [F]>,
        _inner: Option<&[F]>,
        claim: &Claim<F>,
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        if LayerRule::<F>::relabels(self, layer) {
            let (point, scale) = aligned_pool_point(layer, &claim.point, self.window);
            return Ok((
                LayerProof {
                    kind: LayerKind::SumPool,
                    sumchecks: vec![],
                    evals: vec![],
                    opened: vec![],
                },
                Claim {
                    point,
                    value: claim.value * scale,
                },
            ));
        }
        let (r, r_b) = split_point(&layer.output, &claim.point);
        let (s_row, s_col) = pool_windows(self, layer, &r);
        let g = kron(&[mle::eq_table(r_b), mle::eq_table(r[0]), s_row, s_col]);
        let mut p = ProductProver::new(g, input.into_owned());
        let out = prove_sumcheck(&mut p, claim.value, transcript);
        Ok(hand_down(
            LayerKind::SumPool,
            (vec![], vec![]),
            out,
            &[],
            transcript,
        ))
    }
}
