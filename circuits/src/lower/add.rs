//! Lowering a add: refused. Gate layers read only the layer before them, and a residual add reads two tensors, so a
//! residual network has no plain fan-in-2 gate form here; the structured prover handles it.

use super::{Unlowered, NOT_LAYERED};
use crate::ops::AddOp;

impl Unlowered for AddOp {
    const WHY: &'static str = NOT_LAYERED;
}
