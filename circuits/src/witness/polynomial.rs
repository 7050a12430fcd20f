//! The polynomial activation's integer kernel (Horner, element-wise, the constant at real
//! positions only) and its bound rule.

use super::*;
use crate::circuit::PolynomialOp;

impl KernelRule for PolynomialOp {
    const ELEMENTWISE: bool = true;

    fn run<T: Num>(
        &self,
        _li: usize,
        _layer: &CircuitLayer,
        _batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        // Wrapping Horner is exact whenever the result fits the type (module docs), whatever the
        // partial values do.
        Ok(map_collect(x, x.len() >= PAR_WORK, |&v| self.eval(v)))
    }

    fn run_in_place<T: Num>(&self, x: &mut [T]) {
        for_chunks(x, PAR_WORK, x.len() >= PAR_WORK, |_, chunk| {
            for v in chunk {
                *v = self.eval(*v);
            }
        });
    }
}

impl BoundRule for PolynomialOp {
    fn bound<D: Domain>(
        &self,
        _layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        D::polynomial(&self.coefficients, x, inter)
    }
}
