//! The sum-pool's integer kernel and its bound rule.

use super::*;

impl KernelRule for SumPoolOp {
    fn run<T: Num>(
        &self,
        _li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        let d = &layer.input.dims;
        let o = &layer.output.dims;
        Ok(sum_pool(
            x,
            batch * d[0],
            [d[1], d[2]],
            [o[1], o[2]],
            self.window,
            self.stride,
        ))
    }
}

impl BoundRule for SumPoolOp {
    fn bound<D: Domain>(
        &self,
        layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        let (&[c, h, w], &[_, oh, ow]) =
            (layer.input.dims.as_slice(), layer.output.dims.as_slice())
        else {
            return None;
        };
        let (window, stride) = (self.window, self.stride);
        let mut out = Vec::with_capacity(c * oh * ow);
        for ch in 0..c {
            for r in 0..oh {
                for col in 0..ow {
                    let mut acc = D::acc(0);
                    for u in 0..window[0] {
                        for v in 0..window[1] {
                            let (ir, icol) = (r * stride[0] + u, col * stride[1] + v);
                            if ir >= h || icol >= w {
                                return None;
                            }
                            D::mac(&mut acc, 1, *x.get((ch * h + ir) * w + icol)?)?;
                        }
                    }
                    let (v, bits) = D::finish(acc);
                    *inter = (*inter).max(bits);
                    out.push(v);
                }
            }
        }
        Some(out)
    }
}

/// `Y[c,i,j] = Σ_{u<kh, v<kw} X[c, sh·i+u, sw·j+v]` over `planes` (batch × channel) planes.
pub(super) fn sum_pool<T: Num>(
    x: &[T],
    planes: usize,
    [h, w]: [usize; 2],
    [ho, wo]: [usize; 2],
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
) -> Vec<T> {
    let mut out = vec![T::zero(); planes * ho * wo];
    let par = planes * ho * wo * kh * kw >= PAR_WORK;
    for_chunks(&mut out, ho * wo, par, |pl, dst| {
        let src = &x[pl * h * w..(pl + 1) * h * w];
        for (i, drow) in dst.chunks_exact_mut(wo).enumerate() {
            for u in 0..kh {
                let srow = &src[(sh * i + u) * w..][..w];
                for v in 0..kw {
                    for (j, d) in drow.iter_mut().enumerate() {
                        *d = d.add(srow[sw * j + v]);
                    }
                }
            }
        }
    });
    out
}
