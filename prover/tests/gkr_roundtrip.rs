//! Completeness of the generic GKR protocol on random circuits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_circuits::gates::GateCircuit;
use verinfer_prover::gkr;
use verinfer_verifier::gkr as vgkr;
use verinfer_verifier::Proof;

fn round_trip<F: ProofField>(width: usize, depth: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = GateCircuit::random(width, depth, || rng.gen());
    let input: Vec<F> = (0..width).map(|_| F::from(rng.gen::<u64>())).collect();
    let (out, proof) = gkr::prove(&c, &input).unwrap();
    assert_eq!(&out, c.evaluate(&input).unwrap().last().unwrap());
    let decoded = Proof::<F>::decode(&proof.encode()).unwrap();
    let report = vgkr::verify(&c, &input, &out, &decoded).unwrap();
    assert!(report.soundness_bits > 100.0);
}

#[test]
fn random_circuits_verify() {
    for (w, d, s) in [
        (1, 1, 0),
        (2, 1, 1),
        (3, 2, 2),
        (7, 4, 3),
        (16, 3, 4),
        (100, 5, 5),
    ] {
        round_trip::<M127>(w, d, s);
        round_trip::<Bn254>(w, d, s);
    }
    round_trip::<M127>(20000, 3, 6);
}
