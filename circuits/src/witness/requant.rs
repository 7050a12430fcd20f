//! The requantization checkpoint's integer kernel and its bound rule: the exact contract of
//! [`crate::ops::requant`] element-wise, and a bound analysis that restarts from the clamp range.

use super::*;
use crate::ops::RequantOp;

impl KernelRule for RequantOp {
    fn run<T: Num>(
        &self,
        li: usize,
        layer: &CircuitLayer,
        _batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        // Floor and clamp need the integer itself: every value must fit i128 (the compiler
        // guarantees it; a hand-built circuit whose bounds lie gets an error, not a panic).
        let out: Option<Vec<T>> = x
            .iter()
            .map(|&v| v.to_int().map(|y| T::cst(self.apply(y))))
            .collect();
        out.ok_or_else(|| WitnessError::Shape {
            layer: li,
            op: layer.op.name(),
            reason: "a checkpoint input does not fit 127 signed bits".into(),
        })
    }
}

impl BoundRule for RequantOp {
    fn bound<D: Domain>(
        &self,
        _layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        elementwise::<D>(x, inter, |v| D::requant(self, v))
    }

    fn clamp_range(&self) -> Option<(i128, i128)> {
        Some(self.range())
    }
}
