//! Degree-2 sumcheck prover (product of two tables): time per table entry, on one thread and on
//! all threads, for both shipped fields.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_prover::sumcheck::{prove, ProductProver};
use verinfer_verifier::Transcript;

fn bench_field<F: ProofField>(c: &mut Criterion, name: &str, sizes: &[usize]) {
    let mut group = c.benchmark_group(format!("sumcheck_product/{name}"));
    group.sample_size(10);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let all = rayon::ThreadPoolBuilder::new().build().expect("pool");
    for &log in sizes {
        let n = 1usize << log;
        let mut rng = ChaCha8Rng::seed_from_u64(log as u64);
        let a: Vec<F> = (0..n).map(|_| F::rand(&mut rng)).collect();
        let b: Vec<F> = (0..n).map(|_| F::rand(&mut rng)).collect();
        let claim: F = a.iter().zip(&b).map(|(x, y)| *x * y).sum();
        group.throughput(Throughput::Elements(n as u64));
        for (label, pool) in [("1thread", &one), ("all_threads", &all)] {
            group.bench_with_input(
                BenchmarkId::new(label, format!("2^{log}")),
                &log,
                |bch, _| {
                    bch.iter_batched(
                        || (a.clone(), b.clone()),
                        |(a, b)| {
                            pool.install(|| {
                                let mut p = ProductProver::new(a, b);
                                let mut t = Transcript::new::<F>(&[0u8; 32], &[], &[]);
                                prove(&mut p, claim, &mut t)
                            })
                        },
                        criterion::BatchSize::LargeInput,
                    )
                },
            );
        }
    }
    group.finish();
}

fn sizes() -> Vec<usize> {
    match std::env::var("VERINFER_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![16, 18, 20, 22],
    }
}

fn benches(c: &mut Criterion) {
    let s = sizes();
    bench_field::<M127>(c, "m127", &s);
    bench_field::<Bn254>(c, "bn254", &s);
}

criterion_group!(sumcheck, benches);
criterion_main!(sumcheck);
