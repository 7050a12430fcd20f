//! Sumcheck verification.
//!
//! The claim is `Σ_{x ∈ {0,1}^n} f(x) = c` for a polynomial `f` of degree at most `d` in each
//! variable. Round `j` binds variable `x_{n−1−j}` (the highest free one, see `mle`'s convention):
//! the prover sends `g_j` at `0, 2, …, d`, the verifier sets `g_j(1) = c_j − g_j(0)`, absorbs the
//! message, draws `r_j` and continues with `c_{j+1} = g_j(r_j)`. What remains is a claim
//! `f(r) = c_n` that the caller must discharge; it is returned as a [`SumcheckClaim`] so that it
//! cannot be forgotten silently. A false initial claim survives with probability at most `n·d/|F|`.
//!
//! Transcript order (shared with the prover's driver): the claimed sum, then for every round the
//! round message followed by its challenge.

use crate::proof::SumcheckProof;
use crate::transcript::label;
use crate::transcript::Transcript;
use crate::VerifyError;
use ark_ff::Field;
use verinfer_circuits::field::ProofField;

/// The claim a sumcheck reduces to: `f(point) = value`, with `point` in index-bit order
/// (`point[k]` is the value of `x_k`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a sumcheck is only sound once its final claim is checked"]
pub struct SumcheckClaim<F> {
    /// The random point the sum was reduced to.
    pub point: Vec<F>,
    /// The value the prover's polynomial must take there.
    pub value: F,
}

/// Evaluation of polynomials given by their values on the nodes `0, 1, …, d`.
///
/// The barycentric weights `w_i = 1/Π_{j≠i}(i − j) = (−1)^{d−i}/(i!(d−i)!)` depend only on `d`,
/// so they cost one inversion when the interpolator is built and none per round.
#[derive(Clone, Debug)]
pub struct Lagrange<F> {
    weights: Vec<F>,
}

impl<F: Field> Lagrange<F> {
    /// Weights for degree `d` (the format caps it at 32, whose binomials fit `u64`).
    pub fn new(d: usize) -> Self {
        let mut fact = vec![F::one(); d + 1];
        for k in 1..=d {
            fact[k] = fact[k - 1] * F::from(k as u64);
        }
        let inv_d = fact[d].inverse().unwrap_or_default();
        // 1/(i!(d−i)!) = C(d, i)/d!
        let mut binom: u64 = 1;
        let weights = (0..=d)
            .map(|i| {
                let w = F::from(binom) * inv_d;
                binom = binom * (d - i) as u64 / (i + 1) as u64;
                if (d - i) % 2 == 0 {
                    w
                } else {
                    -w
                }
            })
            .collect();
        Lagrange { weights }
    }

    /// `g(r)` for the polynomial with `g(i) = evals[i]`, `i = 0..=d`; O(d) multiplications.
    pub fn eval(&self, evals: &[F], r: F) -> F {
        let d = self.weights.len() - 1;
        debug_assert_eq!(evals.len(), d + 1);
        // g(r) = Σ_i evals[i]·w_i·Π_{j≠i}(r − j), with prefix and suffix products of (r − j).
        let diffs: Vec<F> = (0..=d).map(|j| r - F::from(j as u64)).collect();
        let mut suffix = vec![F::one(); d + 2];
        for j in (0..=d).rev() {
            suffix[j] = suffix[j + 1] * diffs[j];
        }
        let mut prefix = F::one();
        let mut acc = F::zero();
        for i in 0..=d {
            acc += evals[i] * self.weights[i] * prefix * suffix[i + 1];
            prefix *= diffs[i];
        }
        acc
    }
}

/// Interpolates a polynomial of degree `evals.len() − 1` given on `0, 1, …, d` and evaluates it at
/// `r` (one-off use; [`Lagrange`] amortises the weights).
pub fn interpolate_at<F: Field>(evals: &[F], r: F) -> F {
    Lagrange::new(evals.len().saturating_sub(1)).eval(evals, r)
}

/// Checks a sumcheck proof of `Σ f = claim` over `num_vars` variables with round degree
/// `degree`, and returns the claim `f(point) = value` it reduces to.
pub fn verify<F: ProofField>(
    proof: &SumcheckProof<F>,
    claim: F,
    num_vars: usize,
    degree: usize,
    transcript: &mut Transcript,
) -> Result<SumcheckClaim<F>, VerifyError> {
    // Degree 0 sends nothing per round, and large degrees are outside the format: refuse both
    // before indexing anything.
    if degree == 0
        || degree > crate::proof::MAX_DEGREE
        || proof.degree != degree
        || proof.rounds.len() != num_vars
    {
        return Err(VerifyError::ProofShape(format!(
            "sumcheck has {} rounds of degree {}, expected {num_vars} of degree {degree}",
            proof.rounds.len(),
            proof.degree
        )));
    }
    transcript.append_scalar(label::SUMCHECK_CLAIM, &claim);
    let mut current = claim;
    let mut challenges = Vec::with_capacity(num_vars);
    let mut evals = vec![F::zero(); degree + 1];
    let lagrange = Lagrange::new(degree);
    for round in &proof.rounds {
        if round.len() != degree {
            return Err(VerifyError::ProofShape(format!(
                "sumcheck round has {} values, expected {degree}",
                round.len()
            )));
        }
        transcript.append_scalars(label::SUMCHECK_ROUND, round);
        let r: F = transcript.challenge(label::SUMCHECK_CHALLENGE);
        evals[0] = round[0];
        evals[1] = current - round[0];
        evals[2..].copy_from_slice(&round[1..]);
        current = lagrange.eval(&evals, r);
        challenges.push(r);
    }
    challenges.reverse();
    Ok(SumcheckClaim {
        point: challenges,
        value: current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use verinfer_circuits::field::M127;

    #[test]
    fn degenerate_degrees_are_errors_not_panics() {
        let bad = SumcheckProof {
            degree: 0,
            rounds: vec![vec![]],
        };
        let mut t = Transcript::new::<M127>(&[0; 32], &[], &[]);
        assert!(verify(&bad, M127::from(1u64), 1, 0, &mut t).is_err());
        let big = SumcheckProof {
            degree: 100,
            rounds: vec![vec![M127::from(0u64); 100]],
        };
        assert!(verify(&big, M127::from(1u64), 1, 100, &mut t).is_err());
    }

    #[test]
    fn interpolation_matches_direct_evaluation() {
        // g(t) = 3t^3 − 2t^2 + 5t − 7
        let g = |t: M127| {
            M127::from(3u64) * t * t * t - M127::from(2u64) * t * t + M127::from(5u64) * t
                - M127::from(7u64)
        };
        for d in 3..6 {
            let evals: Vec<M127> = (0..=d).map(|i| g(M127::from(i as u64))).collect();
            for r in [0u64, 1, 2, 3, 17, 123456789] {
                let r = M127::from(r);
                assert_eq!(interpolate_at(&evals, r), g(r), "degree {d}");
            }
        }
        let lin = [M127::from(4u64), M127::from(9u64)];
        assert_eq!(interpolate_at(&lin, M127::from(10u64)), M127::from(54u64));
    }
}
