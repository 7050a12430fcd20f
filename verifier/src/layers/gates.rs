//! A gate layer inside a structured circuit (e.g. a reshape as relay gates): the two-phase GKR
//! layer of [`crate::gkr`] (phase 1 over the left wires; phase 2 over the right ones when the
//! layer has products), then, with products, one degree-2 merge sumcheck
//! `v_u + α·v_v = Σ_x (eq(u,x) + α·eq(v,x))·X(x)` that hands a single claim `X̃(q) = χ` down.

use super::{final_check, take_eval, Claim, LayerRule, Shape};
use crate::gkr::verify_gate_terms;
use crate::proof::{LayerKind, LayerProof};
use crate::sumcheck;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, GatesOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::gates::LayerTerms;
use verinfer_circuits::mle;

/// The layer's gates as terms over the whole batch, after checking that every wire and gate
/// stays inside the padded layouts.
pub fn terms<F: ProofField>(
    op: &GatesOp,
    layer: &CircuitLayer,
    batch: usize,
) -> Result<LayerTerms<F>, VerifyError> {
    let in_per = layer.input.item_len_padded();
    let out_per = layer.output.item_len_padded();
    let gl = &op.layer;
    if gl.gates.len() > out_per || gl.max_wire().is_some_and(|w| w as usize >= in_per) {
        return Err(VerifyError::BadCircuit("gate wires out of range".into()));
    }
    Ok(gl.terms::<F>(batch, in_per, out_per)?)
}

/// The GKR phases of the layer: 2 with products, 1 without.
pub fn gkr_phases(op: &GatesOp) -> usize {
    if op.layer.has_mul() {
        2
    } else {
        1
    }
}

impl<F: ProofField> LayerRule<F> for GatesOp {
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        let n = layer.input.vars(batch);
        let (sumchecks, final_checks) = if self.layer.has_mul() {
            // Phases 1 and 2 (checked once, at the end of phase 2), then the merge.
            (3, 2)
        } else {
            (1, 1)
        };
        Shape {
            kind: LayerKind::Gates,
            sumchecks: vec![(n, 2); sumchecks],
            evals: sumchecks,
            final_checks,
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
        let terms = terms::<F>(self, layer, batch)?;
        let n = layer.input.vars(batch);
        let gk = gkr_phases(self);
        let has_mul = gk == 2;
        let (value, points) = verify_gate_terms(
            &terms,
            has_mul,
            n,
            &proof.sumchecks[..gk],
            &proof.evals[..gk],
            claim.value,
            &[(F::one(), claim.point.clone())],
            transcript,
            index + 1,
        )?;
        if !has_mul {
            let (_, point) = points.into_iter().next().unwrap_or_default();
            return Ok(Claim { point, value });
        }
        let sc = sumcheck::verify(&proof.sumchecks[2], value, n, 2, transcript)?;
        let vq = take_eval(proof, 2, transcript);
        let e: F = points
            .iter()
            .map(|(c, p)| *c * mle::eq_eval(p, &sc.point))
            .sum();
        final_check(sc.value, e * vq, index, "gate-layer merge evaluation")?;
        Ok(Claim {
            point: sc.point,
            value: vq,
        })
    }
}
