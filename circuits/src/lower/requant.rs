//! Lowering a requantization checkpoint: refused. Floor and clamp are not arithmetic over the
//! field, so a checkpointed circuit has no plain fan-in-2 gate form; the structured prover opens
//! the checkpoint instead.

use super::*;
use crate::ops::RequantOp;

impl Lowering for RequantOp {
    fn plan(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        Err(shape_err(
            at,
            "a requantization checkpoint has no gates lowering (floor and clamp are not field \
             arithmetic); use the structured lowering",
        ))
    }

    fn build(
        &self,
        _layer: &CircuitLayer,
        _plan: &Plan,
        _batch: usize,
        index: usize,
        _capacities: &[usize],
    ) -> Result<Vec<Vec<Gate>>, LowerError> {
        Err(LowerError::Internal(format!(
            "layer {index}: a checkpoint was planned"
        )))
    }
}
