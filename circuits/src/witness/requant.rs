//! The requantization checkpoint's integer kernel and its bound rule: the exact contract of
//! [`crate::ops::requant`] element-wise, and a bound analysis that restarts from the clamp range.

use super::*;
use crate::ops::RequantOp;

impl KernelRule for RequantOp {
    fn run<T: Num>(
        &self,
        li: usize,
        layer: &CircuitLayer,
        batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        // Floor and clamp need the integer itself: every value must fit i128 (the compiler
        // guarantees it; a hand-built circuit whose bounds lie gets an error, not a panic).
        let fail = |reason: &str| WitnessError::Shape {
            layer: li,
            op: layer.op.name(),
            reason: reason.into(),
        };
        let ints: Option<Vec<i128>> = x.iter().map(|&v| v.to_int()).collect();
        let ints = ints.ok_or_else(|| fail("a checkpoint input does not fit 127 signed bits"))?;
        let out = self
            .run(&layer.input.dims, batch, &ints)
            .ok_or_else(|| fail("the max-pool window does not fit the input"))?;
        Ok(out.into_iter().map(T::cst).collect())
    }
}

impl BoundRule for RequantOp {
    fn bound<D: Domain>(
        &self,
        layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        let y = elementwise::<D>(x, inter, |v| D::requant(self, v))?;
        match &self.pool {
            None => Some(y),
            // Per item: the bound analysis runs on one item.
            Some(p) => p.pool(&layer.input.dims, 1, &y, D::max),
        }
    }

    fn clamp_range(&self) -> Option<(i128, i128)> {
        Some(self.range())
    }
}
