//! Completeness of the generic GKR protocol: honest proofs of random circuits, of every width
//! from 1 to 70 (powers of two and not) and depth 1 to 5, verify after a trip through the binary
//! format, over both shipped fields, and their output is the circuit's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ark_ff::UniformRand;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::field::{from_i64, Bn254, ProofField, M127};
use verinfer_circuits::gates::{Gate, GateCircuit, GateLayer};
use verinfer_prover::gkr;
use verinfer_verifier::gkr as vgkr;
use verinfer_verifier::proof::LayerKind;
use verinfer_verifier::Proof;

/// Small signed inputs (the quantized regime) or uniform field elements.
fn random_input<F: ProofField>(rng: &mut ChaCha8Rng, n: usize, uniform: bool) -> Vec<F> {
    (0..n)
        .map(|_| {
            if uniform {
                F::rand(rng)
            } else {
                from_i64(rng.gen_range(-1000..=1000))
            }
        })
        .collect()
}

/// Proves, encodes, decodes and verifies; checks the proof's shape against the circuit.
fn complete<F: ProofField>(c: &GateCircuit, input: &[F]) {
    c.validate().unwrap();
    let expected = c.evaluate(input).unwrap().pop().unwrap();
    let (out, proof) = gkr::prove(c, input).unwrap();
    assert_eq!(out, expected);
    assert_eq!(proof.output, expected);
    assert_eq!(proof.digest, c.digest(F::ID));
    assert_eq!(proof.layers.len(), c.layers.len());
    for (lp, i) in proof.layers.iter().zip((1..=c.layers.len()).rev()) {
        let phases = if c.has_mul(i) { 2 } else { 1 };
        assert_eq!(lp.kind, LayerKind::GkrGates);
        assert_eq!(lp.sumchecks.len(), phases);
        assert_eq!(lp.evals.len(), phases);
        for s in &lp.sumchecks {
            assert_eq!(s.degree, 2);
            assert_eq!(s.rounds.len(), c.layer_vars(i - 1));
        }
    }
    let bytes = proof.encode();
    assert_eq!(bytes.len(), proof.encoded_len());
    let decoded = Proof::<F>::decode(&bytes).unwrap();
    assert_eq!(decoded, proof);
    let report = vgkr::verify(c, input, &out, &decoded).unwrap();
    assert_eq!(report.layers, c.layers.len());
    assert!(report.soundness_bits > 100.0, "{}", report.soundness_bits);
}

fn random_case<F: ProofField>(width: usize, depth: usize, seed: u64, uniform: bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = GateCircuit::random(width, depth, || rng.gen());
    let input = random_input::<F>(&mut rng, width, uniform);
    complete(&c, &input);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_circuits_m127(
        width in 1usize..=70,
        depth in 1usize..=5,
        seed in any::<u64>(),
        uniform in any::<bool>(),
    ) {
        random_case::<M127>(width, depth, seed, uniform);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_circuits_bn254(
        width in 1usize..=70,
        depth in 1usize..=5,
        seed in any::<u64>(),
        uniform in any::<bool>(),
    ) {
        random_case::<Bn254>(width, depth, seed, uniform);
    }

    /// Layers of different widths (the random generator keeps one width), so that a layer's
    /// sumchecks run over a different number of variables than the claims handed to it.
    #[test]
    fn varying_widths_m127(
        widths in proptest::collection::vec(1usize..=40, 2..=6),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = varying_circuit(&widths, &mut rng);
        let input = random_input::<M127>(&mut rng, widths[0], seed % 2 == 0);
        complete(&c, &input);
    }
}

/// A random circuit whose layer `i` has `widths[i]` wires (layer 0 is the input).
fn varying_circuit(widths: &[usize], rng: &mut ChaCha8Rng) -> GateCircuit {
    let layers = widths
        .windows(2)
        .map(|w| {
            let (prev, n) = (w[0] as u32, w[1]);
            let gates = (0..n)
                .map(|_| {
                    let a = rng.gen_range(0..prev);
                    let b = rng.gen_range(0..prev);
                    let k = rng.gen_range(-3i128..=3);
                    match rng.gen_range(0..7) {
                        0 | 1 => Gate::Mul(a, b),
                        2 => Gate::Add(a, b),
                        3 => Gate::Sub(a, b),
                        4 => Gate::Scale(a, k),
                        5 => Gate::AddConst(a, k),
                        _ => Gate::Relay(a),
                    }
                })
                .collect();
            GateLayer { gates }
        })
        .collect();
    GateCircuit {
        input_size: widths[0],
        layers,
    }
}

/// Corner shapes: single wires, constant-only layers (the layer's input is unused), layers of
/// only products, only linear gates, and exact powers of two next to their neighbours.
#[test]
fn corner_circuits() {
    use Gate::*;
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let cases: Vec<GateCircuit> = vec![
        GateCircuit {
            input_size: 1,
            layers: vec![GateLayer {
                gates: vec![Relay(0)],
            }],
        },
        GateCircuit {
            input_size: 1,
            layers: vec![GateLayer {
                gates: vec![Const(-3)],
            }],
        },
        GateCircuit {
            input_size: 3,
            layers: vec![
                GateLayer {
                    gates: vec![Const(1), Const(2)],
                },
                GateLayer {
                    gates: vec![Mul(0, 1), Mul(1, 1), Mul(0, 0)],
                },
            ],
        },
        GateCircuit {
            input_size: 8,
            layers: vec![
                GateLayer {
                    gates: (0..8).map(|i| Mul(i, 7 - i)).collect(),
                },
                GateLayer {
                    gates: (0..9).map(|i| Add(i % 8, (i + 1) % 8)).collect(),
                },
                GateLayer {
                    gates: vec![Sub(8, 0)],
                },
            ],
        },
        GateCircuit {
            input_size: 2,
            layers: vec![GateLayer {
                gates: (0..64).map(|i| Scale(i % 2, i as i128 - 32)).collect(),
            }],
        },
    ];
    for c in &cases {
        let n = c.input_size;
        complete::<M127>(c, &random_input(&mut rng, n, true));
        complete::<Bn254>(c, &random_input(&mut rng, n, false));
    }
}

/// Extreme values: inputs at the edges of the signed range and of the field.
#[test]
fn extreme_inputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(78);
    let c = GateCircuit::random(9, 4, || rng.gen());
    let edge = [
        M127::from(0u64),
        M127::from(1u64),
        -M127::from(1u64),
        M127::from((1u128 << 126) - 1),
        -M127::from((1u128 << 126) - 1),
        M127::from(1u128 << 126),
        M127::rand(&mut rng),
        -M127::from(2u64),
        M127::from(u64::MAX),
    ];
    complete(&c, &edge);
    complete(&c, &[M127::from(0u64); 9]);
}
