//! The built-in demonstration: compile, prove and verify an embedded CNN end to end.
//!
//! Until the trained digits model lands, the embedded default is the CIFAR-sized CNN of
//! `verinfer_circuits::zoo::cifar_small` (random weights from a fixed seed, x²+x activations,
//! sum-pooling) on a fixed batch of random images, proved over Mersenne-127.

use std::time::Instant;
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::M127;
use verinfer_circuits::model::Activation;
use verinfer_circuits::quant::{dequantize, quantize_input};
use verinfer_circuits::zoo;
use verinfer_prover::inference::{prove, ProveReport};
use verinfer_verifier::inference::{verify, VerifiedReport};
use verinfer_verifier::{Proof, VerifyError};

/// Images in the demo batch.
pub const DEMO_BATCH: usize = 4;

/// What the demo measured.
#[derive(Debug)]
pub struct DemoReport {
    /// The compiled circuit.
    pub circuit: LayeredCircuit,
    /// Predicted class (argmax of the verified output) per image.
    pub argmax: Vec<usize>,
    /// Prover timings.
    pub prove: ProveReport,
    /// Verifier report (soundness, per-layer times).
    pub verify: VerifiedReport,
    /// Time to decode and verify, end to end, in ms.
    pub verify_ms: f64,
    /// Encoded proof size in bytes.
    pub proof_bytes: usize,
    /// The error a proof with one altered element got (it must be rejected).
    pub tampered: Option<VerifyError>,
}

/// Compiles the embedded model, proves a batch, verifies the proof, and checks that a tampered
/// proof is rejected.
pub fn run() -> Result<DemoReport, Box<dyn std::error::Error + Send + Sync>> {
    let (model, params) = zoo::cifar_small(2024, Activation::SquarePlusX);
    let circuit = compile(&model, &params, FieldChoice::Auto)?;
    let images = zoo::random_input(&model, DEMO_BATCH, 7);
    let input = quantize_input(&circuit, &images)?;

    let (output, proof, prove_report) = prove::<M127>(&circuit, &input)?;
    let bytes = proof.encode();

    let t = Instant::now();
    let decoded = Proof::<M127>::decode(&bytes)?;
    let report = verify(&circuit, &input, &output, &decoded)?;
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;

    // Alter one element of the first layer proof that has any: the verifier must say no.
    let mut bad = decoded.clone();
    if let Some(e) = bad.layers.iter_mut().find_map(|l| l.evals.first_mut()) {
        *e += M127::from(1u64);
    }
    let tampered = verify(&circuit, &input, &output, &bad).err();

    let classes = circuit.output().item_len();
    let scale = circuit.output_scale();
    let argmax = output
        .chunks(classes)
        .map(|item| {
            item.iter()
                .enumerate()
                .max_by(|a, b| dequantize(*a.1, scale).total_cmp(&dequantize(*b.1, scale)))
                .map(|(i, _)| i)
                .unwrap_or(0)
        })
        .collect();
    Ok(DemoReport {
        circuit,
        argmax,
        prove: prove_report,
        verify: report,
        verify_ms,
        proof_bytes: bytes.len(),
        tampered,
    })
}
