//! Prover half of the element-wise product (`verinfer_verifier::layers::mul`): the degree-3
//! sumcheck of `eq(r, ·)·X·W` over both operands' tables.

use super::{single, take_table, LayerProver};
use crate::sumcheck::{prove as prove_sumcheck, ProductSumProver};
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, MulOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_verifier::layers::Claim;
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::{label, Transcript};

impl<F: ProofField> LayerProver<F> for MulOp {
    fn reduce(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        index: usize,
        tables: &mut [Cow<'_, [F]>],
        claims: &[Claim<F>],
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Vec<Claim<F>>), ProveError> {
        let claim = single(claims)?;
        let x = take_table(tables, index)?.into_owned();
        // `with` is a fork's output, which other layers read too: copy it.
        let w = tables
            .get(self.with)
            .ok_or_else(|| ProveError::Layer(format!("no table for tensor {}", self.with)))?
            .to_vec();
        let eq = mle::eq_table(&claim.point);
        if x.len() != eq.len() || w.len() != eq.len() {
            return Err(ProveError::Layer(
                "a product's operands do not fit its claim".into(),
            ));
        }
        let mut p = ProductSumProver::new(vec![eq, x, w], vec![(F::one(), vec![0, 1, 2])]);
        let out = prove_sumcheck(&mut p, claim.value, transcript);
        let (vx, vw) = (out.finals[1], out.finals[2]);
        transcript.append_scalar(label::LAYER_EVAL, &vx);
        transcript.append_scalar(label::LAYER_EVAL, &vw);
        let down = [vx, vw]
            .map(|value| Claim {
                point: out.point.clone(),
                value,
            })
            .to_vec();
        Ok((
            LayerProof {
                kind: LayerKind::Mul,
                sumchecks: vec![out.proof],
                evals: vec![vx, vw],
                opened: vec![],
            },
            down,
        ))
    }
}
