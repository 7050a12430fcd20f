//! Soundness of the generic GKR protocol, exhaustively over one small proof.
//!
//! Every field element of an honest proof is tampered with in turn, every byte of its encoding is
//! flipped, the statement (input, output, circuit, field) is changed in every small way, and the
//! proof's structure is cut and padded: the verifier must reject every time, with a typed error
//! and never a panic. Where the digest or the output shortcut would catch a change, the test also
//! removes that shortcut so that the protocol itself has to catch it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ark_ff::{One, UniformRand};
use common::{slot_mut, slots, Slot};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::field::{from_i64, Bn254, ProofField, M127};
use verinfer_circuits::gates::{Gate, GateCircuit, GateLayer};
use verinfer_prover::gkr;
use verinfer_verifier::gkr as vgkr;
use verinfer_verifier::transcript::label;
use verinfer_verifier::{Proof, ProofError, SumcheckProof, Transcript, VerifyError};

/// Width 5, depth 3: layers with and without products, and every gate kind.
fn small_circuit() -> GateCircuit {
    use Gate::*;
    GateCircuit {
        input_size: 5,
        layers: vec![
            // Products (phase 2 present).
            GateLayer {
                gates: vec![
                    Mul(0, 1),
                    Add(2, 3),
                    Sub(4, 0),
                    Scale(1, 3),
                    AddConst(2, -2),
                ],
            },
            // No products (phase 1 only), with a constant gate.
            GateLayer {
                gates: vec![Add(0, 1), Relay(2), Const(7), Scale(3, -1), Sub(4, 0)],
            },
            // Products again, including a square.
            GateLayer {
                gates: vec![Mul(0, 4), AddConst(1, 5), Relay(3), Mul(2, 2), Add(0, 3)],
            },
        ],
    }
}

fn small_input<F: ProofField>() -> Vec<F> {
    [3i64, -5, 11, 2, -7]
        .iter()
        .map(|&v| from_i64::<F>(v))
        .collect()
}

/// Circuit, input, honest output and honest proof.
fn setup<F: ProofField>() -> (GateCircuit, Vec<F>, Vec<F>, Proof<F>) {
    let c = small_circuit();
    c.validate().unwrap();
    let x = small_input::<F>();
    let (y, proof) = gkr::prove(&c, &x).unwrap();
    assert_eq!(&y, c.evaluate(&x).unwrap().last().unwrap());
    vgkr::verify(&c, &x, &y, &proof).unwrap();
    (c, x, y, proof)
}

/// An error that only the protocol (not a shortcut comparison of digests or outputs) produces.
fn is_protocol_rejection(e: &VerifyError) -> bool {
    matches!(e, VerifyError::LayerCheck { .. } | VerifyError::InputCheck)
}

/// Decodes and verifies, as a client would.
fn decode_and_verify<F: ProofField>(
    c: &GateCircuit,
    x: &[F],
    y: &[F],
    bytes: &[u8],
) -> Result<(), VerifyError> {
    let p = Proof::<F>::decode(bytes)?;
    vgkr::verify(c, x, y, &p).map(|_| ())
}

fn every_element_tampered<F: ProofField>() -> usize {
    let (c, x, y, proof) = setup::<F>();
    let mut rng = ChaCha8Rng::seed_from_u64(0x50d);
    let all = slots(&proof);
    // 5 outputs, layer 3 (2 sumchecks × 3 rounds × 2 + 2 evals), layer 2 (3 × 2 + 1), layer 1 (14).
    assert_eq!(all.len(), 5 + 14 + 7 + 14);
    for &s in &all {
        for how in ["+1", "random", "zero", "negate"] {
            let mut bad = proof.clone();
            let v = slot_mut(&mut bad, s);
            let orig = *v;
            *v = match how {
                "+1" => orig + F::one(),
                "random" => F::rand(&mut rng),
                "zero" => F::zero(),
                _ => -orig,
            };
            if *v == orig {
                continue;
            }
            let claimed = match s {
                // The tampered output is what the client checks: the protocol must refute it.
                Slot::Output(_) => bad.output.clone(),
                _ => y.clone(),
            };
            let e = vgkr::verify(&c, &x, &claimed, &bad)
                .expect_err(&format!("tampered {s:?} ({how}) verified"));
            assert!(is_protocol_rejection(&e), "{s:?} ({how}): {e}");
            // The honest output against the tampered proof output is the shortcut's job.
            if let Slot::Output(_) = s {
                assert_eq!(
                    vgkr::verify(&c, &x, &y, &bad).unwrap_err(),
                    VerifyError::OutputMismatch
                );
            }
            // Through the binary format too.
            assert!(decode_and_verify(&c, &x, &claimed, &bad.encode()).is_err());
        }
    }
    all.len()
}

#[test]
fn every_proof_element_tampered_fails_m127() {
    every_element_tampered::<M127>();
}

#[test]
fn every_proof_element_tampered_fails_bn254() {
    every_element_tampered::<Bn254>();
}

#[test]
fn output_tampering() {
    let (c, x, y, proof) = setup::<M127>();
    for i in 0..y.len() {
        let mut y2 = y.clone();
        y2[i] += M127::one();
        // Only the claimed output changes: the shortcut.
        assert_eq!(
            vgkr::verify(&c, &x, &y2, &proof).unwrap_err(),
            VerifyError::OutputMismatch
        );
        // Both change: the protocol must refute the false output.
        let mut p2 = proof.clone();
        p2.output = y2.clone();
        let e = vgkr::verify(&c, &x, &y2, &p2).unwrap_err();
        assert!(is_protocol_rejection(&e), "output {i}: {e}");
    }
    // Wrong output length.
    let mut p2 = proof.clone();
    p2.output.pop();
    assert!(matches!(
        vgkr::verify(&c, &x, &p2.output, &p2),
        Err(VerifyError::Shape(_))
    ));
}

#[test]
fn input_tampering() {
    let (c, x, y, proof) = setup::<M127>();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for i in 0..x.len() {
        for delta in [M127::one(), M127::rand(&mut rng)] {
            let mut x2 = x.clone();
            x2[i] += delta;
            // Same claimed output: the statement changed, the proof must not carry over.
            let e = vgkr::verify(&c, &x2, &y, &proof).unwrap_err();
            assert!(is_protocol_rejection(&e), "input {i}: {e}");
            // Statement A's proof for input x' with x''s true output: still refused.
            let y2 = c.evaluate(&x2).unwrap().pop().unwrap();
            let mut p2 = proof.clone();
            p2.output = y2.clone();
            let e = vgkr::verify(&c, &x2, &y2, &p2).unwrap_err();
            assert!(is_protocol_rejection(&e), "input {i} with true output: {e}");
        }
    }
    let mut short = x.clone();
    short.pop();
    assert!(matches!(
        vgkr::verify(&c, &short, &y, &proof),
        Err(VerifyError::Shape(_))
    ));
}

/// Every circuit that differs from `c` in one gate: another kind on the same wires, another wire,
/// or a constant plus one.
fn one_gate_variants(c: &GateCircuit) -> Vec<(usize, GateCircuit)> {
    use Gate::*;
    let mut out = Vec::new();
    for li in 0..c.layers.len() {
        let prev = c.layer_size(li) as u32;
        for gi in 0..c.layers[li].gates.len() {
            let g = c.layers[li].gates[gi];
            let (a, b) = match g {
                Add(a, b) | Sub(a, b) | Mul(a, b) => (a, b),
                Scale(a, _) | AddConst(a, _) | Relay(a) => (a, (a + 1) % prev),
                Const(_) => (0, 1),
            };
            let mut alts = vec![
                Add(a, b),
                Sub(a, b),
                Mul(a, b),
                Scale(a, 2),
                AddConst(a, 1),
                Relay(a),
                Const(0),
            ];
            for w in 0..prev {
                alts.push(match g {
                    Add(_, b) => Add(w, b),
                    Sub(_, b) => Sub(w, b),
                    Mul(_, b) => Mul(w, b),
                    Scale(_, k) => Scale(w, k),
                    AddConst(_, k) => AddConst(w, k),
                    Relay(_) => Relay(w),
                    Const(k) => Const(k + w as i128 + 1),
                });
                match g {
                    Add(a, _) => alts.push(Add(a, w)),
                    Sub(a, _) => alts.push(Sub(a, w)),
                    Mul(a, _) => alts.push(Mul(a, w)),
                    _ => {}
                }
            }
            match g {
                Scale(a, k) => alts.push(Scale(a, k + 1)),
                AddConst(a, k) => alts.push(AddConst(a, k + 1)),
                Const(k) => alts.push(Const(k + 1)),
                _ => {}
            }
            alts.retain(|&n| n != g);
            alts.sort_by_key(|n| format!("{n:?}"));
            alts.dedup();
            for n in alts {
                let mut c2 = c.clone();
                c2.layers[li].gates[gi] = n;
                c2.validate().unwrap();
                out.push((li + 1, c2));
            }
        }
    }
    out
}

#[test]
fn circuit_changes_fail() {
    let (c, x, y, proof) = setup::<M127>();
    let digest = c.digest(M127::ID);
    let values = c.evaluate(&x).unwrap();
    let variants = one_gate_variants(&c);
    assert!(variants.len() > 150, "{} variants", variants.len());
    let mut equivalent_here = 0;
    for (layer, c2) in &variants {
        // The digest check.
        assert_eq!(
            vgkr::verify(c2, &x, &y, &proof).unwrap_err(),
            VerifyError::DigestMismatch
        );
        // The proof relabelled with the new circuit's digest: the protocol must catch it.
        let mut p2 = proof.clone();
        p2.digest = c2.digest(M127::ID);
        assert_ne!(p2.digest, digest);
        // (A layer that gains or loses its only product also changes the proof's shape.)
        let e = vgkr::verify(c2, &x, &y, &p2).unwrap_err();
        assert!(
            is_protocol_rejection(&e) || matches!(e, VerifyError::ProofShape(_)),
            "{c2:?}: {e}"
        );
        // Even with the transcript of the original circuit (as if the digest did not bind the
        // wiring), a layer that the honest witness does not satisfy is refuted.
        let below = &values[layer - 1];
        let mut one_layer = c2.clone();
        one_layer.input_size = below.len();
        one_layer.layers = vec![c2.layers[layer - 1].clone()];
        let layer_vals = one_layer.evaluate(below).unwrap().pop().unwrap();
        let mut t = Transcript::new::<M127>(&digest, &x, &y);
        let r = vgkr::verify_as_subprotocol(c2, &x, &y, &proof.layers, &mut t);
        if layer_vals != values[*layer] {
            let e = r.expect_err("a wiring the witness does not satisfy verified");
            assert!(
                is_protocol_rejection(&e) || matches!(e, VerifyError::ProofShape(_)),
                "{e}"
            );
        } else {
            equivalent_here += 1;
        }
    }
    // Some rewirings read wires with equal values (e.g. Mul(2,2) vs a relay of an equal value);
    // most do not.
    assert!(equivalent_here * 4 < variants.len(), "{equivalent_here}");
}

#[test]
fn structural_changes_fail_without_panic() {
    let (c, x, y, proof) = setup::<M127>();
    let extra = M127::from(9u64);
    let mut gkr_specific = Vec::new();
    let mut p = proof.clone();
    p.layers.swap(0, 2);
    gkr_specific.push(("swap layers 0 and 2".to_string(), p));
    // A layer without products given a phase-2 sumcheck, and a product layer without one.
    let mut p = proof.clone();
    let phase1 = p.layers[1].sumchecks[0].clone();
    p.layers[1].sumchecks.push(phase1);
    p.layers[1].evals.push(extra);
    gkr_specific.push(("phase 2 on a linear layer".into(), p));
    let mut p = proof.clone();
    p.layers[0].sumchecks.pop();
    p.layers[0].evals.pop();
    gkr_specific.push(("no phase 2 on a product layer".into(), p));
    let verify = |p: &Proof<M127>| vgkr::verify(&c, &x, &y, p).map(|_| ());
    let n = common::structural_changes_fail(&proof, gkr_specific, &verify);
    assert!(n > 60, "{n} variants");
}

fn every_byte_flipped<F: ProofField>() -> (usize, usize) {
    let (c, x, y, proof) = setup::<F>();
    common::every_byte_flipped(&proof, &|p| vgkr::verify(&c, &x, &y, p).map(|_| ()))
}

#[test]
fn every_byte_flip_fails_m127() {
    let (d, v) = every_byte_flipped::<M127>();
    // Flipping the top bit of any element makes it ≥ 2^127 > p: those are decode errors.
    assert!(d > 40 && v > 1000, "{d} decode errors, {v} verify errors");
}

#[test]
fn every_byte_flip_fails_bn254() {
    let (d, v) = every_byte_flipped::<Bn254>();
    assert!(d > 40 && v > 1000, "{d} decode errors, {v} verify errors");
}

#[test]
fn truncations_and_extensions_fail() {
    let (c, x, y, proof) = setup::<M127>();
    common::truncations_and_extensions_fail(&proof, &|p| vgkr::verify(&c, &x, &y, p).map(|_| ()));
}

#[test]
fn fields_do_not_mix() {
    let (c, x, y, pm) = setup::<M127>();
    let (_, xb, yb, pb) = setup::<Bn254>();
    let bm = pm.encode();
    let bb = pb.encode();
    // Each decodes only as its own field.
    assert!(matches!(
        Proof::<Bn254>::decode(&bm),
        Err(ProofError::WrongField { .. })
    ));
    assert!(matches!(
        Proof::<M127>::decode(&bb),
        Err(ProofError::WrongField { .. })
    ));
    // The field byte relabelled: the body no longer parses (or, if it did, would not verify).
    let mut relabelled = bm.clone();
    relabelled[6] = verinfer_circuits::FieldId::Bn254.to_byte();
    assert!(decode_and_verify::<Bn254>(&c, &xb, &yb, &relabelled).is_err());
    let mut relabelled = bb.clone();
    relabelled[6] = verinfer_circuits::FieldId::M127.to_byte();
    assert!(decode_and_verify::<M127>(&c, &x, &y, &relabelled).is_err());
    // Digests are per field.
    assert_ne!(pm.digest, pb.digest);
    let mut cross = pb.clone();
    cross.digest = pm.digest;
    assert_eq!(
        vgkr::verify(&c, &xb, &yb, &cross).unwrap_err(),
        VerifyError::DigestMismatch
    );
    let mut cross = pm.clone();
    cross.digest = pb.digest;
    assert_eq!(
        vgkr::verify(&c, &x, &y, &cross).unwrap_err(),
        VerifyError::DigestMismatch
    );
    // A Bn254 proof built over the M127 digest's transcript is still refused by the Bn254
    // verifier, which binds its own digest.
    let values = c.evaluate(&xb).unwrap();
    let mut t = Transcript::new::<Bn254>(&pm.digest, &xb, &yb);
    let layers = gkr::prove_as_subprotocol(&c, &values, &mut t).unwrap();
    let forged = Proof {
        digest: pb.digest,
        output: yb.clone(),
        layers,
    };
    let e = vgkr::verify(&c, &xb, &yb, &forged).unwrap_err();
    assert!(is_protocol_rejection(&e), "{e}");
}

#[test]
fn zero_variable_sumchecks_still_bind() {
    // Width 1: every sumcheck has no rounds; only evals and the combination challenge remain.
    let c = GateCircuit {
        input_size: 1,
        layers: vec![
            GateLayer {
                gates: vec![Gate::Mul(0, 0)],
            },
            GateLayer {
                gates: vec![Gate::AddConst(0, 3)],
            },
        ],
    };
    let x = vec![M127::from(5u64)];
    let (y, proof) = gkr::prove(&c, &x).unwrap();
    assert_eq!(y, vec![M127::from(28u64)]);
    vgkr::verify(&c, &x, &y, &proof).unwrap();
    assert!(proof
        .layers
        .iter()
        .flat_map(|l| &l.sumchecks)
        .all(|s: &SumcheckProof<M127>| s.rounds.is_empty()));
    for s in slots(&proof) {
        let mut bad = proof.clone();
        *slot_mut(&mut bad, s) += M127::one();
        let claimed = bad.output.clone();
        assert!(vgkr::verify(&c, &x, &claimed, &bad).is_err(), "{s:?}");
    }
    let y2 = vec![M127::from(29u64)];
    let mut p2 = proof.clone();
    p2.output = y2.clone();
    assert!(vgkr::verify(&c, &x, &y2, &p2).is_err());
}

/// A forgery that works exactly when the claimed output is not bound before the output point is
/// drawn: change two output elements so that the output MLE at the honest transcript's point is
/// unchanged, and reuse every layer proof.
#[test]
fn output_is_bound_before_the_output_point() {
    use verinfer_circuits::mle;
    let (c, x, y, proof) = setup::<M127>();
    let digest = c.digest(M127::ID);
    let vars = c.layer_vars(c.layers.len());
    let r: Vec<M127> =
        Transcript::new::<M127>(&digest, &x, &y).challenges(label::OUTPUT_POINT, vars);
    let eq = mle::eq_table(&r);
    let delta = M127::from(12345u64);
    let mut y2 = y.clone();
    y2[0] += delta;
    y2[1] -= delta * eq[0] / eq[1];
    assert_eq!(mle::evaluate_padded(&y2, &r), mle::evaluate_padded(&y, &r));
    assert_ne!(y2, y);
    let mut forged = proof.clone();
    forged.output = y2.clone();
    let e = vgkr::verify(&c, &x, &y2, &forged).unwrap_err();
    assert!(is_protocol_rejection(&e), "{e}");
}

/// An adaptive cheater: the honest prover's code run on a fabricated witness, with the transcript
/// bound to the (false) statement. `fake` replaces layer `k` (0 = the input the prover pretends
/// to have used) and the layers above are recomputed from it, so that every layer is consistent
/// with the one below except layer `k` with layer `k − 1` (or, for `k = 0`, the witness's input
/// with the statement's input). The verifier must reject at exactly that layer.
fn cheat<F: ProofField>(
    c: &GateCircuit,
    x: &[F],
    k: usize,
    fake: Vec<F>,
) -> (Vec<F>, Result<vgkr::GkrReport, VerifyError>) {
    let mut values = c.evaluate(x).unwrap();
    values[k] = fake;
    for i in k + 1..=c.layers.len() {
        let mut one = c.clone();
        one.input_size = values[i - 1].len();
        one.layers = vec![c.layers[i - 1].clone()];
        values[i] = one.evaluate(&values[i - 1]).unwrap().pop().unwrap();
    }
    let y_false = values.last().unwrap().clone();
    let digest = c.digest(F::ID);
    let mut t = Transcript::new::<F>(&digest, x, &y_false);
    let layers = gkr::prove_as_subprotocol(c, &values, &mut t).unwrap();
    let proof = Proof {
        digest,
        output: y_false.clone(),
        layers,
    };
    let r = vgkr::verify(c, x, &y_false, &proof);
    (y_false, r)
}

fn cheating_prover_is_caught<F: ProofField>() {
    let (c, x, y, _) = setup::<F>();
    let honest = c.evaluate(&x).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0xc4ea7);
    let mut caught = 0;
    // Every layer but the output (a false output is the statement itself, tested above).
    for (k, layer) in honest.iter().enumerate().take(c.layers.len()) {
        for j in 0..=layer.len() {
            // One wire off by one, or (j = len) the whole layer random.
            let mut fake = layer.clone();
            match fake.get_mut(j) {
                Some(v) => *v += F::one(),
                None => fake.iter_mut().for_each(|v| *v = F::rand(&mut rng)),
            }
            let (y_false, r) = cheat(&c, &x, k, fake);
            if y_false == y {
                // The fabricated wire did not reach the output (e.g. it is unused): the statement
                // is true, and the verifier must still not certify the inconsistent layer.
                assert!(r.is_err(), "layer {k} wire {j}");
            }
            let e = r.expect_err(&format!("cheat at layer {k}, wire {j} verified"));
            if k == 0 {
                assert_eq!(e, VerifyError::InputCheck, "input wire {j}");
            } else {
                assert!(
                    matches!(e, VerifyError::LayerCheck { layer, .. } if layer == k),
                    "layer {k} wire {j}: {e}"
                );
            }
            caught += 1;
        }
    }
    assert_eq!(caught, 3 * 6);
}

#[test]
fn cheating_prover_is_caught_m127() {
    cheating_prover_is_caught::<M127>();
}

#[test]
fn cheating_prover_is_caught_bn254() {
    cheating_prover_is_caught::<Bn254>();
}
