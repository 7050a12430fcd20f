//! Lowering an activation: a fixed template of gates per element.

use super::*;

impl Lowering for ActivationOp {
    /// The plan of a activation layer: its gate buckets and the sizes of its gate layers.
    fn plan(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        let ActivationOp { a, b, c } = self;
        let templates = activation_templates(*a, *b, *c);
        plan_elementwise(layer, batch, at, "activation", templates)
    }

    fn build(
        &self,
        layer: &CircuitLayer,
        plan: &Plan,
        batch: usize,
        _index: usize,
        _capacities: &[usize],
    ) -> Result<Vec<Vec<Gate>>, LowerError> {
        build_elementwise_plan(plan, batch.saturating_mul(layer.input.item_len()))
    }
}

/// The per-element layers of `a·x² + b·x + c`; see [`Plan::Elementwise`].
pub(super) fn activation_templates(a: i128, b: i128, c: i128) -> Vec<Vec<Gate>> {
    let scale = |w: u32, k: i128| {
        if k == 1 {
            Gate::Relay(w)
        } else {
            Gate::Scale(w, k)
        }
    };
    if a == 0 {
        return match (b, c) {
            (0, _) => vec![vec![Gate::Const(c)]],
            (1, 0) => vec![vec![Gate::Relay(0)]],
            (1, _) => vec![vec![Gate::AddConst(0, c)]],
            (_, 0) => vec![vec![Gate::Scale(0, b)]],
            _ => vec![vec![Gate::Scale(0, b)], vec![Gate::AddConst(0, c)]],
        };
    }
    let mut layers = Vec::new();
    if b == 0 {
        layers.push(vec![Gate::Mul(0, 0)]);
        if a != 1 {
            layers.push(vec![Gate::Scale(0, a)]);
        }
        if c != 0 {
            layers.push(vec![Gate::AddConst(0, c)]);
        }
        return layers;
    }
    // b ≠ 0: x² and the linear part side by side, then one Add.
    let absorbed = b == 1 && c != 0;
    let linear = if absorbed {
        Gate::AddConst(0, c)
    } else {
        scale(0, b)
    };
    layers.push(vec![Gate::Mul(0, 0), linear]);
    let c_left = c != 0 && !absorbed;
    if a == 1 {
        layers.push(vec![Gate::Add(0, 1)]);
        if c_left {
            layers.push(vec![Gate::AddConst(0, c)]);
        }
    } else {
        let lin = if c_left {
            Gate::AddConst(1, c)
        } else {
            Gate::Relay(1)
        };
        layers.push(vec![Gate::Scale(0, a), lin]);
        layers.push(vec![Gate::Add(0, 1)]);
    }
    layers
}
