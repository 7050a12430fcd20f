//! An element-wise product of two tensors (`x·p(x)` in Lee et al.'s composite ReLU): its op
//! struct and rules (shape, digest, the tensors it reads). Its integer kernel and bound rule are
//! in `witness/mul.rs`, its (refused) gates `lower/mul.rs`, its proof
//! `verinfer_verifier::layers::mul` / `verinfer_prover::layers::mul`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// `Z = X ⊙ W` element-wise: `X` the previous layer's output, `W` the circuit tensor `with`
/// (same layout). The scale is the sum of the operands' scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MulOp {
    /// The other operand: circuit tensor index (0 the input, `k + 1` the output of layer `k`).
    pub with: usize,
}

impl OpRules for MulOp {
    fn name(&self) -> &'static str {
        "mul"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        if input != output {
            return Err("a product keeps its operands' layout".into());
        }
        Ok(())
    }

    fn reads(&self, index: usize) -> Vec<usize> {
        vec![index, self.with]
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(11);
        e.uint(self.with as u128);
    }
}
