//! The sumcheck of a polynomial activation of any degree,
//! `Σ_x eq(r, x)·p(X(x))` with `p(v) = Σ_k c_k·v^k` of degree `d` (round degree `d + 1`), with
//! the eq factor taken out of each round as in [`crate::eq_kernel`]: the round polynomial is
//! `g(t) = s·eq₁(r_k, t)·h(t)` where `h(t) = Σ_y E_k(y)·p(X(y, t))` has degree `d`. The prover
//! evaluates `h` at `0, 2, 3, …, d` (Horner, `d` multiplications per point and pair), takes
//! `h(1)` from the running claim and extrapolates `h(d + 1)`. It is the building block of the
//! activations-beyond-quadratics issue; the activation layer itself still uses the degree-2
//! kernel of `eq_kernel`.

use crate::eq_kernel::{eq1, finish_eq};
use crate::sumcheck::RoundProver;
use ark_ff::Field;
use rayon::prelude::*;
use verinfer_circuits::mle::{self, PAR_THRESHOLD};
use verinfer_verifier::sumcheck::Lagrange;

/// Prover of `Σ_x eq(r, x)·p(X(x)) = claim` (round degree `d + 1`). Its finals are
/// `[eq(r, ρ), X̃(ρ)]`.
#[derive(Clone, Debug)]
pub struct EqPolyProver<F> {
    r: Vec<F>,
    x: Vec<F>,
    e: Vec<F>,
    /// `c_0, …, c_d`.
    coeffs: Vec<F>,
    /// The running claim divided by `scale`.
    reduced: F,
    /// Product of `eq₁(r_j, ρ_j)` over the bound variables.
    scale: F,
    /// `h(0), …, h(d)` of the last round.
    h: Vec<F>,
    lagrange: Lagrange<F>,
    /// Index of the variable the next round binds.
    k: usize,
}

impl<F: Field> EqPolyProver<F> {
    /// The instance for the point `r` (one coordinate per variable of `x`), the table `x`, the
    /// coefficients `c_0, …, c_d` (`d ≥ 1`) and the claimed sum.
    pub fn new(r: &[F], x: Vec<F>, coeffs: Vec<F>, claim: F) -> Self {
        assert_eq!(x.len(), 1 << r.len(), "table and point differ in size");
        assert!(coeffs.len() >= 2, "a polynomial of degree at least 1");
        let d = coeffs.len() - 1;
        let k = r.len().saturating_sub(1);
        EqPolyProver {
            r: r.to_vec(),
            e: mle::eq_table(&r[..k]),
            x,
            coeffs,
            reduced: claim,
            scale: F::one(),
            h: vec![F::zero(); d + 1],
            lagrange: Lagrange::new(d),
            k,
        }
    }

    fn degree_p(&self) -> usize {
        self.coeffs.len() - 1
    }

    /// `[Σ E·p(x0 + t·(x1 − x0)) for t = 0, 2, 3, …, d]` over the pairs of the current halves.
    fn sums(&self, x0: &[F], x1: &[F]) -> Vec<F> {
        let d = self.degree_p();
        let ts: Vec<F> = std::iter::once(0)
            .chain(2..=d as u64)
            .map(F::from)
            .collect();
        let p = |v: F| {
            self.coeffs
                .iter()
                .rev()
                .fold(F::zero(), |acc, c| acc * v + c)
        };
        let chunk = |e: &[F], a: &[F], b: &[F]| {
            let mut s = vec![F::zero(); ts.len()];
            for i in 0..e.len() {
                let (lo, diff) = (a[i], b[i] - a[i]);
                for (sj, t) in s.iter_mut().zip(&ts) {
                    *sj += e[i] * p(lo + *t * diff);
                }
            }
            s
        };
        const CHUNK: usize = 1 << 10;
        if x0.len() >= PAR_THRESHOLD {
            self.e
                .par_chunks(CHUNK)
                .zip(x0.par_chunks(CHUNK).zip(x1.par_chunks(CHUNK)))
                .map(|(e, (a, b))| chunk(e, a, b))
                .reduce(
                    || vec![F::zero(); ts.len()],
                    |u, v| u.iter().zip(&v).map(|(a, b)| *a + b).collect(),
                )
        } else {
            chunk(&self.e, x0, x1)
        }
    }
}

impl<F: Field> RoundProver<F> for EqPolyProver<F> {
    fn num_vars(&self) -> usize {
        self.r.len()
    }

    fn degree(&self) -> usize {
        self.degree_p() + 1
    }

    fn fold_and_round(&mut self, prev: Option<F>) -> Vec<F> {
        if let Some(rho) = prev {
            // The previous round bound variable k + 1 to rho.
            self.reduced = self.lagrange.eval(&self.h, rho);
            self.scale *= eq1(self.r[self.k + 1], rho);
            mle::fold_in_place(&mut self.x, rho);
            let q = self.e.len() / 2;
            let (e0, e1) = self.e.split_at_mut(q);
            e0.iter_mut().zip(e1.iter()).for_each(|(a, b)| *a += b);
            self.e.truncate(q);
        }
        let d = self.degree_p();
        let q = self.x.len() / 2;
        let s = self.sums(&self.x[..q], &self.x[q..]);
        let rk = self.r[self.k];
        let h0 = s[0];
        let h1 = match rk.inverse() {
            Some(inv) => (self.reduced - (F::one() - rk) * h0) * inv,
            // r_k = 0: the claim says nothing about h(1); compute it directly.
            None => {
                let x1 = &self.x[q..];
                let p = |v: F| {
                    self.coeffs
                        .iter()
                        .rev()
                        .fold(F::zero(), |acc, c| acc * v + c)
                };
                self.e.iter().zip(x1).map(|(e, v)| *e * p(*v)).sum()
            }
        };
        self.h[0] = h0;
        self.h[1] = h1;
        self.h[2..].copy_from_slice(&s[1..]);
        if self.k > 0 {
            self.k -= 1;
        }
        let mut msg = Vec::with_capacity(d + 1);
        msg.push(self.scale * (F::one() - rk) * h0);
        for t in 2..=d + 1 {
            let tf = F::from(t as u64);
            let ht = if t <= d {
                self.h[t]
            } else {
                self.lagrange.eval(&self.h, tf)
            };
            msg.push(self.scale * eq1(rk, tf) * ht);
        }
        msg
    }

    fn finish(&mut self, last: Option<F>) -> Vec<F> {
        finish_eq(&mut self.x, &mut self.scale, self.r[0], last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eq_kernel::EqQuadProver;
    use crate::sumcheck::prove;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use verinfer_circuits::field::{Bn254, ProofField, M127};
    use verinfer_verifier::{sumcheck, Transcript};

    fn t<F: ProofField>() -> Transcript {
        Transcript::new::<F>(&[7u8; 32], &[], &[])
    }

    fn instance<F: ProofField>(n: usize, d: usize, seed: u64) -> (Vec<F>, Vec<F>, Vec<F>, F) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let r: Vec<F> = (0..n).map(|_| F::rand(&mut rng)).collect();
        let x: Vec<F> = (0..1 << n).map(|_| F::rand(&mut rng)).collect();
        let c: Vec<F> = (0..=d).map(|_| F::rand(&mut rng)).collect();
        let p = |v: F| c.iter().rev().fold(F::zero(), |acc, k| acc * v + k);
        let claim = mle::eq_table(&r)
            .iter()
            .zip(&x)
            .map(|(e, v)| *e * p(*v))
            .sum();
        (r, x, c, claim)
    }

    /// The verifier accepts the honest proof and its final claim is `eq(r, ρ)·p(X̃(ρ))`; a
    /// claimed sum off by one ends on a value that is not.
    fn proves_and_verifies<F: ProofField>(n: usize, d: usize, seed: u64) {
        let (r, x, c, claim) = instance::<F>(n, d, seed);
        let p = |v: F| c.iter().rev().fold(F::zero(), |acc, k| acc * v + k);
        for (lie, claimed) in [(false, claim), (true, claim + F::one())] {
            let mut prover = EqPolyProver::new(&r, x.clone(), c.clone(), claimed);
            let out = prove(&mut prover, claimed, &mut t::<F>());
            assert_eq!(out.finals[0], mle::eq_eval(&r, &out.point));
            assert_eq!(out.finals[1], mle::evaluate(&x, &out.point));
            let sc = sumcheck::verify(&out.proof, claimed, n, d + 1, &mut t::<F>()).unwrap();
            assert_eq!(sc.point, out.point);
            let relation = mle::eq_eval(&r, &sc.point) * p(mle::evaluate(&x, &sc.point));
            assert_eq!(sc.value == relation, !lie, "n {n}, d {d}, lie {lie}");
        }
    }

    #[test]
    fn any_degree_proves_and_verifies() {
        // Round degree d + 1 up to the proof format's MAX_DEGREE (32).
        for (n, d) in [
            (1, 1),
            (1, 4),
            (2, 2),
            (3, 3),
            (5, 8),
            (6, 5),
            (12, 3),
            (4, 31),
        ] {
            proves_and_verifies::<M127>(n, d, (n * 31 + d) as u64);
        }
        proves_and_verifies::<Bn254>(5, 7, 3);
    }

    #[test]
    fn degree_two_is_the_activation_kernel() {
        // a·X² + b·X with c_0 = 0: the same messages as the specialised degree-2 kernel.
        let (r, x, mut c, _) = instance::<M127>(7, 2, 5);
        c[0] = M127::from(0u64);
        let claim = mle::eq_table(&r)
            .iter()
            .zip(&x)
            .map(|(e, v)| *e * (c[2] * v * v + c[1] * v))
            .sum();
        let mut quad = EqQuadProver::new(&r, x.clone(), c[2], c[1], claim);
        let want = prove(&mut quad, claim, &mut t::<M127>());
        let mut poly = EqPolyProver::new(&r, x, c, claim);
        let got = prove(&mut poly, claim, &mut t::<M127>());
        assert_eq!(got.proof, want.proof);
        assert_eq!(got.finals, want.finals);
    }
}
