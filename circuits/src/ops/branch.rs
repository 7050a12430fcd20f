//! The start of a side branch: its op struct and rules. It computes nothing: its output is the
//! earlier tensor `from`, so a claim on it is a claim on that tensor. Its kernel and bound rule
//! are in `witness/branch.rs`, its (refused) gates `lower/branch.rs`, its proof (none)
//! `verinfer_verifier::layers::branch` / `verinfer_prover::layers::branch`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// `Y = T_from`: continues from circuit tensor `from` instead of the previous layer's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchOp {
    /// The tensor passed on: circuit tensor index (0 the input, `k + 1` the output of layer `k`).
    pub from: usize,
}

impl OpRules for BranchOp {
    fn name(&self) -> &'static str {
        "branch"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        if input != output {
            return Err("a branch passes its tensor on unchanged".into());
        }
        Ok(())
    }

    fn reads(&self, _index: usize) -> Vec<usize> {
        vec![self.from]
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(8);
        e.uint(self.from as u128);
    }
}
