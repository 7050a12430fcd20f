//! Adversaries on proof bytes and proof structure, shared by the generic GKR and the structured
//! soundness tests (docs/soundness.md). Each takes an honest proof and a `verify` closure that
//! runs the verifier of the proof's kind against the honest statement.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Op};
use verinfer_circuits::field::{from_i128, ProofField};
use verinfer_verifier::proof::{read_header, LayerKind, HEADER_BYTES};
use verinfer_verifier::{Proof, ProofError, VerifyError};

/// A verifier run against a fixed statement.
pub type Verify<'a, F> = &'a dyn Fn(&Proof<F>) -> Result<(), VerifyError>;

/// Runs the verifier and turns a panic into a test failure naming `what`.
pub fn no_panic<F>(verify: Verify<'_, F>, p: &Proof<F>, what: &str) -> Result<(), VerifyError> {
    catch_unwind(AssertUnwindSafe(|| verify(p))).unwrap_or_else(|_| panic!("{what}: panicked"))
}

/// Where a field element sits in a proof.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// An element of the claimed output.
    Output(usize),
    /// A round-polynomial value.
    Round {
        /// Layer proof (output layer first).
        layer: usize,
        /// Sumcheck of that layer.
        sc: usize,
        /// Round.
        round: usize,
        /// Value within the round.
        k: usize,
    },
    /// A claimed evaluation.
    Eval {
        /// Layer proof.
        layer: usize,
        /// Evaluation of that layer.
        k: usize,
    },
}

/// Every field element of a proof.
pub fn slots<F>(p: &Proof<F>) -> Vec<Slot> {
    let mut s: Vec<Slot> = (0..p.output.len()).map(Slot::Output).collect();
    for (layer, l) in p.layers.iter().enumerate() {
        for (sc, scp) in l.sumchecks.iter().enumerate() {
            for (round, r) in scp.rounds.iter().enumerate() {
                for k in 0..r.len() {
                    s.push(Slot::Round {
                        layer,
                        sc,
                        round,
                        k,
                    });
                }
            }
        }
        for k in 0..l.evals.len() {
            s.push(Slot::Eval { layer, k });
        }
    }
    s
}

/// The element at `s`.
pub fn slot_mut<F>(p: &mut Proof<F>, s: Slot) -> &mut F {
    match s {
        Slot::Output(i) => &mut p.output[i],
        Slot::Round {
            layer,
            sc,
            round,
            k,
        } => &mut p.layers[layer].sumchecks[sc].rounds[round][k],
        Slot::Eval { layer, k } => &mut p.layers[layer].evals[k],
    }
}

/// Every structural edit of one proof: rounds dropped, added, shortened or lengthened, degrees
/// moved, sumchecks and evaluations dropped or added, every other kind, layers dropped,
/// duplicated or appended. Each differs from `proof`.
pub fn structural_variants<F: ProofField>(proof: &Proof<F>) -> Vec<(String, Proof<F>)> {
    let mut variants: Vec<(String, Proof<F>)> = Vec::new();
    let mut push = |name: String, p: Proof<F>| {
        if p != *proof {
            variants.push((name, p));
        }
    };
    let extra = F::from(9u64);
    for li in 0..proof.layers.len() {
        // The opened tensor: one value short or long, emptied, or opened at another layer.
        let opened = &proof.layers[li].opened;
        if opened.is_empty() {
            let mut p = proof.clone();
            p.layers[li].opened = vec![0];
            push(format!("L{li} opens a value"), p);
        } else {
            let mut p = proof.clone();
            p.layers[li].opened.pop();
            push(format!("L{li} opened short"), p);
            let mut p = proof.clone();
            p.layers[li].opened.push(0);
            push(format!("L{li} opened long"), p);
            let mut p = proof.clone();
            p.layers[li].opened.clear();
            push(format!("L{li} opened nothing"), p);
            if li > 0 {
                let mut p = proof.clone();
                p.layers[li - 1].opened = p.layers[li].opened.clone();
                push(format!("L{li} opened again one layer up"), p);
            }
        }
        let nsc = proof.layers[li].sumchecks.len();
        for si in 0..nsc {
            let deg = proof.layers[li].sumchecks[si].degree;
            let mut p = proof.clone();
            p.layers[li].sumchecks[si].rounds.pop();
            push(format!("L{li} S{si} drop round"), p);
            let mut p = proof.clone();
            p.layers[li].sumchecks[si].rounds.push(vec![extra; deg]);
            push(format!("L{li} S{si} add round"), p);
            let mut p = proof.clone();
            p.layers[li].sumchecks[si]
                .rounds
                .insert(0, vec![extra; deg]);
            push(format!("L{li} S{si} add first round"), p);
            if !proof.layers[li].sumchecks[si].rounds.is_empty() {
                let mut p = proof.clone();
                p.layers[li].sumchecks[si].rounds[0].pop();
                push(format!("L{li} S{si} short round"), p);
                let mut p = proof.clone();
                p.layers[li].sumchecks[si].rounds[0].push(extra);
                push(format!("L{li} S{si} long round"), p);
            }
            // Consistent other degrees: every round one value longer or shorter.
            let mut p = proof.clone();
            let s = &mut p.layers[li].sumchecks[si];
            s.degree += 1;
            s.rounds.iter_mut().for_each(|r| r.push(F::zero()));
            push(format!("L{li} S{si} degree+1"), p);
            let mut p = proof.clone();
            let s = &mut p.layers[li].sumchecks[si];
            s.degree -= 1;
            s.rounds.iter_mut().for_each(|r| {
                r.pop();
            });
            push(format!("L{li} S{si} degree-1"), p);
            let mut p = proof.clone();
            p.layers[li].sumchecks[si].rounds.clear();
            push(format!("L{li} S{si} no rounds"), p);
            let mut p = proof.clone();
            p.layers[li].sumchecks.remove(si);
            push(format!("L{li} drop sumcheck {si}"), p);
        }
        let mut p = proof.clone();
        let dup = p.layers[li].sumchecks.first().cloned().unwrap_or_else(|| {
            verinfer_verifier::SumcheckProof {
                degree: 2,
                rounds: vec![],
            }
        });
        p.layers[li].sumchecks.push(dup);
        push(format!("L{li} add sumcheck"), p);
        let mut p = proof.clone();
        p.layers[li].sumchecks.clear();
        p.layers[li].evals.clear();
        push(format!("L{li} empty"), p);
        let mut p = proof.clone();
        p.layers[li].evals.pop();
        push(format!("L{li} drop eval"), p);
        let mut p = proof.clone();
        p.layers[li].evals.push(extra);
        push(format!("L{li} add eval"), p);
        // Unknown kind bytes never decode (the byte adversary covers them).
        for kind in LayerKind::ALL {
            let mut p = proof.clone();
            p.layers[li].kind = kind;
            push(format!("L{li} kind {kind:?}"), p);
        }
        let mut p = proof.clone();
        p.layers.remove(li);
        push(format!("drop layer {li}"), p);
        let mut p = proof.clone();
        let dup = p.layers[li].clone();
        p.layers.push(dup);
        push(format!("append a copy of layer {li}"), p);
        let mut p = proof.clone();
        let dup = p.layers[li].clone();
        p.layers.insert(li, dup);
        push(format!("duplicate layer {li}"), p);
    }
    let mut p = proof.clone();
    p.layers.reverse();
    push("layers reversed".into(), p);
    let mut p = proof.clone();
    p.layers.clear();
    push("no layers".into(), p);
    variants
}

/// Checks every variant of [`structural_variants`] (plus `extra`) is rejected without a panic,
/// directly and, where it is encodable, through the binary format. Returns how many were tried.
pub fn structural_changes_fail<F: ProofField>(
    proof: &Proof<F>,
    extra: Vec<(String, Proof<F>)>,
    verify: Verify<'_, F>,
) -> usize {
    let variants: Vec<(String, Proof<F>)> = structural_variants(proof)
        .into_iter()
        .chain(extra)
        .collect();
    for (name, p) in &variants {
        assert!(no_panic(verify, p, name).is_err(), "{name}: verified");
        let encodable = p.layers.iter().flat_map(|l| &l.sumchecks).all(|s| {
            (1..=verinfer_verifier::proof::MAX_DEGREE).contains(&s.degree)
                && s.rounds.iter().all(|r| r.len() == s.degree)
        });
        if encodable {
            let bytes = p.encode();
            assert_eq!(Proof::<F>::decode(&bytes).as_ref(), Ok(p), "{name}");
        }
    }
    variants.len()
}

/// Every single-bit flip and every whole-byte inversion of the encoded proof is refused, by the
/// decoder or by the verifier, and nothing panics. Returns (decode errors, verify errors).
pub fn every_byte_flipped<F: ProofField>(
    proof: &Proof<F>,
    verify: Verify<'_, F>,
) -> (usize, usize) {
    let bytes = proof.encode();
    assert_eq!(bytes.len(), proof.encoded_len());
    let mut decode_errors = 0;
    let mut verify_errors = 0;
    for pos in 0..bytes.len() {
        for mask in [1u8, 2, 4, 8, 16, 32, 64, 128, 0xff] {
            let mut b = bytes.clone();
            b[pos] ^= mask;
            let what = format!("flip at {pos} mask {mask:#x}");
            let decoded = catch_unwind(|| Proof::<F>::decode(&b))
                .unwrap_or_else(|_| panic!("{what}: decode panicked"));
            match decoded {
                Err(_) => decode_errors += 1,
                Ok(p) => {
                    // Magic, version and field byte are never silently accepted.
                    assert!(pos >= 7, "{what}: header decoded");
                    // The decoder is injective: a different encoding is a different proof.
                    assert_ne!(p, *proof);
                    assert_eq!(p.encode(), b);
                    let e = no_panic(verify, &p, &what).expect_err(&format!("{what}: verified"));
                    if pos < HEADER_BYTES {
                        assert_eq!(e, VerifyError::DigestMismatch, "{what}");
                    }
                    verify_errors += 1;
                }
            }
            if pos < 7 {
                assert!(read_header(&b).is_err());
            }
        }
    }
    (decode_errors, verify_errors)
}

/// Every prefix of the encoding fails to decode; zero bytes appended are trailing bytes; the
/// honest encoding still verifies.
pub fn truncations_and_extensions_fail<F: ProofField>(proof: &Proof<F>, verify: Verify<'_, F>) {
    let bytes = proof.encode();
    for cut in 0..bytes.len() {
        let r = catch_unwind(|| Proof::<F>::decode(&bytes[..cut]))
            .unwrap_or_else(|_| panic!("prefix {cut}: decode panicked"));
        assert!(r.is_err(), "prefix {cut}");
    }
    for extra in 1..40 {
        let mut b = bytes.clone();
        b.extend(std::iter::repeat_n(0u8, extra));
        assert_eq!(
            Proof::<F>::decode(&b),
            Err(ProofError::TrailingBytes(extra))
        );
    }
    let p = Proof::<F>::decode(&bytes).expect("honest proof decodes");
    assert!(verify(&p).is_ok(), "honest proof rejected");
}

/// `batch` random inputs within the circuit's declared range.
pub fn random_input(c: &LayeredCircuit, batch: usize, seed: u64) -> Vec<i128> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..batch * c.input.item_len())
        .map(|_| rng.gen_range(c.input_min..=c.input_max))
        .collect()
}

/// Integers as field elements.
pub fn to_field<F: ProofField>(v: &[i128]) -> Vec<F> {
    v.iter().map(|x| from_i128::<F>(*x).unwrap()).collect()
}

/// The check that fires first when `layer` is handed a false claim on its output. A branch
/// has none: it hands the claim on (the tests follow it).
pub fn first_check(layer: &CircuitLayer) -> &'static str {
    match &layer.op {
        Op::Activation(_) => "activation final evaluation",
        Op::SumPool(_) => "sum-pool final evaluation",
        Op::Dense(_) => "dense final evaluation",
        Op::Conv2d(_) => "convolution kernel evaluation",
        Op::Gates(g) if g.layer.has_mul() => "phase-2 final evaluation",
        Op::Gates(_) => "phase-1 final evaluation",
        Op::Requant(_) => "checkpoint requantized evaluation",
        Op::Add(_) => "add of its operands",
        Op::Fork(_) => "fork merged evaluation",
        Op::Polynomial(_) => "polynomial final evaluation",
        Op::Mul(_) => "product of its operands",
        Op::Branch(_) => unreachable!("a branch hands its claim on"),
    }
}
