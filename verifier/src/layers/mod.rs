//! Verification of the structured layer reductions (DESIGN §5).
//!
//! Each function takes a claim `Ỹ(r) = y` on a layer's output MLE and the layer's proof, and
//! returns a claim `X̃(p) = χ` on its input MLE. Together they never touch a value per
//! multiply-accumulate: the verifier's work per layer is its weights, its bias, O(k·n) for the
//! window predicates of a convolution or pooling, and O(number of variables) otherwise.
//!
//! | kind | reduction | sumchecks (degree) | evals |
//! |---|---|---|---|
//! | activation `Y = aX² + bX + c` | `y − c·Ĩ(r) = Σ_x eq(r,x)(aX² + bX)` | 1 (3) | `X̃(p)` |
//! | sum-pool | `y = Σ_x G(x)X(x)`, `G = eq_b ⊗ eq_c ⊗ S_row ⊗ S_col` | 1 (2) | `X̃(p)` |
//! | dense | `y − B̃(r_o)Ĩ(r_b) = Σ_k W̃(r_o,k)·X̃(k, r_b)` | 1 (2) | `X̃(t, r_b)` |
//! | conv2d | (1) `y − B̃Ĩ = Σ_{c,u,v} W̃(r_o,c,u,v)·T(c,u,v)`; (2) `T̃(t) = Σ_x G(x)X(x)` | 2 (2, 2) | `T̃(t)`, `X̃(p)` |
//! | gates | two-phase GKR layer, then one merge sumcheck to a single point | 1–3 (2) | 1–3 |
//!
//! `S_row(row) = Σ_{u,i: s·i+u−p=row} κ(u)·eq(r_i,i)` is the window table of
//! `verinfer_circuits::predicates`, with `κ(u) = eq(t_u,u)` for a convolution and 1 for pooling.

use crate::gkr::verify_gate_terms;
use crate::proof::{LayerKind, LayerProof};
use crate::sumcheck;
use crate::transcript::label;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::{CircuitLayer, Layout, Op};
use verinfer_circuits::field::{from_i128, from_i64, ProofField};
use verinfer_circuits::mle;
use verinfer_circuits::predicates::{mle_at, split_point, window_table, Axis};

/// A claim `Ṽ(point) = value` on one stage's MLE (point in index-bit order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim<F> {
    /// The point.
    pub point: Vec<F>,
    /// The claimed value.
    pub value: F,
}

/// The kind byte a layer's proof must carry.
pub fn kind_of(op: &Op) -> LayerKind {
    match op {
        Op::Activation { .. } => LayerKind::Activation,
        Op::SumPool { .. } => LayerKind::SumPool,
        Op::Dense { .. } => LayerKind::Dense,
        Op::Conv2d { .. } => LayerKind::Conv2d,
        Op::Gates { .. } => LayerKind::Gates,
    }
}

/// The axes of a windowed op (rows, then columns) from its layouts.
pub fn axes(
    input: &Layout,
    output: &Layout,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> [Axis; 2] {
    let d = |l: &Layout, i: usize| l.dims.get(i).copied().unwrap_or(1);
    [
        Axis {
            input: d(input, 1),
            output: d(output, 1),
            window: kernel[0],
            stride: stride[0],
            padding: padding[0],
        },
        Axis {
            input: d(input, 2),
            output: d(output, 2),
            window: kernel[1],
            stride: stride[1],
            padding: padding[1],
        },
    ]
}

fn shape_err(layer: usize, msg: &str) -> VerifyError {
    VerifyError::ProofShape(format!("layer {layer}: {msg}"))
}

fn field_const<F: ProofField>(v: i128) -> Result<F, VerifyError> {
    from_i128(v).map_err(|e| VerifyError::Circuit(e.into()))
}

/// `Σ_o eq_o[o]·B[o]`: the bias MLE at `r_o`.
pub fn bias_at<F: ProofField>(bias: &[i128], eq_o: &[F]) -> Result<F, VerifyError> {
    let mut acc = F::zero();
    for (b, e) in bias.iter().zip(eq_o) {
        if *b != 0 {
            acc += field_const::<F>(*b)? * e;
        }
    }
    Ok(acc)
}

/// Checks that a proof has the right kind and counts before any of it is read.
fn expect_shape<F>(
    proof: &LayerProof<F>,
    kind: LayerKind,
    sumchecks: usize,
    evals: usize,
    layer: usize,
) -> Result<(), VerifyError> {
    if proof.kind != kind || proof.sumchecks.len() != sumchecks || proof.evals.len() != evals {
        return Err(shape_err(
            layer,
            &format!(
                "expected a {kind:?} proof with {sumchecks} sumchecks and {evals} evaluations"
            ),
        ));
    }
    Ok(())
}

/// What a verified layer hands down: the claim on its input and the degree sum its checks add
/// to the soundness error.
#[derive(Clone, Debug)]
pub struct LayerOutcome<F> {
    /// Claim on the layer's input MLE.
    pub claim: Claim<F>,
    /// Σ of round degrees plus final checks of this layer.
    pub degree_sum: u64,
}

/// Reduces a claim on `layer`'s output to a claim on its input, checking `proof`.
/// `index` labels errors (0-based layer index).
pub fn verify_layer<F: ProofField>(
    layer: &CircuitLayer,
    batch: usize,
    claim: &Claim<F>,
    proof: &LayerProof<F>,
    transcript: &mut Transcript,
    index: usize,
) -> Result<LayerOutcome<F>, VerifyError> {
    if claim.point.len() != layer.output.vars(batch) {
        return Err(shape_err(
            index,
            "claim point has the wrong number of variables",
        ));
    }
    match &layer.op {
        Op::Activation { a, b, c } => {
            expect_shape(proof, LayerKind::Activation, 1, 1, index)?;
            let (a, b, c) = (
                field_const::<F>(*a)?,
                field_const::<F>(*b)?,
                field_const::<F>(*c)?,
            );
            let n = layer.input.vars(batch);
            let target = claim.value - c * layer.output.real_indicator(batch, &claim.point);
            let sc = sumcheck::verify(&proof.sumchecks[0], target, n, 3, transcript)?;
            let chi = proof.evals[0];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            let e = mle::eq_eval(&claim.point, &sc.point);
            if sc.value != e * (a * chi * chi + b * chi) {
                return Err(VerifyError::LayerCheck {
                    layer: index + 1,
                    what: "activation final evaluation",
                });
            }
            Ok(LayerOutcome {
                degree_sum: 3 * n as u64 + 1,
                claim: Claim {
                    point: sc.point,
                    value: chi,
                },
            })
        }
        Op::SumPool { window, stride } if aligned_pool(layer) => {
            // Y sums A over whole power-of-two windows, so Ỹ(r) = k_h·k_w·Ã(r with every
            // window bit at 1/2): an identity of multilinear polynomials, no sumcheck needed.
            expect_shape(proof, LayerKind::SumPool, 0, 0, index)?;
            let _ = stride;
            let (point, scale) = aligned_pool_point(layer, &claim.point, *window);
            Ok(LayerOutcome {
                degree_sum: 0,
                claim: Claim {
                    point,
                    value: claim.value * scale,
                },
            })
        }
        Op::SumPool { window, stride } => {
            expect_shape(proof, LayerKind::SumPool, 1, 1, index)?;
            let n = layer.input.vars(batch);
            let sc = sumcheck::verify(&proof.sumchecks[0], claim.value, n, 2, transcript)?;
            let chi = proof.evals[0];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            let (r, r_b) = split_point(&layer.output, &claim.point);
            let (p, p_b) = split_point(&layer.input, &sc.point);
            let [ah, aw] = axes(&layer.input, &layer.output, *window, *stride, [0, 0]);
            let g = window_product(
                &layer.input,
                (r_b, p_b),
                (r[0], p[0]),
                (ah, r[1], p[1], None),
                (aw, r[2], p[2], None),
            );
            if sc.value != g * chi {
                return Err(VerifyError::LayerCheck {
                    layer: index + 1,
                    what: "sum-pool final evaluation",
                });
            }
            Ok(LayerOutcome {
                degree_sum: 2 * n as u64 + 1,
                claim: Claim {
                    point: sc.point,
                    value: chi,
                },
            })
        }
        Op::Dense {
            in_features,
            out_features,
            weight,
            bias,
        } => {
            expect_shape(proof, LayerKind::Dense, 1, 1, index)?;
            if layer.input.item_len() != *in_features
                || weight.len() != in_features * out_features
                || bias.len() != *out_features
            {
                return Err(VerifyError::BadCircuit(format!(
                    "layer {index}: weights do not fit"
                )));
            }
            let (r, r_b) = split_point(&layer.output, &claim.point);
            let eq_o = mle::eq_table(r[0]);
            let ind_b = mle::less_than_eval(batch as u64, r_b);
            let target = claim.value - bias_at(bias, &eq_o)? * ind_b;
            let k_vars = layer.input.item_vars();
            let sc = sumcheck::verify(&proof.sumchecks[0], target, k_vars, 2, transcript)?;
            let chi = proof.evals[0];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            let eq_t = mle::eq_table(&sc.point);
            let g: Vec<F> = layer
                .input
                .padded_offsets()
                .iter()
                .map(|o| eq_t[*o])
                .collect();
            let w_at = weight_mle(weight, *in_features, &g, &eq_o);
            if sc.value != w_at * chi {
                return Err(VerifyError::LayerCheck {
                    layer: index + 1,
                    what: "dense final evaluation",
                });
            }
            let mut point = sc.point;
            point.extend_from_slice(r_b);
            Ok(LayerOutcome {
                degree_sum: 2 * k_vars as u64 + 1,
                claim: Claim { point, value: chi },
            })
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
            expect_shape(proof, LayerKind::Conv2d, 2, 2, index)?;
            let (c_n, o_n) = (*in_channels, *out_channels);
            let [kh, kw] = *kernel;
            if weight.len() != o_n * c_n * kh * kw || bias.len() != o_n {
                return Err(VerifyError::BadCircuit(format!(
                    "layer {index}: weights do not fit"
                )));
            }
            let (r, r_b) = split_point(&layer.output, &claim.point);
            let (r_o, r_i, r_j) = (r[0], r[1], r[2]);
            let eq_o = mle::eq_table(r_o);
            let od = &layer.output.dims;
            let ind = mle::less_than_eval(od[1] as u64, r_i)
                * mle::less_than_eval(od[2] as u64, r_j)
                * mle::less_than_eval(batch as u64, r_b);
            let target1 = claim.value - bias_at(bias, &eq_o)? * ind;
            let (cv, uv, vv) = conv_kernel_vars(c_n, kh, kw);
            let sc1 = sumcheck::verify(&proof.sumchecks[0], target1, cv + uv + vv, 2, transcript)?;
            let tau = proof.evals[0];
            transcript.append_scalar(label::LAYER_EVAL, &tau);
            let (t_v, rest) = sc1.point.split_at(vv);
            let (t_u, t_c) = rest.split_at(uv);
            let (eq_c, eq_u, eq_v) = (mle::eq_table(t_c), mle::eq_table(t_u), mle::eq_table(t_v));
            // g[c,u,v] = eq(t_c,c)·eq(t_u,u)·eq(t_v,v) over the real kernel positions.
            let mut g = Vec::with_capacity(c_n * kh * kw);
            for ec in eq_c.iter().take(c_n) {
                for eu in eq_u.iter().take(kh) {
                    let ecu = *ec * eu;
                    g.extend(eq_v.iter().take(kw).map(|ev| ecu * ev));
                }
            }
            let w_at = weight_mle(weight, c_n * kh * kw, &g, &eq_o);
            if sc1.value != w_at * tau {
                return Err(VerifyError::LayerCheck {
                    layer: index + 1,
                    what: "convolution kernel evaluation",
                });
            }
            let n = layer.input.vars(batch);
            let sc2 = sumcheck::verify(&proof.sumchecks[1], tau, n, 2, transcript)?;
            let chi = proof.evals[1];
            transcript.append_scalar(label::LAYER_EVAL, &chi);
            let (p, p_b) = split_point(&layer.input, &sc2.point);
            let [ah, aw] = axes(&layer.input, &layer.output, *kernel, *stride, *padding);
            let g = window_product(
                &layer.input,
                (r_b, p_b),
                (t_c, p[0]),
                (ah, r_i, p[1], Some(&eq_u)),
                (aw, r_j, p[2], Some(&eq_v)),
            );
            if sc2.value != g * chi {
                return Err(VerifyError::LayerCheck {
                    layer: index + 1,
                    what: "convolution window evaluation",
                });
            }
            Ok(LayerOutcome {
                degree_sum: 2 * (cv + uv + vv + n) as u64 + 2,
                claim: Claim {
                    point: sc2.point,
                    value: chi,
                },
            })
        }
        Op::Gates { layer: gl } => {
            let has_mul = gl.has_mul();
            let phases = if has_mul { 3 } else { 1 };
            expect_shape(proof, LayerKind::Gates, phases, phases, index)?;
            let in_per = layer.input.item_len_padded();
            let out_per = layer.output.item_len_padded();
            if gl.gates.len() > out_per || gl.max_wire().is_some_and(|w| w as usize >= in_per) {
                return Err(VerifyError::BadCircuit(format!(
                    "layer {index}: gate wires out of range"
                )));
            }
            let terms = gl.terms::<F>(batch, in_per, out_per)?;
            let n = layer.input.vars(batch);
            let gk = if has_mul { 2 } else { 1 };
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
            let mut degree_sum = 2 * gk as u64 * n as u64 + 1;
            let claim = if has_mul {
                let sc = sumcheck::verify(&proof.sumchecks[2], value, n, 2, transcript)?;
                let vq = proof.evals[2];
                transcript.append_scalar(label::LAYER_EVAL, &vq);
                let e: F = points
                    .iter()
                    .map(|(c, p)| *c * mle::eq_eval(p, &sc.point))
                    .sum();
                if sc.value != e * vq {
                    return Err(VerifyError::LayerCheck {
                        layer: index + 1,
                        what: "gate-layer merge evaluation",
                    });
                }
                degree_sum += 2 * n as u64 + 1;
                Claim {
                    point: sc.point,
                    value: vq,
                }
            } else {
                let (_, point) = points.into_iter().next().unwrap_or_default();
                Claim { point, value }
            };
            Ok(LayerOutcome { claim, degree_sum })
        }
    }
}

/// `Σ_o eq_o[o]·Σ_k W[o,k]·g[k]`: a weight matrix's MLE at a point, given the eq weights of the
/// output rows and of the (real) input positions.
///
/// Weights are small integers, so when rows are long compared with the weights' range, each row
/// is summed into one bucket per weight value with additions only and the buckets are weighted
/// once: `Σ_k W[k]·g[k] = Σ_v v·(Σ_{W[k]=v} g[k])`. Otherwise each term is one multiplication.
pub fn weight_mle<F: ProofField>(weight: &[i64], row_len: usize, g: &[F], eq_o: &[F]) -> F {
    if row_len == 0 {
        return F::zero();
    }
    let (lo, hi) = weight
        .iter()
        .fold((0i64, 0i64), |(lo, hi), w| (lo.min(*w), hi.max(*w)));
    let span = (hi as i128 - lo as i128 + 1) as usize;
    let use_buckets = span <= 1024 && row_len >= 4 * span;
    let values: Vec<F> = if use_buckets {
        (lo..=hi).map(from_i64::<F>).collect()
    } else {
        Vec::new()
    };
    let mut buckets = vec![F::zero(); if use_buckets { span } else { 0 }];
    let mut acc = F::zero();
    for (row, e) in weight.chunks(row_len).zip(eq_o) {
        let dot = if use_buckets {
            buckets.iter_mut().for_each(|b| *b = F::zero());
            for (w, gk) in row.iter().zip(g) {
                buckets[(*w - lo) as usize] += gk;
            }
            buckets
                .iter()
                .zip(&values)
                .filter(|(_, v)| !v.is_zero())
                .map(|(b, v)| *b * v)
                .sum()
        } else {
            row.iter()
                .zip(g)
                .filter(|(w, _)| **w != 0)
                .map(|(w, gk)| *gk * from_i64::<F>(*w))
                .sum::<F>()
        };
        acc += *e * dot;
    }
    acc
}

/// Whether a sum-pool layer sums disjoint power-of-two windows that tile its input exactly
/// (window = stride = 2^m per axis, input divisible by the window). Such a layer is a
/// relabelling of variables and needs no proof.
pub fn aligned_pool(layer: &CircuitLayer) -> bool {
    match &layer.op {
        Op::SumPool { window, stride } => {
            let d = &layer.input.dims;
            d.len() == 3
                && window == stride
                && window.iter().all(|k| k.is_power_of_two())
                && d[1] % window[0] == 0
                && d[2] % window[1] == 0
        }
        _ => false,
    }
}

/// For an [`aligned_pool`] layer: the input point that corresponds to the output point `r`
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

/// Variables of a convolution's kernel sumcheck: (channels, kernel rows, kernel cols).
pub fn conv_kernel_vars(channels: usize, kh: usize, kw: usize) -> (usize, usize, usize) {
    let v = |n: usize| n.next_power_of_two().trailing_zeros() as usize;
    (v(channels), v(kh), v(kw))
}

/// `G̃(p)` for `G = eq(r_b,·) ⊗ eq(r_c,·) ⊗ S_row ⊗ S_col` over `input`'s padded layout.
/// Each pair is (the output-side point, the input-side point) of one factor.
fn window_product<F: ProofField>(
    input: &Layout,
    (r_b, p_b): (&[F], &[F]),
    (r_c, p_c): (&[F], &[F]),
    (ah, r_i, p_h, kh): (Axis, &[F], &[F], Option<&[F]>),
    (aw, r_j, p_w, kw): (Axis, &[F], &[F], Option<&[F]>),
) -> F {
    let padded = input.padded_dims();
    let s_row = window_table(ah, padded[1], kh, &mle::eq_table(r_i));
    let s_col = window_table(aw, padded[2], kw, &mle::eq_table(r_j));
    mle::eq_eval(r_b, p_b) * mle::eq_eval(r_c, p_c) * mle_at(&s_row, p_h) * mle_at(&s_col, p_w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{UniformRand, Zero};
    use rand::{Rng, SeedableRng};
    use verinfer_circuits::field::M127;

    #[test]
    fn weight_mle_matches_naive_sum() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        // Short rows of wide weights (multiplications) and long rows of small ones (buckets).
        for (rows, len, range) in [
            (3usize, 5usize, 1000i64),
            (4, 300, 3),
            (2, 64, 16),
            (5, 40, 128),
        ] {
            let w: Vec<i64> = (0..rows * len)
                .map(|_| rng.gen_range(-range..range))
                .collect();
            let g: Vec<M127> = (0..len).map(|_| M127::rand(&mut rng)).collect();
            let e: Vec<M127> = (0..rows).map(|_| M127::rand(&mut rng)).collect();
            let mut want = M127::zero();
            for o in 0..rows {
                for k in 0..len {
                    want += e[o] * g[k] * from_i64::<M127>(w[o * len + k]);
                }
            }
            assert_eq!(weight_mle(&w, len, &g, &e), want, "{rows}x{len} ±{range}");
        }
    }
}
