//! Witness time: plain integer inference (`infer`, the baseline the prover is compared against)
//! and the field witness (`witness`: the same plus one conversion of every stage), on a
//! CIFAR-like CNN and a wide dense net. Throughput is in multiply-accumulates.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{ActivationOp, Conv2dOp, DenseOp, SumPoolOp};
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Layout, Op, QuantParams};
use verinfer_circuits::field::{FieldId, M127};
use verinfer_circuits::witness::{infer, witness};

fn layer(op: Op, input: &[usize], output: Vec<usize>, bound_bits: u32) -> CircuitLayer {
    CircuitLayer {
        op,
        input: Layout::new(input.to_vec()),
        output: Layout::new(output),
        scale_bits: 0,
        bound_bits,
        label: String::new(),
    }
}

fn weights(rng: &mut ChaCha8Rng, n: usize, lo: i64, hi: i64) -> Vec<i64> {
    (0..n).map(|_| rng.gen_range(lo..=hi)).collect()
}

fn circuit(
    name: &str,
    input: Vec<usize>,
    range: i128,
    layers: Vec<CircuitLayer>,
) -> LayeredCircuit {
    LayeredCircuit {
        name: name.into(),
        field: FieldId::M127,
        field_reason: String::new(),
        params: QuantParams::default(),
        input: Layout::new(input),
        input_scale: 0,
        input_min: -range,
        input_max: range - 1,
        layers,
    }
}

/// 3×32×32 → conv 3→16 3×3 pad 1 → x²+256x → sumpool 2 → conv 16→32 3×3 pad 1 → x²+256x →
/// sumpool 2 → dense 2048→10; weights in [−128, 127], every bound declared as 100 bits.
fn cifar_like() -> LayeredCircuit {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut conv = |c: usize, o: usize, hw: usize| {
        let op = Op::Conv2d(Conv2dOp {
            in_channels: c,
            out_channels: o,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            weight: weights(&mut rng, o * c * 9, -128, 127),
            bias: vec![0; o],
        });
        layer(op, &[c, hw, hw], vec![o, hw, hw], 100)
    };
    let act = |d: &[usize]| {
        layer(
            Op::Activation(ActivationOp { a: 1, b: 256, c: 0 }),
            d,
            d.to_vec(),
            100,
        )
    };
    let pool = |d: &[usize]| {
        let op = Op::SumPool(SumPoolOp {
            window: [2, 2],
            stride: [2, 2],
        });
        layer(op, d, vec![d[0], d[1] / 2, d[2] / 2], 100)
    };
    let c1 = conv(3, 16, 32);
    let c2 = conv(16, 32, 16);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let dense = Op::Dense(DenseOp {
        in_features: 2048,
        out_features: 10,
        weight: weights(&mut rng, 20480, -128, 127),
        bias: vec![0; 10],
    });
    let layers = vec![
        c1,
        act(&[16, 32, 32]),
        pool(&[16, 32, 32]),
        c2,
        act(&[32, 16, 16]),
        pool(&[32, 16, 16]),
        layer(dense, &[32, 8, 8], vec![10], 100),
    ];
    circuit("cifar-like", vec![3, 32, 32], 128, layers)
}

/// 1845 → 2000 → x² → 2000 → x² → 2000 → 183, weights and inputs in {−2, …, 1}, with the
/// worst-case bounds of that range.
fn dense_net() -> LayeredCircuit {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut dense = |k: usize, o: usize, bits: u32| {
        let op = Op::Dense(DenseOp {
            in_features: k,
            out_features: o,
            weight: weights(&mut rng, k * o, -2, 1),
            bias: vec![0; o],
        });
        layer(op, &[k], vec![o], bits)
    };
    let sq = |n: usize, bits: u32| {
        layer(
            Op::Activation(ActivationOp { a: 1, b: 0, c: 0 }),
            &[n],
            vec![n],
            bits,
        )
    };
    let layers = vec![
        dense(1845, 2000, 13),
        sq(2000, 26),
        dense(2000, 2000, 39),
        sq(2000, 78),
        dense(2000, 2000, 90),
        dense(2000, 183, 102),
    ];
    circuit("dense-net", vec![1845], 2, layers)
}

fn bench_circuit(c: &mut Criterion, circuit: &LayeredCircuit, batches: &[usize], samples: usize) {
    let mut group = c.benchmark_group(format!("witness/{}", circuit.name));
    group.sample_size(samples);
    for &batch in batches {
        let mut rng = ChaCha8Rng::seed_from_u64(batch as u64);
        let input: Vec<i128> = (0..batch * circuit.input.item_len())
            .map(|_| rng.gen_range(circuit.input_min..=circuit.input_max))
            .collect();
        group.throughput(Throughput::Elements(circuit.macs_per_item() * batch as u64));
        group.bench_with_input(BenchmarkId::new("infer", batch), &batch, |b, &batch| {
            b.iter(|| infer(circuit, batch, &input).expect("infer"))
        });
        group.bench_with_input(
            BenchmarkId::new("witness_m127", batch),
            &batch,
            |b, &batch| b.iter(|| witness::<M127>(circuit, batch, &input).expect("witness")),
        );
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_circuit(c, &cifar_like(), &[1, 8], 30);
    bench_circuit(c, &dense_net(), &[1, 512], 10);
}

criterion_group!(witness_benches, benches);
criterion_main!(witness_benches);
