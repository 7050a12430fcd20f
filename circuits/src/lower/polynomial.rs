//! Lowering a polynomial activation: Horner's rule as a fixed template of gates per element,
//! `x` relayed beside the running value.

use super::*;
use crate::circuit::PolynomialOp;

impl Lowering for PolynomialOp {
    fn plan(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        let templates = horner_templates(&self.coefficients);
        plan_elementwise(layer, batch, at, "polynomial", templates)
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

/// The per-element layers of `Σ_k c_k·x^k` (degree ≥ 1, leading coefficient non-zero): wire 0
/// holds the running value `h`, wire 1 a copy of `x`; `h = c_d·x`, then for `k = d−1, …, 1`
/// `h += c_k` (when non-zero) and `h ·= x`, and last `h += c_0`.
pub(super) fn horner_templates(c: &[i128]) -> Vec<Vec<Gate>> {
    let d = c.len().saturating_sub(1);
    let lead = c.last().copied().unwrap_or(0);
    let mut layers = vec![vec![
        if lead == 1 {
            Gate::Relay(0)
        } else {
            Gate::Scale(0, lead)
        },
        Gate::Relay(0),
    ]];
    for k in (1..d).rev() {
        if c[k] != 0 {
            layers.push(vec![Gate::AddConst(0, c[k]), Gate::Relay(1)]);
        }
        let last = k == 1 && c[0] == 0;
        let mut layer = vec![Gate::Mul(0, 1)];
        if !last {
            layer.push(Gate::Relay(1));
        }
        layers.push(layer);
    }
    if c[0] != 0 {
        layers.push(vec![Gate::AddConst(0, c[0])]);
    } else if d == 1 {
        // c_1·x alone: drop the relayed copy.
        layers.push(vec![Gate::Relay(0)]);
    }
    layers
}
