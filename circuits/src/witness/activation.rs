//! The activation's integer kernel (element-wise, the constant at real positions only) and its
//! bound rule.

use super::*;

impl KernelRule for ActivationOp {
    const ELEMENTWISE: bool = true;

    fn run<T: Num>(
        &self,
        _li: usize,
        _layer: &CircuitLayer,
        _batch: usize,
        x: &[T],
    ) -> Result<Vec<T>, WitnessError> {
        Ok(activation(
            x,
            T::cst(self.a),
            T::cst(self.b),
            T::cst(self.c),
        ))
    }

    fn run_in_place<T: Num>(&self, x: &mut [T]) {
        activation_in_place(x, self.a, self.b, self.c);
    }
}

impl BoundRule for ActivationOp {
    fn bound<D: Domain>(
        &self,
        _layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>> {
        elementwise::<D>(x, inter, |v| D::quadratic(self.a, self.b, self.c, v))
    }
}

/// `Y = (a·X + b)·X + c` element-wise.
pub(super) fn activation<T: Num>(x: &[T], a: T, b: T, c: T) -> Vec<T> {
    map_collect(x, x.len() >= PAR_WORK, |&v| a.mul(v).add(b).mul(v).add(c))
}

/// [`activation`] overwriting its input.
pub(super) fn activation_in_place<T: Num>(x: &mut [T], a: i128, b: i128, c: i128) {
    let (a, b, c) = (T::cst(a), T::cst(b), T::cst(c));
    let par = x.len() >= PAR_WORK;
    for_chunks(x, PAR_WORK, par, |_, chunk| {
        for v in chunk {
            *v = a.mul(*v).add(b).mul(*v).add(c);
        }
    });
}
