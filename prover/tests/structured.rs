//! Round trips and tampering for the structured layer proofs, on hand-built circuits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{ActivationOp, Conv2dOp, DenseOp, GatesOp, SumPoolOp};
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Layout, Op, QuantParams};
use verinfer_circuits::field::{Bn254, FieldId, ProofField, M127};
use verinfer_circuits::gates::{Gate, GateLayer};
use verinfer_prover::inference::prove;
use verinfer_verifier::inference::verify;
use verinfer_verifier::Proof;

fn layer(op: Op, input: Vec<usize>, output: Vec<usize>) -> CircuitLayer {
    CircuitLayer {
        op,
        input: Layout::new(input),
        output: Layout::new(output),
        scale_bits: 0,
        bound_bits: 100,
        label: String::new(),
    }
}

fn circuit(field: FieldId, input: Vec<usize>, layers: Vec<CircuitLayer>) -> LayeredCircuit {
    LayeredCircuit {
        name: "test".into(),
        field,
        field_reason: String::new(),
        params: QuantParams::default(),
        input: Layout::new(input),
        input_scale: 0,
        input_min: -8,
        input_max: 7,
        layers,
    }
}

fn conv(
    rng: &mut ChaCha8Rng,
    c: usize,
    o: usize,
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    hw: [usize; 2],
) -> CircuitLayer {
    let out = [
        (hw[0] + 2 * p[0] - k[0]) / s[0] + 1,
        (hw[1] + 2 * p[1] - k[1]) / s[1] + 1,
    ];
    layer(
        Op::Conv2d(Conv2dOp {
            in_channels: c,
            out_channels: o,
            kernel: k,
            stride: s,
            padding: p,
            weight: (0..o * c * k[0] * k[1])
                .map(|_| rng.gen_range(-4..4))
                .collect(),
            bias: (0..o).map(|_| rng.gen_range(-50..50)).collect(),
        }),
        vec![c, hw[0], hw[1]],
        vec![o, out[0], out[1]],
    )
}

/// A chain covering every structured kind: conv (odd shapes, stride 2, padding) → activation
/// → sum-pool → gates relabel → dense.
fn chain(field: FieldId, seed: u64) -> LayeredCircuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c1 = conv(&mut rng, 3, 4, [3, 2], [2, 1], [1, 1], [5, 7]); // -> [4, 3, 8]
    let act = layer(
        Op::Activation(ActivationOp { a: 2, b: -3, c: 5 }),
        vec![4, 3, 8],
        vec![4, 3, 8],
    );
    let pool = layer(
        Op::SumPool(SumPoolOp {
            window: [2, 2],
            stride: [1, 2],
        }),
        vec![4, 3, 8],
        vec![4, 2, 4],
    );
    // Relabel [4,2,4] as [2,4,4] (row-major) through explicit relay gates.
    let from = Layout::new(vec![4, 2, 4]);
    let to = Layout::new(vec![2, 4, 4]);
    let mut gates = vec![Gate::Const(0); to.item_len_padded()];
    for i in 0..32 {
        gates[to.padded_offset(i)] = Gate::Relay(from.padded_offset(i) as u32);
    }
    let relabel = layer(
        Op::Gates(GatesOp {
            layer: GateLayer { gates },
        }),
        vec![4, 2, 4],
        vec![2, 4, 4],
    );
    let sq = layer(
        Op::Activation(ActivationOp { a: 1, b: 0, c: 0 }),
        vec![2, 4, 4],
        vec![2, 4, 4],
    );
    let dense = layer(
        Op::Dense(DenseOp {
            in_features: 32,
            out_features: 10,
            weight: (0..320).map(|_| rng.gen_range(-3..3)).collect(),
            bias: (0..10).map(|_| rng.gen_range(-9..9)).collect(),
        }),
        vec![2, 4, 4],
        vec![10],
    );
    circuit(
        field,
        vec![3, 5, 7],
        vec![c1, act, pool, relabel, sq, dense],
    )
}

fn random_input(c: &LayeredCircuit, batch: usize, seed: u64) -> Vec<i128> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..batch * c.input.item_len())
        .map(|_| rng.gen_range(c.input_min..=c.input_max))
        .collect()
}

fn round_trip<F: ProofField>(c: &LayeredCircuit, batch: usize) {
    let input = random_input(c, batch, 7);
    let (out, proof, _) = prove::<F>(c, &input).unwrap();
    let bytes = proof.encode();
    let proof = Proof::<F>::decode(&bytes).unwrap();
    let report = verify(c, &input, &out, &proof).unwrap();
    assert!(report.soundness_bits > 100.0, "{}", report.soundness_bits);
    // One output element off by one is rejected (with the proof claiming it too).
    let mut bad = out.clone();
    bad[0] += 1;
    let mut bad_proof = proof.clone();
    bad_proof.output[0] += F::one();
    assert!(verify(c, &input, &bad, &bad_proof).is_err());
    // Another input is rejected.
    let mut other = input.clone();
    other[input.len() - 1] = if other[input.len() - 1] == c.input_max {
        c.input_min
    } else {
        c.input_max
    };
    assert!(verify(c, &other, &out, &proof).is_err());
}

#[test]
fn every_layer_kind_round_trips() {
    for batch in [1, 3] {
        round_trip::<M127>(&chain(FieldId::M127, 1), batch);
        round_trip::<Bn254>(&chain(FieldId::Bn254, 2), batch);
    }
}

#[test]
fn single_layers_round_trip() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cases = vec![
        circuit(
            FieldId::M127,
            vec![3, 5, 7],
            vec![conv(&mut rng, 3, 2, [3, 3], [1, 1], [1, 1], [5, 7])],
        ),
        circuit(
            FieldId::M127,
            vec![1, 8, 8],
            vec![conv(&mut rng, 1, 3, [2, 2], [2, 2], [0, 0], [8, 8])],
        ),
        circuit(
            FieldId::M127,
            vec![2, 6, 6],
            vec![layer(
                Op::SumPool(SumPoolOp {
                    window: [3, 3],
                    stride: [3, 3],
                }),
                vec![2, 6, 6],
                vec![2, 2, 2],
            )],
        ),
        // Aligned pools (window = stride = 2^m dividing the input): proved without a sumcheck.
        circuit(
            FieldId::M127,
            vec![3, 4, 8],
            vec![layer(
                Op::SumPool(SumPoolOp {
                    window: [2, 2],
                    stride: [2, 2],
                }),
                vec![3, 4, 8],
                vec![3, 2, 4],
            )],
        ),
        circuit(
            FieldId::M127,
            vec![2, 8, 4],
            vec![
                layer(
                    Op::Activation(ActivationOp { a: 1, b: 4, c: -3 }),
                    vec![2, 8, 4],
                    vec![2, 8, 4],
                ),
                layer(
                    Op::SumPool(SumPoolOp {
                        window: [4, 1],
                        stride: [4, 1],
                    }),
                    vec![2, 8, 4],
                    vec![2, 2, 4],
                ),
                layer(
                    Op::SumPool(SumPoolOp {
                        window: [2, 2],
                        stride: [2, 2],
                    }),
                    vec![2, 2, 4],
                    vec![2, 1, 2],
                ),
            ],
        ),
        circuit(
            FieldId::M127,
            vec![5],
            vec![layer(
                Op::Activation(ActivationOp { a: 1, b: 16, c: 0 }),
                vec![5],
                vec![5],
            )],
        ),
    ];
    for c in &cases {
        for batch in [1, 2, 5] {
            round_trip::<M127>(c, batch);
        }
    }
}

/// The prover skips converting the input table of an aligned (free) sum-pool; its proof must be
/// exactly the one made from the full witness, and must verify.
#[test]
fn skipping_free_pool_tables_changes_no_proof() {
    use verinfer_circuits::witness::witness;
    use verinfer_prover::inference::prove_witness;
    use verinfer_verifier::layers::rule;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let c1 = conv(&mut rng, 2, 4, [3, 3], [1, 1], [1, 1], [4, 8]); // -> [4, 4, 8]
    let act = layer(
        Op::Activation(ActivationOp { a: 1, b: 1, c: 0 }),
        vec![4, 4, 8],
        vec![4, 4, 8],
    );
    let pool = layer(
        Op::SumPool(SumPoolOp {
            window: [2, 2],
            stride: [2, 2],
        }),
        vec![4, 4, 8],
        vec![4, 2, 4],
    );
    assert!(
        rule::<M127>(&pool.op).relabels(&pool),
        "the test needs a free pool"
    );
    let dense = layer(
        Op::Dense(DenseOp {
            in_features: 32,
            out_features: 5,
            weight: (0..160).map(|_| rng.gen_range(-3..3)).collect(),
            bias: (0..5).map(|_| rng.gen_range(-9..9)).collect(),
        }),
        vec![4, 2, 4],
        vec![5],
    );
    let c = circuit(FieldId::M127, vec![2, 4, 8], vec![c1, act, pool, dense]);
    for batch in [1, 3] {
        let input = random_input(&c, batch, 11);
        let (out, proof, _) = prove::<M127>(&c, &input).unwrap();
        let full = witness::<M127>(&c, batch, &input).unwrap();
        let (reference, _) = prove_witness(&c, &input, &full).unwrap();
        assert_eq!(proof.encode(), reference.encode());
        verify(&c, &input, &out, &proof).unwrap();
    }
}
