//! Prover half of the dense reduction (`verinfer_verifier::layers::dense`): Thaler's
//! matrix-multiplication sumcheck over the per-item input bits, with the weight rows folded by
//! `eq(r_o,·)` and the batch folded by `eq(r_b,·)` first.

use super::{batch_fold, from_verify, hand_down, LayerProver};
use crate::sumcheck::{prove as prove_sumcheck, ProductProver};
use crate::ProveError;
use rayon::prelude::*;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, DenseOp};
use verinfer_circuits::field::{from_i64, ProofField};
use verinfer_circuits::mle::{self, PAR_THRESHOLD};
use verinfer_verifier::layers::{dense::setup, Claim};
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::Transcript;

impl<F: ProofField> LayerProver<F> for DenseOp {
    fn prove(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        input: Cow<'_, [F]>,
        _inner: Option<&[F]>,
        claim: &Claim<F>,
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        let s = setup(self, layer, batch, claim).map_err(from_verify)?;
        let eq_b = mle::eq_table(&s.r_b);
        let kp = layer.input.item_len_padded();
        let wr = weight_rows(
            &self.weight,
            self.in_features,
            &s.eq_o,
            &layer.input.padded_offsets(),
            kp,
        );
        let xr = batch_fold(&input, &eq_b, kp);
        let mut p = ProductProver::new(wr, xr);
        let out = prove_sumcheck(&mut p, s.target, transcript);
        Ok(hand_down(
            LayerKind::Dense,
            (vec![], vec![]),
            out,
            &s.r_b,
            transcript,
        ))
    }
}

/// `Wr[off(k)] = Σ_o eq_o[o]·W[o,k]` over the padded feature index (length `kp`).
fn weight_rows<F: ark_ff::PrimeField>(
    weight: &[i64],
    k_real: usize,
    eq_o: &[F],
    offsets: &[usize],
    kp: usize,
) -> Vec<F> {
    let compute = |k0: usize, k1: usize| -> Vec<F> {
        let mut acc = vec![F::zero(); k1 - k0];
        for (o, row) in weight.chunks(k_real.max(1)).enumerate() {
            let e = eq_o[o];
            for (a, w) in acc.iter_mut().zip(&row[k0..k1]) {
                if *w != 0 {
                    *a += e * from_i64::<F>(*w);
                }
            }
        }
        acc
    };
    let cols: Vec<F> = if weight.len() >= PAR_THRESHOLD {
        let chunk = 256;
        let ranges: Vec<(usize, usize)> = (0..k_real)
            .step_by(chunk)
            .map(|s| (s, (s + chunk).min(k_real)))
            .collect();
        ranges
            .into_par_iter()
            .flat_map_iter(|(a, b)| compute(a, b))
            .collect()
    } else {
        compute(0, k_real)
    };
    let mut wr = vec![F::zero(); kp];
    for (v, off) in cols.into_iter().zip(offsets) {
        wr[*off] = v;
    }
    wr
}
