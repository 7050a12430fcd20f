//! Polynomial approximations of ReLU, sgn and max: the presets a polynomial activation can
//! be built from.
//!
//! Every polynomial here is a `Vec<f64>` of **monomial coefficients in ascending order**
//! (index `k` multiplies `x^k`; length = degree + 1), the form the compiler quantizes
//! (`round(c · 2^coef_bits)`). The ReLU fits approximate `relu(x) = max(x, 0)` on `[-1, 1]`;
//! [`rescale`] moves one to `[-B, B]` (relu is positively homogeneous).
//!
//! # Presets ([`preset`])
//!
//! | name | polynomial | source |
//! |---|---|---|
//! | `square` | `x²` | CryptoNets / SafetyNets, as discussed by Ali, So, Avestimehr |
//! | `square_plus_x` | `x² + x` | Ali, So, Avestimehr, "On Polynomial Approximations for Privacy-Preserving and Verifiable ReLU Networks" |
//! | `faster_cryptonets` | `x²/8 + x/2 + 1/4` | the quantized minimax quadratic of Chou et al., "Faster CryptoNets", as quoted by Lee et al. |
//! | `chebyshev:d` | truncated Chebyshev series of relu, degree `d` | [`relu_chebyshev`]; `chebyshev:2` is Ali et al.'s "Fourier series based" quadratic |
//! | `lsq:d` | L2 projection of relu on `[-1, 1]` | [`relu_least_squares`]; `lsq:2` is Ali et al.'s least-squares quadratic |
//! | `minimax:d` | best uniform approximation of relu on `[-1, 1]` | [`relu_minimax`]; `minimax:2` is Ali et al.'s minimax quadratic |
//! | `taylor:d` | Taylor polynomial of softplus `ln(1 + eˣ)` at 0 | [`relu_taylor`] |
//! | `exp_taylor:d` | `Σ xⁱ/i!`, the Taylor polynomial of `eˣ` (not a ReLU approximation) | [`exp_taylor`]; Ho et al. |
//! | `lee_relu:α` | `(x + x·p_α(x))/2` expanded, for the α whose degree is at most 31 (4, 5, 6) | [`SignComposite::relu_polynomial`] |
//!
//! `d` ranges over `1..=31` ([`MAX_DEGREE`]). [`preset_names`] lists every valid name.
//!
//! # Sign, ReLU and max by composite minimax polynomials ([`sign_composite`])
//!
//! For a precision α in 4..=14, `p_α = p_k ∘ … ∘ p_1` approximates `sgn` with
//! `|p_α(x) − sgn(x)| ≤ 2^−(α−1)` for `ε ≤ |x| ≤ 1`, `ε = ζ·2^−α`, with the degrees and ζ of
//! Table 1 of Junghyun Lee, Eunsang Lee, Joon-Woo Lee, Yongjune Kim, Young-Sik Kim, Jong-Seon
//! No, "Precise Approximation of Convolutional Neural Networks for Homomorphically Encrypted
//! Data", built as in Eunsang Lee, Joon-Woo Lee, Jong-Seon No, Young-Sik Kim, "Minimax
//! approximation of sign function by composite polynomial for homomorphic comparison". The
//! coefficients were computed by the repository's own Remez implementation
//! (`tools/activations/`) and are embedded from `circuits/presets/sign_minimax.json`.
//! From `p_α`: ReLU `r_α(x) = (x + x·p_α(x))/2` ([`SignComposite::relu`]) and max
//! `m_α(a, b) = ((a + b) + (a − b)·p_α(a − b))/2` ([`SignComposite::max`]).

use serde::Deserialize;
use std::f64::consts::PI;
use thiserror::Error;

/// The largest degree of a single-polynomial preset (the prover's limit for one activation
/// polynomial).
pub const MAX_DEGREE: u32 = 31;

const SIGN_JSON: &str = include_str!("../presets/sign_minimax.json");
const RELU_MINIMAX_JSON: &str = include_str!("../presets/relu_minimax.json");

/// An error of the approximation presets.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ApproxError {
    /// No sign preset for this precision.
    #[error("no sign-function preset for alpha = {alpha}; available alphas: {available}")]
    UnknownAlpha {
        /// The requested precision.
        alpha: u32,
        /// The precisions that exist, comma-separated.
        available: String,
    },
    /// A fit's degree outside its range.
    #[error("{kind} degree {degree} is out of range: valid degrees are {min}..={max}")]
    Degree {
        /// Which fit.
        kind: &'static str,
        /// The requested degree.
        degree: u32,
        /// The smallest valid degree.
        min: u32,
        /// The largest valid degree.
        max: u32,
    },
    /// The composite minimax ReLU cannot be laid out for this model and quantization.
    #[error("minimax ReLU: {0}")]
    Composite(String),
    /// A `--relu` choice that does not parse.
    #[error(
        "relu choice `{0}`: expected exact, poly:NAME[@BOUND] (e.g. poly:chebyshev:8@4) or minimax:ALPHA[@BOUND] (e.g. minimax:10@8)"
    )]
    Choice(String),
    /// A rescaling bound that is not a finite positive number.
    #[error("the input bound must be finite and positive, got {0}")]
    Bound(f64),
    /// A preset name that does not resolve.
    #[error("unknown activation preset `{name}`: {reason}; valid presets: {valid}")]
    UnknownPreset {
        /// The name as given.
        name: String,
        /// Why it does not resolve.
        reason: String,
        /// The valid name patterns.
        valid: String,
    },
    /// The embedded preset file does not parse (a build of a corrupted repository).
    #[error("embedded preset file {file} is malformed: {reason}")]
    Embedded {
        /// The file under `circuits/presets/`.
        file: &'static str,
        /// The parse error.
        reason: String,
    },
    /// The exact rational arithmetic of a fit overflowed `i128`.
    #[error("exact arithmetic overflowed while computing {0}")]
    Overflow(&'static str),
}

// ---------------------------------------------------------------------------------------------
// Evaluation helpers

/// `Σ coefficients[k]·x^k` by Horner's rule (0 for an empty slice).
pub fn eval(coefficients: &[f64], x: f64) -> f64 {
    coefficients.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

/// The composite `parts[k−1] ∘ … ∘ parts[0]` at `x`: `parts[0]` is applied first.
pub fn compose<P: AsRef<[f64]>>(parts: &[P], x: f64) -> f64 {
    parts.iter().fold(x, |y, p| eval(p.as_ref(), y))
}

/// The monomial coefficients of `outer(inner(x))` (f64 polynomial arithmetic, Horner on
/// polynomials). Degree `deg outer · deg inner`.
pub fn expand_composition(outer: &[f64], inner: &[f64]) -> Vec<f64> {
    let mut acc: Vec<f64> = Vec::new();
    for &c in outer.iter().rev() {
        // acc = acc · inner + c
        let len = if acc.is_empty() || inner.is_empty() {
            1
        } else {
            acc.len() + inner.len() - 1
        };
        let mut next = vec![0.0; len];
        for (i, &a) in acc.iter().enumerate() {
            for (j, &b) in inner.iter().enumerate() {
                next[i + j] += a * b;
            }
        }
        next[0] += c;
        acc = next;
    }
    acc
}

/// The approximation on `[-B, B]` of a positively homogeneous function (relu, |x|) from one
/// on `[-1, 1]`: `B·q(x/B)`, i.e. `c_k·B^(1−k)`. The error scales by `B`. Not meaningful for
/// the softplus and `eˣ` Taylor presets (those functions are not homogeneous).
pub fn rescale(coefficients: &[f64], bound: f64) -> Result<Vec<f64>, ApproxError> {
    if !bound.is_finite() || bound <= 0.0 {
        return Err(ApproxError::Bound(bound));
    }
    let mut scale = bound; // B^(1−k) for k = 0
    Ok(coefficients
        .iter()
        .map(|&c| {
            let out = c * scale;
            scale /= bound;
            out
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Exact rationals for the basis conversions

/// A reduced fraction `num/den`, `den > 0`, with checked `i128` arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    const ZERO: Ratio = Ratio { num: 0, den: 1 };

    fn new(num: i128, den: i128) -> Option<Ratio> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Ratio {
            num: sign * (num / g),
            den: sign * (den / g),
        })
    }

    fn int(n: i128) -> Ratio {
        Ratio { num: n, den: 1 }
    }

    fn add(self, o: Ratio) -> Option<Ratio> {
        let g = gcd(self.den, o.den);
        let (a, b) = (self.den / g, o.den / g);
        let num = self
            .num
            .checked_mul(b)?
            .checked_add(o.num.checked_mul(a)?)?;
        Ratio::new(num, self.den.checked_mul(b)?)
    }

    fn mul(self, o: Ratio) -> Option<Ratio> {
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        let num = (self.num / g1).checked_mul(o.num / g2)?;
        let den = (self.den / g2).checked_mul(o.den / g1)?;
        Ratio::new(num, den)
    }

    /// The nearest f64 to within a few ulps (two conversions and one division).
    fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// Integer monomial coefficients of the Chebyshev polynomials `T_0..=T_n`.
fn chebyshev_t(n: usize) -> Option<Vec<Vec<i128>>> {
    let mut t: Vec<Vec<i128>> = vec![vec![1], vec![0, 1]];
    while t.len() <= n {
        let k = t.len();
        let mut next = vec![0i128; k + 1];
        for (j, &c) in t[k - 1].iter().enumerate() {
            next[j + 1] = next[j + 1].checked_add(c.checked_mul(2)?)?;
        }
        for (j, &c) in t[k - 2].iter().enumerate() {
            next[j] = next[j].checked_sub(c)?;
        }
        t.push(next);
    }
    t.truncate(n + 1);
    Some(t)
}

/// Rational monomial coefficients of the Legendre polynomials `P_0..=P_n`
/// (`(k+1) P_{k+1} = (2k+1) x P_k − k P_{k−1}`).
fn legendre_p(n: usize) -> Option<Vec<Vec<Ratio>>> {
    let mut p: Vec<Vec<Ratio>> = vec![vec![Ratio::int(1)], vec![Ratio::ZERO, Ratio::int(1)]];
    while p.len() <= n {
        let k = p.len() - 1; // building P_{k+1}
        let kk = i128::try_from(k).ok()?;
        let a = Ratio::new(2 * kk + 1, kk + 1)?;
        let b = Ratio::new(-kk, kk + 1)?;
        let mut next = vec![Ratio::ZERO; k + 2];
        for (j, &c) in p[k].iter().enumerate() {
            next[j + 1] = next[j + 1].add(c.mul(a)?)?;
        }
        for (j, &c) in p[k - 1].iter().enumerate() {
            next[j] = next[j].add(c.mul(b)?)?;
        }
        p.push(next);
    }
    p.truncate(n + 1);
    Some(p)
}

fn check_degree(kind: &'static str, degree: u32) -> Result<usize, ApproxError> {
    if !(1..=MAX_DEGREE).contains(&degree) {
        return Err(ApproxError::Degree {
            kind,
            degree,
            min: 1,
            max: MAX_DEGREE,
        });
    }
    usize::try_from(degree).map_err(|_| ApproxError::Overflow(kind))
}

// ---------------------------------------------------------------------------------------------
// ReLU fits on [-1, 1]

/// The Chebyshev-series coefficients `a_0..=a_degree` of relu on `[-1, 1]`
/// (`relu = Σ a_n T_n`), from `|x| = 2/π − (4/π) Σ_{k≥1} (−1)^k T_{2k}(x)/(4k² − 1)`:
/// `a_0 = 1/π`, `a_1 = 1/2`, `a_{2k} = (2/π)(−1)^{k+1}/(4k² − 1)`, odd `a_n = 0` for `n > 1`.
pub fn relu_chebyshev_series(degree: u32) -> Result<Vec<f64>, ApproxError> {
    let d = check_degree("chebyshev", degree)?;
    Ok((0..=d)
        .map(|n| match n {
            0 => 1.0 / PI,
            1 => 0.5,
            n if n % 2 == 1 => 0.0,
            n => {
                let k = (n / 2) as f64;
                let sign = if (n / 2) % 2 == 1 { 1.0 } else { -1.0 };
                sign * 2.0 / (PI * (4.0 * k * k - 1.0))
            }
        })
        .collect())
}

/// relu on `[-1, 1]` by its **truncated Chebyshev series** of the given degree (not
/// interpolation): `Σ_{n ≤ degree} a_n T_n(x)`, coefficients as in
/// [`relu_chebyshev_series`]. Degree `1..=31`; for odd degrees the leading coefficient is 0
/// (the non-linear part of relu is even). Max error on `[-1, 1]`: `1/(π(2m+1))` for
/// `m = ⌊degree/2⌋`, attained at `x = 0`. Degree 2 is `4x²/(3π) + x/2 + 1/(3π)`.
///
/// The conversion to monomials is exact up to the final rounding: the rational parts
/// `Σ_k r_k·[x^j]T_{2k}` are summed in exact `i128` rationals, then divided by π once.
pub fn relu_chebyshev(degree: u32) -> Result<Vec<f64>, ApproxError> {
    let d = check_degree("chebyshev", degree)?;
    let overflow = || ApproxError::Overflow("the Chebyshev to monomial conversion");
    let t = chebyshev_t(d).ok_or_else(overflow)?;
    // Even part = (1/π) Σ_k r_k T_{2k}: r_0 = 1, r_k = 2(−1)^{k+1}/(4k² − 1).
    let mut even = vec![Ratio::ZERO; d + 1];
    for k in 0..=d / 2 {
        let kk = i128::try_from(k).map_err(|_| overflow())?;
        let r = if k == 0 {
            Ratio::int(1)
        } else {
            let sign = if k % 2 == 1 { 2 } else { -2 };
            Ratio::new(sign, 4 * kk * kk - 1).ok_or_else(overflow)?
        };
        for (j, &c) in t[2 * k].iter().enumerate() {
            even[j] = even[j]
                .add(r.mul(Ratio::int(c)).ok_or_else(overflow)?)
                .ok_or_else(overflow)?;
        }
    }
    let mut out: Vec<f64> = even.iter().map(|r| r.to_f64() / PI).collect();
    out[1] = 0.5;
    Ok(out)
}

/// relu on `[-1, 1]` by its **least-squares (L2) projection** onto polynomials of the given
/// degree, through Legendre polynomials: `relu = x/2 + |x|/2` and
/// `|x| ≈ Σ_{k even} a_k P_k` with `a_k = (2k+1)∫_0^1 x P_k(x) dx`, all in exact `i128`
/// rationals (one rounding per coefficient). Degree `1..=31`; odd degrees carry a zero
/// leading coefficient. Degree 2 is `15x²/32 + x/2 + 3/32`.
pub fn relu_least_squares(degree: u32) -> Result<Vec<f64>, ApproxError> {
    let d = check_degree("lsq", degree)?;
    let overflow = || ApproxError::Overflow("the Legendre least-squares fit");
    let p = legendre_p(d).ok_or_else(overflow)?;
    let mut even = vec![Ratio::ZERO; d + 1];
    for k in (0..=d).step_by(2) {
        // ∫_0^1 x P_k(x) dx = Σ_j [x^j]P_k / (j + 2)
        let mut integral = Ratio::ZERO;
        for (j, &c) in p[k].iter().enumerate() {
            let jj = i128::try_from(j).map_err(|_| overflow())?;
            integral = integral
                .add(
                    c.mul(Ratio::new(1, jj + 2).ok_or_else(overflow)?)
                        .ok_or_else(overflow)?,
                )
                .ok_or_else(overflow)?;
        }
        let kk = i128::try_from(k).map_err(|_| overflow())?;
        // relu's even part is |x|/2: coefficient (2k+1)/2 · ∫_0^1 x P_k.
        let a = integral
            .mul(Ratio::new(2 * kk + 1, 2).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        for (j, &c) in p[k].iter().enumerate() {
            even[j] = even[j]
                .add(a.mul(c).ok_or_else(overflow)?)
                .ok_or_else(overflow)?;
        }
    }
    let mut out: Vec<f64> = even.iter().map(|r| r.to_f64()).collect();
    out[1] = 0.5;
    Ok(out)
}

#[derive(Deserialize)]
struct ReluMinimaxFile {
    presets: Vec<ReluMinimaxEntry>,
}

#[derive(Deserialize)]
struct ReluMinimaxEntry {
    degree: u32,
    max_error: f64,
    coefficients: Vec<String>,
}

fn parse_decimal(file: &'static str, s: &str) -> Result<f64, ApproxError> {
    s.parse::<f64>().map_err(|e| ApproxError::Embedded {
        file,
        reason: format!("coefficient `{s}`: {e}"),
    })
}

fn relu_minimax_entry(degree: u32) -> Result<(Vec<f64>, f64), ApproxError> {
    const FILE: &str = "relu_minimax.json";
    check_degree("minimax", degree)?;
    let file: ReluMinimaxFile =
        serde_json::from_str(RELU_MINIMAX_JSON).map_err(|e| ApproxError::Embedded {
            file: FILE,
            reason: e.to_string(),
        })?;
    let entry = file
        .presets
        .into_iter()
        .find(|e| e.degree == degree)
        .ok_or_else(|| ApproxError::Embedded {
            file: FILE,
            reason: format!("no entry for degree {degree}"),
        })?;
    let coefficients = entry
        .coefficients
        .iter()
        .map(|s| parse_decimal(FILE, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((coefficients, entry.max_error))
}

/// relu on `[-1, 1]` by its **minimax** (best uniform) polynomial of the given degree,
/// `1..=31`: `x/2` plus half the best even approximation of `|x|`, computed by the Remez
/// implementation in `tools/activations/` and embedded from
/// `circuits/presets/relu_minimax.json` (30-digit decimals, parsed with correct rounding).
/// Degree 2 is `x²/2 + x/2 + 1/16` (error 1/16).
pub fn relu_minimax(degree: u32) -> Result<Vec<f64>, ApproxError> {
    relu_minimax_entry(degree).map(|(c, _)| c)
}

/// The minimax error of [`relu_minimax`] of this degree, as computed by the generator
/// (50-digit arithmetic).
pub fn relu_minimax_error(degree: u32) -> Result<f64, ApproxError> {
    relu_minimax_entry(degree).map(|(_, e)| e)
}

/// The degree-`degree` **Taylor polynomial at 0 of softplus** `ln(1 + eˣ)`, the smooth
/// stand-in for relu: `ln 2 + x/2 + x²/8 − x⁴/192 + x⁶/2880 − …`. Degree `1..=31`; the
/// series converges for `|x| < π`. Its distance to relu on `[-1, 1]` is about `ln 2` (at
/// `x = 0`): it tracks softplus, not relu.
///
/// Ho et al. ("High Accuracy Approximation of Secure Multiparty Neural Network Training")
/// expand `eˣ` (see [`exp_taylor`]), and Joo et al. ("A Study on Approximation Methods for a
/// ReLU Function in Homomorphic Encrypted CNN Inference") compare a "Taylor series" ReLU
/// approximation without naming the function expanded; softplus is this crate's choice.
///
/// Coefficients from the sigmoid `s = softplus'` and `s' = s(1 − s)`: with
/// `u = s − 1/2`, `u' = 1/4 − u²`, so `(n+1) u_{n+1} = [n = 0]/4 − Σ_{i+j=n} u_i u_j`.
pub fn relu_taylor(degree: u32) -> Result<Vec<f64>, ApproxError> {
    let d = check_degree("taylor", degree)?;
    // u = tanh(x/2)/2 coefficients up to degree d − 1.
    let mut u = vec![0.0f64; d];
    for n in 0..d.saturating_sub(1) {
        let conv: f64 = (0..=n).map(|i| u[i] * u[n - i]).sum();
        let rhs = if n == 0 { 0.25 } else { 0.0 } - conv;
        u[n + 1] = rhs / (n + 1) as f64;
    }
    let mut out = vec![0.0f64; d + 1];
    out[0] = std::f64::consts::LN_2;
    out[1] = 0.5;
    for (n, &un) in u.iter().enumerate() {
        // ∫ u_n x^n = u_n x^{n+1}/(n+1)
        out[n + 1] += un / (n + 1) as f64;
    }
    Ok(out)
}

/// The degree-`degree` Taylor polynomial of `eˣ` at 0, `Σ_{i ≤ degree} xⁱ/i!`: the
/// approximation of Ho, Wang, Zheng, Gonzalez, Popa, Stoica, "High Accuracy Approximation of
/// Secure Multiparty Neural Network Training" (their Table 1), used there for softmax.
/// **Not** a ReLU approximation. Degree `1..=31`.
pub fn exp_taylor(degree: u32) -> Result<Vec<f64>, ApproxError> {
    let d = check_degree("exp_taylor", degree)?;
    let mut out = Vec::with_capacity(d + 1);
    let mut term = 1.0f64;
    for i in 0..=d {
        if i > 0 {
            term /= i as f64;
        }
        out.push(term);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Composite minimax approximation of sgn

/// A composite minimax approximation `p_α = parts[k−1] ∘ … ∘ parts[0]` of `sgn`:
/// `|p_α(x) − sgn(x)| ≤ 2^−(α−1)` for `epsilon ≤ |x| ≤ 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct SignComposite {
    /// The precision parameter α.
    pub alpha: u32,
    /// ζ of Lee et al.'s Table 1: `epsilon = zeta · 2^−alpha`.
    pub zeta: f64,
    /// The half-width of the excluded interval around 0.
    pub epsilon: f64,
    /// The degree of every part (odd), innermost first.
    pub degrees: Vec<u32>,
    /// Monomial coefficients (ascending, length degree + 1, even ones 0) of every part,
    /// innermost first.
    pub parts: Vec<Vec<f64>>,
    /// `max |p_α(x) − sgn(x)|` over `epsilon ≤ |x| ≤ 1`, measured by the generator in 50-digit
    /// arithmetic (dense grid, local maxima refined).
    pub max_error: f64,
}

impl SignComposite {
    /// The guaranteed error bound `2^−(α−1)`.
    pub fn bound(&self) -> f64 {
        0.5f64.powi(self.alpha as i32 - 1)
    }

    /// `p_α(x)`.
    pub fn eval(&self, x: f64) -> f64 {
        compose(&self.parts, x)
    }

    /// Lee et al.'s ReLU `r_α(x) = (x + x·p_α(x))/2`, for `x ∈ [-1, 1]` (their Theorem 1
    /// claims error at most `2^−α` there).
    pub fn relu(&self, x: f64) -> f64 {
        (x + x * self.eval(x)) / 2.0
    }

    /// Lee et al.'s max `m_α(a, b) = ((a + b) + (a − b)·p_α(a − b))/2`, for `a, b ∈ [0, 1]`.
    pub fn max(&self, a: f64, b: f64) -> f64 {
        ((a + b) + (a - b) * self.eval(a - b)) / 2.0
    }

    /// The maximum of `values` (in `[0, 1]`) by Lee et al.'s recursion: split into halves
    /// `⌊n/2⌋` and `⌈n/2⌉`, combine with [`SignComposite::max`]; error at most
    /// `⌈log₂ n⌉·2^−α` on their shrunken input range. `None` for no values.
    pub fn max_of(&self, values: &[f64]) -> Option<f64> {
        match values.len() {
            0 => None,
            1 => Some(values[0]),
            n => {
                let (lo, hi) = values.split_at(n / 2);
                Some(self.max(self.max_of(lo)?, self.max_of(hi)?))
            }
        }
    }

    /// The degree of `r_α` as one polynomial: `Π degrees + 1`.
    pub fn relu_degree(&self) -> u64 {
        self.degrees.iter().map(|&d| u64::from(d)).product::<u64>() + 1
    }

    /// `r_α(x) = (x + x·p_α(x))/2` expanded into one monomial polynomial (f64 composition),
    /// when its degree is at most [`MAX_DEGREE`] (α = 4, 5, 6); an error otherwise.
    pub fn relu_polynomial(&self) -> Result<Vec<f64>, ApproxError> {
        let degree = self.relu_degree();
        if degree > u64::from(MAX_DEGREE) {
            return Err(ApproxError::Degree {
                kind: "lee_relu (expanded composite)",
                degree: u32::try_from(degree).unwrap_or(u32::MAX),
                min: 1,
                max: MAX_DEGREE,
            });
        }
        let mut p = vec![0.0, 1.0];
        for part in &self.parts {
            p = expand_composition(part, &p);
        }
        let mut out = vec![0.0; p.len() + 1];
        out[1] = 0.5;
        for (k, &c) in p.iter().enumerate() {
            out[k + 1] += c / 2.0;
        }
        Ok(out)
    }
}

#[derive(Deserialize)]
struct SignFile {
    presets: Vec<SignEntry>,
}

#[derive(Deserialize)]
struct SignEntry {
    alpha: u32,
    zeta: f64,
    epsilon: f64,
    degrees: Vec<u32>,
    max_error: f64,
    parts: Vec<SignPart>,
}

#[derive(Deserialize)]
struct SignPart {
    coefficients: Vec<String>,
}

fn sign_file() -> Result<SignFile, ApproxError> {
    serde_json::from_str(SIGN_JSON).map_err(|e| ApproxError::Embedded {
        file: "sign_minimax.json",
        reason: e.to_string(),
    })
}

/// The precisions α with a sign preset (4..=14).
pub fn sign_alphas() -> Result<Vec<u32>, ApproxError> {
    Ok(sign_file()?.presets.iter().map(|p| p.alpha).collect())
}

/// The composite minimax approximation of `sgn` for precision `alpha` (Lee et al.'s Table 1,
/// α = 4..=14), from the embedded `circuits/presets/sign_minimax.json`. Coefficients are
/// parsed from their 30-digit decimal strings (correctly rounded to f64).
pub fn sign_composite(alpha: u32) -> Result<SignComposite, ApproxError> {
    const FILE: &str = "sign_minimax.json";
    let file = sign_file()?;
    let available = file
        .presets
        .iter()
        .map(|p| p.alpha.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let entry = file
        .presets
        .into_iter()
        .find(|p| p.alpha == alpha)
        .ok_or(ApproxError::UnknownAlpha { alpha, available })?;
    let parts = entry
        .parts
        .iter()
        .map(|p| {
            p.coefficients
                .iter()
                .map(|s| parse_decimal(FILE, s))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SignComposite {
        alpha: entry.alpha,
        zeta: entry.zeta,
        epsilon: entry.epsilon,
        degrees: entry.degrees,
        parts,
        max_error: entry.max_error,
    })
}

// ---------------------------------------------------------------------------------------------
// Named presets

const FAMILIES: [&str; 6] = [
    "chebyshev",
    "lsq",
    "minimax",
    "taylor",
    "exp_taylor",
    "lee_relu",
];

fn valid_patterns() -> String {
    let lee = lee_relu_alphas()
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("|");
    format!(
        "square, square_plus_x, faster_cryptonets, chebyshev:<d>, lsq:<d>, minimax:<d>, \
         taylor:<d>, exp_taylor:<d> (d in 1..={MAX_DEGREE}), lee_relu:<{lee}>"
    )
}

/// The α whose expanded ReLU `r_α` has degree at most [`MAX_DEGREE`].
fn lee_relu_alphas() -> Vec<u32> {
    let Ok(file) = sign_file() else {
        return Vec::new();
    };
    file.presets
        .iter()
        .filter(|p| {
            p.degrees.iter().map(|&d| u64::from(d)).product::<u64>() < u64::from(MAX_DEGREE)
        })
        .map(|p| p.alpha)
        .collect()
}

/// Every valid preset name, e.g. `square`, `chebyshev:8`, `lee_relu:6`.
pub fn preset_names() -> Vec<String> {
    let mut names: Vec<String> = ["square", "square_plus_x", "faster_cryptonets"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for family in &FAMILIES[..5] {
        names.extend((1..=MAX_DEGREE).map(|d| format!("{family}:{d}")));
    }
    names.extend(lee_relu_alphas().iter().map(|a| format!("lee_relu:{a}")));
    names
}

/// The polynomial (monomial coefficients, ascending) of a named preset; see the table in the
/// module documentation. An unknown name, a malformed or out-of-range parameter is an error
/// listing the valid names.
pub fn preset(name: &str) -> Result<Vec<f64>, ApproxError> {
    let unknown = |reason: String| ApproxError::UnknownPreset {
        name: name.to_string(),
        reason,
        valid: valid_patterns(),
    };
    match name {
        "square" => return Ok(vec![0.0, 0.0, 1.0]),
        "square_plus_x" => return Ok(vec![0.0, 1.0, 1.0]),
        "faster_cryptonets" => return Ok(vec![0.25, 0.5, 0.125]),
        _ => {}
    }
    let Some((family, param)) = name.split_once(':') else {
        return Err(unknown("not a preset name".to_string()));
    };
    if !FAMILIES.contains(&family) {
        return Err(unknown(format!("unknown family `{family}`")));
    }
    let n: u32 = param
        .parse()
        .map_err(|_| unknown(format!("`{param}` is not a non-negative integer")))?;
    let result = match family {
        "chebyshev" => relu_chebyshev(n),
        "lsq" => relu_least_squares(n),
        "minimax" => relu_minimax(n),
        "taylor" => relu_taylor(n),
        "exp_taylor" => exp_taylor(n),
        _ => sign_composite(n).and_then(|s| s.relu_polynomial()),
    };
    result.map_err(|e| match e {
        ApproxError::Embedded { .. } | ApproxError::Overflow(_) => e,
        other => unknown(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_arithmetic_is_exact_and_reduced() {
        let a = Ratio::new(6, -8).unwrap();
        assert_eq!(a, Ratio { num: -3, den: 4 });
        let b = Ratio::new(1, 6).unwrap();
        assert_eq!(a.add(b).unwrap(), Ratio::new(-7, 12).unwrap());
        assert_eq!(a.mul(b).unwrap(), Ratio::new(-1, 8).unwrap());
        assert!(Ratio::new(1, 0).is_none());
        assert!(Ratio::int(i128::MAX).add(Ratio::int(1)).is_none());
    }

    #[test]
    fn chebyshev_and_legendre_polynomials() {
        let t = chebyshev_t(31).unwrap();
        // T_n(cos θ) = cos(nθ)
        for (n, tn) in t.iter().enumerate() {
            let th = 0.7f64;
            let v: f64 = tn
                .iter()
                .enumerate()
                .map(|(j, &c)| c as f64 * th.cos().powi(j as i32))
                .sum();
            assert!((v - (n as f64 * th).cos()).abs() < 1e-6, "T_{n}");
            assert_eq!(
                *tn.last().unwrap(),
                if n == 0 { 1 } else { 1i128 << (n - 1) }
            );
        }
        let p = legendre_p(31).unwrap();
        for (n, pn) in p.iter().enumerate() {
            // P_n(1) = 1 exactly, P_n(−1) = (−1)^n.
            let at1 = pn.iter().fold(Ratio::ZERO, |s, &c| s.add(c).unwrap());
            assert_eq!(at1, Ratio::int(1), "P_{n}(1)");
            let atm1 = pn.iter().enumerate().fold(Ratio::ZERO, |s, (j, &c)| {
                s.add(c.mul(Ratio::int(if j % 2 == 0 { 1 } else { -1 })).unwrap())
                    .unwrap()
            });
            assert_eq!(atm1, Ratio::int(if n % 2 == 0 { 1 } else { -1 }));
        }
        assert_eq!(
            p[2],
            vec![
                Ratio::new(-1, 2).unwrap(),
                Ratio::ZERO,
                Ratio::new(3, 2).unwrap()
            ]
        );
    }

    #[test]
    fn horner_compose_and_expansion() {
        let p = [1.0, -2.0, 3.0]; // 3x² − 2x + 1
        assert_eq!(eval(&p, 2.0), 9.0);
        assert_eq!(eval(&[], 2.0), 0.0);
        let q = [0.0, 2.0]; // 2x
        assert_eq!(compose(&[q.to_vec(), p.to_vec()], 1.5), eval(&p, 3.0));
        let e = expand_composition(&p, &[1.0, 1.0]); // p(x + 1) = 3x² + 4x + 2
        assert_eq!(e, vec![2.0, 4.0, 3.0]);
    }

    #[test]
    fn names_parse() {
        assert!(preset("chebyshev:8").is_ok());
        for bad in [
            "chebyshev",
            "chebyshev:",
            "chebyshev:-1",
            "chebyshev:x",
            "cubic:3",
            "relu",
        ] {
            let e = preset(bad).unwrap_err();
            assert!(matches!(e, ApproxError::UnknownPreset { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("square_plus_x"), "{e}");
        }
    }
}
