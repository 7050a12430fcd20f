//! Prover half of the convolution (`verinfer_verifier::layers::conv`): the kernel sumcheck
//! against the kernel table `T` (built separably in `C·H·W·k` time, the inference cost divided by
//! the output channels and the kernel width), then the window sumcheck against the input.

use super::{batch_fold, from_verify, hand_down, kron, LayerProver};
use crate::sumcheck::{prove as prove_sumcheck, ProductProver};
use crate::ProveError;
use ark_ff::Field;
use rayon::prelude::*;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, Conv2dOp, Layout};
use verinfer_circuits::field::{from_i64, ProofField};
use verinfer_circuits::mle::{self, PAR_THRESHOLD};
use verinfer_verifier::layers::conv::{conv_windows, setup, split_kernel_point};
use verinfer_verifier::layers::{axes, Claim};
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::{label, Transcript};

impl<F: ProofField> LayerProver<F> for Conv2dOp {
    /// `inner`, when given, replaces the input for the kernel table only (a dishonest prover,
    /// see `prove_layer_with_inner`).
    fn prove(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        input: Cow<'_, [F]>,
        inner: Option<&[F]>,
        claim: &Claim<F>,
        transcript: &mut Transcript,
    ) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
        let s = setup(self, layer, batch, claim).map_err(from_verify)?;
        let (c_n, o_n) = (self.in_channels, self.out_channels);
        let [kh, kw] = self.kernel;
        let (cv, uv, vv) = s.vars;
        let (khp, kwp) = (1usize << uv, 1usize << vv);
        let ksize = 1usize << (cv + uv + vv);
        let eq_b = mle::eq_table(&s.r_b);

        // Wr(c,u,v) = Σ_o eq(r_o,o)·W[o,c,u,v], laid out over the padded kernel index.
        let per_o = c_n * kh * kw;
        let mut wr = vec![F::zero(); ksize];
        for (o, row) in self.weight.chunks(per_o).enumerate().take(o_n) {
            let e = s.eq_o[o];
            for (idx, w) in row.iter().enumerate() {
                if *w != 0 {
                    let (c, rest) = (idx / (kh * kw), idx % (kh * kw));
                    let (u, v) = (rest / kw, rest % kw);
                    wr[(c * khp + u) * kwp + v] += e * from_i64::<F>(*w);
                }
            }
        }
        let [ah, aw] = axes(
            &layer.input,
            &layer.output,
            self.kernel,
            self.stride,
            self.padding,
        );
        let t = conv_t_table(
            &layer.input,
            inner.unwrap_or(&input),
            &eq_b,
            (&s.eq_i, ah),
            (&s.eq_j, aw),
            (khp, kwp, ksize),
        );
        let mut p1 = ProductProver::new(wr, t);
        let out1 = prove_sumcheck(&mut p1, s.target, transcript);
        let tau = out1.finals[1];
        transcript.append_scalar(label::LAYER_EVAL, &tau);

        let (t_c, t_u, t_v) = split_kernel_point(&out1.point, s.vars);
        let (s_row, s_col) =
            conv_windows(self, layer, &s, &mle::eq_table(t_u), &mle::eq_table(t_v));
        let g = kron(&[eq_b, mle::eq_table(t_c), s_row, s_col]);
        let mut p2 = ProductProver::new(g, input.into_owned());
        let out2 = prove_sumcheck(&mut p2, tau, transcript);
        Ok(hand_down(
            LayerKind::Conv2d,
            (vec![out1.proof], vec![tau]),
            out2,
            &[],
            transcript,
        ))
    }
}

/// The convolution's kernel table `T(c,u,v) = Σ_{b,i,j} eq(r_b,b)eq(r_i,i)eq(r_j,j)·
/// X[b,c,s_h·i+u−p_h, s_w·j+v−p_w]`, computed separably: first over the batch, then the
/// columns, then the rows.
fn conv_t_table<F: Field>(
    input_layout: &Layout,
    input: &[F],
    eq_b: &[F],
    (eq_i, ah): (&[F], verinfer_circuits::predicates::Axis),
    (eq_j, aw): (&[F], verinfer_circuits::predicates::Axis),
    (khp, kwp, ksize): (usize, usize, usize),
) -> Vec<F> {
    let pd = input_layout.padded_dims();
    let (hp, wp) = (pd[1], pd[2]);
    let c_n = input_layout.dims[0];
    let xb = batch_fold(input, eq_b, input_layout.item_len_padded());
    let per_channel = |c: usize| -> Vec<F> {
        let plane = &xb[c * hp * wp..(c + 1) * hp * wp];
        // R[row][v] = Σ_j eq_j[j]·plane[row][s_w·j + v − p_w]
        let mut rt = vec![F::zero(); ah.input * aw.window];
        for row in 0..ah.input {
            let line = &plane[row * wp..row * wp + wp];
            for v in 0..aw.window {
                let mut acc = F::zero();
                for (j, e) in eq_j.iter().enumerate().take(aw.output) {
                    let pos = aw.stride * j + v;
                    if pos >= aw.padding && pos - aw.padding < aw.input {
                        acc += *e * line[pos - aw.padding];
                    }
                }
                rt[row * aw.window + v] = acc;
            }
        }
        // T[u][v] = Σ_i eq_i[i]·R[s_h·i + u − p_h][v]
        let mut t = vec![F::zero(); khp * kwp];
        for u in 0..ah.window {
            for (i, e) in eq_i.iter().enumerate().take(ah.output) {
                let pos = ah.stride * i + u;
                if pos >= ah.padding && pos - ah.padding < ah.input {
                    let row = pos - ah.padding;
                    for v in 0..aw.window {
                        t[u * kwp + v] += *e * rt[row * aw.window + v];
                    }
                }
            }
        }
        t
    };
    let per_c: Vec<Vec<F>> = if c_n > 1 && input.len() >= PAR_THRESHOLD {
        (0..c_n).into_par_iter().map(per_channel).collect()
    } else {
        (0..c_n).map(per_channel).collect()
    };
    let mut t = vec![F::zero(); ksize];
    for (c, tc) in per_c.into_iter().enumerate() {
        t[c * khp * kwp..(c + 1) * khp * kwp].copy_from_slice(&tc);
    }
    t
}
