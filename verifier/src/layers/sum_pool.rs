//! Sum-pooling `Y[c,i,j] = Σ_{u<k_h, v<k_w} X[c, s_h·i+u, s_w·j+v]`.
//!
//! - **Aligned** (window = stride = 2^m per axis, tiling the input): `Ỹ(r) = k_h·k_w·X̃(r with
//!   every window bit at ½)`, an identity of multilinear polynomials: no sumcheck, no proof
//!   bytes, no check of its own (a false claim goes down to the layer below).
//! - **General**: one degree-2 sumcheck `y = Σ_x G(x)·X(x)` with
//!   `G = eq(r_b,·) ⊗ eq(r_c,·) ⊗ S_row ⊗ S_col` ([`window_tables`]), ending in `X̃(p) = χ`.

use super::{axes, final_check, take_eval, window_product, window_tables, Claim, LayerRule, Shape};
use crate::proof::{LayerKind, LayerProof};
use crate::sumcheck;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, SumPoolOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_circuits::predicates::split_point;

/// Whether this sum-pool sums disjoint power-of-two windows that tile its input exactly
/// (window = stride = 2^m per axis, input divisible by the window). Such a layer is a
/// relabelling of variables and needs no proof ([`LayerRule::relabels`]).
fn aligned(op: &SumPoolOp, layer: &CircuitLayer) -> bool {
    let d = &layer.input.dims;
    d.len() == 3
        && op.window == op.stride
        && op.window.iter().all(|k| k.is_power_of_two())
        && d[1] % op.window[0] == 0
        && d[2] % op.window[1] == 0
}

/// For a sum-pool that [`LayerRule::relabels`]: the input point that corresponds to the output point `r`
/// (window bits at 1/2) and the factor `1/(k_h·k_w)` that turns the output claim into the input's.
pub fn aligned_pool_point<F: ProofField>(
    layer: &CircuitLayer,
    r: &[F],
    window: [usize; 2],
) -> (Vec<F>, F) {
    let half = F::from(2u64).inverse().unwrap_or_default();
    let (bits_h, bits_w) = (
        window[0].trailing_zeros() as usize,
        window[1].trailing_zeros() as usize,
    );
    let (dims, r_b) = split_point(&layer.output, r);
    // Input bits, lowest first: column window bits, output columns, row window bits, output
    // rows, channels, batch.
    let mut point = Vec::with_capacity(r.len() + bits_h + bits_w);
    point.extend(std::iter::repeat_n(half, bits_w));
    point.extend_from_slice(dims[2]);
    point.extend(std::iter::repeat_n(half, bits_h));
    point.extend_from_slice(dims[1]);
    point.extend_from_slice(dims[0]);
    point.extend_from_slice(r_b);
    let k = F::from((window[0] * window[1]) as u64);
    (point, k.inverse().unwrap_or_default())
}

/// The window tables `(S_row, S_col)` of a general sum-pool for the output point `r` (its
/// per-dim parts, channels first): what the prover sums against and the verifier evaluates.
pub fn pool_windows<F: ProofField>(
    op: &SumPoolOp,
    layer: &CircuitLayer,
    r: &[&[F]],
) -> (Vec<F>, Vec<F>) {
    let ax = axes(&layer.input, &layer.output, op.window, op.stride, [0, 0]);
    window_tables(
        &layer.input,
        ax,
        (&mle::eq_table(r[1]), &mle::eq_table(r[2])),
        None,
    )
}

impl<F: ProofField> LayerRule<F> for SumPoolOp {
    fn relabels(&self, layer: &CircuitLayer) -> bool {
        aligned(self, layer)
    }

    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        if aligned(self, layer) {
            Shape {
                kind: LayerKind::SumPool,
                sumchecks: vec![],
                evals: 0,
                final_checks: 0,
            }
        } else {
            Shape {
                kind: LayerKind::SumPool,
                sumchecks: vec![(layer.input.vars(batch), 2)],
                evals: 1,
                final_checks: 1,
            }
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
        if aligned(self, layer) {
            let (point, scale) = aligned_pool_point(layer, &claim.point, self.window);
            return Ok(Claim {
                point,
                value: claim.value * scale,
            });
        }
        let n = layer.input.vars(batch);
        let sc = sumcheck::verify(&proof.sumchecks[0], claim.value, n, 2, transcript)?;
        let chi = take_eval(proof, 0, transcript);
        let (r, r_b) = split_point(&layer.output, &claim.point);
        let (p, p_b) = split_point(&layer.input, &sc.point);
        let (s_row, s_col) = pool_windows(self, layer, &r);
        let g = window_product((r_b, p_b), (r[0], p[0]), (&s_row, p[1]), (&s_col, p[2]));
        final_check(sc.value, g * chi, index, "sum-pool final evaluation")?;
        Ok(Claim {
            point: sc.point,
            value: chi,
        })
    }
}
