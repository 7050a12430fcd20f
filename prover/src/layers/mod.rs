//! Provers of the structured layer reductions. The protocol of each layer and its transcript
//! order are documented in `verinfer_verifier::layers`, which this module mirrors step for step.
//!
//! Every prover builds its sumcheck tables from the layer's input table (the padded field
//! witness) and the integer weights, in time linear in the input, the weights and, for a
//! convolution, `C·H·W·k` for the kernel table (the inference cost divided by the output
//! channels and the kernel width).

use crate::eq_kernel::EqQuadProver;
use crate::gkr::prove_gate_terms;
use crate::sumcheck::{prove as prove_sumcheck, ProductProver};
use crate::ProveError;
use ark_ff::Field;
use rayon::prelude::*;
use std::borrow::Cow;
use verinfer_circuits::circuit::{CircuitLayer, Layout, Op};
use verinfer_circuits::field::{from_i128, from_i64, ProofField};
use verinfer_circuits::mle::{self, PAR_THRESHOLD};
use verinfer_circuits::predicates::{split_point, window_table};
use verinfer_verifier::layers::{
    aligned_pool, aligned_pool_point, axes, bias_at, conv_kernel_vars, Claim,
};
use verinfer_verifier::proof::{LayerKind, LayerProof};
use verinfer_verifier::transcript::label;
use verinfer_verifier::Transcript;

fn konst<F: ProofField>(v: i128) -> Result<F, ProveError> {
    from_i128(v).map_err(|e| ProveError::Circuit(e.into()))
}

/// Proves one layer: reduces `claim` on the layer's output to a claim on its input, whose
/// padded field table is `input` (folded in place when owned, copied when borrowed).
pub fn prove_layer<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    input: Cow<'_, [F]>,
    claim: &Claim<F>,
    transcript: &mut Transcript,
) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
    prove_layer_impl(layer, batch, input, None, claim, transcript)
}

/// A deliberately dishonest [`prove_layer`], for soundness tests only: the layer's inner
/// sumchecks (a convolution's kernel sumcheck, a gate layer's phases) are computed from `inner`
/// while its last reduction, the one that hands the claim down, runs on `input`. A prover that
/// fabricates its input this way passes every check but the layer's last one
/// (docs/soundness.md), which is how the tests show that check is there. Layers with a single
/// sumcheck ignore `inner`.
#[doc(hidden)]
pub fn prove_layer_with_inner<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    input: Cow<'_, [F]>,
    inner: &[F],
    claim: &Claim<F>,
    transcript: &mut Transcript,
) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
    prove_layer_impl(layer, batch, input, Some(inner), claim, transcript)
}

fn prove_layer_impl<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    input: Cow<'_, [F]>,
    inner: Option<&[F]>,
    claim: &Claim<F>,
    transcript: &mut Transcript,
) -> Result<(LayerProof<F>, Claim<F>), ProveError> {
    match &layer.op {
        Op::Activation { a, b, c } => {
            let (a, b, c) = (konst::<F>(*a)?, konst::<F>(*b)?, konst::<F>(*c)?);
            let target = claim.value - c * layer.output.real_indicator(batch, &claim.point);
            let mut p = EqQuadProver::new(&claim.point, input.into_owned(), a, b, target);
            let out = prove_sumcheck(&mut p, target, transcript);
            let chi = out.finals[1];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            Ok((
                LayerProof {
                    kind: LayerKind::Activation,
                    sumchecks: vec![out.proof],
                    evals: vec![chi],
                },
                Claim {
                    point: out.point,
                    value: chi,
                },
            ))
        }
        Op::SumPool { window, .. } if aligned_pool(layer) => {
            let (point, scale) = aligned_pool_point(layer, &claim.point, *window);
            Ok((
                LayerProof {
                    kind: LayerKind::SumPool,
                    sumchecks: vec![],
                    evals: vec![],
                },
                Claim {
                    point,
                    value: claim.value * scale,
                },
            ))
        }
        Op::SumPool { window, stride } => {
            let (r, r_b) = split_point(&layer.output, &claim.point);
            let [ah, aw] = axes(&layer.input, &layer.output, *window, *stride, [0, 0]);
            let pd = layer.input.padded_dims();
            let s_row = window_table(ah, pd[1], None, &mle::eq_table(r[1]));
            let s_col = window_table(aw, pd[2], None, &mle::eq_table(r[2]));
            let g = kron(&[mle::eq_table(r_b), mle::eq_table(r[0]), s_row, s_col]);
            let mut p = ProductProver::new(g, input.into_owned());
            let out = prove_sumcheck(&mut p, claim.value, transcript);
            let chi = out.finals[1];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            Ok((
                LayerProof {
                    kind: LayerKind::SumPool,
                    sumchecks: vec![out.proof],
                    evals: vec![chi],
                },
                Claim {
                    point: out.point,
                    value: chi,
                },
            ))
        }
        Op::Dense {
            in_features,
            weight,
            bias,
            ..
        } => {
            let (r, r_b) = split_point(&layer.output, &claim.point);
            let eq_o = mle::eq_table(r[0]);
            let eq_b = mle::eq_table(r_b);
            let target = claim.value
                - bias_at(bias, &eq_o).map_err(|e| ProveError::Layer(e.to_string()))?
                    * mle::less_than_eval(batch as u64, r_b);
            let kp = layer.input.item_len_padded();
            let wr = weight_rows(
                weight,
                *in_features,
                &eq_o,
                &layer.input.padded_offsets(),
                kp,
            );
            let xr = batch_fold(&input, &eq_b, kp);
            let mut p = ProductProver::new(wr, xr);
            let out = prove_sumcheck(&mut p, target, transcript);
            let chi = out.finals[1];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            let mut point = out.point;
            point.extend_from_slice(r_b);
            Ok((
                LayerProof {
                    kind: LayerKind::Dense,
                    sumchecks: vec![out.proof],
                    evals: vec![chi],
                },
                Claim { point, value: chi },
            ))
        }
        Op::Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            weight,
            bias,
        } => {
            let (c_n, o_n) = (*in_channels, *out_channels);
            let [kh, kw] = *kernel;
            let (r, r_b) = split_point(&layer.output, &claim.point);
            let (r_o, r_i, r_j) = (r[0], r[1], r[2]);
            let (eq_o, eq_i, eq_j, eq_b) = (
                mle::eq_table(r_o),
                mle::eq_table(r_i),
                mle::eq_table(r_j),
                mle::eq_table(r_b),
            );
            let od = &layer.output.dims;
            let ind = mle::less_than_eval(od[1] as u64, r_i)
                * mle::less_than_eval(od[2] as u64, r_j)
                * mle::less_than_eval(batch as u64, r_b);
            let target1 = claim.value
                - bias_at(bias, &eq_o).map_err(|e| ProveError::Layer(e.to_string()))? * ind;
            let (cv, uv, vv) = conv_kernel_vars(c_n, kh, kw);
            let (khp, kwp) = (1usize << uv, 1usize << vv);
            let ksize = 1usize << (cv + uv + vv);

            // Wr(c,u,v) = Σ_o eq(r_o,o)·W[o,c,u,v], laid out over the padded kernel index.
            let per_o = c_n * kh * kw;
            let mut wr = vec![F::zero(); ksize];
            for (o, row) in weight.chunks(per_o).enumerate().take(o_n) {
                let e = eq_o[o];
                for (idx, w) in row.iter().enumerate() {
                    if *w != 0 {
                        let (c, rest) = (idx / (kh * kw), idx % (kh * kw));
                        let (u, v) = (rest / kw, rest % kw);
                        wr[(c * khp + u) * kwp + v] += e * from_i64::<F>(*w);
                    }
                }
            }
            let [ah, aw] = axes(&layer.input, &layer.output, *kernel, *stride, *padding);
            let t = conv_t_table(
                &layer.input,
                inner.unwrap_or(&input),
                &eq_b,
                (&eq_i, ah),
                (&eq_j, aw),
                (khp, kwp, ksize),
            );
            let mut p1 = ProductProver::new(wr, t);
            let out1 = prove_sumcheck(&mut p1, target1, transcript);
            let tau = out1.finals[1];
            transcript.append_scalar(label::LAYER_EVAL, &tau);

            let (t_v, rest) = out1.point.split_at(vv);
            let (t_u, t_c) = rest.split_at(uv);
            let pd = layer.input.padded_dims();
            let s_row = window_table(ah, pd[1], Some(&mle::eq_table(t_u)), &eq_i);
            let s_col = window_table(aw, pd[2], Some(&mle::eq_table(t_v)), &eq_j);
            let g = kron(&[eq_b, mle::eq_table(t_c), s_row, s_col]);
            let mut p2 = ProductProver::new(g, input.into_owned());
            let out2 = prove_sumcheck(&mut p2, tau, transcript);
            let chi = out2.finals[1];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            Ok((
                LayerProof {
                    kind: LayerKind::Conv2d,
                    sumchecks: vec![out1.proof, out2.proof],
                    evals: vec![tau, chi],
                },
                Claim {
                    point: out2.point,
                    value: chi,
                },
            ))
        }
        Op::Gates { layer: gl } => {
            let in_per = layer.input.item_len_padded();
            let out_per = layer.output.item_len_padded();
            let terms = gl.terms::<F>(batch, in_per, out_per)?;
            let has_mul = gl.has_mul();
            let step = prove_gate_terms(
                &terms,
                has_mul,
                inner.unwrap_or(&input).to_vec(),
                &[(F::one(), claim.point.clone())],
                claim.value,
                transcript,
            );
            let mut sumchecks = step.sumchecks;
            let mut evals = step.evals;
            let claim = if has_mul {
                let weighted: Vec<(F, &[F])> = step
                    .points
                    .iter()
                    .map(|(c, p)| (*c, p.as_slice()))
                    .collect();
                let e = mle::eq_table_combined(&weighted);
                let mut p = ProductProver::new(e, input.into_owned());
                let out = prove_sumcheck(&mut p, step.claim, transcript);
                let vq = out.finals[1];
                transcript.append_scalar(label::LAYER_EVAL, &vq);
                sumchecks.push(out.proof);
                evals.push(vq);
                Claim {
                    point: out.point,
                    value: vq,
                }
            } else {
                let (_, point) = step.points.into_iter().next().unwrap_or_default();
                Claim {
                    point,
                    value: step.claim,
                }
            };
            Ok((
                LayerProof {
                    kind: LayerKind::Gates,
                    sumchecks,
                    evals,
                },
                claim,
            ))
        }
    }
}

/// The Kronecker product of tables, first factor outermost (highest bits).
pub fn kron<F: Field>(factors: &[Vec<F>]) -> Vec<F> {
    let mut acc = vec![F::one()];
    for f in factors {
        let mut next = vec![F::zero(); acc.len() * f.len()];
        let fl = f.len();
        if next.len() >= PAR_THRESHOLD {
            next.par_chunks_mut(fl)
                .zip(acc.par_iter())
                .for_each(|(chunk, a)| {
                    for (d, x) in chunk.iter_mut().zip(f) {
                        *d = *a * x;
                    }
                });
        } else {
            for (chunk, a) in next.chunks_mut(fl).zip(&acc) {
                for (d, x) in chunk.iter_mut().zip(f) {
                    *d = *a * x;
                }
            }
        }
        acc = next;
    }
    acc
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

/// `Σ_b eq_b[b]·X[b·per + k]` for every per-item position `k`.
pub fn batch_fold<F: Field>(x: &[F], eq_b: &[F], per: usize) -> Vec<F> {
    let fold = |k0: usize, k1: usize| -> Vec<F> {
        let mut acc = vec![F::zero(); k1 - k0];
        for (item, e) in x.chunks(per).zip(eq_b) {
            for (a, v) in acc.iter_mut().zip(&item[k0..k1]) {
                *a += *e * v;
            }
        }
        acc
    };
    if x.len() >= PAR_THRESHOLD {
        let chunk = 1024.min(per);
        let ranges: Vec<(usize, usize)> = (0..per)
            .step_by(chunk)
            .map(|s| (s, (s + chunk).min(per)))
            .collect();
        ranges
            .into_par_iter()
            .flat_map_iter(|(a, b)| fold(a, b))
            .collect()
    } else {
        fold(0, per)
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
