//! Lowering a sum-pool: one addition tree per output over its window.

use super::*;

impl Lowering for SumPoolOp {
    /// The plan of a sum pool layer: its gate buckets and the sizes of its gate layers.
    fn plan(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        let op = self;
        let in_dims = &layer.input.dims;
        let out_dims = &layer.output.dims;
        let SumPoolOp { window, stride } = op;
        let g = pool_geometry(in_dims, out_dims, *window, *stride, at)?;
        let rows = axis_groups(g.ho, g.h, g.kh, g.sh, 0);
        let cols = axis_groups(g.wo, g.w, g.kw, g.sw, 0);
        let mut buckets = Vec::new();
        for &(u0, u1, nr) in &rows {
            for &(v0, v1, nc) in &cols {
                buckets.push(Bucket {
                    terms: (u1 - u0) * (v1 - v0),
                    bias: false,
                    count: nr
                        .saturating_mul(nc)
                        .saturating_mul(g.c)
                        .saturating_mul(batch),
                });
            }
        }
        Ok(linear_plan(&buckets, true))
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
        let SumPoolOp { window, stride } = self;
        build_linear(plan, capacities, |push| {
            let mut leaves: Vec<(u32, i128)> = Vec::new();
            let at = where_(index, layer);
            let g = pool_geometry(&layer.input.dims, &layer.output.dims, *window, *stride, &at)?;
            for b in 0..batch {
                let base = b * lin;
                for c in 0..g.c {
                    for i in 0..g.ho {
                        let (u0, u1) = tap_range(i, g.h, g.kh, g.sh, 0);
                        for j in 0..g.wo {
                            let (v0, v1) = tap_range(j, g.w, g.kw, g.sw, 0);
                            leaves.clear();
                            for u in u0..u1 {
                                for v in v0..v1 {
                                    let wire = base + (c * g.h + g.sh * i + u) * g.w + g.sw * j + v;
                                    leaves.push((wire as u32, 1));
                                }
                            }
                            push(&leaves, 0)?;
                        }
                    }
                }
            }
            Ok(())
        })
    }
}

pub(super) fn pool_geometry(
    in_dims: &[usize],
    out_dims: &[usize],
    window: [usize; 2],
    stride: [usize; 2],
    at: &str,
) -> Result<Geometry, LowerError> {
    let [c, h, w] = dims3(in_dims, "input", at)?;
    let [co, ho, wo] = dims3(out_dims, "output", at)?;
    let [kh, kw] = window;
    let [sh, sw] = stride;
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        return Err(shape_err(at, "window and stride must be positive"));
    }
    // Every window must start inside the input; positions past its end read zero.
    let starts_inside = |n_out: usize, n_in: usize, s: usize| {
        (n_out - 1).checked_mul(s).is_some_and(|last| last < n_in)
    };
    if co != c || !starts_inside(ho, h, sh) || !starts_inside(wo, w, sw) {
        return Err(shape_err(
            at,
            format!(
                "output {out_dims:?} does not match input {in_dims:?}, window {window:?}, \
                 stride {stride:?}"
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
        ph: 0,
        pw: 0,
    })
}
