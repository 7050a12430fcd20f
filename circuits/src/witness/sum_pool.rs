//! The sum-pool's integer kernel.

use super::*;

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
