//! Lowering a fork: refused. Gate layers read only the layer before them, and a fork's output is read by several layers, so a
//! residual network has no plain fan-in-2 gate form here; the structured prover handles it.

use super::{Unlowered, NOT_LAYERED};
use crate::ops::ForkOp;

impl Unlowered for ForkOp {
    const WHY: &'static str = NOT_LAYERED;
}
