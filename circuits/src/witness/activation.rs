//! The activation's integer kernel (element-wise, the constant at real positions only).

use super::*;

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
