//! The convolution's integer kernel: im2col blocks of output positions through the product
//! kernel, written in place into each item's `[out][row][col]` output.

use super::*;

/// The geometry of a validated convolution layer.
pub(super) fn conv_geom(layer: &CircuitLayer) -> Option<ConvGeom> {
    let Op::Conv2d(Conv2dOp {
        in_channels,
        out_channels,
        kernel,
        stride,
        padding,
        ..
    }) = &layer.op
    else {
        return None;
    };
    let [_, h, w] = three(&layer.input.dims)?;
    let [_, ho, wo] = three(&layer.output.dims)?;
    Some(ConvGeom {
        c: *in_channels,
        h,
        w,
        o: *out_channels,
        ho,
        wo,
        kh: kernel[0],
        kw: kernel[1],
        sh: stride[0],
        sw: stride[1],
        ph: padding[0],
        pw: padding[1],
    })
}

/// Shape of a convolution.
pub(super) struct ConvGeom {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) ho: usize,
    pub(super) wo: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) sh: usize,
    pub(super) sw: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
}

/// `Y[o,i,j] = Σ_{c,u,v} W[o,c,u,v]·X[c, sh·i+u−ph, sw·j+v−pw] + B[o]` for every item.
pub(super) fn conv<T: Num>(g: &ConvGeom, w: &[T::W], bias: &[T], x: &[T], batch: usize) -> Vec<T> {
    let kk = g.c * g.kh * g.kw;
    let npos = g.ho * g.wo;
    conv_core(
        g,
        x,
        batch,
        T::zero(),
        |m0, m, patches, cnt, out| {
            gemm::<T>(
                &w[m0 * kk..(m0 + m) * kk],
                patches,
                kk,
                m,
                cnt,
                out,
                npos,
                1,
            )
        },
        |item| {
            for (row, &b) in item.chunks_mut(npos).zip(bias) {
                for v in row {
                    *v = v.add(b);
                }
            }
        },
    )
}

/// The output `[b][o][pos]` of a convolution, written in place. Per item, for each block of
/// output positions: im2col patches `[pos][c·kh·kw]` (`zero` outside the image), then
/// `gemm(first weight row, rows, patches, positions, out)` where `out` starts at the block's
/// first position of the first row (row stride `positions`). Then `finish(item)`.
///
/// Rayon splits items when the batch has several; a single item splits each block's product
/// over groups of output channels (the patches are built once per block).
pub(super) fn conv_core<X: Copy + Send + Sync, O: Copy + Default + Send + Sync>(
    g: &ConvGeom,
    x: &[X],
    batch: usize,
    zero: X,
    gemm: impl Fn(usize, usize, &[X], usize, &mut [O]) + Sync + Send,
    finish: impl Fn(&mut [O]) + Sync + Send,
) -> Vec<O> {
    let kk = g.c * g.kh * g.kw;
    let npos = g.ho * g.wo;
    let item_in = g.c * g.h * g.w;
    let item_out = g.o * npos;
    let per_item_work = item_out.saturating_mul(kk);
    // Positions per im2col block: about 64 KiB of patches (in L2, and below the allocator's
    // mmap threshold), at least one tile.
    let block = ((1usize << 16) / (kk * std::mem::size_of::<X>()).max(1))
        .clamp(2, npos.max(2))
        .next_multiple_of(2);
    let par_items = batch > 1 && per_item_work.saturating_mul(batch) >= PAR_WORK;
    let par_groups = !par_items && block.min(npos) * kk * g.o >= 2 * PAR_WORK;
    // Output channels per task when one item is split: whole register tiles, about 8 tasks.
    let group = g.o.div_ceil(8).next_multiple_of(4);
    let mut out = vec![O::default(); batch * item_out];
    for_chunks(&mut out, item_out, par_items, |bi, item| {
        let xi = &x[bi * item_in..(bi + 1) * item_in];
        let mut patches = Vec::new();
        let mut p0 = 0;
        while p0 < npos {
            let cnt = block.min(npos - p0);
            im2col(g, xi, p0, cnt, zero, &mut patches);
            if par_groups {
                for_chunks(item, group * npos, true, |gi, rows| {
                    gemm(
                        gi * group,
                        rows.len() / npos,
                        &patches,
                        cnt,
                        &mut rows[p0..],
                    )
                });
            } else {
                gemm(0, g.o, &patches, cnt, &mut item[p0..]);
            }
            p0 += cnt;
        }
        finish(item);
    });
    out
}

/// Fills `p` with the patches of output positions `p0 .. p0 + cnt` of one item, row-major
/// `[pos][c][u][v]`, `zero` where the window leaves the image.
pub(super) fn im2col<T: Copy>(
    g: &ConvGeom,
    x: &[T],
    p0: usize,
    cnt: usize,
    zero: T,
    p: &mut Vec<T>,
) {
    let kk = g.c * g.kh * g.kw;
    p.clear();
    p.resize(cnt * kk, zero);
    for (pi, patch) in p.chunks_exact_mut(kk).enumerate() {
        let pos = p0 + pi;
        let (i, j) = (pos / g.wo, pos % g.wo);
        for c in 0..g.c {
            let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for u in 0..g.kh {
                // Row sh·i + u − ph, skipped when outside [0, h).
                let Some(row) = (g.sh * i + u).checked_sub(g.ph).filter(|&r| r < g.h) else {
                    continue;
                };
                let src = &plane[row * g.w..(row + 1) * g.w];
                let dst = &mut patch[(c * g.kh + u) * g.kw..][..g.kw];
                for (v, d) in dst.iter_mut().enumerate() {
                    if let Some(&s) = (g.sw * j + v)
                        .checked_sub(g.pw)
                        .and_then(|col| src.get(col))
                    {
                        *d = s;
                    }
                }
            }
        }
    }
}
