//! The `gates` lowering: a compiled [`LayeredCircuit`] as a plain layered circuit of fan-in-2
//! gates ([`GateCircuit`]), proved with the generic GKR protocol.
//!
//! It is the plain-GKR baseline that shows what the structured sumchecks save, built to be a
//! reasonable gate circuit rather than an artificially bad one:
//!
//! - **Wires.** The input layer is the real input values of the batch, batch-major, row-major per
//!   item (no padding). Every model stage ends on a gate layer that holds its real output values
//!   in the same order; the last one is the circuit's output.
//! - **Linear stages** (Conv2d, Dense, SumPool). One *leaf* layer with a gate per nonzero
//!   weight×input term (`Scale`, or `Relay` for weight 1; zero weights are skipped), then a
//!   pairwise `Add` tree per output (`Relay` for an odd element). The bias rides on the first
//!   `Relay` of the tree as an `AddConst`, so it costs no gate; a tree always has such a slot
//!   because its depth counts the bias as one more leaf. An output without terms is
//!   `Const(bias)`. When every nonzero coefficient of a stage is 1 (sum-pooling, 0/1 weights) the
//!   leaf layer is skipped and the tree adds the stage's input wires directly. Shallower trees
//!   (border outputs of a padded convolution) are carried up with `Relay`s, so every output of a
//!   stage arrives on the same layer.
//! - **Activation** `a·X² + b·X + c`, per element: `X²` is one `Mul` layer; `X² + b·X` is
//!   `[Mul(x,x), Scale(x,b)]` then `Add` (two layers); the general case is
//!   `[Mul(x,x), Scale(x,b)]`, `[Scale(m,a), AddConst(s,c)]`, `Add` (three layers). The other
//!   special cases (`b = 0`, `c = 0`, `b = 1`, `a = 0`) take one to three layers.
//! - **Gates** stages: one gate layer per stage, the per-item gates replicated over the batch,
//!   wires remapped from padded per-item offsets to real indices. A wire at a padding position
//!   reads zero, and the gate is simplified accordingly (`Add(x, pad)` is `Relay(x)`, …). Gates
//!   at padding output positions are dropped; real output positions beyond the layer's gate list
//!   are zero.
//!
//! Sizes are analysed before anything is built ([`lowered_stats`]): a lowering whose gate layer or
//! total gate count exceeds [`GateLimits`] is refused with [`LowerError::TooLarge`], never an
//! out-of-memory abort.

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

use crate::circuit::{ActivationOp, Conv2dOp, DenseOp, GatesOp, SumPoolOp};
use crate::circuit::{CircuitLayer, LayeredCircuit, Layout};
use crate::gates::{Gate, GateCircuit, GateLayer, MAX_LAYER_VARS};
use std::collections::BTreeMap;
use thiserror::Error;

/// Default largest number of gates in one gate layer of a lowering: 2^26.
pub const MAX_LAYER_GATES: usize = 1 << 26;

/// Default largest number of gates of a whole lowering: 2^27 (a gate takes 32 bytes in memory).
pub const MAX_TOTAL_GATES: usize = 1 << 27;

/// Size limits of a lowering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateLimits {
    /// Largest number of gates (or input wires) in one layer; capped at `2^MAX_LAYER_VARS`.
    pub max_layer_gates: usize,
    /// Largest number of gates over all layers.
    pub max_total_gates: usize,
}

impl Default for GateLimits {
    fn default() -> Self {
        GateLimits {
            max_layer_gates: MAX_LAYER_GATES,
            max_total_gates: MAX_TOTAL_GATES,
        }
    }
}

/// Why a circuit could not be lowered to gates.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LowerError {
    /// The batch is empty.
    #[error("the batch size must be at least 1")]
    EmptyBatch,
    /// A stage's shapes, weights or wiring are inconsistent.
    #[error("{at}: {reason}")]
    Shape {
        /// Where (`"layer 3 (conv2d \"conv2\")"` or `"the input"`).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The lowering would exceed a size limit.
    #[error(
        "{at}: the gates lowering needs {gates} gates {what}, over the limit of {limit}; \
         use the structured lowering or a smaller batch"
    )]
    TooLarge {
        /// Where (`"layer 3 (conv2d \"conv2\")"`, `"the input"` or `"the circuit"`).
        at: String,
        /// `"in one gate layer"` or `"in total"`.
        what: &'static str,
        /// Gates needed (saturated at `u64::MAX`).
        gates: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The lowering disagrees with its own size analysis (a bug, reported instead of a panic).
    #[error("internal error in the gates lowering: {0}")]
    Internal(String),
}

/// How one model stage lowers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageStats {
    /// The stage's operation (`"conv2d"`, …).
    pub op: &'static str,
    /// The stage's label.
    pub label: String,
    /// Gate layers the stage lowers to.
    pub layers: usize,
    /// Gates over those layers.
    pub gates: usize,
    /// Gates of its largest layer.
    pub max_layer: usize,
}

/// The size of a gates lowering, computed without building it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoweredStats {
    /// Input wires (batch × real input values).
    pub input_size: usize,
    /// Gates of every gate layer, from the first computed one to the output layer.
    pub layer_sizes: Vec<usize>,
    /// Per model stage, in order (an empty circuit lowers to one `Relay` layer, not listed).
    pub stages: Vec<StageStats>,
}

impl LoweredStats {
    /// Total number of gates (excluding the input wires).
    pub fn gate_count(&self) -> usize {
        self.layer_sizes.iter().sum()
    }

    /// Number of gate layers (excluding the input).
    pub fn depth(&self) -> usize {
        self.layer_sizes.len()
    }

    /// Gates of the largest layer.
    pub fn max_layer(&self) -> usize {
        self.layer_sizes.iter().copied().max().unwrap_or(0)
    }
}

/// Lowers `circuit`, for a batch of `batch` items, to fan-in-2 gates under the default
/// [`GateLimits`]. Input: `batch · input.item_len()` real values, batch-major; output: the real
/// output values in the same order.
pub fn lower_to_gates(circuit: &LayeredCircuit, batch: usize) -> Result<GateCircuit, LowerError> {
    lower_to_gates_with_limits(circuit, batch, &GateLimits::default())
}

/// [`lower_to_gates`] under explicit size limits.
pub fn lower_to_gates_with_limits(
    circuit: &LayeredCircuit,
    batch: usize,
    limits: &GateLimits,
) -> Result<GateCircuit, LowerError> {
    let (plans, stats) = analyse(circuit, batch, limits)?;
    let mut layers: Vec<GateLayer> = Vec::with_capacity(stats.depth());
    let mut in_len = circuit.input.item_len();
    let mut at = 0;
    for (index, (layer, plan)) in circuit.layers.iter().zip(&plans).enumerate() {
        let sizes = stats.layer_sizes.get(at..).unwrap_or(&[]);
        let built = layer.op.spec().build(layer, plan, batch, index, sizes)?;
        at += built.len();
        layers.extend(built.into_iter().map(|gates| GateLayer { gates }));
        in_len = layer.output.item_len();
    }
    if circuit.layers.is_empty() {
        let n = batch * in_len;
        layers.push(GateLayer {
            gates: (0..n as u32).map(Gate::Relay).collect(),
        });
    }
    let sizes: Vec<usize> = layers.iter().map(|l| l.gates.len()).collect();
    if sizes != stats.layer_sizes {
        return Err(LowerError::Internal(format!(
            "built layer sizes {sizes:?} differ from the analysed {:?}",
            stats.layer_sizes
        )));
    }
    Ok(GateCircuit {
        input_size: stats.input_size,
        layers,
    })
}

/// The size of the gates lowering of `circuit` at `batch` items (gate count per layer, depth,
/// per-stage figures), in time about linear in the weights and the stage sizes, without building
/// it. Fails like [`lower_to_gates`] (shapes, default limits).
pub fn lowered_stats(circuit: &LayeredCircuit, batch: usize) -> Result<LoweredStats, LowerError> {
    lowered_stats_with_limits(circuit, batch, &GateLimits::default())
}

/// [`lowered_stats`] under explicit size limits.
pub fn lowered_stats_with_limits(
    circuit: &LayeredCircuit,
    batch: usize,
    limits: &GateLimits,
) -> Result<LoweredStats, LowerError> {
    analyse(circuit, batch, limits).map(|(_, s)| s)
}

// ---------------------------------------------------------------------------------------------
// Analysis

/// Outputs of a linear stage that have the same number of terms and bias presence.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Nonzero terms of each output.
    terms: usize,
    /// Whether the bias is nonzero.
    bias: bool,
    /// How many outputs (over the batch) are like this.
    count: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct LinearPlan {
    /// Leaf layer skipped: every nonzero coefficient is 1.
    skip_leaf: bool,
    /// Levels of the add tree.
    tree_levels: usize,
}

/// How a stage is lowered.
#[derive(Clone, Debug)]
pub(crate) enum Plan {
    /// Leaf layer and add trees per output.
    Linear(LinearPlan),
    /// Per-element gate templates, one list per layer; wires are slots of the previous layer's
    /// templates of the same element (slot 0 of the stage input is the element itself).
    Elementwise(Vec<Vec<Gate>>),
    Gates,
}

fn where_(index: usize, layer: &CircuitLayer) -> String {
    format!("layer {index} ({} {:?})", layer.op.name(), layer.label)
}

/// The refusal of the kinds that make a circuit a graph rather than a chain.
const NOT_LAYERED: &str = "residual connections (add, branch, fork) have no gates lowering: \
     gate layers read only the layer before them; use the structured lowering";

fn shape_err(at: &str, reason: impl Into<String>) -> LowerError {
    LowerError::Shape {
        at: at.to_string(),
        reason: reason.into(),
    }
}

fn too_large(at: &str, what: &'static str, gates: usize, limit: usize) -> LowerError {
    LowerError::TooLarge {
        at: at.to_string(),
        what,
        gates: gates as u64,
        limit: limit as u64,
    }
}

/// Real and padded per-item lengths, checked (dims must be nonzero, products must not overflow).
fn checked_lens(layout: &Layout, at: &str, which: &str) -> Result<(usize, usize), LowerError> {
    if layout.dims.is_empty() {
        return Err(shape_err(at, format!("{which} layout has no dimension")));
    }
    let mut real: usize = 1;
    let mut padded: usize = 1;
    for &d in &layout.dims {
        if d == 0 {
            return Err(shape_err(
                at,
                format!("{which} layout {:?} has an empty dimension", layout.dims),
            ));
        }
        let p = d.checked_next_power_of_two();
        match (real.checked_mul(d), p.and_then(|p| padded.checked_mul(p))) {
            (Some(r), Some(q)) => {
                real = r;
                padded = q;
            }
            _ => {
                return Err(too_large(at, "in one gate layer", usize::MAX, usize::MAX));
            }
        }
    }
    Ok((real, padded))
}

fn analyse(
    circuit: &LayeredCircuit,
    batch: usize,
    limits: &GateLimits,
) -> Result<(Vec<Plan>, LoweredStats), LowerError> {
    if batch == 0 {
        return Err(LowerError::EmptyBatch);
    }
    let layer_limit = limits.max_layer_gates.min(1 << MAX_LAYER_VARS);
    let check_layer = |at: &str, n: usize| {
        if n > layer_limit {
            Err(too_large(at, "in one gate layer", n, layer_limit))
        } else {
            Ok(())
        }
    };
    let (in_len, _) = checked_lens(&circuit.input, "the input", "input")?;
    let input_size = in_len.saturating_mul(batch);
    check_layer("the input", input_size)?;

    let mut plans = Vec::with_capacity(circuit.layers.len());
    let mut layer_sizes = Vec::new();
    let mut stages = Vec::with_capacity(circuit.layers.len());
    let mut prev_len = in_len;
    for (index, layer) in circuit.layers.iter().enumerate() {
        let at = where_(index, layer);
        let (lin, _) = checked_lens(&layer.input, &at, "input")?;
        let (lout, _) = checked_lens(&layer.output, &at, "output")?;
        if lin != prev_len {
            return Err(shape_err(
                &at,
                format!(
                    "input layout {:?} has {lin} values but the previous stage gives {prev_len}",
                    layer.input.dims
                ),
            ));
        }
        // Every stage ends on a layer of exactly batch·out values: bounds the analysis below.
        check_layer(&at, lout.saturating_mul(batch))?;
        let (plan, sizes) = plan_stage(layer, batch, &at)?;
        for &n in &sizes {
            check_layer(&at, n)?;
        }
        stages.push(StageStats {
            op: layer.op.name(),
            label: layer.label.clone(),
            layers: sizes.len(),
            gates: sizes.iter().fold(0usize, |a, &n| a.saturating_add(n)),
            max_layer: sizes.iter().copied().max().unwrap_or(0),
        });
        layer_sizes.extend(sizes);
        plans.push(plan);
        prev_len = lout;
    }
    if circuit.layers.is_empty() {
        layer_sizes.push(input_size);
    }
    let total = layer_sizes.iter().fold(0usize, |a, &n| a.saturating_add(n));
    if total > limits.max_total_gates {
        return Err(too_large(
            "the circuit",
            "in total",
            total,
            limits.max_total_gates,
        ));
    }
    Ok((
        plans,
        LoweredStats {
            input_size,
            layer_sizes,
            stages,
        },
    ))
}

/// A layer kind's gate lowering, in `lower/<kind>.rs`.
pub(crate) trait Lowering {
    /// The plan of the stage (this op) at `batch` items and the gate counts of its layers
    /// (saturating), validated; `at` names the layer in errors.
    fn plan(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError>;

    /// The gate layers of the stage, as `plan` planned them; `capacities` are the planned layer
    /// sizes (to allocate once).
    fn build(
        &self,
        layer: &CircuitLayer,
        plan: &Plan,
        batch: usize,
        index: usize,
        capacities: &[usize],
    ) -> Result<Vec<Vec<Gate>>, LowerError>;
}

/// A kind with no gate form, whose lowering is refused with [`Self::WHY`].
pub(crate) trait Unlowered {
    /// Why, for the error (one sentence, ends with what to use instead).
    const WHY: &'static str;
}

impl<T: Unlowered> Lowering for T {
    fn plan(
        &self,
        _layer: &CircuitLayer,
        _batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        Err(shape_err(at, T::WHY))
    }

    fn build(
        &self,
        _layer: &CircuitLayer,
        _plan: &Plan,
        _batch: usize,
        index: usize,
        _capacities: &[usize],
    ) -> Result<Vec<Vec<Gate>>, LowerError> {
        Err(LowerError::Internal(format!(
            "layer {index}: a kind without gates was planned"
        )))
    }
}

/// The plan of one stage and the gate counts of its layers (saturating).
fn plan_stage(
    layer: &CircuitLayer,
    batch: usize,
    at: &str,
) -> Result<(Plan, Vec<usize>), LowerError> {
    layer.op.spec().plan(layer, batch, at)
}

fn check_bias(len: usize, outs: usize, at: &str) -> Result<(), LowerError> {
    if len != outs {
        return Err(shape_err(at, format!("{len} biases for {outs} outputs")));
    }
    Ok(())
}

/// Shapes of a 2-D window op, validated.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
}

fn dims3(dims: &[usize], which: &str, at: &str) -> Result<[usize; 3], LowerError> {
    match dims {
        &[c, h, w] => Ok([c, h, w]),
        _ => Err(shape_err(
            at,
            format!("{which} layout {dims:?} is not [channels, height, width]"),
        )),
    }
}

/// Kernel offsets `k0..k1` whose input position `s·i + k − p` lies in `0..n_in`, for output
/// position `i`.
fn tap_range(i: usize, n_in: usize, k: usize, s: usize, p: usize) -> (usize, usize) {
    let base = s.saturating_mul(i);
    let lo = p.saturating_sub(base).min(k);
    let hi = n_in.saturating_add(p).saturating_sub(base).min(k);
    (lo, hi.max(lo))
}

/// Output positions along one axis grouped by their in-range kernel offsets:
/// `(k0, k1, how many positions)`.
fn axis_groups(
    n_out: usize,
    n_in: usize,
    k: usize,
    s: usize,
    p: usize,
) -> Vec<(usize, usize, usize)> {
    let mut groups: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for i in 0..n_out {
        *groups.entry(tap_range(i, n_in, k, s, p)).or_insert(0) += 1;
    }
    groups.into_iter().map(|((a, b), n)| (a, b, n)).collect()
}

/// `⌈log2 n⌉` for `n ≥ 1`.
fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// `⌈n / 2^k⌉`.
fn ceil_shift(n: usize, k: usize) -> usize {
    if k >= usize::BITS as usize {
        usize::from(n > 0)
    } else {
        (n >> k) + usize::from(n & ((1usize << k) - 1) != 0)
    }
}

/// Layer sizes of a linear stage from its buckets (see the module docs for the tree shape).
fn linear_plan(buckets: &[Bucket], skip_leaf: bool) -> (Plan, Vec<usize>) {
    // An output's tree needs ⌈log2(terms + bias)⌉ levels; a term-less output is one Const leaf.
    let levels_of = |b: &Bucket| {
        if b.terms == 0 {
            0
        } else {
            ceil_log2(b.terms.saturating_add(usize::from(b.bias)))
        }
    };
    let mut tree_levels = buckets.iter().map(levels_of).max().unwrap_or(0);
    let mut sizes = Vec::new();
    if skip_leaf {
        tree_levels = tree_levels.max(1);
    } else {
        sizes.push(buckets.iter().fold(0usize, |a, b| {
            a.saturating_add(b.count.saturating_mul(b.terms.max(1)))
        }));
    }
    for k in 1..=tree_levels {
        sizes.push(buckets.iter().fold(0usize, |a, b| {
            a.saturating_add(b.count.saturating_mul(ceil_shift(b.terms, k).max(1)))
        }));
    }
    (
        Plan::Linear(LinearPlan {
            skip_leaf,
            tree_levels,
        }),
        sizes,
    )
}

fn gate_wires(g: &Gate) -> [Option<u32>; 2] {
    match *g {
        Gate::Add(a, b) | Gate::Sub(a, b) | Gate::Mul(a, b) => [Some(a), Some(b)],
        Gate::Scale(a, _) | Gate::AddConst(a, _) | Gate::Relay(a) => [Some(a), None],
        Gate::Const(_) => [None, None],
    }
}

/// `g` with every wire shifted by `base`.
fn shift(g: Gate, base: u32) -> Gate {
    match g {
        Gate::Add(a, b) => Gate::Add(a + base, b + base),
        Gate::Sub(a, b) => Gate::Sub(a + base, b + base),
        Gate::Mul(a, b) => Gate::Mul(a + base, b + base),
        Gate::Scale(a, c) => Gate::Scale(a + base, c),
        Gate::AddConst(a, c) => Gate::AddConst(a + base, c),
        Gate::Relay(a) => Gate::Relay(a + base),
        Gate::Const(c) => Gate::Const(c),
    }
}

// ---------------------------------------------------------------------------------------------
// Building

/// Builds the add trees of a linear stage, one output at a time.
struct TreeBuilder {
    /// The leaf layer (unless skipped), then the tree levels.
    levels: Vec<Vec<Gate>>,
    skip_leaf: bool,
    nodes: Vec<u32>,
    next: Vec<u32>,
}

impl TreeBuilder {
    fn new(plan: &LinearPlan, capacities: &[usize]) -> Self {
        let n = plan.tree_levels + usize::from(!plan.skip_leaf);
        TreeBuilder {
            levels: (0..n)
                .map(|i| Vec::with_capacity(capacities.get(i).copied().unwrap_or(0)))
                .collect(),
            skip_leaf: plan.skip_leaf,
            nodes: Vec::new(),
            next: Vec::new(),
        }
    }

    /// Appends the tree of one output: `Σ coef·V(wire) + bias`, wires of the stage input.
    fn push(&mut self, leaves: &[(u32, i128)], bias: i128) -> Result<(), LowerError> {
        let mut pending = (bias != 0).then_some(bias);
        self.nodes.clear();
        let mut levels = self.levels.iter_mut();
        if self.skip_leaf {
            self.nodes.extend(leaves.iter().map(|&(w, _)| w));
        } else {
            let leaf = levels
                .next()
                .ok_or_else(|| LowerError::Internal("no leaf layer".into()))?;
            if leaves.is_empty() {
                self.nodes.push(leaf.len() as u32);
                leaf.push(Gate::Const(bias));
                pending = None;
            }
            for &(w, c) in leaves {
                self.nodes.push(leaf.len() as u32);
                leaf.push(if c == 1 {
                    Gate::Relay(w)
                } else {
                    Gate::Scale(w, c)
                });
            }
        }
        for level in levels {
            self.next.clear();
            if self.nodes.is_empty() {
                self.next.push(level.len() as u32);
                level.push(Gate::Const(pending.take().unwrap_or(0)));
            }
            for pair in self.nodes.chunks(2) {
                self.next.push(level.len() as u32);
                level.push(match *pair {
                    [x, y] => Gate::Add(x, y),
                    [x] => match pending.take() {
                        Some(c) => Gate::AddConst(x, c),
                        None => Gate::Relay(x),
                    },
                    _ => return Err(LowerError::Internal("empty chunk".into())),
                });
            }
            std::mem::swap(&mut self.nodes, &mut self.next);
        }
        if self.nodes.len() != 1 || pending.is_some() {
            return Err(LowerError::Internal(format!(
                "an add tree ended with {} nodes{}",
                self.nodes.len(),
                if pending.is_some() {
                    " and its bias unplaced"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }
}

/// The gate layers of a linear stage: `outputs` calls `push(leaves, bias)` once per output,
/// in output order, with the output's `(input wire, coefficient)` terms.
fn build_linear(
    plan: &Plan,
    capacities: &[usize],
    outputs: impl FnOnce(
        &mut dyn FnMut(&[(u32, i128)], i128) -> Result<(), LowerError>,
    ) -> Result<(), LowerError>,
) -> Result<Vec<Vec<Gate>>, LowerError> {
    let Plan::Linear(plan) = plan else {
        return Err(LowerError::Internal("not a linear stage".into()));
    };
    let mut tree = TreeBuilder::new(plan, capacities);
    outputs(&mut |leaves, bias| tree.push(leaves, bias))?;
    Ok(tree.levels)
}

/// The plan of an element-wise stage whose every element runs `templates` (`what` names the
/// kind in a shape error).
fn plan_elementwise(
    layer: &CircuitLayer,
    batch: usize,
    at: &str,
    what: &str,
    templates: Vec<Vec<Gate>>,
) -> Result<(Plan, Vec<usize>), LowerError> {
    let (lin, lout) = (layer.input.item_len(), layer.output.item_len());
    if lin != lout {
        return Err(shape_err(at, format!("{what} maps {lin} values to {lout}")));
    }
    let n = lin.saturating_mul(batch);
    let sizes = templates
        .iter()
        .map(|t| t.len().saturating_mul(n))
        .collect();
    Ok((Plan::Elementwise(templates), sizes))
}

/// The gate layers of an element-wise stage of `n` elements.
fn build_elementwise_plan(plan: &Plan, n: usize) -> Result<Vec<Vec<Gate>>, LowerError> {
    let Plan::Elementwise(templates) = plan else {
        return Err(LowerError::Internal("not an element-wise stage".into()));
    };
    Ok(build_elementwise(templates, n))
}

fn build_elementwise(templates: &[Vec<Gate>], n: usize) -> Vec<Vec<Gate>> {
    let mut prev_slots = 1u32;
    let mut out = Vec::with_capacity(templates.len());
    for t in templates {
        let mut gates = Vec::with_capacity(n * t.len());
        for e in 0..n as u32 {
            gates.extend(t.iter().map(|&g| shift(g, e * prev_slots)));
        }
        out.push(gates);
        prev_slots = t.len() as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::activation::activation_templates;
    use super::*;

    #[test]
    fn ceil_helpers() {
        assert_eq!(
            (1..=9).map(ceil_log2).collect::<Vec<_>>(),
            vec![0, 1, 2, 2, 3, 3, 3, 3, 4]
        );
        assert_eq!(ceil_shift(5, 1), 3);
        assert_eq!(ceil_shift(4, 2), 1);
        assert_eq!(ceil_shift(0, 3), 0);
        assert_eq!(ceil_shift(7, 200), 1);
    }

    #[test]
    fn axis_groups_match_direct_count() {
        for (n_in, k, s, p) in [(5, 3, 1, 1), (7, 2, 2, 1), (5, 3, 2, 0), (4, 4, 1, 3)] {
            let n_out = (n_in + 2 * p - k) / s + 1;
            let groups = axis_groups(n_out, n_in, k, s, p);
            assert_eq!(groups.iter().map(|g| g.2).sum::<usize>(), n_out);
            for i in 0..n_out {
                let (lo, hi) = tap_range(i, n_in, k, s, p);
                let direct: Vec<usize> = (0..k)
                    .filter(|&u| {
                        let pos = (s * i + u) as isize - p as isize;
                        pos >= 0 && (pos as usize) < n_in
                    })
                    .collect();
                assert_eq!((lo..hi).collect::<Vec<_>>(), direct);
            }
        }
    }

    #[test]
    fn activation_templates_are_short() {
        assert_eq!(activation_templates(1, 0, 0).len(), 1);
        assert_eq!(activation_templates(1, 256, 0).len(), 2);
        assert_eq!(activation_templates(3, 5, -7).len(), 3);
        assert_eq!(activation_templates(0, 0, 4).len(), 1);
    }
}
