//! Layered arithmetic circuits of fan-in-2 gates: the literal "GKR circuit".
//!
//! Layer 0 is the input; every gate of layer `i ≥ 1` reads wires of layer `i − 1` only. Layer
//! sizes are padded to powers of two; padding gates have no inputs and are zero. The generic GKR
//! protocol (prover crate `gkr`, verifier crate `gkr`) proves the evaluation of such a circuit;
//! the verifier's cost per layer is linear in that layer's gate count.
//!
//! For the protocol each layer is viewed as a sum of *terms* ([`LayerTerms`]): product terms
//! `c·V(x)·V(y)`, linear terms `c·V(x)` and constants `c`, all attached to an output gate `g`.
//! Every gate kind is a short sum of terms, so one sumcheck handles them all.

use crate::field::{from_i128, FieldError, ProofField};
use ark_ff::Field;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest number of variables (log2 of a padded layer size) a circuit may use.
pub const MAX_LAYER_VARS: usize = 30;

/// A gate of a layered circuit; wire indices refer to the previous layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// `V(a) + V(b)`.
    Add(u32, u32),
    /// `V(a) − V(b)`.
    Sub(u32, u32),
    /// `V(a) · V(b)`.
    Mul(u32, u32),
    /// `c · V(a)`: multiplication by a public constant.
    Scale(u32, i128),
    /// `V(a) + c`: addition of a public constant.
    AddConst(u32, i128),
    /// `V(a)`: carries a wire to the next layer.
    Relay(u32),
    /// The public constant `c`.
    Const(i128),
}

impl Gate {
    /// `(tag, first wire, second wire, constant)`: a canonical flat form for digests.
    pub fn encode(&self) -> (u8, u32, u32, i128) {
        match *self {
            Gate::Add(a, b) => (1, a, b, 0),
            Gate::Sub(a, b) => (2, a, b, 0),
            Gate::Mul(a, b) => (3, a, b, 0),
            Gate::Scale(a, c) => (4, a, 0, c),
            Gate::AddConst(a, c) => (5, a, 0, c),
            Gate::Relay(a) => (6, a, 0, 0),
            Gate::Const(c) => (7, 0, 0, c),
        }
    }

    fn inputs(&self) -> [Option<u32>; 2] {
        match *self {
            Gate::Add(a, b) | Gate::Sub(a, b) | Gate::Mul(a, b) => [Some(a), Some(b)],
            Gate::Scale(a, _) | Gate::AddConst(a, _) | Gate::Relay(a) => [Some(a), None],
            Gate::Const(_) => [None, None],
        }
    }
}

/// One layer of gates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateLayer {
    /// The gates, in output order.
    pub gates: Vec<Gate>,
}

impl GateLayer {
    /// The layer as terms over the field, repeated for `copies` independent items: copy `b`
    /// reads wires shifted by `b·in_stride` and writes gates shifted by `b·out_stride` (a
    /// per-item layer applied to a whole batch).
    pub fn terms<F: ProofField>(
        &self,
        copies: usize,
        in_stride: usize,
        out_stride: usize,
    ) -> Result<LayerTerms<F>, CircuitError> {
        let mut t = LayerTerms {
            mul: Vec::new(),
            lin: Vec::new(),
            cst: Vec::new(),
        };
        let one = F::one();
        for copy in 0..copies.max(1) {
            let (wi, wo) = ((copy * in_stride) as u32, (copy * out_stride) as u32);
            for (g, gate) in self.gates.iter().enumerate() {
                let g = g as u32 + wo;
                match *gate {
                    Gate::Add(a, b) => {
                        t.lin.push((g, a + wi, one));
                        t.lin.push((g, b + wi, one));
                    }
                    Gate::Sub(a, b) => {
                        t.lin.push((g, a + wi, one));
                        t.lin.push((g, b + wi, -one));
                    }
                    Gate::Mul(a, b) => t.mul.push((g, a + wi, b + wi, one)),
                    Gate::Scale(a, c) => t.lin.push((g, a + wi, from_i128(c)?)),
                    Gate::AddConst(a, c) => {
                        t.lin.push((g, a + wi, one));
                        t.cst.push((g, from_i128(c)?));
                    }
                    Gate::Relay(a) => t.lin.push((g, a + wi, one)),
                    Gate::Const(c) => t.cst.push((g, from_i128(c)?)),
                }
            }
        }
        Ok(t)
    }

    /// Whether any gate multiplies two wires.
    pub fn has_mul(&self) -> bool {
        self.gates.iter().any(|g| matches!(g, Gate::Mul(..)))
    }

    /// Largest wire index read, if any.
    pub fn max_wire(&self) -> Option<u32> {
        self.gates
            .iter()
            .flat_map(|g| g.inputs().into_iter().flatten())
            .max()
    }
}

/// A layered circuit: `input_size` input wires, then the layers in evaluation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCircuit {
    /// Number of input wires.
    pub input_size: usize,
    /// Layers 1..=d; the last one is the output.
    pub layers: Vec<GateLayer>,
}

/// Structural errors of a circuit or of the values given to it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CircuitError {
    /// The circuit has no layer or a layer without gates.
    #[error("circuit layer {0} is empty")]
    EmptyLayer(usize),
    /// A gate reads a wire that the previous layer does not have.
    #[error(
        "layer {layer}, gate {gate}: input wire {wire} out of range (previous layer has {size})"
    )]
    WireOutOfRange {
        /// Layer of the gate (1-based; 0 is the input).
        layer: usize,
        /// Index of the gate.
        gate: usize,
        /// The offending wire.
        wire: u32,
        /// Size of the previous layer.
        size: usize,
    },
    /// A layer is larger than the protocol supports.
    #[error("layer {0} has more than 2^{MAX_LAYER_VARS} gates")]
    TooLarge(usize),
    /// The input has the wrong length.
    #[error("expected {expected} input values, got {got}")]
    InputLength {
        /// Number the circuit wants.
        expected: usize,
        /// Number given.
        got: usize,
    },
    /// A constant of the circuit does not fit the field.
    #[error("constant does not fit the field: {0}")]
    Constant(#[from] FieldError),
}

/// A layer as a sum of terms over output gates, in the field.
#[derive(Clone, Debug, Default)]
pub struct LayerTerms<F> {
    /// `(g, x, y, c)`: gate `g` gets `c·V(x)·V(y)`.
    pub mul: Vec<(u32, u32, u32, F)>,
    /// `(g, x, c)`: gate `g` gets `c·V(x)`.
    pub lin: Vec<(u32, u32, F)>,
    /// `(g, c)`: gate `g` gets `c`.
    pub cst: Vec<(u32, F)>,
}

impl<F: Field> LayerTerms<F> {
    /// `Σ_{mul terms} c·eq_g[g]·eq_x[x]·eq_y[y]`: the product-wiring MLE at the points whose eq
    /// tables are given.
    pub fn mul_at(&self, eq_g: &[F], eq_x: &[F], eq_y: &[F]) -> F {
        self.mul
            .iter()
            .map(|&(g, x, y, c)| c * eq_g[g as usize] * eq_x[x as usize] * eq_y[y as usize])
            .sum()
    }

    /// `Σ_{lin terms} c·eq_g[g]·eq_x[x]`.
    pub fn lin_at(&self, eq_g: &[F], eq_x: &[F]) -> F {
        self.lin
            .iter()
            .map(|&(g, x, c)| c * eq_g[g as usize] * eq_x[x as usize])
            .sum()
    }

    /// `Σ_{constants} c·eq_g[g]`.
    pub fn cst_at(&self, eq_g: &[F]) -> F {
        self.cst.iter().map(|&(g, c)| c * eq_g[g as usize]).sum()
    }
}

/// log2 of the padded size of a layer with `n` wires (at least one variable-free wire).
pub fn vars_for(n: usize) -> usize {
    n.max(1).next_power_of_two().trailing_zeros() as usize
}

impl GateCircuit {
    /// Checks wiring and sizes; every other method assumes a validated circuit.
    pub fn validate(&self) -> Result<(), CircuitError> {
        if self.input_size == 0 {
            return Err(CircuitError::EmptyLayer(0));
        }
        if self.layers.is_empty() {
            return Err(CircuitError::EmptyLayer(1));
        }
        if vars_for(self.input_size) > MAX_LAYER_VARS {
            return Err(CircuitError::TooLarge(0));
        }
        let mut prev = self.input_size;
        for (i, layer) in self.layers.iter().enumerate() {
            let li = i + 1;
            if layer.gates.is_empty() {
                return Err(CircuitError::EmptyLayer(li));
            }
            if vars_for(layer.gates.len()) > MAX_LAYER_VARS {
                return Err(CircuitError::TooLarge(li));
            }
            for (gi, gate) in layer.gates.iter().enumerate() {
                for wire in gate.inputs().into_iter().flatten() {
                    if wire as usize >= prev {
                        return Err(CircuitError::WireOutOfRange {
                            layer: li,
                            gate: gi,
                            wire,
                            size: prev,
                        });
                    }
                }
            }
            prev = layer.gates.len();
        }
        Ok(())
    }

    /// Number of wires of layer `i` (0 = input).
    pub fn layer_size(&self, i: usize) -> usize {
        if i == 0 {
            self.input_size
        } else {
            self.layers[i - 1].gates.len()
        }
    }

    /// Number of variables of layer `i`'s padded MLE.
    pub fn layer_vars(&self, i: usize) -> usize {
        vars_for(self.layer_size(i))
    }

    /// Number of wires of the output layer.
    pub fn output_size(&self) -> usize {
        self.layer_size(self.layers.len())
    }

    /// Total number of gates (excluding inputs).
    pub fn gate_count(&self) -> usize {
        self.layers.iter().map(|l| l.gates.len()).sum()
    }

    /// Evaluates every layer; `values[0]` is the input and `values[d]` the output (unpadded).
    pub fn evaluate<F: ProofField>(&self, input: &[F]) -> Result<Vec<Vec<F>>, CircuitError> {
        if input.len() != self.input_size {
            return Err(CircuitError::InputLength {
                expected: self.input_size,
                got: input.len(),
            });
        }
        let mut values = vec![input.to_vec()];
        for layer in &self.layers {
            let prev = values.last().map(Vec::as_slice).unwrap_or(&[]);
            let v = |w: u32| prev[w as usize];
            let mut out = Vec::with_capacity(layer.gates.len());
            for gate in &layer.gates {
                out.push(match *gate {
                    Gate::Add(a, b) => v(a) + v(b),
                    Gate::Sub(a, b) => v(a) - v(b),
                    Gate::Mul(a, b) => v(a) * v(b),
                    Gate::Scale(a, c) => v(a) * from_i128::<F>(c)?,
                    Gate::AddConst(a, c) => v(a) + from_i128::<F>(c)?,
                    Gate::Relay(a) => v(a),
                    Gate::Const(c) => from_i128::<F>(c)?,
                });
            }
            values.push(out);
        }
        Ok(values)
    }

    /// Layer `i ≥ 1` as terms over the field.
    pub fn terms<F: ProofField>(&self, i: usize) -> Result<LayerTerms<F>, CircuitError> {
        self.layers[i - 1].terms(1, 0, 0)
    }

    /// Whether layer `i ≥ 1` has product gates (the GKR layer proof then needs its second phase).
    pub fn has_mul(&self, i: usize) -> bool {
        self.layers[i - 1].has_mul()
    }

    /// Σ of the degrees of every round and extra check of the GKR proof of this circuit: the
    /// numerator of its soundness error (docs/protocol.md §10).
    pub fn soundness_degree_sum(&self) -> u64 {
        // A false output differs from the truth on a random point with probability <= n_out/|F|.
        let mut sum = self.layer_vars(self.layers.len()) as u64;
        for i in 1..=self.layers.len() {
            let below = self.layer_vars(i - 1) as u64;
            let phases = if self.has_mul(i) { 2 } else { 1 };
            // Degree-2 rounds, plus the random combination of the claims handed down.
            sum += phases * 2 * below + 1;
        }
        sum
    }

    /// A hash of everything the verifier relies on: the wiring, the constants and the field.
    pub fn digest(&self, field: crate::field::FieldId) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"verinfer/gate-circuit/v1");
        h.update(&[field.to_byte()]);
        h.update(&(self.input_size as u64).to_le_bytes());
        h.update(&(self.layers.len() as u64).to_le_bytes());
        for layer in &self.layers {
            h.update(&(layer.gates.len() as u64).to_le_bytes());
            for gate in &layer.gates {
                let (tag, a, b, c) = gate.encode();
                h.update(&[tag]);
                h.update(&a.to_le_bytes());
                h.update(&b.to_le_bytes());
                h.update(&c.to_le_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    /// A random circuit for tests and benchmarks: `depth` layers of `width` gates over `width`
    /// inputs, mixing every gate kind, driven by a caller-supplied source of randomness.
    pub fn random(width: usize, depth: usize, mut next: impl FnMut() -> u64) -> Self {
        let width = width.max(1);
        let mut layers = Vec::with_capacity(depth);
        for _ in 0..depth {
            let mut gates = Vec::with_capacity(width);
            for _ in 0..width {
                let a = (next() % width as u64) as u32;
                let b = (next() % width as u64) as u32;
                let c = (next() % 7) as i128 - 3;
                gates.push(match next() % 16 {
                    0..=5 => Gate::Mul(a, b),
                    6..=10 => Gate::Add(a, b),
                    11 => Gate::Sub(a, b),
                    12 => Gate::Scale(a, c),
                    13 => Gate::AddConst(a, c),
                    14 => Gate::Relay(a),
                    _ => Gate::Const(c),
                });
            }
            layers.push(GateLayer { gates });
        }
        GateCircuit {
            input_size: width,
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{FieldId, M127};
    use crate::mle;
    use ark_ff::UniformRand;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn validation_catches_bad_wires() {
        let c = GateCircuit {
            input_size: 2,
            layers: vec![GateLayer {
                gates: vec![Gate::Mul(0, 2)],
            }],
        };
        assert!(matches!(
            c.validate(),
            Err(CircuitError::WireOutOfRange { wire: 2, .. })
        ));
        let empty = GateCircuit {
            input_size: 2,
            layers: vec![GateLayer { gates: vec![] }],
        };
        assert_eq!(empty.validate(), Err(CircuitError::EmptyLayer(1)));
    }

    /// The terms of a layer, summed with eq tables at Boolean points, give back the gate values.
    #[test]
    fn terms_reproduce_gate_values() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let c = GateCircuit::random(13, 3, || rng.gen());
        c.validate().unwrap();
        let input: Vec<M127> = (0..13).map(|_| M127::rand(&mut rng)).collect();
        let values = c.evaluate(&input).unwrap();
        for i in 1..=3 {
            let t = c.terms::<M127>(i).unwrap();
            let prev = &values[i - 1];
            let mut out = vec![M127::from(0u64); values[i].len()];
            for &(g, x, y, k) in &t.mul {
                out[g as usize] += k * prev[x as usize] * prev[y as usize];
            }
            for &(g, x, k) in &t.lin {
                out[g as usize] += k * prev[x as usize];
            }
            for &(g, k) in &t.cst {
                out[g as usize] += k;
            }
            assert_eq!(out, values[i]);
            // The MLE helpers agree with a direct sum at a random point.
            let nz = c.layer_vars(i);
            let nb = c.layer_vars(i - 1);
            let z: Vec<M127> = (0..nz).map(|_| M127::rand(&mut rng)).collect();
            let x: Vec<M127> = (0..nb).map(|_| M127::rand(&mut rng)).collect();
            let (ez, ex) = (mle::eq_table(&z), mle::eq_table(&x));
            let direct: M127 = t
                .lin
                .iter()
                .map(|&(g, a, k)| k * ez[g as usize] * ex[a as usize])
                .sum();
            assert_eq!(t.lin_at(&ez, &ex), direct);
        }
    }

    #[test]
    fn digest_depends_on_everything() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let c = GateCircuit::random(8, 2, || rng.gen());
        let d = c.digest(FieldId::M127);
        assert_ne!(d, c.digest(FieldId::Bn254));
        let mut c2 = c.clone();
        c2.layers[1].gates[3] = match c2.layers[1].gates[3] {
            Gate::Const(k) => Gate::Const(k + 1),
            _ => Gate::Const(0),
        };
        assert_ne!(d, c2.digest(FieldId::M127));
        let mut c3 = c.clone();
        c3.input_size += 1;
        assert_ne!(d, c3.digest(FieldId::M127));
    }
}
