//! Generic GKR on random layered circuits: prover and verifier throughput in gates per second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_circuits::gates::GateCircuit;
use verinfer_prover::gkr;
use verinfer_verifier::gkr as vgkr;

/// Depth of the benchmark circuits; width = gates / DEPTH.
const DEPTH: usize = 8;

fn bench_field<F: ProofField>(c: &mut Criterion, name: &str, logs: &[usize]) {
    let mut group = c.benchmark_group(format!("gkr/{name}"));
    group.sample_size(10);
    for &log in logs {
        let gates = 1usize << log;
        let width = gates / DEPTH;
        let mut rng = ChaCha8Rng::seed_from_u64(log as u64);
        let circuit = GateCircuit::random(width, DEPTH, || rng.gen());
        let input: Vec<F> = (0..width).map(|_| F::from(rng.gen::<u64>())).collect();
        group.throughput(Throughput::Elements(gates as u64));
        let id = format!("2^{log}_gates");
        group.bench_with_input(BenchmarkId::new("prove", &id), &log, |b, _| {
            b.iter(|| gkr::prove(&circuit, &input).expect("prove"))
        });
        let (output, proof) = gkr::prove(&circuit, &input).expect("prove");
        group.bench_with_input(BenchmarkId::new("verify", &id), &log, |b, _| {
            b.iter(|| vgkr::verify(&circuit, &input, &output, &proof).expect("verify"))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_field::<M127>(c, "m127", &[18, 20]);
    bench_field::<Bn254>(c, "bn254", &[18]);
}

criterion_group!(gkr_benches, benches);
criterion_main!(gkr_benches);
