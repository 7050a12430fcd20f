//! Lowering a convolution: one linear gate tree per output position and channel over its
//! window taps, planned by buckets of equal shape.

use super::*;

impl Lowering for Conv2dOp {
    /// The plan of a conv layer: its gate buckets and the sizes of its gate layers.
    fn plan(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        let op = self;
        let in_dims = &layer.input.dims;
        let out_dims = &layer.output.dims;
        let Conv2dOp {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            weight,
            bias,
        } = op;
        let g = conv_geometry(
            in_dims,
            out_dims,
            *in_channels,
            *out_channels,
            *kernel,
            *stride,
            *padding,
            at,
        )?;
        let expected =
            g.c.checked_mul(g.kh)
                .and_then(|n| n.checked_mul(g.kw))
                .and_then(|n| n.checked_mul(*out_channels));
        if Some(weight.len()) != expected {
            return Err(shape_err(
                at,
                format!(
                    "{} weights for {out_channels}×{}×{}×{}",
                    weight.len(),
                    g.c,
                    g.kh,
                    g.kw
                ),
            ));
        }
        check_bias(bias.len(), *out_channels, at)?;
        let rows = axis_groups(g.ho, g.h, g.kh, g.sh, g.ph);
        let cols = axis_groups(g.wo, g.w, g.kw, g.sw, g.pw);
        let mut buckets = Vec::new();
        // prefix[(u)*(kw+1)+v]: nonzero weights of output channel o with kernel row < u and
        // column < v, over the input channels.
        let stride_p = g.kw + 1;
        let mut prefix = vec![0usize; (g.kh + 1) * stride_p];
        for o in 0..*out_channels {
            prefix.iter_mut().for_each(|x| *x = 0);
            for c in 0..g.c {
                for u in 0..g.kh {
                    for v in 0..g.kw {
                        if weight[((o * g.c + c) * g.kh + u) * g.kw + v] != 0 {
                            prefix[(u + 1) * stride_p + v + 1] += 1;
                        }
                    }
                }
            }
            for u in 1..=g.kh {
                for v in 1..=g.kw {
                    prefix[u * stride_p + v] += prefix[(u - 1) * stride_p + v]
                        + prefix[u * stride_p + v - 1]
                        - prefix[(u - 1) * stride_p + v - 1];
                }
            }
            let rect = |u0: usize, u1: usize, v0: usize, v1: usize| {
                prefix[u1 * stride_p + v1] + prefix[u0 * stride_p + v0]
                    - prefix[u0 * stride_p + v1]
                    - prefix[u1 * stride_p + v0]
            };
            for &(u0, u1, nr) in &rows {
                for &(v0, v1, nc) in &cols {
                    buckets.push(Bucket {
                        terms: rect(u0, u1, v0, v1),
                        bias: bias[o] != 0,
                        count: nr.saturating_mul(nc).saturating_mul(batch),
                    });
                }
            }
        }
        let skip = weight.iter().all(|&w| w == 0 || w == 1);
        Ok(linear_plan(&buckets, skip))
    }

    fn build(
        &self,
        layer: &CircuitLayer,
        plan: &Plan,
        batch: usize,
        index: usize,
        capacities: &[usize],
    ) -> Result<Vec<Vec<Gate>>, LowerError> {
        let lin = layer.input.item_len();
        let Conv2dOp {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            weight,
            bias,
        } = self;
        build_linear(plan, capacities, |push| {
            let mut leaves: Vec<(u32, i128)> = Vec::new();
            let at = where_(index, layer);
            let g = conv_geometry(
                &layer.input.dims,
                &layer.output.dims,
                *in_channels,
                *out_channels,
                *kernel,
                *stride,
                *padding,
                &at,
            )?;
            for b in 0..batch {
                let base = b * lin;
                for o in 0..*out_channels {
                    for i in 0..g.ho {
                        let (u0, u1) = tap_range(i, g.h, g.kh, g.sh, g.ph);
                        for j in 0..g.wo {
                            let (v0, v1) = tap_range(j, g.w, g.kw, g.sw, g.pw);
                            leaves.clear();
                            for c in 0..g.c {
                                for u in u0..u1 {
                                    let row = g.sh * i + u - g.ph;
                                    for v in v0..v1 {
                                        let wt = weight[((o * g.c + c) * g.kh + u) * g.kw + v];
                                        if wt != 0 {
                                            let col = g.sw * j + v - g.pw;
                                            let wire = base + (c * g.h + row) * g.w + col;
                                            leaves.push((wire as u32, i128::from(wt)));
                                        }
                                    }
                                }
                            }
                            push(&leaves, bias[o])?;
                        }
                    }
                }
            }
            Ok(())
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn conv_geometry(
    in_dims: &[usize],
    out_dims: &[usize],
    in_channels: usize,
    out_channels: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    at: &str,
) -> Result<Geometry, LowerError> {
    let [c, h, w] = dims3(in_dims, "input", at)?;
    let [o, ho, wo] = dims3(out_dims, "output", at)?;
    if c != in_channels || o != out_channels {
        return Err(shape_err(
            at,
            format!("{in_channels}→{out_channels} channels but layouts {in_dims:?} → {out_dims:?}"),
        ));
    }
    let [kh, kw] = kernel;
    let [sh, sw] = stride;
    let [ph, pw] = padding;
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        return Err(shape_err(at, "kernel and stride must be positive"));
    }
    let out_len = |n: usize, k: usize, s: usize, p: usize| {
        n.checked_add(p.checked_mul(2)?)?
            .checked_sub(k)
            .map(|r| r / s + 1)
    };
    if out_len(h, kh, sh, ph) != Some(ho) || out_len(w, kw, sw, pw) != Some(wo) {
        return Err(shape_err(
            at,
            format!(
                "output {out_dims:?} does not match input {in_dims:?}, kernel {kernel:?}, \
                 stride {stride:?}, padding {padding:?}"
            ),
        ));
    }
    Ok(Geometry {
        c,
        h,
        w,
        ho,
        wo,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
    })
}
