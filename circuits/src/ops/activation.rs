//! A quadratic activation: its op struct and the rules every crate relies on (shape, digest). Its
//! integer kernel and bound rule are in `witness/activation.rs`, its gates `lower/activation.rs`,
//! its proof `verinfer_verifier::layers::activation` / `verinfer_prover::layers::activation`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// `Y = a·X² + b·X + c` element-wise on real positions (integers after the quantization rules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationOp {
    /// Coefficient of X².
    pub a: i128,
    /// Coefficient of X.
    pub b: i128,
    /// Constant, added at real positions only.
    pub c: i128,
}

impl OpRules for ActivationOp {
    fn name(&self) -> &'static str {
        "activation"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        if input != output {
            return Err("activation changes the shape".into());
        }
        Ok(())
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(4);
        e.ints(&[self.a, self.b, self.c]);
    }
}
