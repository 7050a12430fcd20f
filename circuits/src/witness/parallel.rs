//! Splitting element-wise work across rayon threads above a work threshold.

/// Runs `f(chunk index, chunk)` over `out.chunks_mut(chunk)`, on rayon when `par`.
pub(super) fn for_chunks<T: Send>(
    out: &mut [T],
    chunk: usize,
    par: bool,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunk = chunk.max(1);
    #[cfg(feature = "parallel")]
    if par && out.len() > chunk && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
        return;
    }
    let _ = par;
    out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
}

/// `(0..n).map(f).collect()`, on rayon when `par`.
pub(super) fn map_collect<T: Send, U: Sync>(
    src: &[U],
    par: bool,
    f: impl Fn(&U) -> T + Sync + Send,
) -> Vec<T> {
    #[cfg(feature = "parallel")]
    if par {
        use rayon::prelude::*;
        return src.par_iter().with_min_len(1 << 12).map(f).collect();
    }
    let _ = par;
    src.iter().map(f).collect()
}
