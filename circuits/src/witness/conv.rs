//! The convolution's integer kernel (im2col blocks of output positions through the product
//! kernel, written in place into each item's `[out][row][col]` output) and its bound rule.

use super::*;

impl KernelRule for Conv2dOp {
    fn run<T: Num>(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        let g = conv_geom(self, layer).ok_or_else(|| internal(li, layer))?;
        let wt = T::weights(&self.weight);
        let b: Vec<T> = self.bias.iter().map(|&v| T::cst(v)).collect();
        Ok(conv(&g, &wt, &b, x, batch))
    }

    fn linear<'a>(&'a self, layer: &CircuitLayer, _batch: usize) -> Option<Linear<'a>> {
        // Columns per weight: the output positions.
        let item = layer.output.item_len();
        let cols = item / self.out_channels.max(1);
        Linear::new(&self.weight, &self.bias, item, self.out_channels, cols)
    }

    fn products(
        &self,
        layer: &CircuitLayer,
        lin: &Linear,
        batch: usize,
        x: &[i64],
        x_bits: u32,
    ) -> Option<Vec<i64>> {
        let g = conv_geom(self, layer)?;
        if !fits_i16(lin, x_bits) {
            return Some(conv(&g, lin.weight, &vec![0i64; g.o], x, batch));
        }
        let kk = g.c * g.kh * g.kw;
        let w16: Vec<i16> = lin.weight.iter().map(|&w| w as i16).collect();
        let x16: Vec<i16> = x.iter().map(|&v| v as i16).collect();
        let npos = g.ho * g.wo;
        Some(conv_core(
            &g,
            &x16,
            batch,
            0i16,
            |m0, m, p, cnt, out| gemm16(&w16[m0 * kk..(m0 + m) * kk], p, kk, m, cnt, out, npos, 1),
            |_| {},
        ))
    }
}

/// The kernel rows and columns `(u0, u1, v0, v1)` inside the input at one output position.
type Taps = (usize, usize, usize, usize);

impl BoundRule for Conv2dOp {
    fn bound<D: Domain>(
        &self,
        layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        let (&[_, h, w], &[oc, oh, ow]) =
            (layer.input.dims.as_slice(), layer.output.dims.as_slice())
        else {
            return None;
        };
        let ic = self.in_channels;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        // The kernel taps inside the input at output row r (col): a range of kernel rows
        // (cols), the rest fall on zero padding.
        let taps = |o: usize, s: usize, p: usize, k: usize, n: usize| {
            let lo = p.saturating_sub(o * s);
            let hi = (n + p).saturating_sub(o * s).min(k);
            (lo, hi.max(lo))
        };
        // When every input channel holds one bound everywhere (the input range, a checkpoint's
        // clamp range, and what follows them element-wise), an output's bound depends only on
        // its channel and which taps are inside: compute each combination once.
        let plane = h * w;
        let uniform = plane > 0
            && x.len() == ic * plane
            && x.chunks(plane).all(|c| c.iter().all(|v| *v == c[0]));
        let mut out = Vec::with_capacity(oc * oh * ow);
        for oo in 0..oc {
            let b = *self.bias.get(oo)?;
            let mut memo: Vec<(Taps, D::Val, u32)> = Vec::new();
            for r in 0..oh {
                let (u0, u1) = taps(r, sh, ph, kh, h);
                for col in 0..ow {
                    let (v0, v1) = taps(col, sw, pw, kw, w);
                    let key = (u0, u1, v0, v1);
                    if uniform {
                        if let Some(&(_, v, bits)) = memo.iter().find(|m| m.0 == key) {
                            *inter = (*inter).max(bits);
                            out.push(v);
                            continue;
                        }
                    }
                    let mut acc = D::acc(b);
                    for ch in 0..ic {
                        for u in u0..u1 {
                            let ir = r * sh + u - ph;
                            for v in v0..v1 {
                                let icol = col * sw + v - pw;
                                let wt = *self.weight.get(((oo * ic + ch) * kh + u) * kw + v)?;
                                let xv = *x.get((ch * h + ir) * w + icol)?;
                                D::mac(&mut acc, i128::from(wt), xv)?;
                            }
                        }
                    }
                    let (v, bits) = D::finish(acc);
                    *inter = (*inter).max(bits);
                    if uniform {
                        memo.push((key, v, bits));
                    }
                    out.push(v);
                }
            }
        }
        Some(out)
    }
}

/// The geometry of a validated convolution layer.
pub(super) fn conv_geom(op: &Conv2dOp, layer: &CircuitLayer) -> Option<ConvGeom> {
    let [_, h, w] = three(&layer.input.dims)?;
    let [_, ho, wo] = three(&layer.output.dims)?;
    Some(ConvGeom {
        c: op.in_channels,
        h,
        w,
        o: op.out_channels,
        ho,
        wo,
        kh: op.kernel[0],
        kw: op.kernel[1],
        sh: op.stride[0],
        sw: op.stride[1],
        ph: op.padding[0],
        pw: op.padding[1],
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
