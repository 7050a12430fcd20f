//! The dense layer's integer kernel: one product of the weights and the batch, then the bias.

use super::*;

/// `Y[b][o] = Σ_k W[o][k]·X[b][k] + B[o]`.
pub(super) fn dense<T: Num>(
    w: &[T::W],
    bias: &[T],
    k: usize,
    o: usize,
    x: &[T],
    batch: usize,
) -> Vec<T> {
    let outt = dense_core(k, o, batch, |m0, m, chunk| {
        gemm::<T>(&w[m0 * k..(m0 + m) * k], x, k, m, batch, chunk, batch, 1)
    });
    dense_finish(outt, o, batch, |v, oi| v.add(bias[oi]))
}

/// The products of a dense layer, transposed: `outt[o][b]`, computed by `gemm(first row, rows,
/// out rows)` on tasks that each own whole weight rows (so the weights are streamed once).
pub(super) fn dense_core<O: Copy + Default + Send>(
    k: usize,
    o: usize,
    batch: usize,
    gemm: impl Fn(usize, usize, &mut [O]) + Sync + Send,
) -> Vec<O> {
    let work = o.saturating_mul(k).saturating_mul(batch);
    // Output rows per task: a multiple of the tile height, at least PAR_WORK work, and about
    // 32 tasks for load balance.
    let min_rows = (PAR_WORK / k.saturating_mul(batch).max(1)).max(1);
    let rows = min_rows.max(o.div_ceil(32)).next_multiple_of(4);
    let mut outt = vec![O::default(); o * batch];
    for_chunks(&mut outt, rows * batch, work >= PAR_WORK, |ci, chunk| {
        gemm(ci * rows, chunk.len() / batch, chunk)
    });
    outt
}

/// `out[b][o] = f(outt[o][b], o)`.
pub(super) fn dense_finish<O: Copy + Sync, Y: Copy + Default + Send>(
    outt: Vec<O>,
    o: usize,
    batch: usize,
    f: impl Fn(O, usize) -> Y + Sync + Send,
) -> Vec<Y> {
    let mut out = vec![Y::default(); batch * o];
    for_chunks(&mut out, o, o * batch >= PAR_WORK, |bi, row| {
        for (oi, v) in row.iter_mut().enumerate() {
            *v = f(outt[oi * batch + bi], oi);
        }
    });
    out
}
