//! A multiplication-counting copy of Mersenne-127, for tests that bound the verifier's work
//! (feature `op-count`).
//!
//! [`CountedM127`] is the same field as [`M127`] (same identifier, same canonical encoding, so a
//! proof decodes into either), but every multiplication and squaring bumps a per-thread counter
//! and an inversion counts the 253 multiplications of the Fermat exponentiation it stands for.
//! Since the protocol code is generic over the field, running the verifier over `CountedM127`
//! measures exactly what it computes, without instrumenting it.

use crate::field::{ProofField, M127};
use ark_ff::{AdditiveGroup, BigInt, Field, Fp, Fp128, FpConfig, SqrtPrecomputation};
use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    static MULS: Cell<u64> = const { Cell::new(0) };
}

/// Field multiplications counted on this thread since the last [`reset`].
pub fn muls() -> u64 {
    MULS.with(Cell::get)
}

/// Resets this thread's counter.
pub fn reset() {
    MULS.with(|c| c.set(0));
}

fn add(n: u64) {
    MULS.with(|c| c.set(c.get() + n));
}

/// The counting backend; arithmetic is delegated to [`M127`].
#[derive(Debug)]
pub struct CountingBackend;

/// Mersenne-127 with counted multiplications.
pub type CountedM127 = Fp128<CountingBackend>;

const fn elem(lo: u64, hi: u64) -> CountedM127 {
    Fp(BigInt([lo, hi]), PhantomData)
}

fn to_m(a: &CountedM127) -> M127 {
    Fp(a.0, PhantomData)
}

fn from_m(m: M127) -> CountedM127 {
    Fp(m.0, PhantomData)
}

impl FpConfig<2> for CountingBackend {
    const MODULUS: BigInt<2> = BigInt([u64::MAX, u64::MAX >> 1]);
    const GENERATOR: CountedM127 = elem(43, 0);
    const ZERO: CountedM127 = elem(0, 0);
    const ONE: CountedM127 = elem(1, 0);
    const TWO_ADICITY: u32 = 1;
    const TWO_ADIC_ROOT_OF_UNITY: CountedM127 = elem(u64::MAX - 1, u64::MAX >> 1);
    const SQRT_PRECOMP: Option<SqrtPrecomputation<CountedM127>> =
        Some(SqrtPrecomputation::Case3Mod4 {
            modulus_plus_one_div_four: &[0, 1 << 61],
        });

    fn add_assign(a: &mut CountedM127, b: &CountedM127) {
        *a = from_m(to_m(a) + to_m(b));
    }

    fn sub_assign(a: &mut CountedM127, b: &CountedM127) {
        *a = from_m(to_m(a) - to_m(b));
    }

    fn double_in_place(a: &mut CountedM127) {
        *a = from_m(to_m(a).double());
    }

    fn neg_in_place(a: &mut CountedM127) {
        *a = from_m(-to_m(a));
    }

    fn mul_assign(a: &mut CountedM127, b: &CountedM127) {
        add(1);
        *a = from_m(to_m(a) * to_m(b));
    }

    fn sum_of_products<const T: usize>(a: &[CountedM127; T], b: &[CountedM127; T]) -> CountedM127 {
        add(T as u64);
        let mut acc = M127::from(0u64);
        for (x, y) in a.iter().zip(b) {
            acc += to_m(x) * to_m(y);
        }
        from_m(acc)
    }

    fn square_in_place(a: &mut CountedM127) {
        add(1);
        *a = from_m(to_m(a).square());
    }

    fn inverse(a: &CountedM127) -> Option<CountedM127> {
        add(253);
        to_m(a).inverse().map(from_m)
    }

    fn from_bigint(other: BigInt<2>) -> Option<CountedM127> {
        <M127 as ark_ff::PrimeField>::from_bigint(other).map(from_m)
    }

    fn into_bigint(other: CountedM127) -> BigInt<2> {
        other.0
    }
}

impl ProofField for CountedM127 {
    const ID: crate::field::FieldId = crate::field::FieldId::M127;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::PrimeField;

    #[test]
    fn same_field_counted() {
        let (a, b) = (
            CountedM127::from(123456789u64),
            CountedM127::from(987654321u64),
        );
        reset();
        let c = a * b;
        assert_eq!(muls(), 1);
        let m = M127::from(123456789u64) * M127::from(987654321u64);
        assert_eq!(c.into_bigint(), m.into_bigint());
        let mut bytes = Vec::new();
        m.write_canonical(&mut bytes);
        assert_eq!(CountedM127::read_canonical(&bytes).ok(), Some(c));
    }
}
