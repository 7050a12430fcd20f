//! Lowering an explicit gate layer: its gates, per item, shifted to the item's offsets.

use super::*;

impl Lowering for GatesOp {
    /// The plan of a gates layer: its gate buckets and the sizes of its gate layers.
    fn plan(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        let op = self;
        let lout = layer.output.item_len();
        let GatesOp { layer: gl } = op;
        let in_padded = layer.input.item_len_padded();
        let out_padded = layer.output.item_len_padded();
        if in_padded > 1 << MAX_LAYER_VARS {
            return Err(too_large(
                at,
                "in one gate layer",
                in_padded,
                1 << MAX_LAYER_VARS,
            ));
        }
        if gl.gates.len() > out_padded {
            return Err(shape_err(
                at,
                format!(
                    "{} gates per item but the padded output has {out_padded} positions",
                    gl.gates.len()
                ),
            ));
        }
        for (gi, gate) in gl.gates.iter().enumerate() {
            for w in gate_wires(gate).into_iter().flatten() {
                if w as usize >= in_padded {
                    return Err(shape_err(
                        at,
                        format!(
                            "gate {gi} reads wire {w}, the padded input has {in_padded} \
                             positions"
                        ),
                    ));
                }
            }
        }
        Ok((Plan::Gates, vec![lout.saturating_mul(batch)]))
    }

    fn build(
        &self,
        layer: &CircuitLayer,
        _plan: &Plan,
        batch: usize,
        _index: usize,
        _capacities: &[usize],
    ) -> Result<Vec<Vec<Gate>>, LowerError> {
        Ok(vec![build_gates(self, layer, batch)?])
    }
}

fn build_gates(op: &GatesOp, layer: &CircuitLayer, batch: usize) -> Result<Vec<Gate>, LowerError> {
    let gl = &op.layer;
    let lin = layer.input.item_len();
    // Real index of every padded input offset (u32::MAX at padding).
    let mut real_of = vec![u32::MAX; layer.input.item_len_padded()];
    for (r, off) in layer.input.padded_offsets().into_iter().enumerate() {
        real_of[off] = r as u32;
    }
    let out_offsets = layer.output.padded_offsets();
    let mut gates = Vec::with_capacity(batch * out_offsets.len());
    for b in 0..batch {
        let base = (b * lin) as u32;
        let wire = |w: u32| {
            real_of
                .get(w as usize)
                .copied()
                .filter(|&r| r != u32::MAX)
                .map(|r| r + base)
        };
        for &off in &out_offsets {
            let Some(&g) = gl.gates.get(off) else {
                gates.push(Gate::Const(0));
                continue;
            };
            gates.push(match g {
                Gate::Add(x, y) => match (wire(x), wire(y)) {
                    (Some(x), Some(y)) => Gate::Add(x, y),
                    (Some(z), None) | (None, Some(z)) => Gate::Relay(z),
                    (None, None) => Gate::Const(0),
                },
                Gate::Sub(x, y) => match (wire(x), wire(y)) {
                    (Some(x), Some(y)) => Gate::Sub(x, y),
                    (Some(x), None) => Gate::Relay(x),
                    (None, Some(y)) => Gate::Scale(y, -1),
                    (None, None) => Gate::Const(0),
                },
                Gate::Mul(x, y) => match (wire(x), wire(y)) {
                    (Some(x), Some(y)) => Gate::Mul(x, y),
                    _ => Gate::Const(0),
                },
                Gate::Scale(x, c) => wire(x).map_or(Gate::Const(0), |x| Gate::Scale(x, c)),
                Gate::AddConst(x, c) => wire(x).map_or(Gate::Const(c), |x| Gate::AddConst(x, c)),
                Gate::Relay(x) => wire(x).map_or(Gate::Const(0), Gate::Relay),
                Gate::Const(c) => Gate::Const(c),
            });
        }
    }
    Ok(gates)
}
