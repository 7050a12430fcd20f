//! The element-wise product's integer kernel and bound rule. Its input is the concatenation of
//! its two operands (the previous output, then the tensor `with`).

use super::*;
use crate::ops::MulOp;

impl KernelRule for MulOp {
    fn run<T: Num>(
        &self,
        li: usize,
        layer: &CircuitLayer,
        _batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        let (a, b) = operands(li, layer, x)?;
        Ok(a.iter().zip(b).map(|(&u, &v)| u.mul(v)).collect())
    }
}

impl BoundRule for MulOp {
    fn bound<D: Domain>(
        &self,
        _layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        let (a, b) = halves(x)?;
        let mut out = Vec::with_capacity(a.len());
        for (&u, &v) in a.iter().zip(b) {
            let p = D::mul(u, v)?;
            *inter = (*inter).max(D::bits(p));
            out.push(p);
        }
        Some(out)
    }
}
