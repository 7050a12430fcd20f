//! Dense `Y[b,o] = Σ_k W[o,k]·X[b,k] + B[o]` (`k` over the input's real positions, so a
//! flatten before it is free): one degree-2 sumcheck over the per-item input bits
//! `y − B̃(r_o)·Ĩ(r_b) = Σ_k W̃(r_o,k)·X̃(k, r_b)`, ending in `X̃(t, r_b) = χ`. The verifier
//! evaluates `W̃(r_o, t)` itself from the integer weights ([`super::weight_mle`]).

use super::{bias_at, final_check, take_eval, weight_mle, Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::sumcheck;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, DenseOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_circuits::predicates::split_point;

/// What both halves derive from the claim `Ỹ(r_o, r_b) = y`.
#[derive(Clone, Debug)]
pub struct DenseSetup<F> {
    /// `eq(r_o, o)` over the padded outputs.
    pub eq_o: Vec<F>,
    /// The batch part of the output point, passed through to the input claim.
    pub r_b: Vec<F>,
    /// `y − B̃(r_o)·Ĩ(r_b)`: the bias only sits at real batch items.
    pub target: F,
}

/// The setup of a dense layer's sumcheck; refuses weights that do not fit the layouts.
pub fn setup<F: ProofField>(
    op: &DenseOp,
    layer: &CircuitLayer,
    batch: usize,
    claim: &Claim<F>,
) -> Result<DenseSetup<F>, VerifyError> {
    if layer.input.item_len() != op.in_features
        || op.weight.len() != op.in_features * op.out_features
        || op.bias.len() != op.out_features
    {
        return Err(VerifyError::BadCircuit("dense weights do not fit".into()));
    }
    let (r, r_b) = split_point(&layer.output, &claim.point);
    let eq_o = mle::eq_table(r[0]);
    let ind_b = mle::less_than_eval(batch as u64, r_b);
    let target = claim.value - bias_at(&op.bias, &eq_o)? * ind_b;
    Ok(DenseSetup {
        eq_o,
        r_b: r_b.to_vec(),
        target,
    })
}

impl<F: ProofField> LayerRule<F> for DenseOp {
    fn shape(&self, layer: &CircuitLayer, _batch: usize) -> Shape {
        Shape {
            kind: LayerKind::Dense,
            sumchecks: vec![(layer.input.item_vars(), 2)],
            evals: 1,
            final_checks: 1,
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
        let s = setup(self, layer, batch, claim)?;
        let k_vars = layer.input.item_vars();
        let sc = sumcheck::verify(&proof.sumchecks[0], s.target, k_vars, 2, transcript)?;
        let chi = take_eval(proof, 0, transcript);
        let eq_t = mle::eq_table(&sc.point);
        let g: Vec<F> = layer
            .input
            .padded_offsets()
            .iter()
            .map(|o| eq_t[*o])
            .collect();
        let w_at = weight_mle(&self.weight, self.in_features, &g, &s.eq_o);
        final_check(sc.value, w_at * chi, index, "dense final evaluation")?;
        let mut point = sc.point;
        point.extend_from_slice(&s.r_b);
        Ok(Claim { point, value: chi })
    }
}
