//! A dense layer: its op struct and the rules every crate relies on (shape, MACs, digest). Its
//! integer kernel and bound rule are in `witness/dense.rs`, its gates `lower/dense.rs`, its proof
//! `verinfer_verifier::layers::dense` / `verinfer_prover::layers::dense`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// `Y[o] = Σ_k W[o,k]·X[k] + B[o]`, `k` over the input's real positions in row-major order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseOp {
    /// Real input features.
    pub in_features: usize,
    /// Outputs.
    pub out_features: usize,
    /// Integer weights, row-major `[out, in]`.
    pub weight: Vec<i64>,
    /// Integer bias per output, at the output scale.
    pub bias: Vec<i128>,
}

impl OpRules for DenseOp {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn macs(&self, _output: &Layout) -> u64 {
        (self.in_features * self.out_features) as u64
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        let (k, o) = (self.in_features, self.out_features);
        if input.item_len() != k
            || output.dims.as_slice() != [o]
            || k.checked_mul(o) != Some(self.weight.len())
            || self.bias.len() != o
        {
            return Err(format!(
                "dense {k}→{o} does not fit layouts {:?} -> {:?} with {} weights and {} biases",
                input.dims,
                output.dims,
                self.weight.len(),
                self.bias.len()
            ));
        }
        Ok(())
    }

    fn weights(&self) -> (&[i64], &[i128]) {
        (&self.weight, &self.bias)
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(2);
        e.dims(&[self.in_features, self.out_features]);
        e.ints64(&self.weight);
        e.ints(&self.bias);
    }
}
