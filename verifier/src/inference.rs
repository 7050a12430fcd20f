//! Verification of one inference of a compiled model (the SafetyNets-style check).
//!
//! The verifier knows the circuit (model) and the input, reads the claimed output and the proof,
//! and accepts or rejects:
//! 1. the proof's field and digest must be the circuit's, and it must carry the claimed output;
//! 2. the input must be in the circuit's declared range (the bound analysis that rules out
//!    wrap-around assumes it);
//! 3. the transcript absorbs the statement; a random point `r` is drawn and the verifier
//!    evaluates the output MLE there itself;
//! 4. each layer, output first, reduces the claim to one on its input (`layers`);
//! 5. the verifier evaluates the input MLE at the last point itself.
//!
//! Its work is the input, the output, the weights, and O(k·n + variables) per layer; it never
//! grows with the number of multiply-accumulates.

use crate::layers::{verify_layer, Claim};
use crate::opening::{CheckpointOpening, ClearOpening};
use crate::proof::Proof;
use crate::transcript::label;
use crate::transcript::Transcript;
use crate::VerifyError;
use verinfer_circuits::circuit::LayeredCircuit;
use verinfer_circuits::field::{from_i128, soundness_bits, ProofField};
use verinfer_circuits::mle;

/// Wall-clock time of a verification step, where the platform has a clock.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Millis(pub f64);

#[cfg(not(target_arch = "wasm32"))]
struct Clock(std::time::Instant);
#[cfg(not(target_arch = "wasm32"))]
impl Clock {
    fn start() -> Self {
        Clock(std::time::Instant::now())
    }
    fn lap(&mut self) -> Millis {
        let now = std::time::Instant::now();
        let ms = now.duration_since(self.0).as_secs_f64() * 1e3;
        self.0 = now;
        Millis(ms)
    }
}
// wasm32 has no monotonic clock without JS bindings: timings read zero there.
#[cfg(target_arch = "wasm32")]
struct Clock;
#[cfg(target_arch = "wasm32")]
impl Clock {
    fn start() -> Self {
        Clock
    }
    fn lap(&mut self) -> Millis {
        Millis(0.0)
    }
}

/// What a successful verification establishes.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedReport {
    /// Items in the batch.
    pub batch: usize,
    /// −log2 of the probability that a false output passed.
    pub soundness_bits: f64,
    /// Time to check the statement and evaluate the output MLE.
    pub setup: Millis,
    /// Time per layer, in circuit order (layer 0 first).
    pub layers: Vec<Millis>,
    /// Time to evaluate the input MLE.
    pub input: Millis,
}

impl VerifiedReport {
    /// Total verification time.
    pub fn total_ms(&self) -> f64 {
        self.setup.0 + self.input.0 + self.layers.iter().map(|m| m.0).sum::<f64>()
    }
}

/// Converts integers to field elements, refusing values that would wrap.
fn to_field<F: ProofField>(v: &[i128], what: &str) -> Result<Vec<F>, VerifyError> {
    v.iter()
        .enumerate()
        .map(|(i, x)| {
            from_i128(*x).map_err(|_| {
                VerifyError::Input(format!(
                    "{what} value {x} at index {i} does not fit the field"
                ))
            })
        })
        .collect()
}

/// Checks the statement's shape and range and returns the batch size.
pub fn check_statement(
    circuit: &LayeredCircuit,
    input: &[i128],
    output: &[i128],
) -> Result<usize, VerifyError> {
    circuit.check().map_err(VerifyError::BadCircuit)?;
    let per_in = circuit.input.item_len();
    if input.is_empty() || input.len() % per_in != 0 {
        return Err(VerifyError::Input(format!(
            "{} input values is not a whole number of items of {per_in}",
            input.len()
        )));
    }
    let batch = input.len() / per_in;
    if let Some((i, v)) = input
        .iter()
        .enumerate()
        .find(|(_, v)| **v < circuit.input_min || **v > circuit.input_max)
    {
        return Err(VerifyError::Input(format!(
            "input value {v} at index {i} is outside the declared range [{}, {}]",
            circuit.input_min, circuit.input_max
        )));
    }
    let per_out = circuit.output().item_len();
    if output.len() != batch * per_out {
        return Err(VerifyError::Shape(format!(
            "output has {} values, expected {} for a batch of {batch}",
            output.len(),
            batch * per_out
        )));
    }
    Ok(batch)
}

/// Checks that `proof` shows `circuit` maps `input` to `output` (integers at the circuit's
/// scales, batch-major, row-major per item).
pub fn verify<F: ProofField>(
    circuit: &LayeredCircuit,
    input: &[i128],
    output: &[i128],
    proof: &Proof<F>,
) -> Result<VerifiedReport, VerifyError> {
    verify_bound_to(circuit, &circuit.digest(), input, output, proof)
}

/// [`verify`] with the statement bound to `digest` instead of a fresh `circuit.digest()`.
///
/// Sound only when `digest` is `circuit`'s digest (a caller that verifies many proofs of one
/// circuit may hash it once). The soundness tests also use it to play a digest collision: a
/// proof made for another model under the same digest must still fail, through the layer checks
/// alone, wherever the two models compute different values.
pub fn verify_bound_to<F: ProofField>(
    circuit: &LayeredCircuit,
    digest: &[u8; 32],
    input: &[i128],
    output: &[i128],
    proof: &Proof<F>,
) -> Result<VerifiedReport, VerifyError> {
    let mut clock = Clock::start();
    if F::ID != circuit.field {
        return Err(VerifyError::FieldMismatch {
            proof: F::ID,
            circuit: circuit.field,
        });
    }
    let batch = check_statement(circuit, input, output)?;
    let digest = *digest;
    if proof.digest != digest {
        return Err(VerifyError::DigestMismatch);
    }
    let input_f: Vec<F> = to_field(input, "input")?;
    let output_f: Vec<F> = to_field(output, "output")?;
    if proof.output != output_f {
        return Err(VerifyError::OutputMismatch);
    }
    if proof.layers.len() != circuit.layers.len() {
        return Err(VerifyError::ProofShape(format!(
            "{} layer proofs for {} layers",
            proof.layers.len(),
            circuit.layers.len()
        )));
    }
    let mut transcript = Transcript::new(&digest, &input_f, &output_f);
    // Every opened checkpoint is bound before the first challenge (top layer first).
    for lp in &proof.layers {
        if !lp.opened.is_empty() {
            CheckpointOpening::<F>::absorb(&ClearOpening { values: &lp.opened }, &mut transcript)?;
        }
    }
    let out_layout = circuit.output();
    let r: Vec<F> = transcript.challenges(label::OUTPUT_POINT, out_layout.vars(batch));
    let value = mle::evaluate(&out_layout.scatter(batch, &output_f), &r);
    // The claims handed down to each tensor (0 the input, k + 1 the output of layer k), in
    // the order they arrive; only a fork's output gets several.
    let mut pending: Vec<Vec<Claim<F>>> = vec![Vec::new(); circuit.layers.len() + 1];
    pending[circuit.layers.len()].push(Claim { point: r, value });
    let mut degree_sum = out_layout.vars(batch) as u64;
    let setup = clock.lap();

    let mut times = vec![Millis::default(); circuit.layers.len()];
    // Layer proofs are stored output layer first.
    for ((i, layer), lp) in circuit.layers.iter().enumerate().rev().zip(&proof.layers) {
        let claims = std::mem::take(&mut pending[i + 1]);
        let out = verify_layer(layer, batch, &claims, lp, &mut transcript, i)?;
        let reads = layer.op.reads(i);
        if out.claims.len() != reads.len() {
            return Err(VerifyError::ProofShape(format!(
                "layer {i}: {} claims handed down for {} tensors read",
                out.claims.len(),
                reads.len()
            )));
        }
        for (t, c) in reads.into_iter().zip(out.claims) {
            pending[t].push(c);
        }
        degree_sum += out.degree_sum;
        times[i] = clock.lap();
    }
    if pending[0].is_empty() {
        return Err(VerifyError::BadCircuit("no layer reads the input".into()));
    }
    let table = circuit.input.scatter(batch, &input_f);
    for claim in &pending[0] {
        if mle::evaluate(&table, &claim.point) != claim.value {
            return Err(VerifyError::InputCheck);
        }
    }
    Ok(VerifiedReport {
        batch,
        soundness_bits: soundness_bits(F::ID, degree_sum),
        setup,
        layers: times,
        input: clock.lap(),
    })
}
