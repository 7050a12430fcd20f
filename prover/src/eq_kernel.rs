//! The activation layer's sumcheck, `Σ_x eq(r, x)·(a·X(x)² + b·X(x))`, with the eq factor taken
//! out of the round polynomial.
//!
//! Binding the highest free variable `x_k` of `eq(r, x) = Π_j eq₁(r_j, x_j)` splits the round
//! polynomial as `g(t) = s·eq₁(r_k, t)·h(t)`, where `s` is the product of the eq factors of the
//! variables already bound and `h(t) = Σ_y E_k(y)·P(X(y, t))` is only quadratic, with
//! `E_k = eq(r_0..r_{k−1}, ·)`. The prover therefore needs `h(0)` and the leading coefficient of
//! `h`; `h(1)` follows from the running claim, `c/s = (1 − r_k)·h(0) + r_k·h(1)`. That is five
//! multiplications per pair instead of the generic kernel's twenty, and `E_{k−1}` comes from
//! `E_k` by additions alone (summing out one variable of an eq table gives 1). The messages are
//! exactly those of the generic kernel: only the prover's arithmetic changes.

use crate::sumcheck::RoundProver;
use ark_ff::Field;
use rayon::prelude::*;
use verinfer_circuits::mle::{self, PAR_THRESHOLD};

/// Prover of `Σ_x eq(r, x)·(a·X(x)² + b·X(x)) = claim` (degree 3). Its finals are
/// `[eq(r, ρ), X̃(ρ)]`, like a product-sum kernel over the tables `[eq(r,·), X]`.
#[derive(Clone, Debug)]
pub struct EqQuadProver<F> {
    r: Vec<F>,
    x: Vec<F>,
    e: Vec<F>,
    a: F,
    b: F,
    /// The running claim divided by `scale`.
    reduced: F,
    /// Product of `eq₁(r_j, ρ_j)` over the bound variables.
    scale: F,
    /// `(h(0), h(1), h(∞))` of the last round.
    h: (F, F, F),
    /// Index of the variable the next round binds.
    k: usize,
}

impl<F: Field> EqQuadProver<F> {
    /// The instance for the point `r` (one coordinate per variable of `x`), the table `x`, the
    /// coefficients and the claimed sum.
    pub fn new(r: &[F], x: Vec<F>, a: F, b: F, claim: F) -> Self {
        assert_eq!(x.len(), 1 << r.len(), "table and point differ in size");
        let k = r.len().saturating_sub(1);
        let e = mle::eq_table(&r[..k]);
        EqQuadProver {
            r: r.to_vec(),
            x,
            e,
            a,
            b,
            reduced: claim,
            scale: F::one(),
            h: (F::zero(), F::zero(), F::zero()),
            k,
        }
    }

    fn h_at(&self, t: F) -> F {
        let (h0, h1, hi) = self.h;
        h0 + (h1 - h0 - hi) * t + hi * t * t
    }
}

/// `eq₁(r, t) = (1 − r)(1 − t) + r·t`.
pub(crate) fn eq1<F: Field>(r: F, t: F) -> F {
    (F::one() - r) * (F::one() - t) + r * t
}

/// The last step of an eq-factored kernel: binds the last variable of `x` to `last` and
/// returns the finals `[eq(r, ρ), X̃(ρ)]` (`r0` the point's first coordinate).
pub(crate) fn finish_eq<F: Field>(x: &mut Vec<F>, scale: &mut F, r0: F, last: Option<F>) -> Vec<F> {
    if let Some(rho) = last {
        mle::fold_in_place(x, rho);
        *scale *= eq1(r0, rho);
    }
    vec![*scale, x[0]]
}

/// Sums `(Σ E·X0², Σ E·X0, Σ E·(X1 − X0)²)` over pairs.
#[inline]
fn pair_sums<F: Field>(e: &[F], x0: &[F], x1: &[F]) -> [F; 3] {
    let mut s = [F::zero(); 3];
    for i in 0..e.len() {
        let (ei, a, d) = (e[i], x0[i], x1[i] - x0[i]);
        let ea = ei * a;
        s[0] += ea * a;
        s[1] += ea;
        s[2] += ei * d.square();
    }
    s
}

/// Folds quarters `(q0, q2) → q0`, `(q1, q3) → q1` with `rho`, halves `e` (`e0 += e1`) and
/// returns the pair sums of the folded pairs `(q0[i], q1[i])`.
#[inline]
#[allow(clippy::too_many_arguments)]
fn fused<F: Field>(
    e0: &mut [F],
    e1: &[F],
    q0: &mut [F],
    q1: &mut [F],
    q2: &[F],
    q3: &[F],
    rho: F,
) -> [F; 3] {
    let mut s = [F::zero(); 3];
    for i in 0..e0.len() {
        let ei = e0[i] + e1[i];
        e0[i] = ei;
        let lo = q0[i] + rho * (q2[i] - q0[i]);
        let hi = q1[i] + rho * (q3[i] - q1[i]);
        q0[i] = lo;
        q1[i] = hi;
        let ea = ei * lo;
        s[0] += ea * lo;
        s[1] += ea;
        s[2] += ei * (hi - lo).square();
    }
    s
}

const CHUNK: usize = 1 << 11;

fn add3<F: Field>(x: [F; 3], y: [F; 3]) -> [F; 3] {
    [x[0] + y[0], x[1] + y[1], x[2] + y[2]]
}

impl<F: Field> RoundProver<F> for EqQuadProver<F> {
    fn num_vars(&self) -> usize {
        self.r.len()
    }

    fn degree(&self) -> usize {
        3
    }

    fn fold_and_round(&mut self, prev: Option<F>) -> Vec<F> {
        let sums = match prev {
            None => {
                let q = self.x.len() / 2;
                let (x0, x1) = self.x.split_at(q);
                if q >= PAR_THRESHOLD {
                    self.e
                        .par_chunks(CHUNK)
                        .zip(x0.par_chunks(CHUNK).zip(x1.par_chunks(CHUNK)))
                        .map(|(e, (a, b))| pair_sums(e, a, b))
                        .reduce(|| [F::zero(); 3], add3)
                } else {
                    pair_sums(&self.e, x0, x1)
                }
            }
            Some(rho) => {
                // The previous round bound variable k+1 to rho.
                self.reduced = self.h_at(rho);
                self.scale *= eq1(self.r[self.k + 1], rho);
                let q = self.x.len() / 4;
                let (x01, x23) = self.x.split_at_mut(2 * q);
                let (q0, q1) = x01.split_at_mut(q);
                let (q2, q3) = x23.split_at(q);
                let (e0, e1) = self.e.split_at_mut(q);
                let s = if q >= PAR_THRESHOLD {
                    e0.par_chunks_mut(CHUNK)
                        .zip(e1.par_chunks(CHUNK))
                        .zip(q0.par_chunks_mut(CHUNK).zip(q1.par_chunks_mut(CHUNK)))
                        .zip(q2.par_chunks(CHUNK).zip(q3.par_chunks(CHUNK)))
                        .map(|(((e0, e1), (q0, q1)), (q2, q3))| fused(e0, e1, q0, q1, q2, q3, rho))
                        .reduce(|| [F::zero(); 3], add3)
                } else {
                    fused(e0, e1, q0, q1, q2, q3, rho)
                };
                self.x.truncate(2 * q);
                self.e.truncate(q);
                s
            }
        };
        let rk = self.r[self.k];
        let h0 = self.a * sums[0] + self.b * sums[1];
        let hi = self.a * sums[2];
        let h1 = match rk.inverse() {
            Some(inv) => (self.reduced - (F::one() - rk) * h0) * inv,
            None => {
                // r_k = 0: the claim says nothing about h(1); compute it directly.
                let q = self.x.len() / 2;
                let (e, x1) = (&self.e, &self.x[q..]);
                let s = pair_sums(e, x1, x1);
                self.a * s[0] + self.b * s[1]
            }
        };
        self.h = (h0, h1, hi);
        if self.k > 0 {
            self.k -= 1;
        }
        let two = F::from(2u64);
        let three = F::from(3u64);
        vec![
            self.scale * (F::one() - rk) * h0,
            self.scale * eq1(rk, two) * self.h_at(two),
            self.scale * eq1(rk, three) * self.h_at(three),
        ]
    }

    fn finish(&mut self, last: Option<F>) -> Vec<F> {
        finish_eq(&mut self.x, &mut self.scale, self.r[0], last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sumcheck::{prove, ProductSumProver};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use verinfer_circuits::field::{Bn254, ProofField, M127};
    use verinfer_verifier::Transcript;

    fn same_as_generic<F: ProofField>(n: usize, seed: u64, zero_coord: bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut r: Vec<F> = (0..n).map(|_| F::rand(&mut rng)).collect();
        if zero_coord && n > 1 {
            r[n / 2] = F::zero();
        }
        let x: Vec<F> = (0..1 << n).map(|_| F::rand(&mut rng)).collect();
        let (a, b) = (F::rand(&mut rng), F::rand(&mut rng));
        let eq = mle::eq_table(&r);
        let claim: F = eq
            .iter()
            .zip(&x)
            .map(|(e, v)| *e * (a * v * v + b * v))
            .sum();
        let t = || Transcript::new::<F>(&[1u8; 32], &[], &[]);
        let mut generic = ProductSumProver::new(
            vec![eq, x.clone()],
            vec![(a, vec![0, 1, 1]), (b, vec![0, 1])],
        );
        let want = prove(&mut generic, claim, &mut t());
        let mut fast = EqQuadProver::new(&r, x, a, b, claim);
        let got = prove(&mut fast, claim, &mut t());
        assert_eq!(got.proof, want.proof, "n = {n}");
        assert_eq!(got.point, want.point);
        assert_eq!(got.finals, want.finals);
    }

    #[test]
    fn matches_the_generic_kernel() {
        for n in [1, 2, 3, 6, 15] {
            same_as_generic::<M127>(n, n as u64, false);
            same_as_generic::<Bn254>(n.min(9), n as u64, false);
        }
        same_as_generic::<M127>(7, 99, true);
    }
}
