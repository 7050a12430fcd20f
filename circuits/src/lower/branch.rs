//! Lowering a branch: refused. Gate layers read only the layer before them, and a branch reads an earlier tensor, so a
//! residual network has no plain fan-in-2 gate form here; the structured prover handles it.

use super::{Unlowered, NOT_LAYERED};
use crate::ops::BranchOp;

impl Unlowered for BranchOp {
    const WHY: &'static str = NOT_LAYERED;
}
