//! The dense layer's integer kernel (one product of the weights and the batch, then the bias)
//! and its bound rule.

use super::*;

impl KernelRule for DenseOp {
    fn run<T: Num>(
        &self,
        _li: usize,
        _layer: &CircuitLayer,
        batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        let wt = T::weights(&self.weight);
        let b: Vec<T> = self.bias.iter().map(|&v| T::cst(v)).collect();
        Ok(dense(
            &wt,
            &b,
            self.in_features,
            self.out_features,
            x,
            batch,
        ))
    }

    fn linear<'a>(&'a self, layer: &CircuitLayer, batch: usize) -> Option<Linear<'a>> {
        // Columns per weight: the batch items.
        let item = layer.output.item_len();
        Linear::new(&self.weight, &self.bias, item, self.out_features, batch)
    }

    fn products(
        &self,
        _layer: &CircuitLayer,
        lin: &Linear,
        batch: usize,
        x: &[i64],
        x_bits: u32,
    ) -> Option<Vec<i64>> {
        let (k, o) = (self.in_features, self.out_features);
        if !fits_i16(lin, x_bits) {
            return Some(dense(lin.weight, &vec![0i64; o], k, o, x, batch));
        }
        let w16: Vec<i16> = lin.weight.iter().map(|&w| w as i16).collect();
        let x16: Vec<i16> = x.iter().map(|&v| v as i16).collect();
        let outt = dense_core(k, o, batch, |m0, m, chunk| {
            gemm16(
                &w16[m0 * k..(m0 + m) * k],
                &x16,
                k,
                m,
                batch,
                chunk,
                batch,
                1,
            )
        });
        Some(dense_finish(outt, o, batch, |v, _| v))
    }
}

impl BoundRule for DenseOp {
    fn bound<D: Domain>(
        &self,
        _layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        let k = self.in_features;
        let mut out = Vec::with_capacity(self.out_features);
        for oo in 0..self.out_features {
            let mut acc = D::acc(*self.bias.get(oo)?);
            let row = self.weight.get(oo * k..(oo + 1) * k)?;
            for (&wt, &xv) in row.iter().zip(x) {
                D::mac(&mut acc, i128::from(wt), xv)?;
            }
            let (v, bits) = D::finish(acc);
            *inter = (*inter).max(bits);
            out.push(v);
        }
        Some(out)
    }
}

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
