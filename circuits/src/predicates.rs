//! Wiring predicates shared by the prover and the verifier of the structured layers.
//!
//! Convolution and sum-pooling read input row `s·i + u − p` for output row `i` and kernel row
//! `u`. After the output rows are bound to a random `r_i` and the kernel rows to `t_u` (or summed
//! out, for pooling), what remains is the *window table*
//! `S(row) = Σ_{u<k, i<n_out, s·i+u−p = row} κ(u)·eq(r_i, i)` over the input rows, with
//! `κ(u) = eq(t_u, u)` for a convolution and `κ(u) = 1` for pooling. The prover builds it as a
//! sumcheck table; the verifier evaluates its MLE at one point by building the same table
//! (O(k·n_out) work, independent of channels and batch) and taking one inner product.

use crate::circuit::Layout;
use ark_ff::Field;

/// One spatial axis of a windowed operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Real input length.
    pub input: usize,
    /// Real output length.
    pub output: usize,
    /// Window (kernel) length.
    pub window: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding before the first input position.
    pub padding: usize,
}

/// The window table `S` over the padded input axis (length `padded_len`, zero past the real
/// input). `kappa[u]` weights kernel position `u` (`None` = weight 1); `eq_out[i]` is
/// `eq(r_i, i)` over the padded output axis.
pub fn window_table<F: Field>(
    axis: Axis,
    padded_len: usize,
    kappa: Option<&[F]>,
    eq_out: &[F],
) -> Vec<F> {
    let mut s = vec![F::zero(); padded_len];
    for (i, &e) in eq_out.iter().enumerate().take(axis.output) {
        for u in 0..axis.window {
            let pos = axis.stride * i + u;
            if pos < axis.padding || pos - axis.padding >= axis.input {
                continue;
            }
            let w = match kappa {
                Some(k) => e * k[u],
                None => e,
            };
            s[pos - axis.padding] += w;
        }
    }
    s
}

/// Splits a point over `layout` (batch included) into per-dim slices (outermost dim first) and
/// the batch slice, following the bit order of `Layout`.
pub fn split_point<'a, F>(layout: &Layout, point: &'a [F]) -> (Vec<&'a [F]>, &'a [F]) {
    let mut dims: Vec<&[F]> = vec![&[]; layout.dims.len()];
    for (i, first, n) in layout.dim_vars() {
        dims[i] = &point[first..first + n];
    }
    (dims, &point[layout.item_vars()..])
}

/// `Σ_i table[i]·eq(point, i)`, the MLE of a table at a point, for tables shorter than
/// 2^point.len() (zero past their end).
pub fn mle_at<F: Field>(table: &[F], point: &[F]) -> F {
    crate::mle::evaluate_padded(table, point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::M127;
    use crate::mle;
    use ark_ff::{One, UniformRand, Zero};
    use rand::SeedableRng;

    /// The window table equals the brute-force definition through the MLE of the 0/1 wiring.
    #[test]
    fn window_table_matches_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let axis = Axis {
            input: 5,
            output: 3,
            window: 3,
            stride: 2,
            padding: 1,
        };
        let eq_out = mle::eq_table(&[M127::rand(&mut rng), M127::rand(&mut rng)]);
        let kappa = mle::eq_table(&[M127::rand(&mut rng), M127::rand(&mut rng)]);
        let s = window_table(axis, 8, Some(&kappa), &eq_out);
        for (row, got) in s.iter().enumerate() {
            let mut want = M127::zero();
            for (i, e) in eq_out.iter().enumerate().take(3) {
                for (u, k) in kappa.iter().enumerate().take(3) {
                    if (2 * i + u) as i64 - 1 == row as i64 && row < 5 {
                        want += *e * k;
                    }
                }
            }
            assert_eq!(*got, want, "row {row}");
        }
        let ones = window_table(axis, 8, None, &[M127::one(); 4]);
        // Row 1 is read by (i=0,u=2), (i=1,u=0): two windows.
        assert_eq!(ones[1], M127::from(2u64));
    }
}
