//! One file per layer kind with the op struct and the rules the whole workspace relies on:
//! its name, its multiply-accumulates, the shapes it accepts ([`crate::circuit::CircuitLayer::check`]),
//! its digest encoding and what it stores.
//!
//! **The one dispatch over the op in this crate** is [`Op::kind`]: it hands out the layer kind as
//! a [`LayerOp`], the sum of one trait per concern, each implemented in the file named for the
//! kind in that concern's folder:
//! - [`OpRules`] here, in `ops/<kind>.rs`;
//! - the bound rule ([`crate::bounds::BoundRule`]) and the integer kernel (`witness::KernelRule`)
//!   in `witness/<kind>.rs`;
//! - the gate lowering (`lower::Lowering`) in `lower/<kind>.rs`.

mod activation;
mod add;
mod branch;
mod conv;
mod dense;
mod fork;
mod gates;
mod mul;
mod polynomial;
mod requant;
mod sum_pool;

pub use activation::ActivationOp;
pub use add::{AddOp, MAX_LIFT};
pub use branch::BranchOp;
pub use conv::Conv2dOp;
pub use dense::DenseOp;
pub use fork::ForkOp;
pub use gates::GatesOp;
pub use mul::MulOp;
pub use polynomial::{PolynomialOp, MAX_POLY_DEGREE};
pub use requant::{
    requant, Exact, MaxPoolSpec, RequantOp, MAX_LEAKY_SHIFT, MAX_REQUANT_BITS,
    MAX_REQUANT_INPUT_BITS, MIN_REQUANT_BITS,
};
pub use sum_pool::SumPoolOp;

use crate::bounds::Bounds;
use crate::circuit::{Enc, Layout, Op};
use crate::field::{Bn254, ProofField};
use crate::lower::Lowering;
use crate::witness::Kernel;

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
    /// The integer weights and biases it stores (none for weight-free kinds).
    fn weights(&self) -> (&[i64], &[i128]) {
        (&[], &[])
    }
    /// Explicit gates per item (none for structured kinds).
    fn gate_count(&self) -> usize {
        0
    }
    /// The most bits an input value may need, for kinds that read their input as a machine
    /// integer (a checkpoint reads `i128`); `None`: field arithmetic, any size.
    fn max_input_bits(&self) -> Option<u32> {
        None
    }
    /// The circuit tensors the op at layer `index` reads (0 is the circuit input, `k + 1` the
    /// output of layer `k`), its main input first: the previous layer's output, except for an
    /// add (that and another) and a branch (another instead).
    fn reads(&self, index: usize) -> Vec<usize> {
        vec![index]
    }
}

/// A layer kind with every concern: its rules, its bound rule, its integer kernel (on machine
/// integers and on the proof field `F`) and its gate lowering.
pub(crate) trait LayerOp<F>: OpRules + Bounds + Kernel<F> + Lowering {}

impl<F, T: OpRules + Bounds + Kernel<F> + Lowering> LayerOp<F> for T {}

impl Op {
    /// This op's kind, with its kernel on the field `F`.
    pub(crate) fn kind<F: ProofField>(&self) -> &dyn LayerOp<F> {
        match self {
            Op::Conv2d(op) => op,
            Op::Dense(op) => op,
            Op::SumPool(op) => op,
            Op::Activation(op) => op,
            Op::Gates(op) => op,
            Op::Requant(op) => op,
            Op::Add(op) => op,
            Op::Branch(op) => op,
            Op::Fork(op) => op,
            Op::Polynomial(op) => op,
            Op::Mul(op) => op,
        }
    }

    /// This op's kind for the concerns that do not depend on a field (rules, bounds, lowering):
    /// the field parameter only picks which field kernel is reachable, and callers of this do
    /// not use it.
    pub(crate) fn spec(&self) -> &dyn LayerOp<Bn254> {
        self.kind()
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
