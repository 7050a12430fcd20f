//! Side by side, in one criterion run: verinfer's degree-2 sumcheck prover (`ProductProver`,
//! ark 0.5) vs crates.io `ark-linear-sumcheck` 0.4 (`MLSumcheck::prove` on one product of two
//! `DenseMultilinearExtension`s, ark 0.4), BN254 scalar field, same tables, same sizes, same
//! thread pools, same sample count.
//!
//! Benchmark ids: `sumcheck_bn254/2^{log}/{contender}/{1thread|all_threads}` with contenders
//! - `verinfer`: `ProductProver::new` + `prove` with a fresh `Transcript` (as the main
//!   workspace's `benches/benches/sumcheck.rs`).
//! - `ark_linear_sumcheck`: `MLSumcheck::prove` (the crate's standard non-interactive prover,
//!   including its internal deep copy of the tables in `prover_init`).
//! - `ark_linear_sumcheck_noclone`: diagnostic, the same rounds and transcript with that one
//!   up-front copy removed (see `ark_prove_noclone`).
//!
//! Plus `field_baseline/*`: a 2^16-term inner product in ark 0.5 vs ark 0.4 BN254 `Fr`, to show
//! how much of any gap is plain field arithmetic (library version) rather than the prover.
//!
//! Table construction/copying is excluded for every contender (`iter_batched`, `LargeInput`),
//! and every contender hands its big tables back so they are freed outside the timed region.
//!
//! Env: `COMPARE_SIZES` (default `18,20`), `COMPARE_SAMPLES` (default 20),
//! `COMPARE_NOCLONE=0` to skip the diagnostic contender.
use std::hint::black_box;

use compare_ark_linear_sumcheck::{
    ark_prove, ark_prove_noclone, check, verinfer_prove, Fr04, Fr05, Instance,
};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn samples() -> usize {
    std::env::var("COMPARE_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn bench_sumcheck(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let all = rayon::ThreadPoolBuilder::new().build().expect("pool");
    eprintln!(
        "compare: all_threads = {} rayon threads; samples = {}",
        all.current_num_threads(),
        samples()
    );
    let noclone = std::env::var("COMPARE_NOCLONE").map_or(true, |v| v != "0");

    for log in env_list("COMPARE_SIZES", &[18, 20]) {
        let inst = Instance::random(log);
        check(&inst); // both provers verify and prove the same sum, before anything is timed
        let mut group = c.benchmark_group(format!("sumcheck_bn254/2^{log}"));
        group.sample_size(samples());
        group.throughput(Throughput::Elements(1u64 << log));
        for (label, pool) in [("1thread", &one), ("all_threads", &all)] {
            group.bench_function(BenchmarkId::new("verinfer", label), |bch| {
                bch.iter_batched(
                    || (inst.a05.clone(), inst.b05.clone()),
                    |(a, b)| pool.install(|| verinfer_prove(a, b, black_box(inst.claim05))),
                    BatchSize::LargeInput,
                )
            });
            group.bench_function(BenchmarkId::new("ark_linear_sumcheck", label), |bch| {
                bch.iter_batched(
                    || inst.ark_mles(),
                    |(a, b)| pool.install(|| ark_prove(a, b)),
                    BatchSize::LargeInput,
                )
            });
            if noclone {
                group.bench_function(
                    BenchmarkId::new("ark_linear_sumcheck_noclone", label),
                    |bch| {
                        bch.iter_batched(
                            || inst.ark_mles(),
                            |(a, b)| pool.install(|| ark_prove_noclone(a, b)),
                            BatchSize::LargeInput,
                        )
                    },
                );
            }
        }
        group.finish();
    }
}

/// Σ a[i]·b[i] over 2^16 terms, one thread, in each ark version: the raw multiply-add speed the
/// two provers are built on.
fn bench_field(c: &mut Criterion) {
    let inst = Instance::random(16);
    let mut group = c.benchmark_group("field_baseline/inner_product_2^16");
    group.sample_size(samples());
    group.throughput(Throughput::Elements(1 << 16));
    group.bench_function("ark_ff_0.5", |bch| {
        bch.iter(|| {
            let (a, b) = (black_box(&inst.a05), black_box(&inst.b05));
            a.iter().zip(b).fold(Fr05::from(0u64), |acc, (x, y)| acc + *x * y)
        })
    });
    group.bench_function("ark_ff_0.4", |bch| {
        bch.iter(|| {
            let (a, b) = (black_box(&inst.a04), black_box(&inst.b04));
            a.iter().zip(b).fold(Fr04::from(0u64), |acc, (x, y)| acc + *x * y)
        })
    });
    group.finish();
}

criterion_group!(compare, bench_sumcheck, bench_field);
criterion_main!(compare);
