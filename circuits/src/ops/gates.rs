//! An explicit gate layer: its op struct and the rules every crate relies on (wiring, padding,
//! digest). Its integer kernel and bound rule are in `witness/gates.rs`, its gates
//! `lower/gates.rs`, its proof `verinfer_verifier::layers::gates` /
//! `verinfer_prover::layers::gates`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use crate::gates::{Gate, GateLayer};
use serde::{Deserialize, Serialize};

/// Explicit gates, per item: wire `w` is the input's padded per-item offset `w`, gate `g` the
/// output's padded per-item offset `g`. The generic fallback (verifier cost grows with the gate
/// count).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatesOp {
    /// The gates of one item.
    pub layer: GateLayer,
}

impl OpRules for GatesOp {
    fn name(&self) -> &'static str {
        "gates"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        let layer = &self.layer;
        if layer.gates.len() > output.item_len_padded()
            || layer
                .max_wire()
                .is_some_and(|w| w as usize >= input.item_len_padded())
        {
            return Err("gate wires out of range".into());
        }
        // Padding positions must stay zero: only a zero constant may sit there.
        let mut real = vec![false; output.item_len_padded()];
        for off in output.padded_offsets() {
            real[off] = true;
        }
        let bad = layer
            .gates
            .iter()
            .zip(&real)
            .position(|(g, r)| !r && *g != Gate::Const(0));
        if let Some(g) = bad {
            return Err(format!("gate {g} writes a padding position"));
        }
        Ok(())
    }

    fn gate_count(&self) -> usize {
        self.layer.gates.len()
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(5);
        e.uint(self.layer.gates.len() as u128);
        for g in &self.layer.gates {
            let (tag, x, y, k) = g.encode();
            e.uint(tag as u128);
            e.uint(x as u128);
            e.uint(y as u128);
            e.int(k);
        }
    }
}
