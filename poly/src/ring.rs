//! The rings exact integer inference computes in (docs/protocol.md §9): wrapping `i64`, wrapping
//! `i128`, and the proof fields, behind one trait ([`Num`]) so that one kernel serves all three.
//!
//! Integer arithmetic modulo 2^64 or 2^128 is a ring homomorphism, so a value computed with
//! wrapping operations is exact whenever the true value fits the type, whatever the size of
//! partial sums. The trait lives beside [`ProofField`] because its blanket implementation for
//! every field must be coherent with the machine-integer ones.

use crate::field::{from_i128_unchecked, from_i64, to_i128, ProofField};
use std::borrow::Cow;

/// A ring the witness kernels compute in: wrapping `i64`, wrapping `i128`, or a field.
pub trait Num: Copy + Default + Send + Sync + 'static {
    /// How weights are held in the inner loops.
    type W: Copy + Send + Sync;
    /// Whether a value takes two registers or more (smaller register tiles).
    const WIDE: bool;
    /// The additive identity.
    fn zero() -> Self;
    /// Embeds an integer constant (wrapping for the machine types).
    fn cst(v: i128) -> Self;
    /// Integer weights in the inner loops' form (borrowed when no conversion is needed).
    fn weights(w: &[i64]) -> Cow<'_, [Self::W]>;
    /// `self + w·x`.
    fn mac(self, w: Self::W, x: Self) -> Self;
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self − o`.
    fn sub(self, o: Self) -> Self;
    /// `self · o`.
    fn mul(self, o: Self) -> Self;
    /// Whether `self` is zero.
    fn is_zero(self) -> bool;
    /// The integer `self` stands for (for a field, its signed embedding; `None` beyond `i128`).
    fn to_int(self) -> Option<i128>;
}

impl Num for i64 {
    type W = i64;
    const WIDE: bool = false;
    #[inline(always)]
    fn zero() -> Self {
        0
    }
    #[inline(always)]
    fn cst(v: i128) -> Self {
        // Truncation is reduction modulo 2^64, consistent with the wrapping ring operations.
        v as i64
    }
    fn weights(w: &[i64]) -> Cow<'_, [i64]> {
        Cow::Borrowed(w)
    }
    #[inline(always)]
    fn mac(self, w: i64, x: i64) -> Self {
        self.wrapping_add(w.wrapping_mul(x))
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.wrapping_mul(o)
    }
    #[inline(always)]
    fn is_zero(self) -> bool {
        self == 0
    }
    fn to_int(self) -> Option<i128> {
        Some(i128::from(self))
    }
}

impl Num for i128 {
    type W = i64;
    const WIDE: bool = true;
    #[inline(always)]
    fn zero() -> Self {
        0
    }
    #[inline(always)]
    fn cst(v: i128) -> Self {
        v
    }
    fn weights(w: &[i64]) -> Cow<'_, [i64]> {
        Cow::Borrowed(w)
    }
    /// `x·w mod 2^128` with one widening 64×64 multiply and one 64-bit multiply: with
    /// `x = xl + 2^64·xh` and `w = wu − 2^64·[w < 0]` (`wu` = `w` as unsigned),
    /// `x·w ≡ xl·wu + 2^64·(xh·wu − xl·[w < 0])`.
    #[inline(always)]
    fn mac(self, w: i64, x: i128) -> Self {
        let xl = x as u64;
        let xh = (x >> 64) as u64;
        let wu = w as u64;
        let lo = (xl as u128) * (wu as u128);
        let hi = xh.wrapping_mul(wu).wrapping_sub(xl & ((w >> 63) as u64));
        self.wrapping_add(lo as i128)
            .wrapping_add(((hi as u128) << 64) as i128)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.wrapping_mul(o)
    }
    #[inline(always)]
    fn is_zero(self) -> bool {
        self == 0
    }
    fn to_int(self) -> Option<i128> {
        Some(self)
    }
}

impl<F: ProofField> Num for F {
    type W = F;
    const WIDE: bool = true;
    #[inline(always)]
    fn zero() -> Self {
        F::zero()
    }
    fn cst(v: i128) -> Self {
        from_i128_unchecked(v)
    }
    fn weights(w: &[i64]) -> Cow<'_, [F]> {
        Cow::Owned(w.iter().map(|&v| from_i64(v)).collect())
    }
    #[inline(always)]
    fn mac(self, w: F, x: F) -> Self {
        self + w * x
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    fn is_zero(self) -> bool {
        ark_ff::Zero::is_zero(&self)
    }
    fn to_int(self) -> Option<i128> {
        to_i128(self).ok()
    }
}
