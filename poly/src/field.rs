//! The prime fields verinfer proves over, and the signed-integer embedding of docs/protocol.md §2.
//!
//! Every protocol routine is generic over [`ProofField`], a [`PrimeField`] that also carries a
//! stable identifier (written into proofs and digests) and a fixed-width canonical byte encoding.

use ark_ff::{BigInt, BigInteger, Fp, Fp128, FpConfig, PrimeField, SqrtPrecomputation};
use std::marker::PhantomData;
use thiserror::Error;

/// Arithmetic of the Mersenne prime p = 2^127 − 1, plugged into arkworks' `Fp`.
///
/// Elements are stored as their canonical value in `[0, p)` (not in Montgomery form). Because
/// 2^127 ≡ 1 (mod p), a 254-bit product reduces with shifts and adds: `x = hi·2^128 + lo ≡
/// 2·hi + lo`. This is about twice as fast as arkworks' generic two-limb Montgomery multiplication,
/// and the sumcheck kernels are bound by multiplications. Everything else (`Field`,
/// `PrimeField`, serialization) comes from arkworks through [`FpConfig`].
#[derive(Debug)]
pub struct M127Backend;

/// The default field: integers modulo the Mersenne prime 2^127 − 1.
pub type M127 = Fp128<M127Backend>;

/// The modulus p = 2^127 − 1 as an integer.
pub const P127: u128 = (1u128 << 127) - 1;

/// Low 63 bits of a 64-bit limb (the high limb of a canonical element).
const LOW63: u64 = u64::MAX >> 1;

// The helpers below work on the two 64-bit limbs `[lo, hi]` of the canonical value (hi < 2^63),
// written so that every 128-bit sum provably fits: LLVM turns those into plain add/adc chains,
// whereas overflow flags of u128 arithmetic come out as extra compare-and-borrow sequences.

#[inline(always)]
fn m127_limbs(a: &M127) -> [u64; 2] {
    a.0 .0
}

#[inline(always)]
const fn m127_from_limbs(l: [u64; 2]) -> M127 {
    Fp(BigInt(l), PhantomData)
}

#[inline(always)]
fn m127_val(a: &M127) -> u128 {
    (a.0 .0[0] as u128) | ((a.0 .0[1] as u128) << 64)
}

#[inline(always)]
const fn m127_elem(v: u128) -> M127 {
    m127_from_limbs([v as u64, (v >> 64) as u64])
}

/// 64×64 → 128-bit product.
#[inline(always)]
fn mul64(a: u64, b: u64) -> u128 {
    a as u128 * b as u128
}

/// The canonical value of an [`M127`] element as an integer in `[0, p)` (free: no conversion).
#[inline(always)]
pub fn m127_to_u128(a: M127) -> u128 {
    m127_val(&a)
}

/// `s mod p` for `s < 2p`. Written as a select, which LLVM emits as two `cmov`s (no
/// data-dependent branch: sums of random elements exceed p half of the time).
#[inline(always)]
fn m127_reduce_once(s: u128) -> u128 {
    let t = s.wrapping_sub(P127);
    if (t >> 127) != 0 {
        s
    } else {
        t
    }
}

/// `a·b + c mod p` for `a, b, c < p`, with a single reduction.
#[inline(always)]
fn m127_mul_add_limbs(a: [u64; 2], b: [u64; 2], c: [u64; 2]) -> [u64; 2] {
    let ([a0, a1], [b0, b1], [c0, c1]) = (a, b, c);
    // Schoolbook with the carries folded into the next column. No sum overflows: a 64×64-bit
    // product plus two 64-bit values is at most 2^128 − 1, and as a1, b1 < 2^63 the two cross
    // products add up to at most 2(2^64 − 1)(2^63 − 1) = 2^128 − 3·2^64 + 2, leaving room for
    // three more 64-bit addends.
    let ll = mul64(a0, b0) + c0 as u128;
    let mid = mul64(a0, b1) + mul64(a1, b0) + (ll >> 64) + c1 as u128;
    // x = a·b + c = (a1·b1 + mid_hi)·2^128 + mid_lo·2^64 + ll_lo exactly. Split x = top·2^127 +
    // bottom: 2^127 ≡ 1 gives x ≡ top + bottom, and x ≤ (p − 1)² + p − 1 = p(p − 1) makes
    // top < p − 1, so top + bottom < 2p. top = 2·(a1·b1 + mid_hi) + bit 63 of mid_lo, computed
    // with a doubled a1 (< 2^64; hoisted when a is loop-invariant) and additions, not shifts of
    // 128-bit values, which LLVM would emit as `shld` (4 micro-ops on AMD Zen).
    let mid_hi = (mid >> 64) as u64;
    let top = mul64(a1 + a1, b1) + mid_hi as u128 + mid_hi as u128 + ((mid as u64) >> 63) as u128;
    let bottom = (ll as u64 as u128) | (((mid as u64) & LOW63) as u128) << 64;
    let r = m127_reduce_once(top + bottom);
    [r as u64, (r >> 64) as u64]
}

/// `a·b mod p` for `a, b < p`.
#[inline(always)]
fn m127_mul(a: u128, b: u128) -> u128 {
    let l = m127_mul_add_limbs(
        [a as u64, (a >> 64) as u64],
        [b as u64, (b >> 64) as u64],
        [0, 0],
    );
    (l[0] as u128) | ((l[1] as u128) << 64)
}

#[inline(always)]
fn m127_add(a: u128, b: u128) -> u128 {
    m127_reduce_once(a + b)
}

/// `a − b mod p` for `a, b < p`, branch-free.
#[inline(always)]
fn m127_sub_limbs(a: [u64; 2], b: [u64; 2]) -> [u64; 2] {
    let (lo, borrow) = a[0].overflowing_sub(b[0]);
    // a1, b1 < 2^63: the high limb of the difference is negative exactly when a < b.
    let hi = a[1].wrapping_sub(b[1]).wrapping_sub(borrow as u64);
    let neg = ((hi as i64) >> 63) as u64;
    // On a borrow the wrapped value is a − b + 2^128; a − b + p is that minus one with bit 127
    // cleared. Adding the all-ones mask subtracts the one.
    let (lo, carry) = lo.overflowing_add(neg);
    let hi = hi.wrapping_add(neg).wrapping_add(carry as u64) & LOW63;
    [lo, hi]
}

/// `2a mod p` for `a < p`: a rotation of the 127-bit value by one (`2^127 ≡ 1`).
#[inline(always)]
fn m127_double_limbs(a: [u64; 2]) -> [u64; 2] {
    let [lo, hi] = a;
    [(lo << 1) | (hi >> 62), ((hi << 1) | (lo >> 63)) & LOW63]
}

/// `a·b + c` in one multiply and one reduction; used by the sumcheck fold `lo + r·(hi − lo)`.
#[inline(always)]
pub fn m127_mul_add(a: M127, b: M127, c: M127) -> M127 {
    m127_from_limbs(m127_mul_add_limbs(
        m127_limbs(&a),
        m127_limbs(&b),
        m127_limbs(&c),
    ))
}

/// A lazily reduced sum of products `Σ a_i·b_i` of [`M127`] elements: no reduction per product,
/// one in [`M127Acc::reduce`]. Any number of products.
///
/// The state `(l0, l1, t)` stands for `l0 + l1·2^64 + t (mod p)`. Adding `a·b` runs the
/// schoolbook product with `l0 + t_lo` and `l1 + t_hi` as extra 64-bit addends of its first two
/// columns (which cannot overflow 128 bits, as in [`m127_mul_add`]) and leaves its top column
/// `h` (worth `h·2^128 ≡ 2h`) as the new `t = 2h < 2^128`. No carry flags: LLVM emits plain
/// add/adc chains.
#[derive(Clone, Copy, Debug, Default)]
pub struct M127Acc {
    l0: u64,
    l1: u64,
    t: u128,
}

impl M127Acc {
    /// An empty sum.
    #[inline(always)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `a·b` (unreduced).
    #[inline(always)]
    pub fn mul_add(&mut self, a: M127, b: M127) {
        let ([a0, a1], [b0, b1]) = (m127_limbs(&a), m127_limbs(&b));
        let ll = mul64(a0, b0) + self.l0 as u128 + (self.t as u64) as u128;
        let mid = mul64(a0, b1) + mul64(a1, b0) + (ll >> 64) + self.l1 as u128 + (self.t >> 64);
        self.l0 = ll as u64;
        self.l1 = mid as u64;
        // t = 2·(a1·b1 + mid_hi) < 2^127 + 2^65, so its high limb stays below 2^64. Doubling b1
        // (< 2^63) and adding mid_hi twice, rather than shifting the 128-bit sum, keeps LLVM from
        // emitting `shld`, which is slow on AMD Zen (4 micro-ops).
        let mid_hi = (mid >> 64) as u64;
        self.t = mul64(a1, b1 + b1) + mid_hi as u128 + mid_hi as u128;
    }

    /// Adds another lazy sum.
    #[inline]
    pub fn merge(&mut self, other: M127Acc) {
        let s = m127_add(m127_val(&self.reduce()), m127_val(&other.reduce()));
        *self = M127Acc {
            l0: s as u64,
            l1: (s >> 64) as u64,
            t: 0,
        };
    }

    /// The sum, reduced to its canonical element.
    #[inline]
    pub fn reduce(self) -> M127 {
        let l = (self.l0 as u128) | ((self.l1 as u128) << 64);
        // Fold both 128-bit parts with 2^127 ≡ 1. l folds to at most 2^127, and t < 2^127 + 2^65
        // to at most p (when t < 2^127) or below 2^65 + 1, so the sum stays below 2^128.
        let s = (l & P127) + (l >> 127) + (self.t & P127) + (self.t >> 127);
        // One more fold leaves at most 2^127 < 2p.
        let s = (s & P127) + (s >> 127);
        m127_elem(m127_reduce_once(s))
    }
}

impl FpConfig<2> for M127Backend {
    const MODULUS: BigInt<2> = BigInt([u64::MAX, u64::MAX >> 1]);
    const GENERATOR: M127 = m127_elem(43);
    const ZERO: M127 = m127_elem(0);
    const ONE: M127 = m127_elem(1);
    // p − 1 = 2 · odd.
    const TWO_ADICITY: u32 = 1;
    const TWO_ADIC_ROOT_OF_UNITY: M127 = m127_elem(P127 - 1);
    // p ≡ 3 (mod 4): a square root is a power (p + 1)/4 = 2^125.
    const SQRT_PRECOMP: Option<SqrtPrecomputation<M127>> = Some(SqrtPrecomputation::Case3Mod4 {
        modulus_plus_one_div_four: &[0, 1 << 61],
    });

    #[inline(always)]
    fn add_assign(a: &mut M127, b: &M127) {
        *a = m127_elem(m127_add(m127_val(a), m127_val(b)));
    }

    #[inline(always)]
    fn sub_assign(a: &mut M127, b: &M127) {
        *a = m127_from_limbs(m127_sub_limbs(m127_limbs(a), m127_limbs(b)));
    }

    #[inline(always)]
    fn double_in_place(a: &mut M127) {
        *a = m127_from_limbs(m127_double_limbs(m127_limbs(a)));
    }

    #[inline(always)]
    fn neg_in_place(a: &mut M127) {
        let x = m127_val(a);
        *a = m127_elem(if x == 0 { 0 } else { P127 - x });
    }

    #[inline(always)]
    fn mul_assign(a: &mut M127, b: &M127) {
        *a = m127_elem(m127_mul(m127_val(a), m127_val(b)));
    }

    fn sum_of_products<const T: usize>(a: &[M127; T], b: &[M127; T]) -> M127 {
        let mut acc = M127Acc::new();
        for (x, y) in a.iter().zip(b) {
            acc.mul_add(*x, *y);
        }
        acc.reduce()
    }

    #[inline(always)]
    fn square_in_place(a: &mut M127) {
        let x = m127_val(a);
        *a = m127_elem(m127_mul(x, x));
    }

    fn inverse(a: &M127) -> Option<M127> {
        let x = m127_val(a);
        if x == 0 {
            return None;
        }
        // Fermat: x^(p−2), with p − 2 = 2^127 − 3 = 0b111…1101 (127 bits).
        let mut acc = 1u128;
        for bit in (0..127).rev() {
            acc = m127_mul(acc, acc);
            if bit != 1 {
                acc = m127_mul(acc, x);
            }
        }
        Some(m127_elem(acc))
    }

    fn from_bigint(other: BigInt<2>) -> Option<M127> {
        let v = (other.0[0] as u128) | ((other.0[1] as u128) << 64);
        (v < P127).then(|| m127_elem(v))
    }

    #[inline(always)]
    fn into_bigint(other: M127) -> BigInt<2> {
        other.0
    }
}

/// The BN254 scalar field, for models whose values need up to 252 bits.
pub type Bn254 = ark_bn254::Fr;

/// Stable identifiers of the shipped fields, as written in proofs and circuit digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldId {
    /// p = 2^127 − 1.
    M127 = 1,
    /// The BN254 scalar field.
    Bn254 = 2,
}

impl FieldId {
    /// Every shipped field, smallest first (the order `--field auto` tries them in).
    pub const ALL: [FieldId; 2] = [FieldId::M127, FieldId::Bn254];

    /// The byte that stands for this field in proofs.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// Parses the byte written by [`FieldId::to_byte`].
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.to_byte() == b)
    }

    /// The short name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FieldId::M127 => "m127",
            FieldId::Bn254 => "bn254",
        }
    }

    /// Bits of the modulus.
    pub fn modulus_bits(self) -> u32 {
        match self {
            FieldId::M127 => M127::MODULUS_BIT_SIZE,
            FieldId::Bn254 => Bn254::MODULUS_BIT_SIZE,
        }
    }

    /// Largest `b` such that every signed integer of magnitude below 2^b embeds without wrapping,
    /// i.e. 2^b ≤ (p − 1)/2.
    pub fn signed_capacity_bits(self) -> u32 {
        match self {
            // (p - 1)/2 = 2^126 - 1.
            FieldId::M127 => 126,
            // (p - 1)/2 is about 2^252.6.
            FieldId::Bn254 => 252,
        }
    }
}

impl std::fmt::Display for FieldId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FieldId {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "m127" | "mersenne127" | "mersenne-127" => Ok(FieldId::M127),
            "bn254" => Ok(FieldId::Bn254),
            _ => Err(FieldError::UnknownField(s.to_string())),
        }
    }
}

/// Errors of field encodings.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// A signed integer outside the field's signed range (it would wrap around).
    #[error("value {0} does not fit the field's signed range")]
    OutOfRange(String),
    /// A field element whose signed value does not fit the requested machine integer.
    #[error("field element does not fit in {0} bits as a signed integer")]
    TooWide(u32),
    /// Bytes that are not the canonical encoding of a field element.
    #[error("non-canonical field element encoding")]
    NonCanonical,
    /// A field name that is not shipped.
    #[error("unknown field '{0}' (expected m127 or bn254)")]
    UnknownField(String),
}

/// A prime field verinfer can prove over: an arkworks [`PrimeField`] with an identifier and a
/// canonical fixed-width little-endian encoding.
pub trait ProofField: PrimeField {
    /// Identifier written into proofs and digests.
    const ID: FieldId;
    /// Bytes of one canonical element.
    const BYTES: usize = (Self::MODULUS_BIT_SIZE as usize).div_ceil(8);

    /// Appends the canonical little-endian encoding (exactly [`Self::BYTES`] bytes).
    fn write_canonical(&self, out: &mut Vec<u8>) {
        let bytes = self.into_bigint().to_bytes_le();
        out.extend_from_slice(&bytes[..Self::BYTES]);
    }

    /// Parses exactly [`Self::BYTES`] bytes, rejecting any value ≥ p.
    fn read_canonical(bytes: &[u8]) -> Result<Self, FieldError> {
        if bytes.len() != Self::BYTES {
            return Err(FieldError::NonCanonical);
        }
        let mut big = Self::BigInt::default();
        // Fill 64-bit limbs from little-endian bytes; the trailing limb may be partial.
        let limbs = big.as_mut();
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            match limbs.get_mut(i) {
                Some(l) => *l = u64::from_le_bytes(word),
                None => return Err(FieldError::NonCanonical),
            }
        }
        Self::from_bigint(big).ok_or(FieldError::NonCanonical)
    }

    /// Kernel specialisation hook: the slice as [`M127`] elements when `Self` is [`M127`], else
    /// `None`. Lets a generic kernel take an M127-specific path without `TypeId` or `unsafe`.
    #[inline(always)]
    fn as_m127(_s: &[Self]) -> Option<&[M127]> {
        None
    }

    /// Mutable form of [`ProofField::as_m127`].
    #[inline(always)]
    fn as_m127_mut(_s: &mut [Self]) -> Option<&mut [M127]> {
        None
    }
}

impl ProofField for M127 {
    const ID: FieldId = FieldId::M127;

    #[inline(always)]
    fn as_m127(s: &[Self]) -> Option<&[M127]> {
        Some(s)
    }

    #[inline(always)]
    fn as_m127_mut(s: &mut [Self]) -> Option<&mut [M127]> {
        Some(s)
    }
}

impl ProofField for Bn254 {
    const ID: FieldId = FieldId::Bn254;
}

/// Embeds a signed integer as `v mod p`. Fails when |v| exceeds the field's signed range, so a
/// value can never wrap silently.
pub fn from_i128<F: ProofField>(v: i128) -> Result<F, FieldError> {
    let mag = v.unsigned_abs();
    if 128 - mag.leading_zeros() > F::ID.signed_capacity_bits() {
        return Err(FieldError::OutOfRange(v.to_string()));
    }
    Ok(from_i128_unchecked(v))
}

/// Embeds a signed integer as `v mod p` without the range check. For callers whose bound analysis
/// already guarantees the range (the witness generator).
#[inline]
pub fn from_i128_unchecked<F: PrimeField>(v: i128) -> F {
    let f = F::from(v.unsigned_abs());
    if v < 0 {
        -f
    } else {
        f
    }
}

/// Embeds a small signed integer (always in range for the shipped fields).
#[inline]
pub fn from_i64<F: PrimeField>(v: i64) -> F {
    let f = F::from(v.unsigned_abs());
    if v < 0 {
        -f
    } else {
        f
    }
}

/// Decodes a field element as a signed integer: values above (p − 1)/2 are negative.
/// Fails when the result does not fit in an `i128`.
pub fn to_i128<F: PrimeField>(f: F) -> Result<i128, FieldError> {
    let (neg, mag) = signed_magnitude(f);
    let limbs = mag.as_ref();
    if limbs.iter().skip(2).any(|&l| l != 0) {
        return Err(FieldError::TooWide(128));
    }
    let m = (limbs[0] as u128) | ((limbs.get(1).copied().unwrap_or(0) as u128) << 64);
    if neg {
        if m > i128::MAX as u128 + 1 {
            return Err(FieldError::TooWide(128));
        }
        Ok((m as i128).wrapping_neg())
    } else {
        i128::try_from(m).map_err(|_| FieldError::TooWide(128))
    }
}

/// Decodes a field element as a signed decimal string (any width), for output reports.
pub fn to_signed_decimal<F: PrimeField>(f: F) -> String {
    let (neg, mag) = signed_magnitude(f);
    let digits = biguint_decimal(mag.as_ref());
    if neg && digits != "0" {
        format!("-{digits}")
    } else {
        digits
    }
}

/// Splits an element into sign and magnitude under the signed embedding.
fn signed_magnitude<F: PrimeField>(f: F) -> (bool, F::BigInt) {
    let big = f.into_bigint();
    if big > F::MODULUS_MINUS_ONE_DIV_TWO {
        (true, (-f).into_bigint())
    } else {
        (false, big)
    }
}

/// Decimal digits of a little-endian multi-limb unsigned integer.
fn biguint_decimal(limbs: &[u64]) -> String {
    let mut words: Vec<u64> = limbs.to_vec();
    let mut chunks = Vec::new();
    const BASE: u128 = 10_000_000_000_000_000_000; // 10^19 < 2^64
    while words.iter().any(|&w| w != 0) {
        let mut rem: u128 = 0;
        for w in words.iter_mut().rev() {
            let cur = (rem << 64) | (*w as u128);
            *w = (cur / BASE) as u64;
            rem = cur % BASE;
        }
        chunks.push(rem as u64);
    }
    match chunks.split_last() {
        None => "0".to_string(),
        Some((top, rest)) => {
            let mut s = top.to_string();
            for c in rest.iter().rev() {
                s.push_str(&format!("{c:019}"));
            }
            s
        }
    }
}

/// Soundness of a proof system instance: the error is Σ(round degrees + extra checks)/|F|, and the
/// returned figure is −log2 of that error (bits of security against a cheating prover).
pub fn soundness_bits(field: FieldId, degree_sum: u64) -> f64 {
    let field_bits = match field {
        // log2(2^127 - 1) is 127 to within 1e-38.
        FieldId::M127 => 127.0,
        FieldId::Bn254 => 253.59,
    };
    field_bits - (degree_sum.max(1) as f64).log2()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ark_ff::{AdditiveGroup, Field, One, Zero};

    #[test]
    fn m127_modulus_is_mersenne() {
        let p_minus_one = -M127::one();
        assert_eq!(to_signed_decimal(p_minus_one), "-1");
        assert_eq!(M127::from(1u128 << 126).double(), M127::one());
        assert!(M127::from(43u64).pow([(u128::MAX >> 1) as u64]) != M127::zero());
    }

    /// Reference product mod p by double-and-add on u128 (slow, independent of the backend).
    fn ref_mulmod(a: u128, b: u128) -> u128 {
        let p = P127;
        let mut r = 0u128;
        let mut x = a % p;
        let mut y = b;
        while y > 0 {
            if y & 1 == 1 {
                r = (r + x) % p;
            }
            x = (x << 1) % p;
            y >>= 1;
        }
        r
    }

    /// Canonical value of an element, through arkworks' own conversion.
    fn val(f: M127) -> u128 {
        let l = f.into_bigint().0;
        (l[0] as u128) | ((l[1] as u128) << 64)
    }

    /// Edge values (0, 1, p − 1, p − 2, 2^126, extreme limbs) and random elements.
    fn m127_test_values(random: usize) -> Vec<u128> {
        use rand::{Rng, SeedableRng};
        let p = P127;
        let mut v: Vec<u128> = vec![
            0,
            1,
            2,
            p - 1,
            p - 2,
            1 << 126,
            (1 << 126) - 1,
            (1 << 126) + 1,
            u64::MAX as u128,
            1 << 64,
            p - (1 << 64),
            p - u64::MAX as u128,
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..random {
            v.push(rng.gen::<u128>() % p);
        }
        v
    }

    /// `m127_mul_add` and the lazy accumulator against the reference.
    #[test]
    fn m127_mul_add_and_lazy_sum_match_reference() {
        let p = P127;
        let vals = m127_test_values(60);
        for &a in &vals {
            for &b in &vals {
                for &c in vals.iter().take(14) {
                    let got = m127_mul_add(M127::from(a), M127::from(b), M127::from(c));
                    assert_eq!(val(got), (ref_mulmod(a, b) + c) % p, "{a}·{b} + {c}");
                }
            }
        }
        // Running lazy sums over all pairs, checked after every product.
        let mut acc = M127Acc::new();
        let mut want = 0u128;
        for &a in &vals {
            for &b in &vals {
                acc.mul_add(M127::from(a), M127::from(b));
                want = (want + ref_mulmod(a, b)) % p;
                assert_eq!(val(acc.reduce()), want);
            }
        }
        assert_eq!(val(M127Acc::new().reduce()), 0);
        // Many maximal products: (p − 1)² ≡ 1, and every limb is as large as it can be.
        let big = M127::from(p - 1);
        let mut acc = M127Acc::new();
        for i in 1..=100_000u128 {
            acc.mul_add(big, big);
            if i % 9_999 == 0 {
                assert_eq!(val(acc.reduce()), i);
            }
        }
        assert_eq!(val(acc.reduce()), 100_000);
        // Merging two sums.
        let mut x = M127Acc::new();
        let mut y = M127Acc::new();
        x.mul_add(big, M127::from(3u64));
        y.mul_add(big, M127::from(5u64));
        x.merge(y);
        assert_eq!(val(x.reduce()), p - 8);
        x.mul_add(M127::from(4u64), M127::from(2u64));
        assert_eq!(val(x.reduce()), 0);
        // The arkworks sum-of-products hook goes through the accumulator.
        let a = [big, M127::from(1u128 << 126), M127::from(p - 2)];
        let b = [big, M127::from(2u64), M127::from(p - 2)];
        assert_eq!(
            val(M127::sum_of_products(&a, &b)),
            (1 + 1 + 4) % p,
            "(p-1)² + 2^127 + (p-2)²"
        );
    }

    /// The kernel hook recognises exactly M127.
    #[test]
    fn as_m127_only_for_m127() {
        let mut m = vec![M127::from(3u64); 4];
        assert_eq!(M127::as_m127(&m).map(<[M127]>::len), Some(4));
        assert!(M127::as_m127_mut(&mut m).is_some());
        let mut b = vec![Bn254::from(3u64); 4];
        assert!(Bn254::as_m127(&b).is_none());
        assert!(Bn254::as_m127_mut(&mut b).is_none());
    }

    /// The Mersenne backend against an independent double-and-add reference on u128.
    #[test]
    fn m127_backend_matches_reference() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let p = P127;
        let mulmod = ref_mulmod;
        let mut edge: Vec<u128> = vec![
            0,
            1,
            2,
            p - 1,
            p - 2,
            1 << 126,
            (1 << 126) - 1,
            u64::MAX as u128,
        ];
        for _ in 0..200 {
            edge.push(rng.gen::<u128>() % p);
        }
        for &a in &edge {
            for &b in edge.iter().take(20) {
                let (fa, fb) = (M127::from(a), M127::from(b));
                let v = |f: M127| {
                    let l = f.into_bigint().0;
                    (l[0] as u128) | ((l[1] as u128) << 64)
                };
                assert_eq!(v(fa * fb), mulmod(a, b), "{a} * {b}");
                assert_eq!(v(fa + fb), (a + b) % p);
                assert_eq!(v(fa - fb), (a + p - b) % p);
                assert_eq!(v(-fa), (p - a) % p);
                assert_eq!(v(fa.square()), mulmod(a, a));
                assert_eq!(v(fa.double()), (a + a) % p);
            }
            if a != 0 {
                assert_eq!(
                    M127::from(a).inverse().unwrap() * M127::from(a),
                    M127::one()
                );
            }
        }
        assert!(M127::zero().inverse().is_none());
        let four = M127::from(4u64);
        assert_eq!(four.sqrt().map(|r| r.square()), Some(four));
        assert_eq!(M127::from(u128::MAX), M127::from(1u64));
    }

    #[test]
    fn signed_round_trip_and_range() {
        for v in [
            0i128,
            1,
            -1,
            12345,
            -987654321,
            (1 << 126) - 1,
            -(1 << 126) + 1,
        ] {
            let f: M127 = from_i128(v).unwrap();
            assert_eq!(to_i128(f).unwrap(), v);
            assert_eq!(to_signed_decimal(f), v.to_string());
            let g: Bn254 = from_i128(v).unwrap();
            assert_eq!(to_i128(g).unwrap(), v);
        }
        assert!(from_i128::<M127>(1 << 126).is_err());
        assert!(from_i128::<M127>((1 << 126) - 1).is_ok());
        assert!(from_i128::<M127>(-((1 << 126) - 1)).is_ok());
        assert!(from_i128::<M127>(i128::MIN).is_err());
        assert!(from_i128::<Bn254>(i128::MIN).is_ok());
        let big = Bn254::from(1u128 << 127) * Bn254::from(4u64);
        assert!(to_i128(big).is_err());
        assert_eq!(
            to_signed_decimal(big),
            "680564733841876926926749214863536422912"
        );
        assert_eq!(
            to_signed_decimal(-big),
            "-680564733841876926926749214863536422912"
        );
    }

    #[test]
    fn canonical_bytes() {
        let x = M127::from(0x0123_4567_89ab_cdefu64) - M127::from(5u64);
        let mut buf = Vec::new();
        x.write_canonical(&mut buf);
        assert_eq!(buf.len(), 16);
        assert_eq!(M127::read_canonical(&buf).unwrap(), x);
        // p itself and 2^128 - 1 are not canonical.
        let mut p = vec![0xffu8; 16];
        p[15] = 0x7f;
        assert_eq!(M127::read_canonical(&p), Err(FieldError::NonCanonical));
        assert_eq!(
            M127::read_canonical(&[0xff; 16]),
            Err(FieldError::NonCanonical)
        );
        assert_eq!(
            M127::read_canonical(&[0; 15]),
            Err(FieldError::NonCanonical)
        );
        let y = -Bn254::from(7u64);
        let mut buf = Vec::new();
        y.write_canonical(&mut buf);
        assert_eq!(buf.len(), 32);
        assert_eq!(Bn254::read_canonical(&buf).unwrap(), y);
        assert_eq!(
            Bn254::read_canonical(&[0xff; 32]),
            Err(FieldError::NonCanonical)
        );
    }

    #[test]
    fn field_ids() {
        for f in FieldId::ALL {
            assert_eq!(FieldId::from_byte(f.to_byte()), Some(f));
            assert_eq!(f.name().parse::<FieldId>().unwrap(), f);
        }
        assert_eq!(FieldId::from_byte(0), None);
        assert!(soundness_bits(FieldId::M127, 1000) > 117.0);
    }
}
