//! The compiler issue's performance bars, measured in one criterion run:
//! - CIFAR-sized CNN (`zoo::cifar_small`, x²+x) at batch 1 and 8;
//! - SafetyNets' TIMIT-shaped dense net (`zoo::timit`, x²) at batch 512.
//!
//! For each: `witness` = plain quantized integer inference (`witness::infer`), `prove` = witness
//! of every stage + field conversion + all layer proofs, `verify` = the full verifier. Proof
//! sizes are printed once. Select with e.g. `cargo bench -p verinfer-benches --bench cnn -- cifar`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use criterion::{criterion_group, criterion_main, Criterion};
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::M127;
use verinfer_circuits::model::{Activation, Model};
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::witness::infer;
use verinfer_circuits::zoo;
use verinfer_prover::inference::prove;
use verinfer_verifier::inference::verify;

fn bench_model(
    c: &mut Criterion,
    name: &str,
    model: &Model,
    circuit: &LayeredCircuit,
    x: &[f64],
    batch: usize,
) {
    let input = quantize_input(circuit, x).expect("input in range");
    let (output, proof, _) = prove::<M127>(circuit, &input).expect("prove");
    verify(circuit, &input, &output, &proof).expect("verify");
    eprintln!(
        "{name}: proof {} bytes, {} MACs per item, max {} bits, model '{}'",
        proof.encode().len(),
        circuit.macs_per_item(),
        circuit.max_bits(),
        model.name
    );
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.bench_function("witness", |b| {
        b.iter(|| infer(circuit, batch, &input).expect("infer"))
    });
    g.bench_function("prove", |b| {
        b.iter(|| prove::<M127>(circuit, &input).expect("prove"))
    });
    g.bench_function("verify", |b| {
        b.iter(|| verify(circuit, &input, &output, &proof).expect("verify"))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let (m, q) = zoo::cifar_small(1, Activation::SquarePlusX);
    let circuit = compile(&m, &q, FieldChoice::M127).expect("compile");
    for batch in [1, 8] {
        let x = zoo::random_input(&m, batch, 3);
        bench_model(
            c,
            &format!("cifar_small/batch{batch}"),
            &m,
            &circuit,
            &x,
            batch,
        );
    }
    let (m, q) = zoo::timit(1, Activation::Square);
    let circuit = compile(&m, &q, FieldChoice::M127).expect("compile");
    let x = zoo::timit_input(512, 3);
    bench_model(c, "timit/batch512", &m, &circuit, &x, 512);
}

criterion_group!(cnn, benches);
criterion_main!(cnn);
