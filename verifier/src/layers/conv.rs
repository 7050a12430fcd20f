//! Convolution `Y[o,i,j] = Σ_{c,u,v} W[o,c,u,v]·X[c, s_h·i+u−p_h, s_w·j+v−p_w] + B[o]`: two
//! degree-2 sumchecks.
//! 1. Kernel: `y − B̃(r_o)·Ĩ(r_i,r_j,r_b) = Σ_{c,u,v} W̃(r_o,c,u,v)·T(c,u,v)` with
//!    `T(c,u,v) = Σ_{b,i,j} eq(r_b,b)eq(r_i,i)eq(r_j,j)·X[b,c,s_h·i+u−p_h,s_w·j+v−p_w]`; it ends at
//!    `t = (t_c,t_u,t_v)` and the prover sends `τ = T̃(t)`. The verifier evaluates `W̃` itself.
//! 2. Window: `τ = Σ_x G(x)·X(x)` with `G = eq(r_b,·) ⊗ eq(t_c,·) ⊗ S_row ⊗ S_col`, the window
//!    tables weighted by `κ(u) = eq(t_u,u)`, `κ(v) = eq(t_v,v)`; it ends in `X̃(p) = χ`.

use super::{
    axes, bias_at, final_check, take_eval, window_product, window_tables, Claim, LayerRule, Shape,
};
use crate::proof::{LayerKind, LayerProof};
use crate::sumcheck;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, Conv2dOp};
use verinfer_circuits::field::ProofField;
use verinfer_circuits::mle;
use verinfer_circuits::predicates::split_point;

/// Variables of a convolution's kernel sumcheck: (channels, kernel rows, kernel cols).
pub fn conv_kernel_vars(channels: usize, kh: usize, kw: usize) -> (usize, usize, usize) {
    let v = |n: usize| n.next_power_of_two().trailing_zeros() as usize;
    (v(channels), v(kh), v(kw))
}

/// What both halves derive from the claim `Ỹ(r_o, r_i, r_j, r_b) = y`.
#[derive(Clone, Debug)]
pub struct ConvSetup<F> {
    /// `eq(r_o,·)` over the padded output channels.
    pub eq_o: Vec<F>,
    /// `eq(r_i,·)` over the padded output rows.
    pub eq_i: Vec<F>,
    /// `eq(r_j,·)` over the padded output columns.
    pub eq_j: Vec<F>,
    /// The batch part of the output point.
    pub r_b: Vec<F>,
    /// The kernel sumcheck's claimed sum `y − B̃(r_o)·Ĩ(r_i,r_j,r_b)`.
    pub target: F,
    /// Kernel sumcheck variables (channels, rows, cols).
    pub vars: (usize, usize, usize),
}

/// The setup of a convolution's kernel sumcheck; refuses weights that do not fit.
pub fn setup<F: ProofField>(
    op: &Conv2dOp,
    layer: &CircuitLayer,
    batch: usize,
    claim: &Claim<F>,
) -> Result<ConvSetup<F>, VerifyError> {
    let (c_n, o_n) = (op.in_channels, op.out_channels);
    let [kh, kw] = op.kernel;
    if op.weight.len() != o_n * c_n * kh * kw || op.bias.len() != o_n {
        return Err(VerifyError::BadCircuit(
            "convolution weights do not fit".into(),
        ));
    }
    let (r, r_b) = split_point(&layer.output, &claim.point);
    let (r_o, r_i, r_j) = (r[0], r[1], r[2]);
    let eq_o = mle::eq_table(r_o);
    let od = &layer.output.dims;
    let ind = mle::less_than_eval(od[1] as u64, r_i)
        * mle::less_than_eval(od[2] as u64, r_j)
        * mle::less_than_eval(batch as u64, r_b);
    let target = claim.value - bias_at(&op.bias, &eq_o)? * ind;
    Ok(ConvSetup {
        eq_o,
        eq_i: mle::eq_table(r_i),
        eq_j: mle::eq_table(r_j),
        r_b: r_b.to_vec(),
        target,
        vars: conv_kernel_vars(c_n, kh, kw),
    })
}

/// Splits the kernel sumcheck's point into `(t_c, t_u, t_v)` (lowest bits are the columns).
pub fn split_kernel_point<F>(
    point: &[F],
    (_, uv, vv): (usize, usize, usize),
) -> (&[F], &[F], &[F]) {
    let (t_v, rest) = point.split_at(vv);
    let (t_u, t_c) = rest.split_at(uv);
    (t_c, t_u, t_v)
}

/// The window tables `(S_row, S_col)` of the window sumcheck, each kernel position weighted by
/// `eq_u = eq(t_u,·)` / `eq_v = eq(t_v,·)`.
pub fn conv_windows<F: ProofField>(
    op: &Conv2dOp,
    layer: &CircuitLayer,
    s: &ConvSetup<F>,
    eq_u: &[F],
    eq_v: &[F],
) -> (Vec<F>, Vec<F>) {
    let ax = axes(
        &layer.input,
        &layer.output,
        op.kernel,
        op.stride,
        op.padding,
    );
    window_tables(&layer.input, ax, (&s.eq_i, &s.eq_j), Some((eq_u, eq_v)))
}

impl<F: ProofField> LayerRule<F> for Conv2dOp {
    fn shape(&self, layer: &CircuitLayer, batch: usize) -> Shape {
        let (cv, uv, vv) = conv_kernel_vars(self.in_channels, self.kernel[0], self.kernel[1]);
        Shape {
            kind: LayerKind::Conv2d,
            sumchecks: vec![(cv + uv + vv, 2), (layer.input.vars(batch), 2)],
            evals: 2,
            final_checks: 2,
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
        let (c_n, [kh, kw]) = (self.in_channels, self.kernel);
        let (cv, uv, vv) = s.vars;
        let sc1 = sumcheck::verify(&proof.sumchecks[0], s.target, cv + uv + vv, 2, transcript)?;
        let tau = take_eval(proof, 0, transcript);
        let (t_c, t_u, t_v) = split_kernel_point(&sc1.point, s.vars);
        let (eq_c, eq_u, eq_v) = (mle::eq_table(t_c), mle::eq_table(t_u), mle::eq_table(t_v));
        // g[c,u,v] = eq(t_c,c)·eq(t_u,u)·eq(t_v,v) over the real kernel positions.
        let mut g = Vec::with_capacity(c_n * kh * kw);
        for ec in eq_c.iter().take(c_n) {
            for eu in eq_u.iter().take(kh) {
                let ecu = *ec * eu;
                g.extend(eq_v.iter().take(kw).map(|ev| ecu * ev));
            }
        }
        let w_at = super::weight_mle(&self.weight, c_n * kh * kw, &g, &s.eq_o);
        final_check(
            sc1.value,
            w_at * tau,
            index,
            "convolution kernel evaluation",
        )?;
        let n = layer.input.vars(batch);
        let sc2 = sumcheck::verify(&proof.sumchecks[1], tau, n, 2, transcript)?;
        let chi = take_eval(proof, 1, transcript);
        let (p, p_b) = split_point(&layer.input, &sc2.point);
        let (s_row, s_col) = conv_windows(self, layer, &s, &eq_u, &eq_v);
        let g = window_product((&s.r_b, p_b), (t_c, p[0]), (&s_row, p[1]), (&s_col, p[2]));
        final_check(sc2.value, g * chi, index, "convolution window evaluation")?;
        Ok(Claim {
            point: sc2.point,
            value: chi,
        })
    }
}
