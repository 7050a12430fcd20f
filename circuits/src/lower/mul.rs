//! Lowering an element-wise product of two tensors: refused, as for a residual add (gate layers
//! read only the layer before them).

use super::{Unlowered, NOT_LAYERED};
use crate::ops::MulOp;

impl Unlowered for MulOp {
    const WHY: &'static str = NOT_LAYERED;
}
