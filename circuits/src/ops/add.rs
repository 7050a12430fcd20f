//! A residual connection: its op struct and rules (shape, digest, the tensors it reads). Its
//! integer kernel and bound rule are in `witness/add.rs`, its (refused) gates `lower/add.rs`,
//! its proof `verinfer_verifier::layers::add` / `verinfer_prover::layers::add`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// Largest exact power-of-two lift of an operand: `2^lift` must stay an `i128`.
pub const MAX_LIFT: u32 = 120;

/// `Z = X·2^lift[0] ± W·2^lift[1]` element-wise: `X` the previous layer's output, `W` the
/// circuit tensor `with` (same layout), each lifted to the common scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddOp {
    /// The other operand: circuit tensor index (0 the input, `k + 1` the output of layer `k`).
    pub with: usize,
    /// Bits each operand is shifted left by: `[previous output, with]`.
    pub lift: [u32; 2],
    /// `W` is subtracted.
    #[serde(default)]
    pub subtract: bool,
}

impl AddOp {
    /// The factor of each operand: `[2^lift[0], ±2^lift[1]]`.
    pub fn factors(&self) -> [i128; 2] {
        let [a, b] = self.lift.map(|l| 1i128 << l.min(MAX_LIFT));
        [a, if self.subtract { -b } else { b }]
    }
}

impl OpRules for AddOp {
    fn name(&self) -> &'static str {
        "add"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        if input != output {
            return Err("an add keeps its operands' layout".into());
        }
        if self.lift.iter().any(|&l| l > MAX_LIFT) {
            return Err(format!("lifts an operand by more than {MAX_LIFT} bits"));
        }
        Ok(())
    }

    fn reads(&self, index: usize) -> Vec<usize> {
        vec![index, self.with]
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(7);
        e.uint(self.with as u128);
        e.uint(u128::from(self.lift[0]));
        e.uint(u128::from(self.lift[1]));
        e.uint(u128::from(self.subtract));
    }
}
