//! Lowering a requantization checkpoint: refused. Floor and clamp are not arithmetic over the
//! field, so a checkpointed circuit has no plain fan-in-2 gate form; the structured prover opens
//! the checkpoint instead.

use super::Unlowered;
use crate::ops::RequantOp;

impl Unlowered for RequantOp {
    const WHY: &'static str = "a requantization checkpoint has no gates lowering (floor and \
         clamp are not field arithmetic); use the structured lowering";
}
