//! Prover half of a fork (`verinfer_verifier::layers::fork`): the degree-2 sumcheck of the
//! merged weight table `Σ_j α_j·eq(r_j, ·)` against the input table.

use super::{hand_down, take_table, LayerProver};
use crate::sumcheck::{prove as prove_sumcheck, ProductProver};
use crate::ProveError;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, ForkOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_verifier::layers::fork::merge;
use verinfer_verifier::layers::Claim;
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::Transcript;

impl<F: ProofField> LayerProver<F> for ForkOp {
    fn prove(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        input: Cow<'_, [F]>,
        _inner: Option<&[F]>,
        claim: &Claim<F>,
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        merged(input, std::slice::from_ref(claim), transcript)
    }

    fn reduce(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        index: usize,
        tables: &mut [Cow<'_, [F]>],
        claims: &[Claim<F>],
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Vec<Claim<F>>), ProveError> {
        let (lp, claim) = merged(take_table(tables, index)?, claims, transcript)?;
        Ok((lp, vec![claim]))
    }
}

/// The merge sumcheck `Σ_j α_j·y_j = Σ_x (Σ_j α_j·eq(r_j, x))·X(x)` of `claims` on the table
/// `input`.
fn merged<F: ProofField>(
    input: Cow<'_, [F]>,
    claims: &[Claim<F>],
    transcript: &mut Transcript,
) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
    let (alphas, target) = merge(claims, transcript);
    let points: Vec<(F, &[F])> = alphas
        .iter()
        .zip(claims)
        .map(|(a, c)| (*a, c.point.as_slice()))
        .collect();
    let weights = mle::eq_table_combined(&points);
    if weights.len() != input.len() {
        return Err(ProveError::Layer(
            "a fork's claims do not fit its input table".into(),
        ));
    }
    let mut p = ProductProver::new(weights, input.into_owned());
    let out = prove_sumcheck(&mut p, target, transcript);
    Ok(hand_down(
        LayerKind::Fork,
        (vec![], vec![]),
        out,
        &[],
        transcript,
    ))
}
