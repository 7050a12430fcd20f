//! The residual add's integer kernel and bound rule. Its input is the concatenation of its two
//! operands (the previous output, then the tensor `with`), as the engine hands a kind that reads
//! two tensors.

use super::*;
use crate::ops::AddOp;

impl KernelRule for AddOp {
    fn run<T: Num>(
        &self,
        li: usize,
        layer: &CircuitLayer,
        _batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        let (a, b) = operands(li, layer, x)?;
        let [fa, fb] = self.factors().map(T::cst);
        Ok(a.iter()
            .zip(b)
            .map(|(&u, &v)| fa.mul(u).add(fb.mul(v)))
            .collect())
    }
}

impl BoundRule for AddOp {
    fn bound<D: Domain>(
        &self,
        _layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        let (a, b) = halves(x)?;
        let [fa, fb] = self.factors().map(D::constant);
        let mut out = Vec::with_capacity(a.len());
        for (&u, &v) in a.iter().zip(b) {
            let (su, sv) = (D::mul(fa, u)?, D::mul(fb, v)?);
            *inter = (*inter).max(D::bits(su)).max(D::bits(sv));
            out.push(D::add(su, sv)?);
        }
        Some(out)
    }
}
