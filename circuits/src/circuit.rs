//! The compiled, quantized model: a [`LayeredCircuit`] of structured layers over integer weights.
//!
//! Every layer maps one tensor of values to the next, and the value tensor of each stage is
//! the multilinear extension the GKR protocol talks about.
//!
//! **Layout (docs/protocol.md §4).** A tensor of a batch of `B` items with per-item real dims
//! `d_0 × … × d_{k−1}` is stored zero-padded, every dim (and the batch) rounded up to a power of
//! two, row-major: `index = ((b·D_0 + i_0)·D_1 + i_1)…`, with `D_j` the padded dims. The MLE
//! variables are the index bits, lowest first: the last dim owns the lowest bits, the batch the
//! highest. Flattening `[C, H, W]` to `[C·H·W]` is therefore free: a dense layer sees the
//! per-item bits as one feature index whose real positions are the row-major real ones.
//! Padding positions hold zero, and every layer's reduction proves that they stay zero.
//!
//! The digest covers everything the verifier relies on (ops, integer weights, scales, bounds,
//! quantization parameters, field); it does not depend on the batch size, which the input
//! carries.

use crate::field::FieldId;
use crate::mle;
pub use crate::ops::{
    ActivationOp, AddOp, BranchOp, Conv2dOp, DenseOp, Exact, ForkOp, GatesOp, MaxPoolSpec, MulOp,
    PolynomialOp, RequantOp, SumPoolOp, MAX_LEAKY_SHIFT,
};
use ark_ff::Field;
use serde::{Deserialize, Serialize};

/// How linear layers choose their weights' fractional bits (docs/protocol.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WeightScale {
    /// One `weight_bits` for every layer (the contract default).
    #[default]
    Uniform,
    /// Each linear layer gets the most fractional bits that keep its largest |weight| within
    /// `weight_bits` signed bits.
    PerLayer,
}

/// Quantization parameters (docs/protocol.md §3). Defaults: 8 fractional bits each, uniform weight scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantParams {
    /// Fractional bits of the input (`--input-bits`).
    pub input_bits: u32,
    /// Fractional bits of weights (`--weight-bits`); with `PerLayer`, the signed width.
    pub weight_bits: u32,
    /// Fractional bits of non-integer activation coefficients (`--coef-bits`).
    pub coef_bits: u32,
    /// Uniform or per-layer weight scale (`--weight-scale`).
    pub weight_scale: WeightScale,
}

impl Default for QuantParams {
    fn default() -> Self {
        QuantParams {
            input_bits: 8,
            weight_bits: 8,
            coef_bits: 8,
            weight_scale: WeightScale::Uniform,
        }
    }
}

impl std::str::FromStr for WeightScale {
    type Err = String;

    /// `uniform` or `per-layer` (the command line's and the settings file's spelling).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(WeightScale::Uniform),
            "per-layer" => Ok(WeightScale::PerLayer),
            _ => Err(format!("'{s}': expected uniform or per-layer")),
        }
    }
}

/// Which field to compile for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FieldChoice {
    /// The smallest shipped field whose signed capacity holds every value.
    #[default]
    Auto,
    /// Mersenne-127.
    M127,
    /// BN254.
    Bn254,
}

impl std::str::FromStr for FieldChoice {
    type Err = String;

    /// `auto`, `m127` or `bn254`, any case.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(FieldChoice::Auto),
            "m127" => Ok(FieldChoice::M127),
            "bn254" => Ok(FieldChoice::Bn254),
            _ => Err(format!("'{s}': expected auto, m127 or bn254")),
        }
    }
}

/// How a compiled model is proved (compiler issue, item 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lowering {
    /// One specialised reduction per layer (`verinfer_verifier::layers`): the default.
    #[default]
    Structured,
    /// Every layer as fan-in-2 add/mul gates (`crate::lower`), proved with generic GKR: the
    /// plain-GKR baseline, whose verifier cost grows with the gate count.
    Gates,
}

impl std::str::FromStr for Lowering {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "structured" => Ok(Lowering::Structured),
            "gates" => Ok(Lowering::Gates),
            _ => Err(format!(
                "unknown lowering '{s}' (expected structured or gates)"
            )),
        }
    }
}

/// Per-item real dims of a tensor; see the module docs for the padded layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Real dims, outermost first (`[C, H, W]` or `[F]`).
    pub dims: Vec<usize>,
}

impl Layout {
    /// A layout with the given real dims.
    pub fn new(dims: Vec<usize>) -> Self {
        Layout { dims }
    }

    /// Dims rounded up to powers of two.
    pub fn padded_dims(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d.next_power_of_two()).collect()
    }

    /// Number of real values per item.
    pub fn item_len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Number of padded positions per item (a power of two).
    pub fn item_len_padded(&self) -> usize {
        self.padded_dims().iter().product()
    }

    /// MLE variables per item.
    pub fn item_vars(&self) -> usize {
        self.item_len_padded().trailing_zeros() as usize
    }

    /// MLE variables of a batch of `batch` items.
    pub fn vars(&self, batch: usize) -> usize {
        self.item_vars() + batch_vars(batch)
    }

    /// Padded table length of a batch.
    pub fn len_padded(&self, batch: usize) -> usize {
        1 << self.vars(batch)
    }

    /// Variables of each dim, lowest bits first: `(dim index, first variable, count)`.
    pub fn dim_vars(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::with_capacity(self.dims.len());
        let mut at = 0;
        for (i, d) in self.padded_dims().iter().enumerate().rev() {
            let n = d.trailing_zeros() as usize;
            out.push((i, at, n));
            at += n;
        }
        out
    }

    /// Padded per-item offset of the real per-item row-major index `real`.
    pub fn padded_offset(&self, real: usize) -> usize {
        let padded = self.padded_dims();
        let mut rest = real;
        let mut off = 0;
        let mut stride = 1;
        for (d, p) in self.dims.iter().zip(&padded).rev() {
            off += (rest % d) * stride;
            rest /= d;
            stride *= p;
        }
        off
    }

    /// The padded per-item offset of every real position, in real row-major order.
    pub fn padded_offsets(&self) -> Vec<usize> {
        (0..self.item_len())
            .map(|i| self.padded_offset(i))
            .collect()
    }

    /// Scatters real values (batch-major, row-major per item) into the zero-padded table of a
    /// batch of `batch` items.
    pub fn scatter<T: Copy + Default>(&self, batch: usize, real: &[T]) -> Vec<T> {
        let per = self.item_len_padded();
        let n = self.item_len();
        let mut table = vec![T::default(); self.len_padded(batch)];
        let offsets = self.padded_offsets();
        for (b, item) in real.chunks(n.max(1)).take(batch).enumerate() {
            let base = b * per;
            for (v, off) in item.iter().zip(&offsets) {
                table[base + off] = *v;
            }
        }
        table
    }

    /// The real values (batch-major, row-major per item) of the zero-padded table of a batch
    /// of `batch` items: the inverse of [`Layout::scatter`]. Positions the table lacks are
    /// skipped.
    pub fn gather<T: Copy>(&self, batch: usize, table: &[T]) -> Vec<T> {
        let per = self.item_len_padded();
        let offsets = self.padded_offsets();
        (0..batch)
            .flat_map(|b| offsets.iter().map(move |off| b * per + off))
            .filter_map(|i| table.get(i).copied())
            .collect()
    }

    /// `Ĩ(point)`: the MLE of the indicator of real positions (item dims and batch), evaluated
    /// in O(number of variables). Constants such as biases are added only where it is one.
    pub fn real_indicator<F: Field>(&self, batch: usize, point: &[F]) -> F {
        debug_assert_eq!(point.len(), self.vars(batch));
        let mut acc = F::one();
        for (i, first, n) in self.dim_vars() {
            acc *= mle::less_than_eval(self.dims[i] as u64, &point[first..first + n]);
        }
        let iv = self.item_vars();
        acc * mle::less_than_eval(batch as u64, &point[iv..])
    }
}

/// MLE variables that index `batch` items.
pub fn batch_vars(batch: usize) -> usize {
    crate::gates::vars_for(batch)
}

/// A compiled layer operation over integers, one struct per kind. Scales are already folded
/// in: the operation is exact integer arithmetic on the stage values. (JSON: the struct's
/// fields beside `"op": "<kind>"`.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A 2-D convolution.
    Conv2d(Conv2dOp),
    /// A dense layer.
    Dense(DenseOp),
    /// Sum-pooling.
    SumPool(SumPoolOp),
    /// A quadratic activation.
    Activation(ActivationOp),
    /// Explicit gates.
    Gates(GatesOp),
    /// A requantization checkpoint.
    Requant(RequantOp),
    /// A residual connection (reads two tensors).
    Add(AddOp),
    /// The start of a side branch (reads an earlier tensor).
    Branch(BranchOp),
    /// A tensor several layers read.
    Fork(ForkOp),
    /// A polynomial activation of degree 3 or more.
    Polynomial(PolynomialOp),
    /// An element-wise product of two tensors (reads two tensors).
    Mul(MulOp),
}

impl Op {
    /// Short name of the operation.
    pub fn name(&self) -> &'static str {
        self.spec().name()
    }

    /// Multiply-accumulates per item.
    pub fn macs(&self, output: &Layout) -> u64 {
        self.spec().macs(output)
    }

    /// The integer weights and biases the op stores (both empty for weight-free kinds).
    pub fn weights(&self) -> (&[i64], &[i128]) {
        self.spec().weights()
    }

    /// The circuit tensors the op at layer `index` reads, main input first (0 is the circuit
    /// input, `k + 1` the output of layer `k`): `[index]` but for an add and a branch.
    pub fn reads(&self, index: usize) -> Vec<usize> {
        self.spec().reads(index)
    }
}

/// One stage of the circuit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitLayer {
    /// The operation.
    pub op: Op,
    /// Per-item layout of the input tensor.
    pub input: Layout,
    /// Per-item layout of the output tensor.
    pub output: Layout,
    /// Fractional bits of the output values.
    pub scale_bits: u32,
    /// Worst-case bits `b` with `|v| < 2^b` (from `compile::bound_analysis`) over the layer's
    /// outputs *and* the intermediate magnitudes an integer evaluation passes through: partial
    /// sums of linear layers (`Σ|W|·max|X| + |B|`), of pooling windows (`Σ max|X|`), and the
    /// `|a|·X²`, `|b|·|X|` terms of an activation (`|a|·M² + |b|·M + |c|`), which can exceed the
    /// result through cancellation. Values beyond `i128` are bounded through `f64` with a margin.
    pub bound_bits: u32,
    /// Human-readable description for tables.
    pub label: String,
}

impl CircuitLayer {
    /// Checks that the op, its weights and the two layouts agree. Prover and verifier index
    /// tables by these shapes, so a circuit must pass this before either uses it.
    pub fn check(&self) -> Result<(), String> {
        let (i, o) = (&self.input.dims, &self.output.dims);
        if i.is_empty() || o.is_empty() || i.contains(&0) || o.contains(&0) {
            return Err("empty tensor".into());
        }
        if self.input.item_vars() > MAX_ITEM_VARS || self.output.item_vars() > MAX_ITEM_VARS {
            return Err(format!("tensor larger than 2^{MAX_ITEM_VARS} positions"));
        }
        self.op.spec().check(&self.input, &self.output)
    }
}

/// How many layers read each circuit tensor (0 the input, `k + 1` the output of layer `k`; the
/// output claim not counted). Reads of tensors beyond the last are ignored.
pub(crate) fn readers(layers: &[CircuitLayer]) -> Vec<usize> {
    let mut n = vec![0usize; layers.len() + 1];
    for (k, l) in layers.iter().enumerate() {
        for t in l.op.reads(k) {
            if let Some(c) = n.get_mut(t) {
                *c += 1;
            }
        }
    }
    n
}

/// Largest number of MLE variables per item of any tensor.
pub const MAX_ITEM_VARS: usize = 28;

/// A compiled model: structured layers over integer weights, for one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayeredCircuit {
    /// Model name.
    pub name: String,
    /// The field the circuit is compiled for.
    pub field: FieldId,
    /// Why that field (for `inspect`).
    pub field_reason: String,
    /// Quantization parameters used.
    pub params: QuantParams,
    /// Per-item input layout.
    pub input: Layout,
    /// Fractional bits of the input.
    pub input_scale: u32,
    /// Smallest quantized input value allowed (from the declared range).
    pub input_min: i128,
    /// Largest quantized input value allowed.
    pub input_max: i128,
    /// The stages.
    pub layers: Vec<CircuitLayer>,
}

impl LayeredCircuit {
    /// Checks every layer, that each tensor a layer reads comes before it with the layout the
    /// layer expects, that every layer's output is read (the last one's by the output claim),
    /// and that only a fork's output is read by several layers (the verifier merges claims at
    /// forks only).
    pub fn check(&self) -> Result<(), String> {
        if self.layers.is_empty() {
            return Err("the circuit has no layers".into());
        }
        for (k, layer) in self.layers.iter().enumerate() {
            for t in layer.op.reads(k) {
                if t > k {
                    return Err(format!(
                        "layer {k}: reads tensor {t}, which is not computed before it"
                    ));
                }
                if self.tensor(t) != Some(&layer.input) {
                    return Err(format!(
                        "layer {k}: input layout does not match the layout of tensor {t}"
                    ));
                }
            }
            layer
                .check()
                .map_err(|e| format!("layer {k} ({}): {e}", layer.op.name()))?;
        }
        self.check_readers()
    }

    /// The part of [`LayeredCircuit::check`] about who reads what: every layer's output is
    /// read (the last one's by the output claim), and only a fork's output by several layers.
    pub(crate) fn check_readers(&self) -> Result<(), String> {
        let mut readers = readers(&self.layers);
        readers[self.layers.len()] += 1;
        for (t, &n) in readers.iter().enumerate() {
            let fork = t > 0 && matches!(self.layers[t - 1].op, Op::Fork(_));
            if n == 0 {
                return Err(format!(
                    "tensor {t} (the output of layer {}) is never read",
                    t - 1
                ));
            }
            if n > 1 && !fork {
                return Err(format!(
                    "tensor {t} is read by {n} layers but is not a fork's output"
                ));
            }
        }
        Ok(())
    }

    /// The per-item layout of circuit tensor `t` (0 the input, `k + 1` the output of layer
    /// `k`).
    pub fn tensor(&self, t: usize) -> Option<&Layout> {
        match t {
            0 => Some(&self.input),
            _ => self.layers.get(t - 1).map(|l| &l.output),
        }
    }

    /// For every circuit tensor, the last layer that reads it (`layers.len()` for the output,
    /// which the output claim reads); a tensor no layer reads gets its producer's index.
    pub fn last_reads(&self) -> Vec<usize> {
        let mut last: Vec<usize> = (0..=self.layers.len())
            .map(|t| t.saturating_sub(1))
            .collect();
        for (k, layer) in self.layers.iter().enumerate() {
            for t in layer.op.reads(k) {
                if let Some(l) = last.get_mut(t) {
                    *l = (*l).max(k);
                }
            }
        }
        if let Some(l) = last.last_mut() {
            *l = self.layers.len();
        }
        last
    }

    /// Per-item layout of the output.
    pub fn output(&self) -> &Layout {
        self.layers.last().map(|l| &l.output).unwrap_or(&self.input)
    }

    /// Fractional bits of the output.
    pub fn output_scale(&self) -> u32 {
        self.layers
            .last()
            .map(|l| l.scale_bits)
            .unwrap_or(self.input_scale)
    }

    /// Layout of the input of layer `i` (0-based).
    pub fn layer_input(&self, i: usize) -> &Layout {
        &self.layers[i].input
    }

    /// Bits of the largest |input value| the circuit declares.
    pub fn input_bits(&self) -> u32 {
        bits_of(
            self.input_min
                .unsigned_abs()
                .max(self.input_max.unsigned_abs()),
        )
    }

    /// Largest worst-case value bits over every stage.
    pub fn max_bits(&self) -> u32 {
        let in_bits = bits_of(
            self.input_min
                .unsigned_abs()
                .max(self.input_max.unsigned_abs()),
        );
        self.layers
            .iter()
            .map(|l| l.bound_bits)
            .max()
            .unwrap_or(0)
            .max(in_bits)
    }

    /// Multiply-accumulates per item.
    pub fn macs_per_item(&self) -> u64 {
        self.layers.iter().map(|l| l.op.macs(&l.output)).sum()
    }

    /// The circuit digest: a blake3 hash over a canonical binary encoding of every field above
    /// (integers as zigzag LEB128, so a model of small weights hashes in about a byte per
    /// weight: 12 M two-bit weights take ~20 ms, which the verifier pays once per proof).
    pub fn digest(&self) -> [u8; 32] {
        let mut e = Enc::default();
        e.bytes(b"verinfer/layered-circuit/v1");
        e.bytes(self.name.as_bytes());
        e.uint(self.field.to_byte() as u128);
        e.bytes(self.field_reason.as_bytes());
        let p = &self.params;
        e.uint(p.input_bits as u128);
        e.uint(p.weight_bits as u128);
        e.uint(p.coef_bits as u128);
        e.uint(match p.weight_scale {
            WeightScale::Uniform => 0,
            WeightScale::PerLayer => 1,
        });
        e.dims(&self.input.dims);
        e.uint(self.input_scale as u128);
        e.int(self.input_min);
        e.int(self.input_max);
        e.uint(self.layers.len() as u128);
        for l in &self.layers {
            e.dims(&l.input.dims);
            e.dims(&l.output.dims);
            e.uint(l.scale_bits as u128);
            e.uint(l.bound_bits as u128);
            e.bytes(l.label.as_bytes());
            l.op.spec().encode(&mut e);
        }
        e.finish()
    }
}

/// The canonical encoder behind [`LayeredCircuit::digest`]: every item is length-framed or
/// self-delimiting, so two different circuits never encode alike.
#[derive(Default)]
pub(crate) struct Enc {
    h: blake3::Hasher,
    buf: Vec<u8>,
}

impl Enc {
    fn flush(&mut self) {
        if self.buf.len() >= 1 << 16 {
            self.h.update(&self.buf);
            self.buf.clear();
        }
    }
    pub(crate) fn uint(&mut self, mut v: u128) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                break;
            }
            self.buf.push(byte | 0x80);
        }
        self.flush();
    }
    pub(crate) fn int(&mut self, v: i128) {
        self.uint(((v << 1) ^ (v >> 127)) as u128);
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.uint(b.len() as u128);
        self.buf.extend_from_slice(b);
        self.flush();
    }
    pub(crate) fn dims(&mut self, d: &[usize]) {
        self.uint(d.len() as u128);
        for x in d {
            self.uint(*x as u128);
        }
    }
    pub(crate) fn ints(&mut self, v: &[i128]) {
        self.uint(v.len() as u128);
        for x in v {
            self.int(*x);
        }
    }
    pub(crate) fn ints64(&mut self, v: &[i64]) {
        self.uint(v.len() as u128);
        for x in v {
            self.int(*x as i128);
        }
    }
    fn finish(mut self) -> [u8; 32] {
        self.h.update(&self.buf);
        *self.h.finalize().as_bytes()
    }
}

/// Bits needed for a magnitude (0 for 0).
pub fn bits_of(m: u128) -> u32 {
    128 - m.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{FieldId, M127};
    use crate::gates::GateLayer;
    use ark_ff::{One, UniformRand, Zero};
    use rand::SeedableRng;

    #[test]
    fn padded_offsets_follow_row_major_padded_layout() {
        let l = Layout::new(vec![3, 5, 7]);
        assert_eq!(l.padded_dims(), vec![4, 8, 8]);
        assert_eq!(l.item_vars(), 8);
        // real (c=2, h=4, w=6) -> 2*35 + 4*7 + 6
        assert_eq!(l.padded_offset(2 * 35 + 4 * 7 + 6), 2 * 64 + 4 * 8 + 6);
        assert_eq!(l.dim_vars(), vec![(2, 0, 3), (1, 3, 3), (0, 6, 2)]);
        assert_eq!(l.vars(3), 10);
    }

    #[test]
    fn real_indicator_matches_table() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let l = Layout::new(vec![3, 2, 5]);
        let batch = 3;
        let n = l.vars(batch);
        let mut table = vec![M127::zero(); 1 << n];
        let per = l.item_len_padded();
        for b in 0..batch {
            for off in l.padded_offsets() {
                table[b * per + off] = M127::one();
            }
        }
        let r: Vec<M127> = (0..n).map(|_| M127::rand(&mut rng)).collect();
        assert_eq!(l.real_indicator(batch, &r), mle::evaluate(&table, &r));
    }

    /// A circuit with one layer of every kind, for the digest test.
    fn every_kind() -> LayeredCircuit {
        use crate::gates::Gate;
        let l = |op, i: &[usize], o: &[usize], label: &str| CircuitLayer {
            op,
            input: Layout::new(i.to_vec()),
            output: Layout::new(o.to_vec()),
            scale_bits: 8,
            bound_bits: 20,
            label: label.into(),
        };
        LayeredCircuit {
            name: "d".into(),
            field: FieldId::M127,
            field_reason: "auto".into(),
            params: QuantParams::default(),
            input: Layout::new(vec![1, 4, 4]),
            input_scale: 8,
            input_min: -1,
            input_max: 1,
            layers: vec![
                l(
                    Op::Conv2d(Conv2dOp {
                        in_channels: 1,
                        out_channels: 2,
                        kernel: [3, 3],
                        stride: [1, 1],
                        padding: [1, 1],
                        weight: (0..18).map(|k| k - 9).collect(),
                        bias: vec![3, -4],
                    }),
                    &[1, 4, 4],
                    &[2, 4, 4],
                    "conv",
                ),
                l(
                    Op::Activation(ActivationOp { a: 1, b: 256, c: 0 }),
                    &[2, 4, 4],
                    &[2, 4, 4],
                    "act",
                ),
                l(
                    Op::SumPool(SumPoolOp {
                        window: [2, 2],
                        stride: [2, 2],
                    }),
                    &[2, 4, 4],
                    &[2, 2, 2],
                    "pool",
                ),
                l(
                    Op::Gates(GatesOp {
                        layer: GateLayer {
                            gates: (0..8).map(|k| Gate::Relay(k as u32)).collect(),
                        },
                    }),
                    &[2, 2, 2],
                    &[8],
                    "reshape",
                ),
                l(
                    Op::Dense(DenseOp {
                        in_features: 8,
                        out_features: 1,
                        weight: vec![3, -4, 1, 0, 2, 2, -1, 5],
                        bias: vec![5],
                    }),
                    &[8],
                    &[1],
                    "dense",
                ),
                l(Op::Requant(RequantOp::new(2, 8)), &[1], &[1], "requant"),
                l(Op::Fork(ForkOp {}), &[1], &[1], "fork"),
                l(Op::Branch(BranchOp { from: 7 }), &[1], &[1], "branch"),
                l(
                    Op::Add(AddOp {
                        with: 7,
                        lift: [1, 0],
                        subtract: false,
                    }),
                    &[1],
                    &[1],
                    "add",
                ),
                l(
                    Op::Polynomial(PolynomialOp {
                        coefficients: vec![1, -2, 0, 3],
                    }),
                    &[1],
                    &[1],
                    "poly",
                ),
                l(Op::Mul(MulOp { with: 7 }), &[1], &[1], "mul"),
            ],
        }
    }

    /// Every field of a circuit, changed alone, changes the digest: the verifier relies on all
    /// of them (or reports them), and a proof binds to the digest only.
    #[test]
    fn digest_covers_every_field() {
        use crate::gates::Gate;
        let base = every_kind();
        assert!(base.check().is_ok());
        let d = base.digest();
        assert_eq!(d, base.clone().digest());
        type Edit = fn(&mut LayeredCircuit);
        let edits: Vec<(&str, Edit)> = vec![
            ("name", |c| c.name.push('x')),
            ("field", |c| c.field = FieldId::Bn254),
            ("field reason", |c| c.field_reason.clear()),
            ("input bits", |c| c.params.input_bits += 1),
            ("weight bits", |c| c.params.weight_bits += 1),
            ("coef bits", |c| c.params.coef_bits += 1),
            ("weight scale", |c| {
                c.params.weight_scale = WeightScale::PerLayer
            }),
            ("input dims", |c| c.input.dims = vec![1, 4, 5]),
            ("input scale", |c| c.input_scale += 1),
            ("input min", |c| c.input_min -= 1),
            ("input max", |c| c.input_max += 1),
            ("layer count", |c| {
                c.layers.pop();
            }),
            ("layer input dims", |c| c.layers[4].input.dims = vec![4, 2]),
            ("layer output dims", |c| {
                c.layers[3].output.dims = vec![4, 2]
            }),
            ("scale bits", |c| c.layers[1].scale_bits += 1),
            ("bound bits", |c| c.layers[1].bound_bits += 1),
            ("label", |c| c.layers[0].label.push('x')),
            ("op kind", |c| {
                c.layers[1].op = Op::SumPool(SumPoolOp {
                    window: [1, 1],
                    stride: [1, 1],
                })
            }),
        ];
        let mut variants: Vec<(String, LayeredCircuit)> = edits
            .into_iter()
            .map(|(name, edit)| {
                let mut c = base.clone();
                edit(&mut c);
                (name.to_string(), c)
            })
            .collect();
        // Every parameter of every op.
        for li in 0..base.layers.len() {
            for k in 0..32 {
                let mut c = base.clone();
                match &mut c.layers[li].op {
                    Op::Conv2d(Conv2dOp {
                        in_channels,
                        out_channels,
                        kernel,
                        stride,
                        padding,
                        weight,
                        bias,
                    }) => match k {
                        0 => *in_channels += 1,
                        1 => *out_channels += 1,
                        2 => kernel[0] += 1,
                        3 => kernel[1] += 1,
                        4 => stride[0] += 1,
                        5 => stride[1] += 1,
                        6 => padding[0] += 1,
                        7 => padding[1] += 1,
                        8 => weight[17] += 1,
                        9 => weight.swap(0, 1),
                        10 => bias[1] += 1,
                        11 => {
                            weight.pop();
                        }
                        _ => continue,
                    },
                    Op::Activation(ActivationOp { a, b, c }) => match k {
                        0 => *a += 1,
                        1 => *b += 1,
                        2 => *c += 1,
                        _ => continue,
                    },
                    Op::SumPool(SumPoolOp { window, stride }) => match k {
                        0 => window[0] += 1,
                        1 => window[1] += 1,
                        2 => stride[0] += 1,
                        3 => stride[1] += 1,
                        _ => continue,
                    },
                    Op::Requant(RequantOp {
                        shift,
                        bits,
                        then,
                        pool,
                    }) => match k {
                        0 => *shift += 1,
                        1 => *bits += 1,
                        2 => *then = Exact::Relu,
                        3 => *then = Exact::LeakyRelu { shift: 1 },
                        4 => {
                            *pool = Some(MaxPoolSpec {
                                window: [1, 1],
                                stride: [1, 1],
                            })
                        }
                        _ => continue,
                    },
                    Op::Add(AddOp {
                        with,
                        lift,
                        subtract,
                    }) => match k {
                        0 => *with -= 1,
                        1 => lift[0] += 1,
                        2 => lift[1] += 1,
                        3 => *subtract = true,
                        _ => continue,
                    },
                    Op::Branch(BranchOp { from }) => match k {
                        0 => *from -= 1,
                        _ => continue,
                    },
                    Op::Fork(_) => continue,
                    Op::Mul(MulOp { with }) => match k {
                        0 => *with -= 1,
                        _ => continue,
                    },
                    Op::Polynomial(PolynomialOp { coefficients }) => match k {
                        0 => coefficients[0] += 1,
                        1 => coefficients[3] += 1,
                        2 => coefficients.push(1),
                        3 => coefficients.swap(1, 2),
                        _ => continue,
                    },
                    Op::Gates(GatesOp { layer }) => match k {
                        0..=7 => layer.gates[k] = Gate::Scale(k as u32, 2),
                        8 => layer.gates[0] = Gate::Relay(1),
                        9 => layer.gates[1] = Gate::Add(1, 0),
                        10 => layer.gates[1] = Gate::Mul(1, 1),
                        11 => layer.gates[1] = Gate::Sub(1, 1),
                        12 => layer.gates[1] = Gate::AddConst(1, 0),
                        13 => layer.gates[1] = Gate::Const(1),
                        14 => layer.gates.push(Gate::Const(0)),
                        _ => continue,
                    },
                    Op::Dense(DenseOp {
                        in_features,
                        out_features,
                        weight,
                        bias,
                    }) => match k {
                        0 => *in_features += 1,
                        1 => *out_features += 1,
                        2 => weight[7] -= 1,
                        3 => weight.swap(0, 1),
                        4 => bias[0] += 1,
                        5 => bias.push(0),
                        _ => continue,
                    },
                }
                variants.push((format!("layer {li} op parameter {k}"), c));
            }
        }
        assert!(variants.len() >= 60, "{}", variants.len());
        for (what, v) in &variants {
            assert_ne!(v, &base, "{what}: no change");
            assert_ne!(v.digest(), d, "{what}");
        }
        // And no two variants collide with each other.
        let mut all: Vec<[u8; 32]> = variants.iter().map(|(_, v)| v.digest()).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), variants.len());
    }

    #[test]
    fn check_refuses_absurd_geometry_without_overflow() {
        let conv = |kernel: [usize; 2], padding: [usize; 2], out: usize| CircuitLayer {
            op: Op::Conv2d(Conv2dOp {
                in_channels: 1,
                out_channels: out,
                kernel,
                stride: [1, 1],
                padding,
                weight: vec![1; 9],
                bias: vec![0; 1],
            }),
            input: Layout::new(vec![1, 4, 4]),
            output: Layout::new(vec![1, 4, 4]),
            scale_bits: 0,
            bound_bits: 10,
            label: String::new(),
        };
        assert!(conv([3, 3], [1, 1], 1).check().is_ok());
        assert!(conv([3, 3], [usize::MAX, 1], 1).check().is_err());
        assert!(conv([usize::MAX, 3], [1, 1], 1).check().is_err());
        assert!(conv([3, 3], [1, 1], usize::MAX).check().is_err());
        let dense = CircuitLayer {
            op: Op::Dense(DenseOp {
                in_features: 16,
                out_features: usize::MAX,
                weight: vec![1; 16],
                bias: vec![0; 1],
            }),
            input: Layout::new(vec![16]),
            output: Layout::new(vec![1]),
            scale_bits: 0,
            bound_bits: 10,
            label: String::new(),
        };
        assert!(dense.check().is_err());
    }
}
