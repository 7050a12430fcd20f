//! Exact ReLU, LeakyReLU and max-pooling at checkpoints, end to end (docs/protocol.md §5): a
//! model whose ReLUs and max-pool the compiler turns into exact functions of requantization
//! checkpoints (one inserted and taking the max-pool after it too, one merged into the
//! checkpoint placed before it), its integer inference checked against the formulas, its proofs
//! verified over both fields, and every adversary caught: a prover that skips the ReLU or the
//! pool, one that applies a different slope or window, and every opened value off by one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::random_input;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{
    Exact, FieldChoice, LayeredCircuit, MaxPoolSpec, Op, QuantParams, RequantOp,
};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_circuits::model::{Conv2d, Dense, Layer, Model, Relu, Requant, SumPool};
use verinfer_circuits::relu::ReluChoice;
use verinfer_circuits::witness::infer;
use verinfer_prover::inference::prove;
use verinfer_verifier::inference::{verify, verify_bound_to};
use verinfer_verifier::{Proof, VerifyError};

/// Conv → ReLU (the compiler inserts its checkpoint) → 2×2 max-pool (merged into it) → conv →
/// checkpoint → LeakyReLU 2^−2 (merged into that checkpoint) → dense.
fn model() -> Model {
    let rng = &mut ChaCha8Rng::seed_from_u64(3);
    let mut w = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect() };
    Model {
        name: "relu-mini".into(),
        input_shape: vec![1, 6, 6],
        input_range: [-1.0, 1.0],
        layers: vec![
            Layer::Conv2d(Conv2d {
                in_channels: 1,
                out_channels: 3,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
                weight: w(27),
                bias: Some(w(3)),
            }),
            Layer::Relu(Relu::default()),
            Layer::MaxPool(SumPool {
                window: [2, 2],
                stride: None,
            }),
            Layer::Conv2d(Conv2d {
                in_channels: 3,
                out_channels: 2,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
                weight: w(54),
                bias: Some(w(2)),
            }),
            Layer::Requant(Requant { shift: 4, bits: 10 }),
            Layer::Relu(Relu {
                slope_shift: Some(2),
            }),
            Layer::Flatten,
            Layer::Dense(Dense {
                in_features: 18,
                out_features: 4,
                weight: w(72),
                bias: Some(w(4)),
            }),
        ],
    }
}

fn circuit<F: ProofField>() -> LayeredCircuit {
    let params = QuantParams {
        input_bits: 4,
        weight_bits: 4,
        coef_bits: 4,
        ..QuantParams::default()
    };
    let choice = match F::ID {
        verinfer_circuits::field::FieldId::M127 => FieldChoice::M127,
        verinfer_circuits::field::FieldId::Bn254 => FieldChoice::Bn254,
    };
    compile(&model(), &params, choice).unwrap()
}

fn checkpoints(c: &LayeredCircuit) -> Vec<(usize, RequantOp)> {
    c.layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match l.op {
            Op::Requant(op) => Some((i, op)),
            _ => None,
        })
        .collect()
}

#[test]
fn relus_become_checkpoint_functions() {
    let c = circuit::<M127>();
    let cps = checkpoints(&c);
    assert_eq!(cps.len(), 2, "{:?}", c.layers);
    // The inserted one brings the conv's scale 4 + 4 back to the input's 4 bits, 4 + 16 bits
    // kept; the placed one takes the leaky ReLU.
    let pool = MaxPoolSpec {
        window: [2, 2],
        stride: [2, 2],
    };
    assert_eq!(
        cps[0].1,
        RequantOp {
            shift: 4,
            bits: 20,
            then: Exact::Relu,
            pool: Some(pool),
        }
    );
    assert_eq!(c.layers[cps[0].0].output.dims, vec![3, 3, 3]);
    assert_eq!(
        cps[1].1,
        RequantOp {
            shift: 4,
            bits: 10,
            then: Exact::LeakyRelu { shift: 2 },
            pool: None,
        }
    );
    // Each checkpoint's output is the formula applied to the stage before it.
    let input = random_input(&c, 3, 1);
    for (i, op) in cps {
        let prefix = |n: usize| LayeredCircuit {
            layers: c.layers[..n].to_vec(),
            ..c.clone()
        };
        let before = infer(&prefix(i), 3, &input).unwrap();
        let after = infer(&prefix(i + 1), 3, &input).unwrap();
        let elementwise: Vec<i128> = before
            .iter()
            .map(|&y| {
                let r = (y + (1 << (op.shift - 1))).div_euclid(1 << op.shift);
                let half = 1i128 << (op.bits - 1);
                let r = r.clamp(-half, half - 1);
                match op.then {
                    Exact::Relu => r.max(0),
                    Exact::LeakyRelu { shift } if r < 0 => r.div_euclid(1 << shift),
                    _ => r,
                }
            })
            .collect();
        let dims = &c.layers[i].input.dims;
        let want = match op.pool {
            None => elementwise,
            // 2×2 windows of [C, H, W] items, by hand.
            Some(_) => {
                let (ch, h, w) = (dims[0], dims[1], dims[2]);
                let mut y = vec![];
                for item in elementwise.chunks(ch * h * w) {
                    for k in 0..ch {
                        for r in 0..h / 2 {
                            for q in 0..w / 2 {
                                let at =
                                    |u: usize, v: usize| item[(k * h + 2 * r + u) * w + 2 * q + v];
                                y.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
                            }
                        }
                    }
                }
                y
            }
        };
        assert_eq!(after, want, "checkpoint at layer {i}");
        assert!(before.iter().any(|&y| y < -(1 << op.shift)), "no negatives");
    }
}

fn honest_proofs_verify<F: ProofField>() {
    let c = circuit::<F>();
    for batch in [1, 4] {
        let input = random_input(&c, batch, 7);
        let (out, proof, _) = prove::<F>(&c, &input).unwrap();
        assert_eq!(out, infer(&c, batch, &input).unwrap());
        verify(&c, &input, &out, &proof).unwrap();
    }
}

#[test]
fn honest_proofs_verify_m127() {
    honest_proofs_verify::<M127>();
}

#[test]
fn honest_proofs_verify_bn254() {
    honest_proofs_verify::<Bn254>();
}

/// A prover that runs another function at a checkpoint (no ReLU, a ReLU instead of the leaky
/// one, another slope) is caught at that checkpoint's own check.
fn wrong_function_is_caught<F: ProofField>() {
    let honest = circuit::<F>();
    let input = random_input(&honest, 2, 5);
    for (i, op) in checkpoints(&honest) {
        let mut cheats: Vec<RequantOp> = [
            Exact::None,
            Exact::Relu,
            Exact::LeakyRelu { shift: 1 },
            Exact::LeakyRelu { shift: 2 },
        ]
        .into_iter()
        .filter(|&then| then != op.then)
        .map(|then| RequantOp { then, ..op })
        .collect();
        // Another pooling with the same output layout (4×4 windows at stride 1 of 6×6 are also
        // 3×3): the layout alone cannot tell them apart, the checkpoint's evaluation does.
        if op.pool.is_some() {
            cheats.push(RequantOp {
                pool: Some(MaxPoolSpec {
                    window: [4, 4],
                    stride: [1, 1],
                }),
                ..op
            });
        }
        for cheat_op in cheats {
            let mut cheat = honest.clone();
            cheat.layers[i].op = Op::Requant(cheat_op);
            let (out, proof, _) = prove::<F>(&cheat, &input).unwrap();
            let e = verify_bound_to(&honest, &cheat.digest(), &input, &out, &proof).unwrap_err();
            assert!(
                matches!(
                    e,
                    VerifyError::LayerCheck { layer, what: "checkpoint requantized evaluation" }
                        if layer == i + 1
                ),
                "checkpoint {i} as {cheat_op:?}: {e}"
            );
        }
    }
}

#[test]
fn wrong_function_is_caught_m127() {
    wrong_function_is_caught::<M127>();
}

#[test]
fn wrong_function_is_caught_bn254() {
    wrong_function_is_caught::<Bn254>();
}

/// Every opened value off by one is rejected, even one the ReLU maps to the same output (a
/// negative value stays 0): the segment below checks the tensor itself.
#[test]
fn every_opened_value_is_checked() {
    let c = circuit::<M127>();
    let input = random_input(&c, 2, 9);
    let (out, proof, _) = prove::<M127>(&c, &input).unwrap();
    let check = |p: &Proof<M127>| verify(&c, &input, &out, p).map(|_| ());
    let mut negatives = 0;
    for li in 0..proof.layers.len() {
        for j in 0..proof.layers[li].opened.len() {
            negatives += usize::from(proof.layers[li].opened[j] < -100);
            for delta in [1i128, -1] {
                let mut p = proof.clone();
                p.layers[li].opened[j] += delta;
                let what = format!("layer proof {li} opened value {j} {delta:+}");
                assert!(
                    common::no_panic(&check, &p, &what).is_err(),
                    "{what}: verified"
                );
            }
        }
    }
    assert!(negatives > 10, "{negatives}");
}

/// Lee et al.'s composite minimax ReLU (`--relu minimax:7@4`): the ReLUs become checkpointed
/// polynomial parts and an element-wise product (`mul`); honest proofs verify on both fields,
/// and every field element of the proof and every opened value off by one is rejected.
fn composite_relu_is_sound<F: ProofField>() {
    let params = QuantParams {
        input_bits: 6,
        weight_bits: 6,
        coef_bits: 8,
        ..QuantParams::default()
    };
    let mut m = model();
    let choice: ReluChoice = "minimax:7@4".parse().unwrap();
    let origin = choice.apply(&mut m, &params).unwrap();
    assert_eq!(origin.len(), m.layers.len());
    assert!(m.layers.iter().all(|l| !matches!(l, Layer::Relu(_))));
    let field = match F::ID {
        verinfer_circuits::field::FieldId::M127 => FieldChoice::M127,
        verinfer_circuits::field::FieldId::Bn254 => FieldChoice::Bn254,
    };
    let c = compile(&m, &params, field).unwrap();
    let muls: Vec<usize> = (0..c.layers.len())
        .filter(|&i| matches!(c.layers[i].op, Op::Mul(_)))
        .collect();
    assert_eq!(muls.len(), 2);
    let input = random_input(&c, 2, 4);
    let (out, proof, _) = prove::<F>(&c, &input).unwrap();
    verify(&c, &input, &out, &proof).unwrap();
    let check = |p: &Proof<F>| verify(&c, &input, &out, p).map(|_| ());
    for s in common::slots(&proof) {
        let mut p = proof.clone();
        *common::slot_mut(&mut p, s) += F::from(1u64);
        assert!(
            common::no_panic(&check, &p, &format!("{s:?}")).is_err(),
            "{s:?}: verified"
        );
    }
    // Every opened checkpoint value off by one, too.
    for li in 0..proof.layers.len() {
        for j in [0, proof.layers[li].opened.len().saturating_sub(1)] {
            if proof.layers[li].opened.is_empty() {
                continue;
            }
            let mut p = proof.clone();
            p.layers[li].opened[j] += 1;
            assert!(
                common::no_panic(&check, &p, "opened").is_err(),
                "layer proof {li} opened {j}: verified"
            );
        }
    }
}

#[test]
fn composite_relu_is_sound_m127() {
    composite_relu_is_sound::<M127>();
}

#[test]
fn composite_relu_is_sound_bn254() {
    composite_relu_is_sound::<Bn254>();
}
