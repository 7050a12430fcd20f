//! Sumcheck provers against brute force: the claimed sum is the hypercube sum, the verifier's
//! final claim is the terms evaluated on the tables' MLEs at the returned point, and a claimed
//! sum off by any nonzero amount ends in a final claim that the tables refute.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ark_ff::Field;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_circuits::mle;
use verinfer_prover::sumcheck::{
    prove, ProductProver, ProductSumProver, RoundProver, MAX_KERNEL_DEGREE,
};
use verinfer_verifier::sumcheck as vsc;
use verinfer_verifier::{Transcript, VerifyError};

type Terms<F> = Vec<(F, Vec<usize>)>;

fn transcript<F: ProofField>(tag: u8) -> Transcript {
    Transcript::new::<F>(&[tag; 32], &[F::from(tag as u64)], &[])
}

fn table<F: ProofField>(rng: &mut ChaCha8Rng, n: usize, kind: u8) -> Vec<F> {
    (0..1usize << n)
        .map(|i| match kind {
            // Uniform.
            0 => F::rand(rng),
            // Small values, as in quantized witnesses.
            1 => F::from(rng.gen_range(0u64..4)),
            // Sparse.
            2 => {
                if rng.gen_ratio(1, 5) {
                    F::rand(rng)
                } else {
                    F::zero()
                }
            }
            // Structured: a low-degree function of the index.
            _ => F::from(i as u64) - F::from((i * i) as u64),
        })
        .collect()
}

/// `Σ_t c_t·Π_{j∈t} v[j]`.
fn combine<F: Field>(terms: &Terms<F>, v: &[F]) -> F {
    terms
        .iter()
        .map(|(c, t)| t.iter().fold(*c, |acc, &j| acc * v[j]))
        .sum()
}

fn brute_force<F: Field>(tables: &[Vec<F>], terms: &Terms<F>) -> F {
    let len = tables[0].len();
    (0..len)
        .map(|i| {
            let v: Vec<F> = tables.iter().map(|t| t[i]).collect();
            combine(terms, &v)
        })
        .sum()
}

/// Runs prover and verifier on `tables`/`terms` and checks every property.
fn check_instance<F: ProofField, P: RoundProver<F>>(
    mut prover: P,
    tables: &[Vec<F>],
    terms: &Terms<F>,
    delta: F,
    tag: u8,
) {
    let n = mle::num_vars(tables[0].len());
    let degree = terms.iter().map(|(_, t)| t.len()).max().unwrap();
    assert_eq!(prover.num_vars(), n);
    assert_eq!(prover.degree(), degree);
    let sum = brute_force(tables, terms);
    let out = prove(&mut prover, sum, &mut transcript::<F>(tag));
    assert_eq!(out.proof.degree, degree);
    assert_eq!(out.proof.rounds.len(), n);
    assert!(out.proof.rounds.iter().all(|r| r.len() == degree));

    let claim = vsc::verify(&out.proof, sum, n, degree, &mut transcript::<F>(tag)).unwrap();
    assert_eq!(claim.point.len(), n);
    assert_eq!(claim.point, out.point);
    let at: Vec<F> = tables
        .iter()
        .map(|t| mle::evaluate(t, &claim.point))
        .collect();
    assert_eq!(out.finals, at, "prover's final table values");
    assert_eq!(claim.value, combine(terms, &at), "final claim");

    // A claimed sum off by delta: the sumcheck itself still "verifies" (it only reduces the
    // claim), but the final claim it returns must be refuted by the tables.
    assert!(!delta.is_zero());
    let bad = vsc::verify(
        &out.proof,
        sum + delta,
        n,
        degree,
        &mut transcript::<F>(tag),
    )
    .unwrap();
    let at_bad: Vec<F> = tables
        .iter()
        .map(|t| mle::evaluate(t, &bad.point))
        .collect();
    assert_ne!(bad.value, combine(terms, &at_bad), "wrong sum discharged");
    // The claimed sum is absorbed before the first challenge.
    if n > 0 {
        assert_ne!(bad.point, claim.point, "challenges ignore the claimed sum");
    }

    // Shape mismatches are typed errors.
    for (nv, d) in [(n + 1, degree), (n, degree + 1)] {
        assert!(matches!(
            vsc::verify(&out.proof, sum, nv, d, &mut transcript::<F>(tag)),
            Err(VerifyError::ProofShape(_))
        ));
    }
    if n > 0 {
        let mut short = out.proof.clone();
        short.rounds[n - 1].pop();
        assert!(matches!(
            vsc::verify(&short, sum, n, degree, &mut transcript::<F>(tag)),
            Err(VerifyError::ProofShape(_))
        ));
        // Tampering with any round value breaks the final claim.
        for j in 0..n {
            for k in 0..degree {
                let mut t = out.proof.clone();
                t.rounds[j][k] += F::one();
                let c = vsc::verify(&t, sum, n, degree, &mut transcript::<F>(tag)).unwrap();
                // Round j's message is absorbed before its challenge: the challenges of rounds
                // j.. change (point is in variable order, so round j is point[n − 1 − j]) and
                // those before stay.
                for (i, (p, q)) in c
                    .point
                    .iter()
                    .rev()
                    .zip(claim.point.iter().rev())
                    .enumerate()
                {
                    assert_eq!(p == q, i < j, "challenge {i} after tampering round {j}");
                }
                let at_t: Vec<F> = tables.iter().map(|t| mle::evaluate(t, &c.point)).collect();
                assert_ne!(
                    c.value,
                    combine(terms, &at_t),
                    "round {j} value {k} tampered"
                );
            }
        }
    }
}

fn nonzero<F: ProofField>(rng: &mut ChaCha8Rng, small: bool) -> F {
    loop {
        let d = if small {
            F::from(rng.gen_range(1u64..=3))
        } else {
            F::rand(rng)
        };
        if !d.is_zero() {
            return if rng.gen() { d } else { -d };
        }
    }
}

fn product_case<F: ProofField>(n: usize, kinds: (u8, u8), seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = table::<F>(&mut rng, n, kinds.0);
    let b = table::<F>(&mut rng, n, kinds.1);
    let terms: Terms<F> = vec![(F::one(), vec![0, 1])];
    let delta = nonzero(&mut rng, seed % 2 == 0);
    let tables = vec![a.clone(), b.clone()];
    check_instance(ProductProver::new(a, b), &tables, &terms, delta, seed as u8);
}

fn product_sum_case<F: ProofField>(
    n: usize,
    n_tables: usize,
    term_shapes: &[Vec<usize>],
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tables: Vec<Vec<F>> = (0..n_tables)
        .map(|j| table::<F>(&mut rng, n, (seed as usize + j) as u8 % 4))
        .collect();
    let terms: Terms<F> = term_shapes
        .iter()
        .map(|t| {
            let c = match rng.gen_range(0..3) {
                0 => F::one(),
                1 => -F::from(rng.gen_range(1u64..10)),
                _ => F::rand(&mut rng),
            };
            (c, t.iter().map(|&j| j % n_tables).collect())
        })
        .collect();
    let delta = nonzero(&mut rng, seed % 2 == 0);
    let prover = ProductSumProver::new(tables.clone(), terms.clone());
    check_instance(prover, &tables, &terms, delta, seed as u8);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn product_prover_m127(n in 0usize..=10, ka in 0u8..4, kb in 0u8..4, seed in any::<u64>()) {
        product_case::<M127>(n, (ka, kb), seed);
    }

    #[test]
    fn product_prover_bn254(n in 0usize..=10, ka in 0u8..4, kb in 0u8..4, seed in any::<u64>()) {
        product_case::<Bn254>(n, (ka, kb), seed);
    }

    #[test]
    fn product_sum_prover_m127(
        n in 0usize..=10,
        n_tables in 1usize..=5,
        shapes in proptest::collection::vec(
            proptest::collection::vec(0usize..8, 1..=MAX_KERNEL_DEGREE), 1..=5),
        seed in any::<u64>(),
    ) {
        product_sum_case::<M127>(n, n_tables, &shapes, seed);
    }

    #[test]
    fn product_sum_prover_bn254(
        n in 0usize..=10,
        n_tables in 1usize..=5,
        shapes in proptest::collection::vec(
            proptest::collection::vec(0usize..8, 1..=MAX_KERNEL_DEGREE), 1..=5),
        seed in any::<u64>(),
    ) {
        product_sum_case::<Bn254>(n, n_tables, &shapes, seed);
    }
}

/// Each degree on its own, so that degree 1 and degree 3 kernels are always covered.
#[test]
fn each_degree_alone() {
    for n in 0..=10 {
        for shape in [
            vec![0],
            vec![0, 1],
            vec![0, 1, 2],
            vec![1, 1, 1],
            vec![2, 2],
        ] {
            product_sum_case::<M127>(n, 3, std::slice::from_ref(&shape), 1000 + n as u64);
        }
    }
}

/// Above the rayon threshold, where the kernels split their work.
#[test]
fn parallel_path_matches_brute_force() {
    let n = 15;
    product_case::<M127>(n, (0, 0), 1);
    product_sum_case::<M127>(n, 3, &[vec![0, 1, 1], vec![0, 1], vec![2]], 2);
    product_sum_case::<M127>(n, 2, &[vec![0], vec![1]], 3);
}
