//! Soundness of the structured protocol, the one every user runs (docs/soundness.md).
//!
//! Each test plays one adversary and names the check that must stop it:
//! - a cheating prover that runs the real prover on a fabricated witness (one stage changed and
//!   every stage above recomputed from it, with the transcript bound to the resulting false
//!   output), caught by the final check of the layer that lies;
//! - a cheating prover whose inner claims (a convolution's kernel table, a gate layer's phases)
//!   are consistent with a fabricated input, caught by the layer's last check;
//! - a prover that leaves a constant in the zero padding, caught by the layer that wrote it;
//! - a proof for another model under a colliding digest, caught by the layer checks alone;
//! - edits of proof elements, structure and bytes, never a panic;
//! - statements that are malformed, each with its own error.
//!
//! Everything runs over both fields, on four small circuits that hold every layer kind:
//! convolutions with stride and padding, activations with and without a constant, general and
//! aligned sum-pools (at the bottom, in the middle, on top), dense layers after a free flatten,
//! gate layers with products and a reshape as relay gates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{first_check, random_input, to_field};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use verinfer_circuits::circuit::{
    ActivationOp, Conv2dOp, DenseOp, Exact, GatesOp, MaxPoolSpec, PolynomialOp, RequantOp,
    SumPoolOp,
};
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Layout, Op, QuantParams};
use verinfer_circuits::compile::relay_gates;
use verinfer_circuits::field::{from_i128, Bn254, FieldId, ProofField, M127};
use verinfer_circuits::gates::{Gate, GateLayer};
use verinfer_circuits::mle;
use verinfer_circuits::witness::{infer, witness, Witness};
use verinfer_prover::inference::{prove, prove_witness};
use verinfer_prover::layers::{prove_layer, prove_layer_with_inner, prover};
use verinfer_verifier::inference::{verify, verify_bound_to};
use verinfer_verifier::layers::{rule, Claim};
use verinfer_verifier::opening::{CheckpointOpening, ClearOpening};
use verinfer_verifier::transcript::label;
use verinfer_verifier::{Proof, Transcript, VerifyError};

// ---------------------------------------------------------------------------------------------
// Circuits
// ---------------------------------------------------------------------------------------------

fn layer(op: Op, input: &[usize], output: &[usize]) -> CircuitLayer {
    CircuitLayer {
        op,
        input: Layout::new(input.to_vec()),
        output: Layout::new(output.to_vec()),
        scale_bits: 0,
        bound_bits: 120,
        label: String::new(),
    }
}

fn circuit<F: ProofField>(
    name: &str,
    input: &[usize],
    layers: Vec<CircuitLayer>,
) -> LayeredCircuit {
    let c = LayeredCircuit {
        name: name.into(),
        field: F::ID,
        field_reason: String::new(),
        params: QuantParams::default(),
        input: Layout::new(input.to_vec()),
        input_scale: 0,
        input_min: -8,
        input_max: 7,
        layers,
    };
    c.check().unwrap();
    c
}

fn weights(rng: &mut ChaCha8Rng, n: usize) -> Vec<i64> {
    (0..n).map(|_| rng.gen_range(-3..=3)).collect()
}

fn conv(
    rng: &mut ChaCha8Rng,
    (c_in, c_out): (usize, usize),
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Op {
    Op::Conv2d(Conv2dOp {
        in_channels: c_in,
        out_channels: c_out,
        kernel,
        stride,
        padding,
        weight: weights(rng, c_out * c_in * kernel[0] * kernel[1]),
        bias: (0..c_out).map(|o| 5 - 4 * o as i128).collect(),
    })
}

fn dense(rng: &mut ChaCha8Rng, k: usize, o: usize) -> Op {
    Op::Dense(DenseOp {
        in_features: k,
        out_features: o,
        weight: weights(rng, o * k),
        bias: (0..o).map(|j| 3 - 2 * j as i128).collect(),
    })
}

fn pool(window: [usize; 2], stride: [usize; 2]) -> Op {
    Op::SumPool(SumPoolOp { window, stride })
}

fn act(a: i128, b: i128, c: i128) -> Op {
    Op::Activation(ActivationOp { a, b, c })
}

/// Conv (stride 2×1, padding 1) → x-activation with a constant → overlapping sum-pool → dense
/// after a free flatten → gates with products → activation with a constant → dense.
fn cnn<F: ProofField>() -> LayeredCircuit {
    use Gate::*;
    let rng = &mut ChaCha8Rng::seed_from_u64(1);
    let gates = vec![
        Mul(0, 1),
        Relay(2),
        Mul(3, 3),
        Add(4, 0),
        Sub(1, 2),
        Const(0),
        Const(0),
        Const(0),
    ];
    circuit::<F>(
        "cnn",
        &[2, 5, 3],
        vec![
            layer(
                conv(rng, (2, 3), [3, 2], [2, 1], [1, 1]),
                &[2, 5, 3],
                &[3, 3, 4],
            ),
            layer(act(3, -2, 7), &[3, 3, 4], &[3, 3, 4]),
            layer(pool([2, 2], [1, 1]), &[3, 3, 4], &[3, 2, 3]),
            layer(dense(rng, 18, 5), &[3, 2, 3], &[5]),
            layer(
                Op::Gates(GatesOp {
                    layer: GateLayer { gates },
                }),
                &[5],
                &[5],
            ),
            layer(act(1, 1, -2), &[5], &[5]),
            layer(dense(rng, 5, 3), &[5], &[3]),
        ],
    )
}

/// Aligned sum-pool at the bottom → conv (padding 1) → x² → reshape as relay gates → dense →
/// activation with a constant → dense.
fn pools<F: ProofField>() -> LayeredCircuit {
    let rng = &mut ChaCha8Rng::seed_from_u64(2);
    let (a, b) = (Layout::new(vec![2, 3, 3]), Layout::new(vec![2, 9]));
    let reshape = relay_gates(&a, &b).unwrap();
    circuit::<F>(
        "pools",
        &[3, 4, 8],
        vec![
            layer(pool([2, 4], [2, 4]), &[3, 4, 8], &[3, 2, 2]),
            layer(
                conv(rng, (3, 2), [2, 2], [1, 1], [1, 1]),
                &[3, 2, 2],
                &[2, 3, 3],
            ),
            layer(act(1, 0, 0), &[2, 3, 3], &[2, 3, 3]),
            layer(Op::Gates(GatesOp { layer: reshape }), &[2, 3, 3], &[2, 9]),
            layer(dense(rng, 18, 3), &[2, 9], &[3]),
            layer(act(2, 0, -3), &[3], &[3]),
            layer(dense(rng, 3, 2), &[3], &[2]),
        ],
    )
}

/// Conv (3×3, padding 1) → x²+x → aligned sum-pool as the output layer.
fn pool_on_top<F: ProofField>() -> LayeredCircuit {
    let rng = &mut ChaCha8Rng::seed_from_u64(3);
    circuit::<F>(
        "pool_on_top",
        &[1, 4, 4],
        vec![
            layer(
                conv(rng, (1, 2), [3, 3], [1, 1], [1, 1]),
                &[1, 4, 4],
                &[2, 4, 4],
            ),
            layer(act(1, 1, 0), &[2, 4, 4], &[2, 4, 4]),
            layer(pool([2, 2], [2, 2]), &[2, 4, 4], &[2, 2, 2]),
        ],
    )
}

/// Conv without padding (its output padded in every dim) read by a dense layer.
fn conv_dense<F: ProofField>() -> LayeredCircuit {
    let rng = &mut ChaCha8Rng::seed_from_u64(4);
    circuit::<F>(
        "conv_dense",
        &[1, 4, 4],
        vec![
            layer(
                conv(rng, (1, 3), [2, 2], [1, 1], [0, 0]),
                &[1, 4, 4],
                &[3, 3, 3],
            ),
            layer(dense(rng, 27, 2), &[3, 3, 3], &[2]),
        ],
    )
}

fn requant(shift: u32, bits: u32) -> Op {
    Op::Requant(RequantOp::new(shift, bits))
}

/// Conv → x² + x → checkpoint (round and clamp to 6 bits, many values saturate) → dense after a
/// free flatten → activation → checkpoint (clamp only, then an exact leaky ReLU) → dense →
/// checkpoint on top.
fn checkpoints<F: ProofField>() -> LayeredCircuit {
    let rng = &mut ChaCha8Rng::seed_from_u64(5);
    circuit::<F>(
        "checkpoints",
        &[2, 4, 4],
        vec![
            layer(
                conv(rng, (2, 3), [3, 3], [1, 1], [1, 1]),
                &[2, 4, 4],
                &[3, 4, 4],
            ),
            layer(act(1, 1, 0), &[3, 4, 4], &[3, 4, 4]),
            layer(requant(9, 6), &[3, 4, 4], &[3, 4, 4]),
            layer(dense(rng, 48, 5), &[3, 4, 4], &[5]),
            layer(act(2, -1, 3), &[5], &[5]),
            layer(exact(0, 4, Exact::LeakyRelu { shift: 1 }), &[5], &[5]),
            layer(dense(rng, 5, 3), &[5], &[3]),
            layer(requant(2, 8), &[3], &[3]),
        ],
    )
}

/// A checkpoint with an exact function after its clamp.
fn exact(shift: u32, bits: u32, then: Exact) -> Op {
    Op::Requant(RequantOp {
        then,
        ..RequantOp::new(shift, bits)
    })
}

fn poly(coefficients: &[i128]) -> Op {
    Op::Polynomial(PolynomialOp {
        coefficients: coefficients.to_vec(),
    })
}

/// Conv → degree-3 polynomial with a constant → checkpoint with an exact 2×2 max-pool → dense →
/// odd degree-5 polynomial → dense.
fn polynomials<F: ProofField>() -> LayeredCircuit {
    let rng = &mut ChaCha8Rng::seed_from_u64(6);
    circuit::<F>(
        "polynomials",
        &[2, 3, 3],
        vec![
            layer(
                conv(rng, (2, 3), [2, 2], [1, 1], [1, 1]),
                &[2, 3, 3],
                &[3, 4, 4],
            ),
            layer(poly(&[7, 3, -1, 2]), &[3, 4, 4], &[3, 4, 4]),
            layer(
                Op::Requant(RequantOp {
                    pool: Some(MaxPoolSpec {
                        window: [2, 2],
                        stride: [2, 2],
                    }),
                    ..RequantOp::new(10, 8)
                }),
                &[3, 4, 4],
                &[3, 2, 2],
            ),
            layer(dense(rng, 12, 5), &[3, 2, 2], &[5]),
            layer(poly(&[0, 1, 0, -2, 0, 1]), &[5], &[5]),
            layer(dense(rng, 5, 3), &[5], &[3]),
        ],
    )
}

fn circuits<F: ProofField>() -> Vec<LayeredCircuit> {
    vec![
        polynomials::<F>(),
        cnn::<F>(),
        pools::<F>(),
        pool_on_top::<F>(),
        conv_dense::<F>(),
        checkpoints::<F>(),
    ]
}
// ---------------------------------------------------------------------------------------------
// Witness fabrication
// ---------------------------------------------------------------------------------------------
/// Layout of stage `k` (0 = the input, `k` = the output of layer `k − 1`).
fn stage_layout(c: &LayeredCircuit, k: usize) -> &Layout {
    match k {
        0 => &c.input,
        _ => &c.layers[k - 1].output,
    }
}

/// The real values of stage `k` on `input`.
fn stage_values(c: &LayeredCircuit, batch: usize, input: &[i128], k: usize) -> Vec<i128> {
    if k == 0 {
        return input.to_vec();
    }
    let prefix = LayeredCircuit {
        layers: c.layers[..k].to_vec(),
        ..c.clone()
    };
    infer(&prefix, batch, input).unwrap()
}

/// The witness of a prover that pretends stage `k` is `fake` (real values): stages below `k`
/// are honest, stage `k` and every stage above are computed from `fake`, and the output is what
/// `fake` leads to. Every layer is then consistent with the one below except layer `k − 1`.
fn fabricated<F: ProofField>(
    c: &LayeredCircuit,
    batch: usize,
    input: &[i128],
    k: usize,
    fake: &[i128],
) -> Witness<F> {
    let honest = witness::<F>(c, batch, input).unwrap();
    let mut layers = honest.layers[..k].to_vec();
    let output = if k == c.layers.len() {
        layers.push(stage_layout(c, k).scatter(batch, &to_field::<F>(fake)));
        fake.to_vec()
    } else {
        let above = LayeredCircuit {
            input: stage_layout(c, k).clone(),
            input_min: *fake.iter().min().unwrap(),
            input_max: *fake.iter().max().unwrap(),
            layers: c.layers[k..].to_vec(),
            ..c.clone()
        };
        let w = witness::<F>(&above, batch, fake).unwrap();
        layers.extend(w.layers);
        w.output
    };
    Witness {
        batch,
        layers,
        output,
    }
}

/// Whether `l` is a relabelling with no check of its own (an aligned sum-pool).
fn relabels(l: &CircuitLayer) -> bool {
    rule::<M127>(&l.op).relabels(l)
}

/// The error a lie about stage `k` must meet: the first check of layer `k − 1`, which wrote it.
/// An aligned sum-pool is a relabelling with no check of its own: it hands the false claim to
/// the layer below, and the lie is caught there (or, at the bottom, by the input check).
fn expected_catch(c: &LayeredCircuit, k: usize) -> VerifyError {
    let mut j = k;
    while j > 0 && relabels(&c.layers[j - 1]) {
        j -= 1;
    }
    match j {
        0 => VerifyError::InputCheck,
        _ => VerifyError::LayerCheck {
            layer: j,
            what: first_check(&c.layers[j - 1]),
        },
    }
}

/// Ways to lie about one stage: one real value off by one (first, middle, last), and the whole
/// stage redrawn within its honest range.
fn fakes(honest: &[i128], rng: &mut ChaCha8Rng) -> Vec<(String, Vec<i128>)> {
    let n = honest.len();
    let mut out = Vec::new();
    for j in [0, n / 2, n - 1] {
        let mut f = honest.to_vec();
        f[j] += 1;
        out.push((format!("value {j} + 1"), f));
    }
    let (lo, hi) = (
        *honest.iter().min().unwrap(),
        *honest.iter().max().unwrap() + 1,
    );
    let f: Vec<i128> = (0..n).map(|_| rng.gen_range(lo..=hi)).collect();
    if f != honest {
        out.push(("whole stage redrawn".into(), f));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Cheating provers
// ---------------------------------------------------------------------------------------------

/// For every circuit, batch and stage: the real prover run on a witness whose stage `k` is
/// fabricated is rejected by exactly the check of the layer that wrote stage `k`. Stage 0 is a
/// prover that used another input than the statement's; the top stage is a false output whose
/// table the prover made consistent with it.
fn fabricated_stage_is_caught<F: ProofField>() -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(0xc4ea7);
    let mut caught = 0;
    for c in circuits::<F>() {
        for batch in [1, 3] {
            let input = random_input(&c, batch, batch as u64);
            let (honest_out, honest_proof, _) = prove::<F>(&c, &input).unwrap();
            verify(&c, &input, &honest_out, &honest_proof).unwrap();
            for k in 0..=c.layers.len() {
                let honest = stage_values(&c, batch, &input, k);
                for (how, fake) in fakes(&honest, &mut rng) {
                    let w = fabricated::<F>(&c, batch, &input, k, &fake);
                    let (proof, _) = prove_witness(&c, &input, &w).unwrap();
                    let e = verify(&c, &input, &w.output, &proof).expect_err(&format!(
                        "{}: batch {batch}, stage {k} {how}: verified",
                        c.name
                    ));
                    assert_eq!(
                        e,
                        expected_catch(&c, k),
                        "{}: batch {batch}, stage {k} {how}",
                        c.name
                    );
                    caught += 1;
                }
            }
        }
    }
    caught
}

#[test]
fn fabricated_stage_is_caught_at_the_lying_layer_m127() {
    assert!(fabricated_stage_is_caught::<M127>() > 150);
}

#[test]
fn fabricated_stage_is_caught_at_the_lying_layer_bn254() {
    assert!(fabricated_stage_is_caught::<Bn254>() > 150);
}

/// A false claimed output on an honest witness: the prover's transcript is bound to the false
/// output but its tables are the true ones, so the output layer's check fails.
fn false_output_is_caught<F: ProofField>() {
    for c in circuits::<F>() {
        for batch in [1, 2] {
            let input = random_input(&c, batch, 7);
            let mut w = witness::<F>(&c, batch, &input).unwrap();
            for j in 0..w.output.len() {
                for delta in [1i128, -1] {
                    w.output[j] += delta;
                    let (proof, _) = prove_witness(&c, &input, &w).unwrap();
                    let e = verify(&c, &input, &w.output, &proof).unwrap_err();
                    assert_eq!(
                        e,
                        expected_catch(&c, c.layers.len()),
                        "{} output {j}",
                        c.name
                    );
                    w.output[j] -= delta;
                }
            }
        }
    }
}

#[test]
fn false_output_is_caught_m127() {
    false_output_is_caught::<M127>();
}

#[test]
fn false_output_is_caught_bn254() {
    false_output_is_caught::<Bn254>();
}

/// The proof of `c` on witness `w`, with layer `cheat`'s inner sumchecks computed from the
/// table `inner` ([`prove_layer_with_inner`]) and every other layer honest. Without a cheat it
/// is the real prover's proof (checked below), so only the cheat differs.
fn prove_with_inner<F: ProofField>(
    c: &LayeredCircuit,
    input: &[i128],
    w: &Witness<F>,
    cheat: Option<(usize, &[F])>,
) -> Proof<F> {
    let digest = c.digest();
    let output: Vec<F> = to_field(&w.output);
    let mut t = Transcript::new(&digest, &to_field::<F>(input), &output);
    for (j, l) in c.layers.iter().enumerate().rev() {
        if let Some(values) = prover::<F>(&l.op).open(l, w.batch, &w.layers[j]).unwrap() {
            CheckpointOpening::<F>::absorb(&ClearOpening { values: &values }, &mut t).unwrap();
        }
    }
    let r: Vec<F> = t.challenges(label::OUTPUT_POINT, c.output().vars(w.batch));
    let value = mle::evaluate(w.layers.last().unwrap(), &r);
    let mut claim = Claim { point: r, value };
    let mut layers = Vec::new();
    for (j, l) in c.layers.iter().enumerate().rev() {
        let table = Cow::Borrowed(w.layers[j].as_slice());
        let (lp, next) = match cheat {
            Some((i, inner)) if i == j => {
                prove_layer_with_inner(l, w.batch, table, inner, &claim, &mut t)
            }
            _ => prove_layer(l, w.batch, table, &claim, &mut t),
        }
        .unwrap();
        layers.push(lp);
        claim = next;
    }
    Proof {
        digest,
        output,
        layers,
    }
}

/// A convolution whose kernel table, or a gate layer whose phases, are computed from a
/// fabricated input (so the kernel / phase checks pass) while the reduction to the input runs on
/// the true one: the window / merge check must catch it.
fn inner_claims_are_checked<F: ProofField>() -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1aa);
    let mut caught = 0;
    for c in circuits::<F>() {
        let batch = 2;
        let input = random_input(&c, batch, 5);
        let honest_w = witness::<F>(&c, batch, &input).unwrap();
        let (_, honest_proof, _) = prove::<F>(&c, &input).unwrap();
        assert_eq!(prove_with_inner(&c, &input, &honest_w, None), honest_proof);
        for (i, l) in c.layers.iter().enumerate() {
            let what = match &l.op {
                Op::Conv2d(Conv2dOp { .. }) => "convolution window evaluation",
                Op::Gates(GatesOp { layer }) if layer.has_mul() => "gate-layer merge evaluation",
                _ => continue,
            };
            let honest = stage_values(&c, batch, &input, i);
            for (how, fake) in fakes(&honest, &mut rng) {
                let mut w = fabricated::<F>(&c, batch, &input, i, &fake);
                let inner = std::mem::replace(&mut w.layers[i], honest_w.layers[i].clone());
                let proof = prove_with_inner(&c, &input, &w, Some((i, &inner)));
                let e = verify(&c, &input, &w.output, &proof)
                    .expect_err(&format!("{} layer {i} {how}: verified", c.name));
                assert_eq!(
                    e,
                    VerifyError::LayerCheck { layer: i + 1, what },
                    "{} layer {i} {how}",
                    c.name
                );
                caught += 1;
            }
        }
    }
    caught
}

#[test]
fn inner_claims_are_checked_m127() {
    assert!(inner_claims_are_checked::<M127>() >= 4 * 4);
}

#[test]
fn inner_claims_are_checked_bn254() {
    assert!(inner_claims_are_checked::<Bn254>() >= 4 * 4);
}

/// A prover that writes a constant into the zero padding of a stage that a dense layer reads
/// (dense reads real features only, so the output, and the statement, stay true): the layer
/// that wrote the padding must reject it. This is the real-position indicator of an
/// activation's constant and a convolution's bias, and a sum-pool's window ending at the real
/// edge.
fn padding_stays_zero<F: ProofField>() {
    let cases: Vec<(LayeredCircuit, usize, i128)> = vec![
        (cnn::<F>(), 3, 5),        // general sum-pool output
        (cnn::<F>(), 6, -2),       // activation constant (c = −2)
        (pools::<F>(), 6, -3),     // activation constant (c = −3)
        (conv_dense::<F>(), 1, 5), // convolution bias of channel 0
    ];
    for (c, k, value) in cases {
        assert!(matches!(c.layers[k].op, Op::Dense(DenseOp { .. })));
        let batch = 2;
        let input = random_input(&c, batch, 9);
        let w = witness::<F>(&c, batch, &input).unwrap();
        let layout = stage_layout(&c, k);
        let real = layout.padded_offsets();
        let padded: Vec<usize> = (0..layout.item_len_padded())
            .filter(|o| !real.contains(o))
            .collect();
        assert!(!padded.is_empty());
        for off in [padded[0], padded[padded.len() - 1]] {
            let mut bad = w.clone();
            bad.layers[k][layout.item_len_padded() + off] = from_i128::<F>(value).unwrap();
            let (proof, _) = prove_witness(&c, &input, &bad).unwrap();
            let e = verify(&c, &input, &w.output, &proof)
                .expect_err(&format!("{} stage {k} padding {off}: verified", c.name));
            assert_eq!(
                e,
                expected_catch(&c, k),
                "{} stage {k} padding {off}",
                c.name
            );
        }
        // The honest witness still verifies through the same path.
        let (proof, _) = prove_witness(&c, &input, &w).unwrap();
        verify(&c, &input, &w.output, &proof).unwrap();
    }
}

#[test]
fn padding_stays_zero_m127() {
    padding_stays_zero::<M127>();
}

#[test]
fn padding_stays_zero_bn254() {
    padding_stays_zero::<Bn254>();
}

// ---------------------------------------------------------------------------------------------
// Model substitution
// ---------------------------------------------------------------------------------------------

/// Every way to change one value the verifier reads in layer `i`: each weight and bias, each
/// activation coefficient, each gate.
fn value_variants(c: &LayeredCircuit, i: usize) -> Vec<(String, LayeredCircuit)> {
    let mut out = Vec::new();
    let n = match &c.layers[i].op {
        Op::Conv2d(Conv2dOp { weight, bias, .. }) | Op::Dense(DenseOp { weight, bias, .. }) => {
            weight.len() + bias.len()
        }
        Op::Activation(ActivationOp { .. }) => 3,
        Op::Polynomial(p) => p.coefficients.len(),
        Op::SumPool(SumPoolOp { .. }) => 0,
        Op::Gates(GatesOp { layer }) => layer.gates.len(),
        Op::Requant(RequantOp { .. }) => 3,
        Op::Add(_) | Op::Mul(_) | Op::Branch(_) | Op::Fork(_) => {
            unreachable!("chains only (residual.rs)")
        }
    };
    for k in 0..n {
        let mut d = c.clone();
        match &mut d.layers[i].op {
            Op::Conv2d(Conv2dOp { weight, bias, .. }) | Op::Dense(DenseOp { weight, bias, .. }) => {
                if k < weight.len() {
                    weight[k] += 1;
                } else {
                    bias[k - weight.len()] += 1;
                }
            }
            Op::Activation(ActivationOp { a, b, c }) => *[a, b, c][k] += 1,
            Op::Polynomial(p) => p.coefficients[k] += 1,
            Op::Gates(GatesOp { layer }) => {
                layer.gates[k] = match layer.gates[k] {
                    Gate::Relay(x) => Gate::Scale(x, 2),
                    Gate::Mul(x, y) => Gate::Add(x, y),
                    Gate::Add(x, y) => Gate::Mul(x, y),
                    Gate::Sub(x, y) => Gate::Add(x, y),
                    _ => Gate::Const(1),
                }
            }
            Op::SumPool(SumPoolOp { .. }) => {}
            Op::Requant(RequantOp {
                shift, bits, then, ..
            }) => match k {
                0 => *shift += 1,
                1 => *bits += 1,
                _ => {
                    *then = match *then {
                        Exact::None => Exact::Relu,
                        _ => Exact::None,
                    }
                }
            },
            Op::Add(_) | Op::Mul(_) | Op::Branch(_) | Op::Fork(_) => {}
        }
        out.push((format!("layer {i} value {k}"), d));
    }
    out
}

/// Changes of geometry in layer `i`: kernel, stride, padding, window.
fn shape_variants(c: &LayeredCircuit, i: usize) -> Vec<(String, LayeredCircuit)> {
    let mut out = Vec::new();
    for k in 0..6 {
        let mut d = c.clone();
        match &mut d.layers[i].op {
            Op::Conv2d(Conv2dOp {
                kernel,
                stride,
                padding,
                ..
            }) => match k {
                0 => kernel.swap(0, 1),
                1 => stride[0] += 1,
                2 => stride[1] += 1,
                3 => padding[0] += 1,
                4 => padding[1] += 1,
                _ => padding.swap(0, 1),
            },
            Op::SumPool(SumPoolOp { window, stride }) => match k {
                0 => window[0] += 1,
                1 => window[1] += 1,
                2 => stride[0] += 1,
                3 => stride[1] += 1,
                4 => window.swap(0, 1),
                _ => stride.swap(0, 1),
            },
            _ => continue,
        }
        if d != *c {
            out.push((format!("layer {i} geometry {k}"), d));
        }
    }
    out
}

/// A proof made honestly for model A, checked against model B with B's digest forced to A's
/// (a digest collision): the protocol's own checks must reject it at the changed layer exactly
/// when B computes that layer differently on this input, and accept it when B agrees with A.
fn substituted_model_is_caught<F: ProofField>() -> (usize, usize) {
    let (mut rejected, mut same) = (0, 0);
    for a in circuits::<F>() {
        let batch = 2;
        let input = random_input(&a, batch, 3);
        let (out, proof, _) = prove::<F>(&a, &input).unwrap();
        let digest = a.digest();
        let wa = witness::<F>(&a, batch, &input).unwrap();
        for i in 0..a.layers.len() {
            for (name, b) in value_variants(&a, i) {
                let res = verify_bound_to(&b, &digest, &input, &out, &proof);
                let wb = b
                    .check()
                    .ok()
                    .and_then(|_| witness::<F>(&b, batch, &input).ok());
                match wb {
                    Some(wb) if wb.layers[i + 1] == wa.layers[i + 1] => {
                        // B computes the same values here (e.g. a changed weight meets a zero
                        // input): the proof is valid for B, unless the changed layer's own
                        // relation (B's weights at the sumcheck's point) tells them apart.
                        match res {
                            Ok(_) => same += 1,
                            Err(VerifyError::LayerCheck { layer, .. }) if layer == i + 1 => {
                                rejected += 1
                            }
                            Err(e) => panic!("{} {name}: {e}", a.name),
                        }
                    }
                    Some(_) => {
                        let e = res.expect_err(&format!("{} {name}: verified", a.name));
                        assert!(
                            matches!(e, VerifyError::LayerCheck { layer, .. } if layer == i + 1),
                            "{} {name}: {e}",
                            a.name
                        );
                        rejected += 1;
                    }
                    None => {
                        assert!(res.is_err(), "{} {name}: invalid circuit verified", a.name);
                        rejected += 1;
                    }
                }
            }
            for (name, b) in shape_variants(&a, i) {
                let r = common::no_panic(
                    &|p| verify_bound_to(&b, &digest, &input, &out, p).map(|_| ()),
                    &proof,
                    &name,
                );
                assert!(r.is_err(), "{} {name}: verified", a.name);
                rejected += 1;
            }
        }
    }
    (rejected, same)
}

#[test]
fn substituted_model_is_caught_m127() {
    let (rejected, same) = substituted_model_is_caught::<M127>();
    // Weights that only meet zero inputs (padding of a convolution) change nothing.
    assert!(
        rejected > 400 && same < rejected / 4,
        "{rejected} rejected, {same} same"
    );
}

#[test]
fn substituted_model_is_caught_bn254() {
    let (rejected, same) = substituted_model_is_caught::<Bn254>();
    assert!(
        rejected > 400 && same < rejected / 4,
        "{rejected} rejected, {same} same"
    );
}

// ---------------------------------------------------------------------------------------------
// Tampered proofs
// ---------------------------------------------------------------------------------------------

/// Every field element of an honest proof moved: rejected by a layer or input check (not by a
/// shortcut), or, for the output, by the output comparison.
fn every_element_tampered<F: ProofField>() -> usize {
    let mut n = 0;
    for c in circuits::<F>() {
        let input = random_input(&c, 3, 1);
        let (out, proof, _) = prove::<F>(&c, &input).unwrap();
        for s in common::slots(&proof) {
            let mut bad = proof.clone();
            *common::slot_mut(&mut bad, s) += F::one();
            let e = verify(&c, &input, &out, &bad).expect_err(&format!("{}: {s:?}", c.name));
            match s {
                common::Slot::Output(_) => assert_eq!(e, VerifyError::OutputMismatch),
                _ => assert!(
                    matches!(e, VerifyError::LayerCheck { .. } | VerifyError::InputCheck),
                    "{}: {s:?}: {e}",
                    c.name
                ),
            }
            n += 1;
        }
    }
    n
}

#[test]
fn every_element_tampered_fails_m127() {
    assert!(every_element_tampered::<M127>() > 300);
}

#[test]
fn every_element_tampered_fails_bn254() {
    assert!(every_element_tampered::<Bn254>() > 300);
}

fn structural<F: ProofField>() {
    for c in circuits::<F>() {
        let input = random_input(&c, 3, 2);
        let (out, proof, _) = prove::<F>(&c, &input).unwrap();
        let verify = |p: &Proof<F>| verify(&c, &input, &out, p).map(|_| ());
        let n = common::structural_changes_fail(&proof, vec![], &verify);
        assert!(n > 20 * c.layers.len(), "{}: {n} variants", c.name);
    }
}

#[test]
fn structural_changes_fail_without_panic_m127() {
    structural::<M127>();
}

#[test]
fn structural_changes_fail_without_panic_bn254() {
    structural::<Bn254>();
}

fn bytes_and_truncations<F: ProofField>() {
    let c = pool_on_top::<F>();
    let input = random_input(&c, 1, 4);
    let (out, proof, _) = prove::<F>(&c, &input).unwrap();
    let verify = |p: &Proof<F>| verify(&c, &input, &out, p).map(|_| ());
    let (d, v) = common::every_byte_flipped(&proof, &verify);
    assert!(d > 20 && v > 500, "{d} decode errors, {v} verify errors");
    common::truncations_and_extensions_fail(&proof, &verify);
}

#[test]
fn every_byte_flip_and_truncation_fails_m127() {
    bytes_and_truncations::<M127>();
}

#[test]
fn every_byte_flip_and_truncation_fails_bn254() {
    bytes_and_truncations::<Bn254>();
}

// ---------------------------------------------------------------------------------------------
// The statement
// ---------------------------------------------------------------------------------------------

#[test]
fn statement_checks_have_their_own_errors() {
    let c = cnn::<M127>();
    let input = random_input(&c, 2, 6);
    let (out, proof, _) = prove::<M127>(&c, &input).unwrap();
    verify(&c, &input, &out, &proof).unwrap();

    // Input outside the declared range, on either side.
    for (j, v) in [(0, c.input_max + 1), (input.len() - 1, c.input_min - 1)] {
        let mut x = input.clone();
        x[j] = v;
        let e = verify(&c, &x, &out, &proof).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Input(m) if m.contains("outside the declared range")),
            "{e}"
        );
    }
    // An input that is not a whole number of items, and an empty one.
    let e = verify(&c, &input[1..], &out, &proof).unwrap_err();
    assert!(
        matches!(&e, VerifyError::Input(m) if m.contains("whole number")),
        "{e}"
    );
    assert!(matches!(
        verify(&c, &[], &out, &proof),
        Err(VerifyError::Input(_))
    ));
    // An output of the wrong length.
    let e = verify(&c, &input, &out[1..], &proof).unwrap_err();
    assert!(
        matches!(&e, VerifyError::Shape(m) if m.contains("output has")),
        "{e}"
    );
    // An output value outside the field's signed range.
    let mut y = out.clone();
    y[0] = i128::MAX;
    let e = verify(&c, &input, &y, &proof).unwrap_err();
    assert!(
        matches!(&e, VerifyError::Input(m) if m.contains("does not fit the field")),
        "{e}"
    );
    // A proof for another circuit, and a proof that carries another output than the claim.
    let mut p = proof.clone();
    p.digest[0] ^= 1;
    assert_eq!(
        verify(&c, &input, &out, &p),
        Err(VerifyError::DigestMismatch)
    );
    let mut y = out.clone();
    y[0] += 1;
    assert_eq!(
        verify(&c, &input, &y, &proof),
        Err(VerifyError::OutputMismatch)
    );
    // A proof over the other field.
    let cb = cnn::<Bn254>();
    let (_, pb, _) = prove::<Bn254>(&cb, &input).unwrap();
    assert_eq!(
        verify(&c, &input, &out, &pb),
        Err(VerifyError::FieldMismatch {
            proof: FieldId::Bn254,
            circuit: FieldId::M127
        })
    );
    // A malformed circuit is refused before any proof is read.
    let mut bad = c.clone();
    bad.layers[1].input = Layout::new(vec![3, 3, 5]);
    assert!(matches!(
        verify(&bad, &input, &out, &proof),
        Err(VerifyError::BadCircuit(_))
    ));
    // The proof's own structure is checked against the circuit.
    let mut p = proof.clone();
    p.layers.pop();
    assert!(matches!(
        verify(&c, &input, &out, &p),
        Err(VerifyError::ProofShape(_))
    ));
}
