//! Soundness of the structured layer proofs: per layer kind, tampering with any proof element,
//! any weight or bias the verifier uses, the input or the claimed output is rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Layout, Op, QuantParams};
use verinfer_circuits::field::{FieldId, M127};
use verinfer_circuits::gates::{Gate, GateLayer};
use verinfer_prover::inference::prove;
use verinfer_verifier::inference::verify;
use verinfer_verifier::Proof;

fn one_layer(op: Op, input: Vec<usize>, output: Vec<usize>) -> LayeredCircuit {
    LayeredCircuit {
        name: "t".into(),
        field: FieldId::M127,
        field_reason: String::new(),
        params: QuantParams::default(),
        input: Layout::new(input.clone()),
        input_scale: 0,
        input_min: -8,
        input_max: 7,
        layers: vec![CircuitLayer {
            op,
            input: Layout::new(input),
            output: Layout::new(output),
            scale_bits: 0,
            bound_bits: 60,
            label: String::new(),
        }],
    }
}

fn cases() -> Vec<(&'static str, LayeredCircuit)> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut w = |n: usize| -> Vec<i64> { (0..n).map(|_| rng.gen_range(-3..=3)).collect() };
    let mut relabel = vec![Gate::Const(0); 8];
    for (i, g) in relabel.iter_mut().enumerate().take(6) {
        *g = if i % 2 == 0 {
            Gate::Relay(i as u32)
        } else {
            Gate::Mul(i as u32, 0)
        };
    }
    vec![
        (
            "conv2d",
            one_layer(
                Op::Conv2d {
                    in_channels: 2,
                    out_channels: 3,
                    kernel: [3, 2],
                    stride: [2, 1],
                    padding: [1, 1],
                    weight: w(36),
                    bias: vec![5, -7, 2],
                },
                vec![2, 5, 3],
                vec![3, 3, 4],
            ),
        ),
        (
            "dense",
            one_layer(
                Op::Dense {
                    in_features: 6,
                    out_features: 3,
                    weight: w(18),
                    bias: vec![1, 0, -4],
                },
                vec![6],
                vec![3],
            ),
        ),
        (
            "activation",
            one_layer(Op::Activation { a: 3, b: -2, c: 7 }, vec![2, 3], vec![2, 3]),
        ),
        (
            "sum_pool",
            one_layer(
                Op::SumPool {
                    window: [2, 3],
                    stride: [2, 3],
                },
                vec![2, 4, 6],
                vec![2, 2, 2],
            ),
        ),
        (
            "aligned_sum_pool",
            one_layer(
                Op::SumPool {
                    window: [2, 4],
                    stride: [2, 4],
                },
                vec![3, 4, 8],
                vec![3, 2, 2],
            ),
        ),
        (
            "gates",
            one_layer(
                Op::Gates {
                    layer: GateLayer { gates: relabel },
                },
                vec![6],
                vec![6],
            ),
        ),
    ]
}

/// Every way to alter one weight or bias the verifier reads.
fn weight_variants(c: &LayeredCircuit) -> Vec<LayeredCircuit> {
    let mut out = Vec::new();
    let n = match &c.layers[0].op {
        Op::Conv2d { weight, bias, .. } | Op::Dense { weight, bias, .. } => {
            weight.len() + bias.len()
        }
        Op::Activation { .. } => 3,
        Op::SumPool { .. } => 0,
        Op::Gates { layer } => layer.gates.len(),
    };
    for k in 0..n {
        let mut d = c.clone();
        match &mut d.layers[0].op {
            Op::Conv2d { weight, bias, .. } | Op::Dense { weight, bias, .. } => {
                if k < weight.len() {
                    weight[k] += 1;
                } else {
                    bias[k - weight.len()] += 1;
                }
            }
            Op::Activation { a, b, c } => *[a, b, c][k] += 1,
            Op::Gates { layer } => {
                layer.gates[k] = match layer.gates[k] {
                    Gate::Relay(x) => Gate::Scale(x, 2),
                    Gate::Mul(x, y) => Gate::Add(x, y),
                    _ => Gate::Const(1),
                }
            }
            Op::SumPool { .. } => {}
        }
        out.push(d);
    }
    out
}

#[test]
fn tampering_is_rejected_for_every_layer_kind() {
    for (name, c) in cases() {
        for batch in [1, 3] {
            let mut rng = ChaCha8Rng::seed_from_u64(batch as u64);
            let input: Vec<i128> = (0..batch * c.input.item_len())
                .map(|_| rng.gen_range(-8..=7))
                .collect();
            let (out, proof, _) = prove::<M127>(&c, &input).unwrap();
            verify(&c, &input, &out, &proof).unwrap();

            // Every proof element, +1.
            let mut count = 0;
            for l in 0..proof.layers.len() {
                for s in 0..proof.layers[l].sumchecks.len() {
                    for r in 0..proof.layers[l].sumchecks[s].rounds.len() {
                        for e in 0..proof.layers[l].sumchecks[s].rounds[r].len() {
                            let mut bad = proof.clone();
                            bad.layers[l].sumchecks[s].rounds[r][e] += M127::from(1u64);
                            assert!(
                                verify(&c, &input, &out, &bad).is_err(),
                                "{name}: round value"
                            );
                            count += 1;
                        }
                    }
                }
                for e in 0..proof.layers[l].evals.len() {
                    let mut bad = proof.clone();
                    bad.layers[l].evals[e] += M127::from(1u64);
                    assert!(verify(&c, &input, &out, &bad).is_err(), "{name}: eval");
                    count += 1;
                }
            }
            assert!(
                count > 0 || name == "aligned_sum_pool",
                "{name}: no proof elements"
            );

            // Each output element ±1 (the proof carrying the same altered output).
            for k in 0..out.len() {
                for delta in [1i128, -1] {
                    let mut bad = out.clone();
                    bad[k] += delta;
                    let mut bp: Proof<M127> = proof.clone();
                    bp.output[k] += if delta > 0 {
                        M127::from(1u64)
                    } else {
                        -M127::from(1u64)
                    };
                    assert!(verify(&c, &input, &bad, &bp).is_err(), "{name}: output {k}");
                }
            }
            // Each input element changed.
            for k in 0..input.len() {
                let mut bad = input.clone();
                bad[k] = if bad[k] == 7 { 6 } else { bad[k] + 1 };
                assert!(verify(&c, &bad, &out, &proof).is_err(), "{name}: input {k}");
            }
            // Each weight / bias / coefficient / gate altered: rejected by the digest, and by
            // the protocol itself once the digest is forged to match.
            for d in weight_variants(&c) {
                assert!(verify(&d, &input, &out, &proof).is_err(), "{name}: weight");
                let mut forged = proof.clone();
                forged.digest = d.digest();
                let res = verify(&d, &input, &out, &forged);
                // The altered model may by chance give the same output on this input only if
                // the change does not matter for it; then the proof is rightly valid.
                // A variant that is not a valid circuit (a gate writing padding) must fail too.
                let same = d.check().is_ok()
                    && verinfer_circuits::witness::infer(&d, batch, &input)
                        .ok()
                        .as_ref()
                        == Some(&out);
                assert_eq!(res.is_ok(), same, "{name}: forged digest, weight change");
            }
        }
    }
}
