//! The proof decoder on hostile bytes: random buffers, random bodies after a valid header, every
//! truncation of a valid proof and random corruptions of one. Decoding returns an error or a
//! proof, never panics, and whatever it accepts re-encodes to exactly the bytes it was given
//! (the encoding is canonical, so no two byte strings decode to the same proof).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::field::{Bn254, FieldId, ProofField, M127};
use verinfer_verifier::proof::{
    read_header, LayerKind, FORMAT_VERSION, HEADER_BYTES, MAGIC, MAX_DEGREE, MAX_ROUNDS,
};
use verinfer_verifier::{LayerProof, Proof, ProofError, SumcheckProof};

/// Decodes `bytes` as both fields and as a header; checks the round-trip property of anything
/// accepted. Returns whether some decoding accepted the bytes.
fn decode_all(bytes: &[u8]) -> bool {
    let m = check_one::<M127>(bytes);
    let b = check_one::<Bn254>(bytes);
    let h = read_header(bytes);
    if let Ok(h) = &h {
        assert_eq!(h.version, FORMAT_VERSION);
        assert_eq!(&bytes[..4], &MAGIC);
        assert_eq!(&bytes[7..HEADER_BYTES], &h.digest);
    }
    // A body only decodes behind a valid header, and only for the header's field.
    if m || b {
        let h = h.expect("decoded without a valid header");
        assert_eq!(h.field, if m { FieldId::M127 } else { FieldId::Bn254 });
        assert!(!(m && b));
    }
    m || b
}

fn check_one<F: ProofField>(bytes: &[u8]) -> bool {
    match Proof::<F>::decode(bytes) {
        Ok(p) => {
            assert_eq!(
                p.encode(),
                bytes,
                "accepted bytes do not re-encode identically"
            );
            assert_eq!(p.encoded_len(), bytes.len());
            true
        }
        Err(e) => {
            // Errors render (the CLI prints them) without panicking.
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

/// A random well-formed proof: arbitrary shapes within the format's limits (the decoder does
/// not know the circuit, so any such structure is a valid encoding).
fn random_proof<F: ProofField>(rng: &mut ChaCha8Rng, big: bool) -> Proof<F> {
    let elem = |rng: &mut ChaCha8Rng| match rng.gen_range(0..4) {
        0 => F::zero(),
        1 => -F::one(),
        2 => F::from(rng.gen::<u64>()),
        _ => F::rand(rng),
    };
    let mut digest = [0u8; 32];
    rng.fill(&mut digest[..]);
    let n_out = rng.gen_range(0..6);
    let output = (0..n_out).map(|_| elem(rng)).collect();
    let n_layers = rng.gen_range(0..5);
    let layers = (0..n_layers)
        .map(|_| {
            let n_sc = rng.gen_range(0..4);
            let sumchecks = (0..n_sc)
                .map(|_| {
                    let degree = rng.gen_range(1..=MAX_DEGREE);
                    let max_rounds = if big { MAX_ROUNDS } else { 6 };
                    let n_rounds = rng.gen_range(0..=max_rounds);
                    let rounds = (0..n_rounds)
                        .map(|_| (0..degree).map(|_| elem(rng)).collect())
                        .collect();
                    SumcheckProof { degree, rounds }
                })
                .collect();
            let n_evals = rng.gen_range(0..4);
            LayerProof {
                kind: LayerKind::ALL[rng.gen_range(0..LayerKind::ALL.len())],
                sumchecks,
                evals: (0..n_evals).map(|_| elem(rng)).collect(),
                opened: vec![],
            }
        })
        .collect();
    Proof {
        digest,
        output,
        layers,
    }
}

fn random_proof_bytes(seed: u64, bn254: bool) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let big = seed % 8 == 0;
    if bn254 {
        let p = random_proof::<Bn254>(&mut rng, big);
        let bytes = p.encode();
        assert_eq!(Proof::<Bn254>::decode(&bytes).unwrap(), p);
        bytes
    } else {
        let p = random_proof::<M127>(&mut rng, big);
        let bytes = p.encode();
        assert_eq!(Proof::<M127>::decode(&bytes).unwrap(), p);
        bytes
    }
}

fn header(field: u8, digest: &[u8]) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.push(field);
    h.extend_from_slice(digest);
    h
}

/// A body that looks like the start of a proof: small counts, so decoding gets deep.
fn plausible_body(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len);
    while b.len() < len {
        match rng.gen_range(0..4) {
            0 => b.extend_from_slice(&rng.gen_range(0u32..4).to_le_bytes()),
            1 => b.push(rng.gen_range(0u8..10)),
            2 => b.extend_from_slice(&rng.gen_range(0u16..4).to_le_bytes()),
            _ => {
                let mut e = [0u8; 16];
                rng.fill(&mut e[..]);
                e[15] &= 0x3f;
                b.extend_from_slice(&e);
            }
        }
    }
    b.truncate(len);
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_body_after_valid_header(
        field in 0u8..4,
        digest in proptest::array::uniform32(any::<u8>()),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = header(field, &digest);
        bytes.extend_from_slice(&body);
        decode_all(&bytes);
    }

    #[test]
    fn plausible_body_after_valid_header(field in 1u8..=2, seed in any::<u64>(), len in 0usize..300) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bytes = header(field, &[seed as u8; 32]);
        bytes.extend_from_slice(&plausible_body(&mut rng, len));
        decode_all(&bytes);
    }

    #[test]
    fn single_byte_corruptions(
        seed in any::<u64>(),
        bn254 in any::<bool>(),
        at in any::<proptest::sample::Index>(),
        value in any::<u8>(),
    ) {
        let good = random_proof_bytes(seed, bn254);
        let mut bytes = good.clone();
        let i = at.index(bytes.len());
        bytes[i] = value;
        let accepted = decode_all(&bytes);
        // The magic and version are never silently changed; the field byte only to another
        // shipped field whose body happens to parse (e.g. a proof with no elements at all).
        if i < 6 && bytes[i] != good[i] {
            prop_assert!(!accepted);
        }
        if i == 6 && accepted {
            prop_assert!(FieldId::from_byte(value).is_some());
        }
    }

    #[test]
    fn several_corruptions_insertions_deletions(
        seed in any::<u64>(),
        bn254 in any::<bool>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = random_proof_bytes(seed, bn254);
        for (at, v, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = v,
                1 => bytes.insert(i, v),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        decode_all(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every proper prefix of a valid proof is refused as truncated (or as a count the remaining
    /// bytes cannot hold), and every extension as trailing bytes.
    #[test]
    fn every_truncation(seed in any::<u64>(), bn254 in any::<bool>()) {
        let bytes = random_proof_bytes(seed, bn254);
        prop_assert!(decode_all(&bytes));
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            prop_assert!(!decode_all(prefix), "prefix {} of {} decoded", cut, bytes.len());
            let e = if bn254 {
                Proof::<Bn254>::decode(prefix).unwrap_err()
            } else {
                Proof::<M127>::decode(prefix).unwrap_err()
            };
            prop_assert!(
                matches!(e, ProofError::Truncated { .. } | ProofError::BadCount { .. }),
                "prefix {}: {:?}", cut, e
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        prop_assert!(!decode_all(&long));
    }

    /// A proof encoded for one field never decodes as the other.
    #[test]
    fn fields_are_exclusive(seed in any::<u64>()) {
        let m = random_proof_bytes(seed, false);
        let b = random_proof_bytes(seed, true);
        let wrong = |e: ProofError| matches!(e, ProofError::WrongField { .. });
        prop_assert!(wrong(Proof::<Bn254>::decode(&m).unwrap_err()));
        prop_assert!(wrong(Proof::<M127>::decode(&b).unwrap_err()));
    }
}

/// Non-canonical elements at every element position of a proof are refused with their offset.
#[test]
fn non_canonical_elements_everywhere() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let p = Proof::<M127> {
        digest: [1; 32],
        output: vec![M127::from(1u64); 2],
        layers: vec![LayerProof {
            kind: LayerKind::GkrGates,
            sumchecks: vec![SumcheckProof {
                degree: 2,
                rounds: vec![vec![M127::from(2u64); 2]; 3],
            }],
            evals: vec![M127::from(3u64)],
            opened: vec![],
        }],
    };
    let bytes = p.encode();
    // Element offsets: output at HEADER+4, rounds after kind/count/degree/rounds, evals after u16.
    let out0 = HEADER_BYTES + 4;
    let rounds0 = out0 + 2 * 16 + 4 + 1 + 1 + 2;
    let evals0 = rounds0 + 6 * 16 + 2;
    let offsets: Vec<usize> = (0..2)
        .map(|i| out0 + 16 * i)
        .chain((0..6).map(|i| rounds0 + 16 * i))
        .chain([evals0])
        .collect();
    assert_eq!(evals0 + 16, bytes.len());
    for &off in &offsets {
        // p itself, 2^128 − 1, and a random value with the top bit set.
        let mut r = [0u8; 16];
        rng.fill(&mut r[..]);
        r[15] |= 0x80;
        let mut pval = [0xffu8; 16];
        pval[15] = 0x7f;
        for bad in [pval, [0xff; 16], r] {
            let mut b = bytes.clone();
            b[off..off + 16].copy_from_slice(&bad);
            assert_eq!(
                Proof::<M127>::decode(&b),
                Err(ProofError::NonCanonical(off))
            );
        }
        // p − 1 is canonical.
        let mut b = bytes.clone();
        b[off..off + 16].copy_from_slice(&pval);
        b[off] = 0xfe;
        assert!(Proof::<M127>::decode(&b).is_ok());
    }
    // BN254: the modulus and anything above.
    let pb = Proof::<Bn254> {
        digest: [1; 32],
        output: vec![Bn254::from(1u64)],
        layers: vec![],
    };
    let bytes = pb.encode();
    let off = HEADER_BYTES + 4;
    let mut modulus = Vec::new();
    (-Bn254::from(1u64)).write_canonical(&mut modulus);
    modulus[0] += 1; // p − 1 ends in a zero byte, so this is p.
    for bad in [modulus, vec![0xff; 32]] {
        let mut b = bytes.clone();
        b[off..off + 32].copy_from_slice(&bad);
        assert_eq!(
            Proof::<Bn254>::decode(&b),
            Err(ProofError::NonCanonical(off))
        );
    }
}

/// Counts the buffer cannot hold are refused before any allocation, and limits are enforced.
#[test]
fn counts_and_limits() {
    let base = header(1, &[0; 32]);
    let with = |tail: &[u8]| {
        let mut b = base.clone();
        b.extend_from_slice(tail);
        b
    };
    let huge = u32::MAX.to_le_bytes();
    assert!(matches!(
        Proof::<M127>::decode(&with(&huge)),
        Err(ProofError::BadCount { .. })
    ));
    let mut tail = 0u32.to_le_bytes().to_vec();
    tail.extend_from_slice(&huge);
    assert!(matches!(
        Proof::<M127>::decode(&with(&tail)),
        Err(ProofError::BadCount { .. })
    ));
    // One layer, one sumcheck: degree 0 and MAX_DEGREE + 1 are refused, rounds above MAX_ROUNDS too.
    let layer = |deg: u8, rounds: u8| {
        let mut t = 0u32.to_le_bytes().to_vec();
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&[1, 1, deg, rounds]);
        t
    };
    for deg in [0u8, MAX_DEGREE as u8 + 1, 255] {
        assert!(matches!(
            Proof::<M127>::decode(&with(&layer(deg, 0))),
            Err(ProofError::BadCount {
                what: "sumcheck degree",
                ..
            })
        ));
    }
    assert!(matches!(
        Proof::<M127>::decode(&with(&layer(1, MAX_ROUNDS as u8 + 1))),
        Err(ProofError::BadCount {
            what: "sumcheck round count",
            ..
        })
    ));
    // A valid degree with zero rounds and no evals decodes.
    let mut ok = layer(MAX_DEGREE as u8, 0);
    ok.extend_from_slice(&0u16.to_le_bytes());
    let p = Proof::<M127>::decode(&with(&ok)).unwrap();
    assert_eq!(p.layers[0].sumchecks[0].degree, MAX_DEGREE);
    // Header errors.
    assert_eq!(
        read_header(b"vIN"),
        Err(ProofError::Truncated {
            offset: 0,
            needed: 1
        })
    );
    assert_eq!(
        read_header(&header(0, &[0; 32])),
        Err(ProofError::UnknownField(0))
    );
    assert_eq!(
        read_header(&header(3, &[0; 32])),
        Err(ProofError::UnknownField(3))
    );
    assert!(matches!(
        read_header(&header(1, &[0; 31])),
        Err(ProofError::Truncated { .. })
    ));
}
