//! The built-in demonstration: prove and verify an embedded statement end to end.
//!
//! Until the CNN compiler lands, the embedded default is a fixed layered gate circuit
//! (a quadratic "network" of [`DEMO_DEPTH`] layers of [`DEMO_WIDTH`] gates, drawn from a fixed
//! seed) proved with the generic GKR protocol over Mersenne-127.

use std::time::{Duration, Instant};
use verinfer_circuits::field::{to_signed_decimal, ProofField, M127};
use verinfer_circuits::gates::GateCircuit;
use verinfer_prover::gkr;
use verinfer_verifier::{gkr as vgkr, Proof, VerifyError};

/// Gates per layer of the demo circuit.
pub const DEMO_WIDTH: usize = 1 << 14;
/// Layers of the demo circuit.
pub const DEMO_DEPTH: usize = 8;

/// What the demo measured.
#[derive(Debug)]
pub struct DemoReport {
    /// Gates in the circuit.
    pub gates: usize,
    /// The first few output values, as signed decimals.
    pub output_head: Vec<String>,
    /// Time to evaluate and prove.
    pub prove_time: Duration,
    /// Time to decode and verify.
    pub verify_time: Duration,
    /// Encoded proof size in bytes.
    pub proof_bytes: usize,
    /// Soundness of the verified proof, in bits.
    pub soundness_bits: f64,
    /// The error a proof with one altered element got (it must be rejected).
    pub tampered: Option<VerifyError>,
}

/// A deterministic 64-bit generator (splitmix64) so the demo statement never changes.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds the embedded circuit and input, proves, verifies, and checks that a tampered proof
/// is rejected.
pub fn run() -> Result<DemoReport, Box<dyn std::error::Error + Send + Sync>> {
    let mut state = 2024u64;
    let circuit = GateCircuit::random(DEMO_WIDTH, DEMO_DEPTH, || splitmix(&mut state));
    let input: Vec<M127> = (0..DEMO_WIDTH)
        .map(|_| M127::from(splitmix(&mut state) % 256))
        .collect();

    let t = Instant::now();
    let (output, proof) = gkr::prove(&circuit, &input)?;
    let bytes = proof.encode();
    let prove_time = t.elapsed();

    let t = Instant::now();
    let decoded = Proof::<M127>::decode(&bytes)?;
    let report = vgkr::verify(&circuit, &input, &output, &decoded)?;
    let verify_time = t.elapsed();

    // Alter one element in the middle of the proof: the verifier must say no.
    let mut bad = decoded.clone();
    if let Some(layer) = bad.layers.get_mut(DEMO_DEPTH / 2) {
        if let Some(e) = layer.evals.first_mut() {
            *e += M127::from(1u64);
        }
    }
    let tampered = vgkr::verify(&circuit, &input, &output, &bad).err();

    Ok(DemoReport {
        gates: circuit.gate_count(),
        output_head: output
            .iter()
            .take(4)
            .map(|v| to_signed_decimal(*v))
            .collect(),
        prove_time,
        verify_time,
        proof_bytes: bytes.len(),
        soundness_bits: report.soundness_bits,
        tampered,
    })
}

/// Field name of the demo, for display.
pub fn field_name() -> &'static str {
    M127::ID.name()
}
