//! A gate layer's integer kernel (per item, over padded offsets) and its bound rule.

use super::*;

impl KernelRule for GatesOp {
    fn run<T: Num>(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        gates(li, &self.layer.gates, &layer.input, &layer.output, x, batch)
    }
}

impl BoundRule for GatesOp {
    fn bound<D: Domain>(
        &self,
        layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        // Input value at a padded offset: the real value there, or zero padding.
        let mut at: Vec<D::Val> = vec![D::zero(); layer.input.item_len_padded()];
        for (k, off) in layer.input.padded_offsets().into_iter().enumerate() {
            *at.get_mut(off)? = *x.get(k)?;
        }
        let get = |w: u32| at.get(w as usize).copied();
        let mut vals = Vec::with_capacity(self.layer.gates.len());
        for g in &self.layer.gates {
            let v = match *g {
                Gate::Add(p, q) => D::add(get(p)?, get(q)?)?,
                Gate::Sub(p, q) => D::sub(get(p)?, get(q)?)?,
                Gate::Mul(p, q) => D::mul(get(p)?, get(q)?)?,
                Gate::Scale(p, k) => D::mul(get(p)?, D::constant(k))?,
                Gate::AddConst(p, k) => D::add(get(p)?, D::constant(k))?,
                Gate::Relay(p) => get(p)?,
                Gate::Const(k) => D::constant(k),
            };
            // Gates at padding positions count too (they should be zero).
            *inter = (*inter).max(D::bits(v));
            vals.push(v);
        }
        Some(
            layer
                .output
                .padded_offsets()
                .into_iter()
                .map(|off| vals.get(off).copied().unwrap_or_else(D::zero))
                .collect(),
        )
    }
}

/// Explicit gates per item, on the padded per-item layouts.
pub(super) fn gates<T: Num>(
    li: usize,
    gates: &[Gate],
    input: &Layout,
    output: &Layout,
    x: &[T],
    batch: usize,
) -> Result<Vec<T>, WitnessError> {
    let (in_len, out_len) = (input.item_len(), output.item_len());
    let in_offs = input.padded_offsets();
    let out_offs = output.padded_offsets();
    let mut real = vec![false; output.item_len_padded()];
    for &o in &out_offs {
        real[o] = true;
    }
    let in_pad = input.item_len_padded();
    let per_item = |bi: usize, dst: &mut [T]| -> Result<(), WitnessError> {
        let mut wires = vec![T::zero(); in_pad];
        for (&off, &v) in in_offs.iter().zip(&x[bi * in_len..(bi + 1) * in_len]) {
            wires[off] = v;
        }
        let v = |w: u32| wires[w as usize];
        let vals: Vec<T> = gates
            .iter()
            .map(|gate| match *gate {
                Gate::Add(a, b) => v(a).add(v(b)),
                Gate::Sub(a, b) => v(a).sub(v(b)),
                Gate::Mul(a, b) => v(a).mul(v(b)),
                Gate::Scale(a, c) => v(a).mul(T::cst(c)),
                Gate::AddConst(a, c) => v(a).add(T::cst(c)),
                Gate::Relay(a) => v(a),
                Gate::Const(c) => T::cst(c),
            })
            .collect();
        if let Some(gate) = (0..vals.len()).find(|&gi| !real[gi] && !vals[gi].is_zero()) {
            return Err(WitnessError::NonZeroPadding {
                layer: li,
                item: bi,
                gate,
            });
        }
        for (d, &off) in dst.iter_mut().zip(&out_offs) {
            *d = vals.get(off).copied().unwrap_or(T::zero());
        }
        Ok(())
    };
    let mut out = vec![T::zero(); batch * out_len];
    let par = batch > 1 && batch * gates.len() >= PAR_WORK;
    let items: Vec<usize> = (0..batch).collect();
    #[cfg(feature = "parallel")]
    if par {
        use rayon::prelude::*;
        return out
            .par_chunks_mut(out_len.max(1))
            .zip(items.par_iter())
            .try_for_each(|(dst, &bi)| per_item(bi, dst))
            .map(|()| out);
    }
    let _ = par;
    for (dst, &bi) in out.chunks_mut(out_len.max(1)).zip(&items) {
        per_item(bi, dst)?;
    }
    Ok(out)
}
