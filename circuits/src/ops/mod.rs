//! One file per layer kind with the op struct and the rules the whole workspace relies on:
//! its name, its multiply-accumulates, the shapes it accepts ([`crate::circuit::CircuitLayer::check`])
//! and its digest encoding. [`Op::rules`] is the dispatch over the kinds for these.

mod activation;
mod conv;
mod dense;
mod gates;
mod sum_pool;

pub use activation::ActivationOp;
pub use conv::Conv2dOp;
pub use dense::DenseOp;
pub use gates::GatesOp;
pub use sum_pool::SumPoolOp;

use crate::circuit::{Enc, Layout, Op};

/// What every kind of op says about itself.
pub(crate) trait OpRules {
    /// Short name of the operation.
    fn name(&self) -> &'static str;
    /// Multiply-accumulates per item.
    fn macs(&self, _output: &Layout) -> u64 {
        0
    }
    /// Checks that the op, its weights and the two layouts agree.
    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String>;
    /// Writes the op's kind tag and parameters into the circuit digest.
    fn encode(&self, e: &mut Enc);
}

impl Op {
    /// The rules of this op's kind.
    pub(crate) fn rules(&self) -> &dyn OpRules {
        match self {
            Op::Conv2d(op) => op,
            Op::Dense(op) => op,
            Op::SumPool(op) => op,
            Op::Activation(op) => op,
            Op::Gates(op) => op,
        }
    }
}

/// The shape rule of a windowed op (convolution, pooling) on `[C, H, W]` tensors: the output is
/// `[ch_out, (H + 2p − k)/s + 1, (W + 2p − k)/s + 1]` and the input has `ch_in` channels,
/// computed with checked arithmetic (circuits can come from files).
fn windowed(
    input: &Layout,
    output: &Layout,
    (k, s, p): ([usize; 2], [usize; 2], [usize; 2]),
    (ch_in, ch_out): (usize, usize),
) -> Result<(), String> {
    let (i, o) = (&input.dims, &output.dims);
    if i.len() != 3 || o.len() != 3 {
        return Err("needs [C, H, W] tensors".to_string());
    }
    let out = |n: usize, k: usize, s: usize, p: usize| {
        let span = p.checked_mul(2).and_then(|p2| n.checked_add(p2))?;
        (s > 0 && k > 0).then(|| span.checked_sub(k).map(|d| d / s + 1))?
    };
    let (Some(ho), Some(wo)) = (out(i[1], k[0], s[0], p[0]), out(i[2], k[1], s[1], p[1])) else {
        return Err(format!(
            "kernel {k:?}, stride {s:?}, padding {p:?} do not fit input {i:?}"
        ));
    };
    let want = [ch_out, ho, wo];
    if i[0] != ch_in || o.as_slice() != want {
        return Err(format!(
            "layouts {i:?} -> {o:?} do not fit the op (expected -> {want:?})"
        ));
    }
    Ok(())
}
