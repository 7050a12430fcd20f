//! Multilinear extensions of tables over the Boolean hypercube.
//!
//! Convention used everywhere in verinfer: a table `t` of length 2^n is the multilinear
//! polynomial `t̃(x_0, …, x_{n−1})` with `t̃(bits of i) = t[i]`, where variable `x_k` is bit `k` of
//! the index (little-endian). A point is a slice `r` with `r[k]` the value of `x_k`.
//! Folding binds the **highest** variable first, so in-place folding touches the two contiguous
//! halves of the table; a sumcheck therefore draws its challenges for `x_{n−1}, …, x_0` in that
//! order.
//!
//! With the `parallel` feature, routines split work across rayon threads once a table is at
//! least [`PAR_THRESHOLD`] entries, and run serially below it (the verifier's tables are small and
//! its build has no threads).

use ark_ff::Field;

/// Table size from which the toolkit uses rayon.
pub const PAR_THRESHOLD: usize = 1 << 13;

/// Number of variables of a table of length `len` (which must be a power of two).
pub fn num_vars(len: usize) -> usize {
    debug_assert!(len.is_power_of_two());
    len.trailing_zeros() as usize
}

/// `eq(r, x) = Π_k (r_k x_k + (1 − r_k)(1 − x_k))` for Boolean `x` given as index bits.
pub fn eq_eval<F: Field>(r: &[F], x: &[F]) -> F {
    debug_assert_eq!(r.len(), x.len());
    r.iter().zip(x).fold(F::one(), |acc, (&a, &b)| {
        let ab = a * b;
        acc * (ab + ab - a - b + F::one())
    })
}

/// The table of `eq(r, ·)` over all 2^n Boolean points, scaled by `scale`.
/// One multiplication per entry.
pub fn eq_table_scaled<F: Field>(r: &[F], scale: F) -> Vec<F> {
    let mut t = vec![F::zero(); 1 << r.len()];
    t[0] = scale;
    let mut size = 1;
    for &rk in r {
        let (lo, hi) = t[..2 * size].split_at_mut(size);
        expand(lo, hi, rk);
        size *= 2;
    }
    t
}

/// The table of `eq(r, ·)` over all 2^n Boolean points.
pub fn eq_table<F: Field>(r: &[F]) -> Vec<F> {
    eq_table_scaled(r, F::one())
}

/// `Σ_i coeff_i · eq(point_i, ·)`: the table that combines several claims on one MLE.
pub fn eq_table_combined<F: Field>(points: &[(F, &[F])]) -> Vec<F> {
    let mut acc: Option<Vec<F>> = None;
    for &(c, p) in points {
        let t = eq_table_scaled(p, c);
        match acc.as_mut() {
            None => acc = Some(t),
            Some(a) => add_assign(a, &t),
        }
    }
    acc.unwrap_or_else(|| vec![F::zero()])
}

/// `hi[i] = lo[i]·r; lo[i] -= hi[i]`: the doubling step of an eq table.
fn expand<F: Field>(lo: &mut [F], hi: &mut [F], r: F) {
    #[cfg(feature = "parallel")]
    if lo.len() >= PAR_THRESHOLD {
        use rayon::prelude::*;
        lo.par_iter_mut().zip(hi.par_iter_mut()).for_each(|(l, h)| {
            *h = *l * r;
            *l -= *h;
        });
        return;
    }
    for (l, h) in lo.iter_mut().zip(hi.iter_mut()) {
        *h = *l * r;
        *l -= *h;
    }
}

/// `a[i] += b[i]`.
pub fn add_assign<F: Field>(a: &mut [F], b: &[F]) {
    #[cfg(feature = "parallel")]
    if a.len() >= PAR_THRESHOLD {
        use rayon::prelude::*;
        a.par_iter_mut()
            .zip(b.par_iter())
            .for_each(|(x, y)| *x += y);
        return;
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Binds the highest variable of `t` to `r` in place and halves it:
/// `t[i] ← t[i] + r·(t[i + h] − t[i])` for `h = len/2`.
pub fn fold_in_place<F: Field>(t: &mut Vec<F>, r: F) {
    let half = t.len() / 2;
    let (lo, hi) = t.split_at_mut(half);
    fold_halves(lo, hi, r);
    t.truncate(half);
}

fn fold_halves<F: Field>(lo: &mut [F], hi: &[F], r: F) {
    #[cfg(feature = "parallel")]
    if lo.len() >= PAR_THRESHOLD {
        use rayon::prelude::*;
        lo.par_iter_mut()
            .zip(hi.par_iter())
            .for_each(|(l, h)| *l += r * (*h - *l));
        return;
    }
    for (l, h) in lo.iter_mut().zip(hi) {
        *l += r * (*h - *l);
    }
}

/// Evaluates the MLE of `t` at `point` (`point.len()` must equal `log2 t.len()`), in one
/// multiplication per entry.
pub fn evaluate<F: Field>(t: &[F], point: &[F]) -> F {
    debug_assert_eq!(t.len(), 1 << point.len());
    match point.split_last() {
        None => t.first().copied().unwrap_or_else(F::zero),
        Some((&top, rest)) => {
            let half = t.len() / 2;
            let mut folded = t[..half].to_vec();
            fold_halves(&mut folded, &t[half..], top);
            for &r in rest.iter().rev() {
                fold_in_place(&mut folded, r);
            }
            folded[0]
        }
    }
}

/// Evaluates the MLE of a table given only by its first `values.len()` entries (the rest, up to
/// 2^point.len(), are zero). The caller never materialises the zero padding.
pub fn evaluate_padded<F: Field>(values: &[F], point: &[F]) -> F {
    let n = 1usize << point.len();
    debug_assert!(values.len() <= n);
    if values.len() == n {
        return evaluate(values, point);
    }
    // Fold pairwise from the lowest variable so that a short table stays short.
    let mut cur: Vec<F> = values.to_vec();
    for &r in point {
        let next_len = cur.len().div_ceil(2);
        let mut next = Vec::with_capacity(next_len);
        for pair in cur.chunks(2) {
            let a = pair[0];
            let b = pair.get(1).copied().unwrap_or_else(F::zero);
            next.push(a + r * (b - a));
        }
        cur = next;
    }
    cur.first().copied().unwrap_or_else(F::zero)
}

/// Evaluates the MLE of the indicator of `{i : i < n}` on 2^point.len() positions at `point`,
/// in O(point.len()) operations: a comparison automaton over the bits of `n`, from the top bit.
pub fn less_than_eval<F: Field>(n: u64, point: &[F]) -> F {
    let bits = point.len();
    if bits < 64 && n >= (1u64 << bits) {
        return F::one();
    }
    // lt = P(x < n over the bits seen so far is already decided "less"), eqp = P(prefix equal).
    let mut lt = F::zero();
    let mut eqp = F::one();
    for k in (0..bits).rev() {
        let x = point[k];
        if (n >> k) & 1 == 1 {
            // x_k = 0 while n_k = 1 makes x smaller.
            lt += eqp * (F::one() - x);
            eqp *= x;
        } else {
            eqp *= F::one() - x;
        }
    }
    lt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::M127;
    use ark_ff::{One, UniformRand, Zero};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn bits_of<F: Field>(i: usize, n: usize) -> Vec<F> {
        (0..n)
            .map(|k| {
                if (i >> k) & 1 == 1 {
                    F::one()
                } else {
                    F::zero()
                }
            })
            .collect()
    }

    /// Reference MLE evaluation straight from the definition Σ_i t[i]·eq(r, bits(i)).
    fn eval_by_definition(t: &[M127], r: &[M127]) -> M127 {
        t.iter()
            .enumerate()
            .map(|(i, &v)| v * eq_eval(r, &bits_of(i, r.len())))
            .sum()
    }

    #[test]
    fn eq_table_matches_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in 0..6 {
            let r: Vec<M127> = (0..n).map(|_| M127::rand(&mut rng)).collect();
            let t = eq_table(&r);
            for (i, v) in t.iter().enumerate() {
                assert_eq!(*v, eq_eval(&r, &bits_of(i, n)));
            }
        }
    }

    #[test]
    fn evaluate_matches_definition_on_and_off_cube() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for n in 0..15 {
            let t: Vec<M127> = (0..1 << n).map(|_| M127::rand(&mut rng)).collect();
            let r: Vec<M127> = (0..n).map(|_| M127::rand(&mut rng)).collect();
            if n <= 8 {
                assert_eq!(evaluate(&t, &r), eval_by_definition(&t, &r));
            }
            // Combining via the eq table agrees with folding, including above PAR_THRESHOLD.
            let dot: M127 = eq_table(&r).iter().zip(&t).map(|(a, b)| *a * b).sum();
            assert_eq!(evaluate(&t, &r), dot);
            let i = rng.gen_range(0..1usize << n);
            assert_eq!(evaluate(&t, &bits_of(i, n)), t[i]);
            let short = &t[..t.len() / 2 + 1.min(t.len() / 2)];
            let mut padded = short.to_vec();
            padded.resize(t.len(), M127::zero());
            assert_eq!(evaluate_padded(short, &r), evaluate(&padded, &r));
        }
    }

    #[test]
    fn less_than_matches_indicator() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for bits in 0..6 {
            let r: Vec<M127> = (0..bits).map(|_| M127::rand(&mut rng)).collect();
            for n in 0..=(1u64 << bits) + 1 {
                let table: Vec<M127> = (0..1u64 << bits)
                    .map(|i| if i < n { M127::one() } else { M127::zero() })
                    .collect();
                assert_eq!(
                    less_than_eval(n, &r),
                    evaluate(&table, &r),
                    "bits {bits} n {n}"
                );
            }
        }
    }

    #[test]
    fn combined_eq_table() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let a: Vec<M127> = (0..4).map(|_| M127::rand(&mut rng)).collect();
        let b: Vec<M127> = (0..4).map(|_| M127::rand(&mut rng)).collect();
        let c = M127::rand(&mut rng);
        let t = eq_table_combined(&[(M127::one(), &a), (c, &b)]);
        let u = eq_table(&a);
        let v = eq_table(&b);
        for i in 0..16 {
            assert_eq!(t[i], u[i] + c * v[i]);
        }
    }

    use rand::Rng;
}
