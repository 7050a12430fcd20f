//! A 2-D convolution: its op struct and the rules every crate relies on (shape, MACs, digest). Its
//! integer kernel and bound rule are in `witness/conv.rs`, its gates `lower/conv.rs`, its proof
//! `verinfer_verifier::layers::conv` / `verinfer_prover::layers::conv`.

use super::{windowed, OpRules};
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// `Y[o,i,j] = Σ_{c,u,v} W[o,c,u,v]·X[c, s_h·i+u−p_h, s_w·j+v−p_w] + B[o]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dOp {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[s_h, s_w]`.
    pub stride: [usize; 2],
    /// Zero padding `[p_h, p_w]`.
    pub padding: [usize; 2],
    /// Integer weights, row-major `[out, in, kh, kw]`.
    pub weight: Vec<i64>,
    /// Integer bias per output channel, at the output scale.
    pub bias: Vec<i128>,
}

impl OpRules for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn macs(&self, output: &Layout) -> u64 {
        (output.item_len() * self.in_channels * self.kernel[0] * self.kernel[1]) as u64
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        let (c_in, c_out, kernel) = (self.in_channels, self.out_channels, self.kernel);
        windowed(
            input,
            output,
            (kernel, self.stride, self.padding),
            (c_in, c_out),
        )?;
        let weights = c_out
            .checked_mul(c_in)
            .and_then(|x| x.checked_mul(kernel[0]))
            .and_then(|x| x.checked_mul(kernel[1]));
        if weights != Some(self.weight.len()) || self.bias.len() != c_out {
            return Err(format!(
                "{} weights and {} biases do not fit {c_out}·{c_in}·{}·{}",
                self.weight.len(),
                self.bias.len(),
                kernel[0],
                kernel[1]
            ));
        }
        Ok(())
    }

    fn weights(&self) -> (&[i64], &[i128]) {
        (&self.weight, &self.bias)
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(1);
        e.dims(&[self.in_channels, self.out_channels]);
        e.dims(&self.kernel);
        e.dims(&self.stride);
        e.dims(&self.padding);
        e.ints64(&self.weight);
        e.ints(&self.bias);
    }
}
