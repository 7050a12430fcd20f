//! The prime fields verinfer proves over, and the signed-integer embedding of DESIGN §2.
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

#[inline(always)]
fn m127_val(a: &M127) -> u128 {
    (a.0 .0[0] as u128) | ((a.0 .0[1] as u128) << 64)
}

#[inline(always)]
const fn m127_elem(v: u128) -> M127 {
    Fp(BigInt([v as u64, (v >> 64) as u64]), PhantomData)
}

/// The canonical value of an [`M127`] element as an integer in `[0, p)` (free: no conversion).
#[inline(always)]
pub fn m127_to_u128(a: M127) -> u128 {
    m127_val(&a)
}

/// The full 254-bit product `a·b` of `a, b < 2^127`, as `(low, high)` 128-bit halves.
#[inline(always)]
fn m127_wide_mul(a: u128, b: u128) -> (u128, u128) {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let ll = a0 * b0;
    // a1, b1 < 2^63, so the cross terms are below 2^127 each and their sum fits.
    let mid = a0 * b1 + a1 * b0;
    let (lo, carry) = ll.overflowing_add(mid << 64);
    // The product is below 2^254, so its high half is below 2^126.
    let hi = a1 * b1 + (mid >> 64) + carry as u128;
    (lo, hi)
}

/// `x mod p` for `x = hi·2^128 + lo < p·(2^127 − 1)` (any product of two canonical elements plus
/// a canonical element): one Mersenne fold (`2^127 ≡ 1`) and one conditional subtraction.
#[inline(always)]
fn m127_reduce_wide(lo: u128, hi: u128) -> u128 {
    // x = top·2^127 + bottom with top < p − 1 (by the bound on x), so top + bottom < 2p.
    let top = (hi << 1) | (lo >> 127);
    m127_reduce_once(top + (lo & P127))
}

/// `a·b mod p` for `a, b < p`.
#[inline(always)]
fn m127_mul(a: u128, b: u128) -> u128 {
    let (lo, hi) = m127_wide_mul(a, b);
    m127_reduce_wide(lo, hi)
}

/// `s mod p` for `s < 2p`, without a data-dependent branch (sums of random elements exceed p
/// half of the time, which a branch would mispredict).
#[inline(always)]
fn m127_reduce_once(s: u128) -> u128 {
    // s ≥ p exactly when s + 1 reaches 2^127; then s − p = (s + 1) − 2^127.
    let ge = (s + 1) >> 127;
    (s + ge) & P127
}

#[inline(always)]
fn m127_add(a: u128, b: u128) -> u128 {
    m127_reduce_once(a + b)
}

/// `a − b mod p` for `a, b < p`, branch-free: on a borrow, `a − b + 2^128 − 1 − 2^127` is the
/// wrapped difference minus one with bit 127 cleared.
#[inline(always)]
fn m127_sub(a: u128, b: u128) -> u128 {
    let (t, borrow) = a.overflowing_sub(b);
    t.wrapping_sub(borrow as u128) & P127
}

/// `2a mod p` for `a < p`: a rotation of the 127-bit value by one (`2^127 ≡ 1`).
#[inline(always)]
fn m127_double(a: u128) -> u128 {
    ((a << 1) & P127) | (a >> 126)
}

/// `a·b + c mod p` with a single reduction (the multilinear fold `lo + r·(hi − lo)`).
#[inline(always)]
pub fn m127_mul_add(a: M127, b: M127, c: M127) -> M127 {
    let (lo, hi) = m127_wide_mul(m127_val(&a), m127_val(&b));
    let (lo, carry) = lo.overflowing_add(m127_val(&c));
    // (p − 1)² + (p − 1) = p·(p − 1), within the bound of `m127_reduce_wide`.
    m127_elem(m127_reduce_wide(lo, hi + carry as u128))
}

/// A lazily reduced sum of products `Σ a_i·b_i` of [`M127`] elements: each product is folded to
/// a 130-bit value and added to a 192-bit accumulator; the single reduction happens in
/// [`M127Acc::reduce`]. Up to 2^62 products.
#[derive(Clone, Copy, Debug, Default)]
pub struct M127Acc {
    /// Low 128 bits of the (congruent) integer sum.
    lo: u128,
    /// Carries out of `lo`, each worth 2^128 ≡ 2.
    carry: u64,
}

impl M127Acc {
    /// An empty sum.
    #[inline(always)]
    pub fn new() -> Self {
        Self::default()
    }

    #[inline(always)]
    fn add_u128(&mut self, x: u128) {
        let (s, c) = self.lo.overflowing_add(x);
        self.lo = s;
        self.carry += c as u64;
    }

    /// Adds `a·b` (unreduced).
    #[inline(always)]
    pub fn mul_add(&mut self, a: M127, b: M127) {
        let (a, b) = (m127_val(&a), m127_val(&b));
        let (a0, a1) = (a as u64 as u128, a >> 64);
        let (b0, b1) = (b as u64 as u128, b >> 64);
        // a·b = a0b0 + mid·2^64 + a1b1·2^128 and mid·2^64 = mid_lo·2^64 + mid_hi·2^128, with
        // 2^128 ≡ 2: a·b ≡ a0b0 + mid_lo·2^64 + 2·(a1b1 + mid_hi), three terms below 2^128.
        let mid = a0 * b1 + a1 * b0;
        let high = (a1 * b1 + (mid >> 64)) << 1;
        self.add_u128(a0 * b0);
        self.add_u128(mid << 64);
        self.add_u128(high);
    }

    /// Adds another lazy sum.
    #[inline(always)]
    pub fn merge(&mut self, other: M127Acc) {
        self.add_u128(other.lo);
        self.carry += other.carry;
    }

    /// The sum, reduced to its canonical element.
    #[inline]
    pub fn reduce(self) -> M127 {
        // carry·2^128 + lo ≡ 2·carry + lo.
        let lo = self.lo;
        let s = (lo & P127) + (lo >> 127) + ((self.carry as u128) << 1);
        // s < 2^127 + 2^66, so one more fold leaves at most p.
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
        *a = m127_elem(m127_sub(m127_val(a), m127_val(b)));
    }

    #[inline(always)]
    fn double_in_place(a: &mut M127) {
        *a = m127_elem(m127_double(m127_val(a)));
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

    /// The Mersenne backend against an independent double-and-add reference on u128.
    #[test]
    fn m127_backend_matches_reference() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let p = P127;
        // Reference product mod p by double-and-add on u128 (slow, independent of m127_mul).
        let mulmod = |a: u128, b: u128| {
            let mut r = 0u128;
            let mut x = a;
            let mut y = b;
            while y > 0 {
                if y & 1 == 1 {
                    r = (r + x) % p;
                }
                x = (x << 1) % p;
                y >>= 1;
            }
            r
        };
        let mut edge: Vec<u128> = vec![0, 1, 2, p - 1, p - 2, 1 << 126, (1 << 126) - 1, u64::MAX as u128];
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
                assert_eq!(M127::from(a).inverse().unwrap() * M127::from(a), M127::one());
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
