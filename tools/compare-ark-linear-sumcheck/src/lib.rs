//! Shared setup for the side-by-side bench (`benches/compare.rs`) and its sanity tests.
//!
//! Both contenders prove `Σ_x a(x)·b(x)` over the BN254 scalar field for the *same* pair of
//! random tables: they are drawn once as ark 0.5 `Fr` (verinfer's `Bn254`) and converted
//! limb-for-limb to ark 0.4 `Fr` (same prime, same Montgomery representation), so both provers
//! see bit-identical inputs.

use std::rc::Rc;

use ark_ff_04::{BigInt as BigInt04, PrimeField as PrimeField04};
use ark_ff_05::{PrimeField as PrimeField05, UniformRand};
use ark_linear_sumcheck::ml_sumcheck::protocol::prover::ProverState;
use ark_linear_sumcheck::ml_sumcheck::protocol::{IPForMLSumcheck, ListOfProductsOfPolynomials};
use ark_linear_sumcheck::ml_sumcheck::{MLSumcheck, Proof as ArkProof};
use ark_linear_sumcheck::rng::{Blake2s512Rng, FeedableRNG};
use ark_poly_04::DenseMultilinearExtension;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use verinfer_prover::sumcheck::{prove, ProductProver, SumcheckOutput};
use verinfer_verifier::Transcript;

/// BN254 scalar field, ark 0.5 (verinfer's `Bn254`).
pub type Fr05 = verinfer_circuits::field::Bn254;
/// BN254 scalar field, ark 0.4 (what ark-linear-sumcheck 0.4 is built on).
pub type Fr04 = ark_bn254_04::Fr;

/// One benchmark instance: the two tables in both ark versions, and the claimed sum.
#[derive(Debug)]
pub struct Instance {
    /// log2 of the table length.
    pub num_vars: usize,
    /// Table `a`, ark 0.5.
    pub a05: Vec<Fr05>,
    /// Table `b`, ark 0.5.
    pub b05: Vec<Fr05>,
    /// Table `a`, ark 0.4, same values.
    pub a04: Vec<Fr04>,
    /// Table `b`, ark 0.4, same values.
    pub b04: Vec<Fr04>,
    /// `Σ a[i]·b[i]`, ark 0.5.
    pub claim05: Fr05,
}

/// ark 0.5 -> ark 0.4 element of the same prime field.
pub fn to04(x: &Fr05) -> Fr04 {
    let limbs = x.into_bigint().0;
    Fr04::from_bigint(BigInt04(limbs)).expect("canonical element of the same prime field")
}

/// ark 0.4 -> ark 0.5 element of the same prime field.
pub fn to05(x: &Fr04) -> Fr05 {
    let limbs = x.into_bigint().0;
    Fr05::from_bigint(ark_ff_05::BigInt(limbs)).expect("canonical element of the same prime field")
}

impl Instance {
    /// Random tables of length `2^num_vars`, deterministic in `num_vars`.
    pub fn random(num_vars: usize) -> Self {
        let n = 1usize << num_vars;
        let mut rng = ChaCha8Rng::seed_from_u64(num_vars as u64);
        let a05: Vec<Fr05> = (0..n).map(|_| Fr05::rand(&mut rng)).collect();
        let b05: Vec<Fr05> = (0..n).map(|_| Fr05::rand(&mut rng)).collect();
        let claim05: Fr05 = a05.iter().zip(&b05).map(|(x, y)| *x * y).sum();
        let a04 = a05.iter().map(to04).collect();
        let b04 = b05.iter().map(to04).collect();
        Instance {
            num_vars,
            a05,
            b05,
            a04,
            b04,
            claim05,
        }
    }

    /// Fresh owned copies of the ark 0.4 tables as MLEs (bench setup, not timed).
    pub fn ark_mles(&self) -> (DenseMultilinearExtension<Fr04>, DenseMultilinearExtension<Fr04>) {
        (
            DenseMultilinearExtension::from_evaluations_vec(self.num_vars, self.a04.clone()),
            DenseMultilinearExtension::from_evaluations_vec(self.num_vars, self.b04.clone()),
        )
    }
}

/// verinfer: the exact call sequence of `benches/benches/sumcheck.rs` in the main workspace.
/// Returns the prover too, so its (large) tables are freed outside the timed region.
pub fn verinfer_prove(
    a: Vec<Fr05>,
    b: Vec<Fr05>,
    claim: Fr05,
) -> (SumcheckOutput<Fr05>, ProductProver<Fr05>) {
    let mut p = ProductProver::new(a, b);
    let mut t = Transcript::new::<Fr05>(&[0u8; 32], &[], &[]);
    let out = prove(&mut p, claim, &mut t);
    (out, p)
}

/// ark-linear-sumcheck's standard non-interactive prover, `MLSumcheck::prove`, on
/// `1·(a·b)`. `ListOfProductsOfPolynomials` holds `Rc`s (not `Send`), so it is built here, inside
/// the thread pool; that costs two `Rc::new` moves and a tiny hash map, no table copy.
/// `MLSumcheck::prove` itself deep-copies both tables (`prover_init`): that is part of the
/// crate's prove call and is timed. The caller's MLEs are handed back so they are freed outside
/// the timed region, like verinfer's tables.
pub fn ark_prove(
    a: DenseMultilinearExtension<Fr04>,
    b: DenseMultilinearExtension<Fr04>,
) -> (
    ArkProof<Fr04>,
    DenseMultilinearExtension<Fr04>,
    DenseMultilinearExtension<Fr04>,
) {
    let nv = a.num_vars;
    let (a, b) = (Rc::new(a), Rc::new(b));
    let mut poly = ListOfProductsOfPolynomials::new(nv);
    poly.add_product([a.clone(), b.clone()], ark_ff_04::One::one());
    let proof = MLSumcheck::prove(&poly).expect("ark-linear-sumcheck prove");
    drop(poly);
    let a = Rc::try_unwrap(a).expect("sole owner");
    let b = Rc::try_unwrap(b).expect("sole owner");
    (proof, a, b)
}

/// The same protocol as [`MLSumcheck::prove`] (`prove_as_subprotocol` with a fresh
/// `Blake2s512Rng`, line for line), except that the `ProverState` is handed the caller's tables
/// instead of deep-copying them in `prover_init`. Not the crate's API: a diagnostic that removes
/// the one up-front copy from ark-linear-sumcheck's time, to bound how much of the gap that copy
/// explains. Produces the identical proof.
pub fn ark_prove_noclone(
    a: DenseMultilinearExtension<Fr04>,
    b: DenseMultilinearExtension<Fr04>,
) -> ArkProof<Fr04> {
    let nv = a.num_vars;
    // `info()` of a ListOfProductsOfPolynomials with one product of two MLEs.
    let info = ark_linear_sumcheck::ml_sumcheck::protocol::PolynomialInfo {
        max_multiplicands: 2,
        num_variables: nv,
    };
    let mut fs_rng = Blake2s512Rng::setup();
    fs_rng.feed(&info).expect("feed");
    let mut state = ProverState {
        randomness: Vec::with_capacity(nv),
        list_of_products: vec![(ark_ff_04::One::one(), vec![0, 1])],
        flattened_ml_extensions: vec![a, b],
        num_vars: nv,
        max_multiplicands: 2,
        round: 0,
    };
    let mut verifier_msg = None;
    let mut msgs = Vec::with_capacity(nv);
    for _ in 0..nv {
        let m = IPForMLSumcheck::prove_round(&mut state, &verifier_msg);
        fs_rng.feed(&m).expect("feed");
        msgs.push(m);
        verifier_msg = Some(IPForMLSumcheck::sample_round(&mut fs_rng));
    }
    msgs
}

/// Checks that both provers accept-verify on `inst` and prove the same sum (panics otherwise).
/// Run once per size before timing, so the bench never times a broken prover.
pub fn check(inst: &Instance) {
    use ark_poly_04::MultilinearExtension;
    let nv = inst.num_vars;

    // verinfer: verifier accepts and the final claim matches the tables at the point.
    let (out, _) = verinfer_prove(inst.a05.clone(), inst.b05.clone(), inst.claim05);
    let mut t = Transcript::new::<Fr05>(&[0u8; 32], &[], &[]);
    let sc = verinfer_verifier::sumcheck::verify(&out.proof, inst.claim05, nv, 2, &mut t)
        .expect("verinfer proof verifies");
    let ea = verinfer_circuits::mle::evaluate(&inst.a05, &sc.point);
    let eb = verinfer_circuits::mle::evaluate(&inst.b05, &sc.point);
    assert_eq!(sc.value, ea * eb, "verinfer final claim");

    // ark-linear-sumcheck: same claimed sum, verifier accepts, subclaim matches the tables.
    let (a, b) = inst.ark_mles();
    let (proof, a, b) = ark_prove(a, b);
    let sum04 = MLSumcheck::extract_sum(&proof);
    assert_eq!(to05(&sum04), inst.claim05, "both provers prove the same sum");
    let info = ark_linear_sumcheck::ml_sumcheck::protocol::PolynomialInfo {
        max_multiplicands: 2,
        num_variables: nv,
    };
    let sub = MLSumcheck::verify(&info, sum04, &proof).expect("ark proof verifies");
    let va = a.evaluate(&sub.point).expect("point length");
    let vb = b.evaluate(&sub.point).expect("point length");
    assert_eq!(sub.expected_evaluation, va * vb, "ark final claim");

    // The no-clone diagnostic produces the very same proof bytes.
    let (a, b) = inst.ark_mles();
    let proof2 = ark_prove_noclone(a, b);
    assert_eq!(ser(&proof), ser(&proof2), "no-clone variant = MLSumcheck::prove");
}

fn ser(p: &ArkProof<Fr04>) -> Vec<u8> {
    use ark_serialize_04::CanonicalSerialize;
    let mut v = Vec::new();
    p.serialize_uncompressed(&mut v).expect("serialize");
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_provers_agree_small() {
        for nv in [1, 2, 5, 10, 14] {
            super::check(&super::Instance::random(nv));
        }
    }
}
