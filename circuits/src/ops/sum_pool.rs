//! Sum-pooling: its op struct and the rules every crate relies on (shape, digest). Its integer
//! kernel and bound rule are in `witness/sum_pool.rs`, its gates `lower/sum_pool.rs`, its proof
//! `verinfer_verifier::layers::sum_pool` / `verinfer_prover::layers::sum_pool`.

use super::{windowed, OpRules};
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// `Y[c,i,j] = Σ_{u<k_h, v<k_w} X[c, s_h·i+u, s_w·j+v]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumPoolOp {
    /// Window `[k_h, k_w]`.
    pub window: [usize; 2],
    /// Stride `[s_h, s_w]`.
    pub stride: [usize; 2],
}

impl OpRules for SumPoolOp {
    fn name(&self) -> &'static str {
        "sum_pool"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        let c = input.dims[0];
        windowed(input, output, (self.window, self.stride, [0, 0]), (c, c))
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(3);
        e.dims(&self.window);
        e.dims(&self.stride);
    }
}
