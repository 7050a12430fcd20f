//! Residual networks end to end (docs/soundness.md): a model with an identity shortcut and a
//! 1×1 stride-2 projection shortcut compiles to a graph of layers with forks, its integer
//! inference matches a reference written from the formulas, its proof verifies over both
//! fields, and every adversary is caught by the check that must catch it:
//! - a prover that lies about any one stage (the other stages consistent with the lie), at the
//!   layer that wrote it, on both branches of each block;
//! - every field element of the proof off by one, every structural edit, every truncation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{first_check, random_input, to_field};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{
    AddOp, CircuitLayer, FieldChoice, LayeredCircuit, Op, QuantParams, WeightScale,
};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_circuits::model::{
    Activation, Add, Branch, Conv2d, Dense, Layer, Model, Mul, Requant, SumPool,
};
use verinfer_circuits::witness::{infer, Witness};
use verinfer_prover::inference::{prove, prove_witness};
use verinfer_verifier::inference::{verify, verify_bound_to};
use verinfer_verifier::layers::rule;
use verinfer_verifier::{Proof, VerifyError};

fn conv(
    rng: &mut ChaCha8Rng,
    (c_in, c_out): (usize, usize),
    k: usize,
    stride: usize,
    pad: usize,
) -> Layer {
    Layer::Conv2d(Conv2d {
        in_channels: c_in,
        out_channels: c_out,
        kernel: [k, k],
        stride: [stride, stride],
        padding: [pad, pad],
        weight: (0..c_out * c_in * k * k)
            .map(|_| rng.gen_range(-0.5..0.5))
            .collect(),
        bias: Some((0..c_out).map(|_| rng.gen_range(-0.25..0.25)).collect()),
    })
}

/// Stem conv → x² → checkpoint; block 1 (identity shortcut): conv → x² → checkpoint → conv →
/// add the block input → x² → checkpoint; block 2 (stride 2, projection shortcut): conv → x² →
/// checkpoint → conv, then a branch from the block input → 1×1 stride-2 conv → add → sum-pool →
/// dense. At 4 bits everywhere each checkpoint brings the scale back to 2^4.
fn resnet() -> Model {
    let rng = &mut ChaCha8Rng::seed_from_u64(11);
    let sq = || Layer::Activation(Activation::Square);
    let rq = || Layer::Requant(Requant { shift: 12, bits: 8 });
    Model {
        name: "resnet-mini".into(),
        input_shape: vec![1, 8, 8],
        input_range: [-1.0, 1.0],
        layers: vec![
            conv(rng, (1, 4), 3, 1, 1), // 0
            sq(),
            rq(),                       // 2: block 1 input
            conv(rng, (4, 4), 3, 1, 1), // 3
            sq(),
            rq(),
            conv(rng, (4, 4), 3, 1, 1), // 6
            Layer::Add(Add {
                with: 2,
                subtract: false,
            }), // 7
            sq(),                       // 8
            rq(),                       // 9: block 2 input
            conv(rng, (4, 8), 3, 2, 1), // 10
            sq(),                       // 11
            rq(),                       // 12
            conv(rng, (8, 8), 3, 1, 1), // 13
            Layer::Branch(Branch { from: 9 }), // 14
            conv(rng, (4, 8), 1, 2, 0), // 15
            Layer::Add(Add {
                with: 13,
                subtract: true,
            }), // 16
            Layer::SumPool(SumPool {
                window: [4, 4],
                stride: None,
            }),
            Layer::Flatten,
            Layer::Dense(Dense {
                in_features: 8,
                out_features: 3,
                weight: (0..24).map(|_| rng.gen_range(-0.5..0.5)).collect(),
                bias: None,
            }),
        ],
    }
}

/// Conv → checkpoint (read twice, so forked) → x² → checkpoint → the product of the two
/// checkpoints (`mul`, as in the composite ReLU's `x·q(x)`) → sum-pool → dense.
fn gated() -> Model {
    let rng = &mut ChaCha8Rng::seed_from_u64(12);
    let rq = || Layer::Requant(Requant { shift: 4, bits: 8 });
    Model {
        name: "gated".into(),
        input_shape: vec![1, 4, 4],
        input_range: [-1.0, 1.0],
        layers: vec![
            conv(rng, (1, 2), 3, 1, 1), // 0: scale 8
            rq(),                       // 1: scale 4
            Layer::Activation(Activation::Square),
            rq(),
            Layer::Mul(Mul { with: 1 }), // 4: scale 8
            Layer::SumPool(SumPool {
                window: [4, 4],
                stride: None,
            }),
            Layer::Flatten,
            Layer::Dense(Dense {
                in_features: 2,
                out_features: 2,
                weight: vec![0.5, -0.25, 0.75, 0.125],
                bias: None,
            }),
        ],
    }
}

const PARAMS: QuantParams = QuantParams {
    input_bits: 4,
    weight_bits: 4,
    coef_bits: 4,
    weight_scale: WeightScale::Uniform,
};

fn circuit<F: ProofField>() -> LayeredCircuit {
    circuit_of::<F>(&resnet())
}

fn circuit_of<F: ProofField>(m: &Model) -> LayeredCircuit {
    let field = if F::ID == M127::ID {
        FieldChoice::M127
    } else {
        FieldChoice::Bn254
    };
    compile(m, &PARAMS, field).unwrap()
}
// ---------------------------------------------------------------------------------------------
// Stages, recomputed layer by layer from any values
// ---------------------------------------------------------------------------------------------

/// Layer `k` on the real values of the stages it reads: the library's kernel on a one-layer
/// circuit for the kinds that read one tensor (in i128, whatever the values), the formulas for
/// the others.
fn run_layer(c: &LayeredCircuit, k: usize, stages: &[Vec<i128>], batch: usize) -> Vec<i128> {
    let l = &c.layers[k];
    let reads = l.op.reads(k);
    match &l.op {
        Op::Add(AddOp { lift, subtract, .. }) => stages[reads[0]]
            .iter()
            .zip(&stages[reads[1]])
            .map(|(&a, &b)| {
                let b = if *subtract { -b } else { b };
                (a << lift[0]) + (b << lift[1])
            })
            .collect(),
        Op::Mul(_) => stages[reads[0]]
            .iter()
            .zip(&stages[reads[1]])
            .map(|(&a, &b)| a * b)
            .collect(),
        Op::Branch(_) | Op::Fork(_) => stages[reads[0]].clone(),
        _ => {
            let x = &stages[reads[0]];
            let one = LayeredCircuit {
                input: l.input.clone(),
                input_min: *x.iter().min().unwrap(),
                input_max: *x.iter().max().unwrap(),
                layers: vec![CircuitLayer {
                    bound_bits: 120,
                    ..l.clone()
                }],
                ..c.clone()
            };
            infer(&one, batch, x).unwrap()
        }
    }
}

/// Every stage's real values when stage `k` is `fake` (stages below honest, every stage above
/// recomputed from the ones it reads).
fn stages_with(
    c: &LayeredCircuit,
    batch: usize,
    input: &[i128],
    k: usize,
    fake: Option<&[i128]>,
) -> Vec<Vec<i128>> {
    let mut stages = vec![input.to_vec()];
    if k == 0 {
        if let Some(f) = fake {
            stages[0] = f.to_vec();
        }
    }
    for j in 0..c.layers.len() {
        let v = match fake {
            Some(f) if j + 1 == k => f.to_vec(),
            _ => run_layer(c, j, &stages, batch),
        };
        stages.push(v);
    }
    stages
}

fn witness_of<F: ProofField>(c: &LayeredCircuit, batch: usize, stages: &[Vec<i128>]) -> Witness<F> {
    let layers = stages
        .iter()
        .enumerate()
        .map(|(t, v)| c.tensor(t).unwrap().scatter(batch, &to_field::<F>(v)))
        .collect();
    Witness {
        batch,
        layers,
        output: stages.last().unwrap().clone(),
    }
}

/// The error a lie about stage `k` meets: the first check of the layer that wrote it, through
/// relabellings (a branch hands its claim to the tensor it passes on, an aligned pool to its
/// input).
fn expected_catch(c: &LayeredCircuit, k: usize) -> VerifyError {
    let mut t = k;
    while t > 0 {
        let l = &c.layers[t - 1];
        if !rule::<M127>(&l.op).relabels(l) {
            return VerifyError::LayerCheck {
                layer: t,
                what: first_check(l),
            };
        }
        t = l.op.reads(t - 1)[0];
    }
    VerifyError::InputCheck
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn residual_model_compiles_to_a_graph_with_forks() {
    let c = circuit::<M127>();
    let kinds: Vec<&str> = c.layers.iter().map(|l| l.op.name()).collect();
    // A fork after each block input (the checkpoints read by the block and by its shortcut).
    let forks: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "fork")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(forks.len(), 2, "{kinds:?}");
    for &f in &forks {
        assert_eq!(kinds[f - 1], "requant", "{kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "add").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "branch").count(), 1);
    // The identity shortcut is lifted from 2^4 to the convolution's 2^8.
    let lifts: Vec<[u32; 2]> = c
        .layers
        .iter()
        .filter_map(|l| match l.op {
            Op::Add(a) => Some(a.lift),
            _ => None,
        })
        .collect();
    assert_eq!(lifts, [[0, 4], [0, 0]]);
    assert_eq!(c.output_scale(), 12);
    // Integer inference is the layer-by-layer composition.
    let input = random_input(&c, 3, 1);
    let stages = stages_with(&c, 3, &input, usize::MAX, None);
    assert_eq!(infer(&c, 3, &input).unwrap(), *stages.last().unwrap());
    // The graph is checked: an add of a tensor that comes after it, a tensor read twice
    // without a fork.
    let add = c
        .layers
        .iter()
        .position(|l| matches!(l.op, Op::Add(_)))
        .unwrap();
    let mut bad = c.clone();
    if let Op::Add(a) = &mut bad.layers[add].op {
        a.with = add + 1;
    }
    assert!(bad.check().unwrap_err().contains("not computed before it"));
    let mut bad = c.clone();
    if let Op::Add(a) = &mut bad.layers[add].op {
        a.with = add - 2;
    }
    assert!(bad.check().is_err());
}

fn honest_proofs_verify<F: ProofField>() {
    let c = circuit::<F>();
    for batch in [1, 2, 5] {
        let input = random_input(&c, batch, batch as u64);
        let (out, proof, _) = prove::<F>(&c, &input).unwrap();
        assert_eq!(out, infer(&c, batch, &input).unwrap());
        verify(&c, &input, &out, &proof).unwrap();
        let bytes = proof.encode();
        assert_eq!(Proof::<F>::decode(&bytes).unwrap(), proof);
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

/// A prover that lies about stage `k` (one value off by one, first, middle or last; stages
/// above consistent with it, so the output is the false one it leads to) is caught by the layer
/// that wrote the stage: on the main path, on each shortcut, at each fork and each add.
fn fabricated_stage_is_caught<F: ProofField>(c: &LayeredCircuit) -> usize {
    let mut caught = 0;
    for batch in [1, 2] {
        let input = random_input(c, batch, 40 + batch as u64);
        let honest = stages_with(c, batch, &input, usize::MAX, None);
        for (k, stage) in honest.iter().enumerate() {
            let n = stage.len();
            for j in [0, n / 2, n - 1] {
                let mut fake = stage.clone();
                fake[j] += 1;
                let stages = stages_with(c, batch, &input, k, Some(&fake));
                let w = witness_of::<F>(c, batch, &stages);
                let (proof, _) = prove_witness(c, &input, &w).unwrap();
                let e = verify(c, &input, &w.output, &proof)
                    .expect_err(&format!("batch {batch}, stage {k}, value {j}: verified"));
                assert_eq!(
                    e,
                    expected_catch(c, k),
                    "batch {batch}, stage {k} ({}), value {j}",
                    c.layers
                        .get(k.wrapping_sub(1))
                        .map_or("input", |l| l.op.name())
                );
                caught += 1;
            }
        }
    }
    caught
}

#[test]
fn fabricated_stage_is_caught_m127() {
    assert!(fabricated_stage_is_caught::<M127>(&circuit::<M127>()) > 100);
}

#[test]
fn fabricated_stage_is_caught_bn254() {
    assert!(fabricated_stage_is_caught::<Bn254>(&circuit::<Bn254>()) > 100);
}

/// The same adversary on a graph with an element-wise product: a lie about the product's
/// output is caught by `product of its operands`, one about either factor by the layer that
/// wrote it.
#[test]
fn fabricated_stage_is_caught_with_a_product() {
    let c = circuit_of::<M127>(&gated());
    assert!(c.layers.iter().any(|l| matches!(l.op, Op::Mul(_))));
    assert!(fabricated_stage_is_caught::<M127>(&c) > 40);
    assert!(fabricated_stage_is_caught::<Bn254>(&circuit_of::<Bn254>(&gated())) > 40);
}

/// Every field element of the proof off by one or two, every structural edit, every truncation
/// is rejected, never a panic.
fn tampering_is_caught<F: ProofField>() {
    let c = circuit::<F>();
    let input = random_input(&c, 2, 9);
    let (out, proof, _) = prove::<F>(&c, &input).unwrap();
    let check = |p: &Proof<F>| verify(&c, &input, &out, p).map(|_| ());
    for s in common::slots(&proof) {
        for delta in [1u64, 2] {
            let mut p = proof.clone();
            *common::slot_mut(&mut p, s) += F::from(delta);
            assert!(
                common::no_panic(&check, &p, &format!("{s:?}")).is_err(),
                "{s:?} + {delta}: verified"
            );
        }
    }
    // Every checkpoint's opened tensor, one value (first, middle, last) off by one.
    let mut opened = 0;
    for li in 0..proof.layers.len() {
        let n = proof.layers[li].opened.len();
        for j in [0, n / 2, n.saturating_sub(1)]
            .into_iter()
            .filter(|_| n > 0)
        {
            for delta in [1i128, -1] {
                let mut p = proof.clone();
                p.layers[li].opened[j] += delta;
                let what = format!("layer proof {li} opened value {j} {delta:+}");
                assert!(
                    common::no_panic(&check, &p, &what).is_err(),
                    "{what}: verified"
                );
                opened += 1;
            }
        }
    }
    assert!(opened >= 4 * 3 * 2, "{opened}");
    assert!(common::structural_changes_fail(&proof, vec![], &check) > 20);
    // (Every byte flipped: the decoder is the same for every kind; structured_soundness.rs.)
    common::truncations_and_extensions_fail(&proof, &check);
}

#[test]
fn tampering_is_caught_m127() {
    tampering_is_caught::<M127>();
}

#[test]
fn tampering_is_caught_bn254() {
    tampering_is_caught::<Bn254>();
}

/// A proof made for this network, checked against a network whose add layers differ (another
/// lift, the operand subtracted instead of added, another earlier tensor added) under the same
/// digest (a collision): the add's own check rejects it.
fn substituted_add_is_caught<F: ProofField>() -> usize {
    let a = circuit::<F>();
    let input = random_input(&a, 2, 21);
    let (out, proof, _) = prove::<F>(&a, &input).unwrap();
    let digest = a.digest();
    let mut caught = 0;
    for (i, l) in a.layers.iter().enumerate() {
        let Op::Add(add) = l.op else { continue };
        let mut variants = vec![
            AddOp {
                lift: [add.lift[0] + 1, add.lift[1]],
                ..add
            },
            AddOp {
                lift: [add.lift[0], add.lift[1] + 1],
                ..add
            },
            AddOp {
                subtract: !add.subtract,
                ..add
            },
        ];
        // Another earlier tensor of the same layout (and a fork's output, so the graph stays
        // valid): the add reads other values.
        if let Some(t) = (1..i).rev().find(|&t| {
            t != add.with
                && a.tensor(t) == Some(&l.input)
                && matches!(a.layers[t - 1].op, Op::Fork(_))
        }) {
            variants.push(AddOp { with: t, ..add });
        }
        for v in variants {
            let mut b = a.clone();
            b.layers[i].op = Op::Add(v);
            let e = verify_bound_to(&b, &digest, &input, &out, &proof)
                .expect_err(&format!("layer {i} as {v:?}: verified"));
            assert!(
                matches!(
                    e,
                    VerifyError::LayerCheck { .. } | VerifyError::BadCircuit(_)
                ),
                "layer {i} as {v:?}: {e:?}"
            );
            caught += 1;
        }
    }
    caught
}

#[test]
fn substituted_add_is_caught_m127() {
    assert!(substituted_add_is_caught::<M127>() >= 6);
}

#[test]
fn substituted_add_is_caught_bn254() {
    assert!(substituted_add_is_caught::<Bn254>() >= 6);
}
