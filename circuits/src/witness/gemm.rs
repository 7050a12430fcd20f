//! The register-tiled product kernel `C[m][n] = Σ_k A[m][k]·B[n][k]` shared by dense and
//! convolution layers, and its 16-bit variant.

use super::*;

/// Depth of a `k` block: the data block `NC × KC` stays in L2, a weight tile in L1.
pub(super) const KC: usize = 256;
/// Width of an `n` block.
pub(super) const NC: usize = 64;

/// `out[mi·rs_m + ni·rs_n] = Σ_kk a[mi·k + kk]·b[ni·k + kk]` for `mi < m`, `ni < n`.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm<T: Num>(
    a: &[T::W],
    b: &[T],
    k: usize,
    m: usize,
    n: usize,
    out: &mut [T],
    rs_m: usize,
    rs_n: usize,
) {
    if T::WIDE {
        gemm_tiled::<T, 2, 2>(a, b, k, m, n, out, rs_m, rs_n)
    } else {
        gemm_tiled::<T, 4, 2>(a, b, k, m, n, out, rs_m, rs_n)
    }
}

/// Geometry of one product tile.
#[derive(Clone, Copy)]
pub(super) struct TileAt {
    pub(super) k: usize,
    pub(super) mi: usize,
    pub(super) ni: usize,
    pub(super) k0: usize,
    pub(super) k1: usize,
    pub(super) rs_m: usize,
    pub(super) rs_n: usize,
    pub(super) first: bool,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_tiled<T: Num, const MR: usize, const NR: usize>(
    a: &[T::W],
    b: &[T],
    k: usize,
    m: usize,
    n: usize,
    out: &mut [T],
    rs_m: usize,
    rs_n: usize,
) {
    let mut n0 = 0;
    while n0 < n {
        let n1 = (n0 + NC).min(n);
        let mut k0 = 0;
        while k0 < k {
            let k1 = (k0 + KC).min(k);
            let mut mi = 0;
            while mi < m {
                let mr = MR.min(m - mi);
                let mut ni = n0;
                while ni < n1 {
                    let nr = NR.min(n1 - ni);
                    let at = TileAt {
                        k,
                        mi,
                        ni,
                        k0,
                        k1,
                        rs_m,
                        rs_n,
                        first: k0 == 0,
                    };
                    match (mr, nr) {
                        (4, 2) => tile::<T, 4, 2>(a, b, out, at),
                        (4, 1) => tile::<T, 4, 1>(a, b, out, at),
                        (3, 2) => tile::<T, 3, 2>(a, b, out, at),
                        (3, 1) => tile::<T, 3, 1>(a, b, out, at),
                        (2, 2) => tile::<T, 2, 2>(a, b, out, at),
                        (2, 1) => tile::<T, 2, 1>(a, b, out, at),
                        (1, 2) => tile::<T, 1, 2>(a, b, out, at),
                        _ => tile::<T, 1, 1>(a, b, out, at),
                    }
                    ni += nr;
                }
                mi += mr;
            }
            k0 = k1;
        }
        n0 = n1;
    }
}

/// One `R × C` tile over the `k` block `[k0, k1)`, accumulated in registers.
#[inline(always)]
pub(super) fn tile<T: Num, const R: usize, const C: usize>(
    a: &[T::W],
    b: &[T],
    out: &mut [T],
    at: TileAt,
) {
    let len = at.k1 - at.k0;
    let ar: [&[T::W]; R] = std::array::from_fn(|r| &a[(at.mi + r) * at.k + at.k0..][..len]);
    let br: [&[T]; C] = std::array::from_fn(|c| &b[(at.ni + c) * at.k + at.k0..][..len]);
    let mut acc = [[T::zero(); C]; R];
    for kk in 0..len {
        let xs: [T; C] = std::array::from_fn(|c| br[c][kk]);
        for r in 0..R {
            let w = ar[r][kk];
            for c in 0..C {
                acc[r][c] = acc[r][c].mac(w, xs[c]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let o = &mut out[(at.mi + r) * at.rs_m + (at.ni + c) * at.rs_n];
            *o = if at.first { v } else { o.add(v) };
        }
    }
}

/// Width of an `n` block of the 16-bit kernel.
pub(super) const NC16: usize = 128;

/// [`gemm`] on 16-bit operands with wrapping 32-bit accumulators (exact when every partial sum
/// fits, see [`fits_i16`]). The inner loop is a plain multiply-accumulate over `k` that LLVM
/// turns into SSE2 `pmaddwd`: eight products per instruction.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm16(
    a: &[i16],
    b: &[i16],
    k: usize,
    m: usize,
    n: usize,
    out: &mut [i64],
    rs_m: usize,
    rs_n: usize,
) {
    let mut n0 = 0;
    while n0 < n {
        let n1 = (n0 + NC16).min(n);
        let mut mi = 0;
        while mi < m {
            let mr = 2.min(m - mi);
            let mut ni = n0;
            while ni < n1 {
                let nr = 2.min(n1 - ni);
                let at = TileAt {
                    k,
                    mi,
                    ni,
                    k0: 0,
                    k1: k,
                    rs_m,
                    rs_n,
                    first: true,
                };
                match (mr, nr) {
                    (2, 2) => tile16::<2, 2>(a, b, out, at),
                    (2, 1) => tile16::<2, 1>(a, b, out, at),
                    (1, 2) => tile16::<1, 2>(a, b, out, at),
                    _ => tile16::<1, 1>(a, b, out, at),
                }
                ni += nr;
            }
            mi += mr;
        }
        n0 = n1;
    }
}

/// One `R × C` tile of [`gemm16`] over all of `k`.
#[inline(always)]
pub(super) fn tile16<const R: usize, const C: usize>(
    a: &[i16],
    b: &[i16],
    out: &mut [i64],
    at: TileAt,
) {
    let len = at.k1 - at.k0;
    let ar: [&[i16]; R] = std::array::from_fn(|r| &a[(at.mi + r) * at.k + at.k0..][..len]);
    let br: [&[i16]; C] = std::array::from_fn(|c| &b[(at.ni + c) * at.k + at.k0..][..len]);
    let mut acc = [[0i32; C]; R];
    for kk in 0..len {
        for r in 0..R {
            let w = i32::from(ar[r][kk]);
            for c in 0..C {
                acc[r][c] = acc[r][c].wrapping_add(w.wrapping_mul(i32::from(br[c][kk])));
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[(at.mi + r) * at.rs_m + (at.ni + c) * at.rs_n] = i64::from(v);
        }
    }
}
