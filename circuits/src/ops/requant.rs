//! A requantization checkpoint: its op struct, the exact integer contract every crate relies on
//! ([`requant`]) and its rules (shape, digest). Its integer kernel and bound rule are in
//! `witness/requant.rs`, its (refused) gates `lower/requant.rs`, its proof — a clear opening of
//! the tensor before it — `verinfer_verifier::layers::requant` / `verinfer_prover::layers::requant`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// Smallest number of signed bits a checkpoint keeps.
pub const MIN_REQUANT_BITS: u32 = 2;
/// Largest number of signed bits a checkpoint keeps (its values stay `i64`).
pub const MAX_REQUANT_BITS: u32 = 62;
/// Largest number of bits of a checkpoint's input: the verifier reads it as `i128`.
pub const MAX_REQUANT_INPUT_BITS: u32 = 126;

/// Largest shift of a LeakyReLU's negative slope `2^−shift`.
pub const MAX_LEAKY_SHIFT: u32 = 30;

/// An exact function a checkpoint applies to its requantized integers: the verifier computes it
/// itself from the opened tensor, so it costs no sumcheck.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exact {
    /// Nothing: the requantized integers themselves.
    #[default]
    None,
    /// `max(v, 0)`.
    Relu,
    /// `v` for `v ≥ 0`, else `⌊v / 2^shift⌋` (a negative slope of `2^−shift`, rounded down).
    LeakyRelu {
        /// The slope's shift (1..=[`MAX_LEAKY_SHIFT`]).
        shift: u32,
    },
}

impl Exact {
    /// Whether there is no function.
    pub fn is_none(&self) -> bool {
        *self == Exact::None
    }

    /// The function on one integer; monotone, so an interval maps through its ends.
    pub fn apply(&self, v: i128) -> i128 {
        match *self {
            Exact::None => v,
            Exact::Relu => v.max(0),
            Exact::LeakyRelu { shift } if v < 0 => v >> shift.min(127),
            Exact::LeakyRelu { .. } => v,
        }
    }

    /// Short name for labels.
    pub fn name(&self) -> String {
        match self {
            Exact::None => String::new(),
            Exact::Relu => "relu".into(),
            Exact::LeakyRelu { shift } => format!("leaky_relu 2^-{shift}"),
        }
    }
}

/// Exact max-pooling over `[C, H, W]` windows (no padding) of a checkpoint's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxPoolSpec {
    /// Window `[height, width]`.
    pub window: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
}

impl MaxPoolSpec {
    /// The pooled `[C, H', W']` of `[C, H, W]`, or `None` when the window does not fit.
    pub fn output_dims(&self, dims: &[usize]) -> Option<Vec<usize>> {
        let [c, h, w] = dims else { return None };
        let out = |n: usize, k: usize, s: usize| {
            (k > 0 && s > 0).then(|| n.checked_sub(k).map(|d| d / s + 1))?
        };
        Some(vec![
            *c,
            out(*h, self.window[0], self.stride[0])?,
            out(*w, self.window[1], self.stride[1])?,
        ])
    }

    /// The pooled values of `batch` items of real row-major `[C, H, W]` values, by `max` on any
    /// ordered bound (an integer, an interval, a magnitude).
    pub fn pool<V: Copy>(
        &self,
        dims: &[usize],
        batch: usize,
        x: &[V],
        max: impl Fn(V, V) -> V,
    ) -> Option<Vec<V>> {
        let out = self.output_dims(dims)?;
        let (h, w) = (dims[1], dims[2]);
        let (ho, wo) = (out[1], out[2]);
        let item = dims.iter().product::<usize>();
        if x.len() != item.checked_mul(batch)? {
            return None;
        }
        let mut y = Vec::with_capacity(batch * out.iter().product::<usize>());
        for b in 0..batch {
            for c in 0..dims[0] {
                let plane = &x[b * item + c * h * w..][..h * w];
                for i in 0..ho {
                    for j in 0..wo {
                        let (r0, c0) = (i * self.stride[0], j * self.stride[1]);
                        let mut m = plane[r0 * w + c0];
                        for u in 0..self.window[0] {
                            for v in 0..self.window[1] {
                                m = max(m, plane[(r0 + u) * w + c0 + v]);
                            }
                        }
                        y.push(m);
                    }
                }
            }
        }
        Some(y)
    }
}

/// `Y' = pool(f(clamp(⌊(Y + 2^(shift−1)) / 2^shift⌋, −2^(bits−1), 2^(bits−1) − 1)))` (for
/// `shift = 0` the clamp only): rounds half up, then saturates, then applies the exact function
/// `f` ([`Exact`], the identity unless the model asks for an exact ReLU there) element-wise, then
/// an exact max-pooling if the model asks for one there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequantOp {
    /// Fractional bits dropped.
    pub shift: u32,
    /// Signed bits kept.
    pub bits: u32,
    /// The exact function applied after the clamp.
    #[serde(default, skip_serializing_if = "Exact::is_none")]
    pub then: Exact,
    /// An exact max-pooling applied last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<MaxPoolSpec>,
}

impl RequantOp {
    /// A checkpoint without a function after it.
    pub fn new(shift: u32, bits: u32) -> Self {
        RequantOp {
            shift,
            bits,
            then: Exact::None,
            pool: None,
        }
    }

    /// The checkpoint of `batch` items of real `[C, H, W]` (or any layout without a pool)
    /// values: [`Self::apply`] on each, then the pool; `None` when the pool does not fit.
    pub fn run(&self, dims: &[usize], batch: usize, y: &[i128]) -> Option<Vec<i128>> {
        let v: Vec<i128> = y.iter().map(|&y| self.apply(y)).collect();
        match &self.pool {
            None => Some(v),
            Some(p) => p.pool(dims, batch, &v, i128::max),
        }
    }

    /// The clamp range `[−2^(bits−1), 2^(bits−1) − 1]`.
    pub fn clamp_range(&self) -> (i128, i128) {
        let half = 1i128 << (self.bits.clamp(1, 127) - 1);
        (-half, half - 1)
    }

    /// The range of the checkpoint's output: the clamp range through the exact function.
    pub fn range(&self) -> (i128, i128) {
        let (lo, hi) = self.clamp_range();
        (self.then.apply(lo), self.then.apply(hi))
    }

    /// The checkpoint of one integer.
    pub fn apply(&self, y: i128) -> i128 {
        let (lo, hi) = self.clamp_range();
        self.then.apply(requant(y, self.shift).clamp(lo, hi))
    }

    /// Whether the checkpoint saturates `y`: its rounded value lies outside the clamp range.
    pub fn clamps(&self, y: i128) -> bool {
        let (lo, hi) = self.clamp_range();
        !(lo..=hi).contains(&requant(y, self.shift))
    }
}

/// `⌊(y + 2^(k−1)) / 2^k⌋` (`y` for `k = 0`), without overflow: the quotient `⌊y / 2^k⌋` (an
/// arithmetic shift) plus bit `k − 1` of `y`, which is 1 exactly when the remainder is at least
/// half of `2^k`. For `k ≥ 128` every `i128` rounds to 0 (`|y| < 2^(k−1)`).
pub fn requant(y: i128, k: u32) -> i128 {
    match k {
        0 => y,
        1..=127 => (y >> k) + ((y >> (k - 1)) & 1),
        _ => 0,
    }
}

impl OpRules for RequantOp {
    fn name(&self) -> &'static str {
        "requant"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        let want = match &self.pool {
            None => Some(input.dims.clone()),
            Some(p) => p.output_dims(&input.dims),
        };
        if want.as_ref() != Some(&output.dims) {
            return Err(format!(
                "maps layout {:?} to {:?} (must keep it, or pool it to {want:?})",
                input.dims, output.dims
            ));
        }
        if !(MIN_REQUANT_BITS..=MAX_REQUANT_BITS).contains(&self.bits) {
            return Err(format!(
                "keeps {} bits, outside {MIN_REQUANT_BITS}..={MAX_REQUANT_BITS}",
                self.bits
            ));
        }
        if let Exact::LeakyRelu { shift } = self.then {
            if !(1..=MAX_LEAKY_SHIFT).contains(&shift) {
                return Err(format!(
                    "a leaky ReLU slope of 2^-{shift}: the shift must be 1..={MAX_LEAKY_SHIFT}"
                ));
            }
        }
        Ok(())
    }

    fn max_input_bits(&self) -> Option<u32> {
        Some(MAX_REQUANT_INPUT_BITS)
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(6);
        e.uint(u128::from(self.shift));
        e.uint(u128::from(self.bits));
        // Only when present, so checkpoints without one keep their digest.
        match self.then {
            Exact::None => {}
            Exact::Relu => e.uint(1),
            Exact::LeakyRelu { shift } => {
                e.uint(2);
                e.uint(u128::from(shift));
            }
        }
        if let Some(p) = &self.pool {
            e.uint(3);
            for v in [p.window[0], p.window[1], p.stride[0], p.stride[1]] {
                e.uint(v as u128);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract straight from its formula, with Euclidean division (exact for these sizes).
    fn reference(y: i128, k: u32, bits: u32) -> i128 {
        let q = if k == 0 {
            y
        } else {
            (y + (1i128 << (k - 1))).div_euclid(1i128 << k)
        };
        q.clamp(-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    }

    #[test]
    fn rounds_half_up_and_saturates() {
        let op = RequantOp::new;
        // Exact halves round up, also when negative: 2.5 → 3, −2.5 → −2, −0.5 → 0.
        assert_eq!(op(1, 8).apply(5), 3);
        assert_eq!(op(1, 8).apply(-5), -2);
        assert_eq!(op(1, 8).apply(-1), 0);
        assert_eq!(op(2, 8).apply(-6), -1); // −1.5 → −1
        assert_eq!(op(2, 8).apply(-7), -2); // −1.75 → −2
                                            // Clamp at both ends, and k = 0 (clamp only).
        assert_eq!(op(0, 4).apply(100), 7);
        assert_eq!(op(0, 4).apply(-100), -8);
        assert_eq!(op(0, 4).apply(-8), -8);
        assert_eq!(op(0, 4).apply(7), 7);
        assert_eq!(op(3, 2).apply(1 << 20), 1);
        assert_eq!(op(3, 2).apply(-(1 << 20)), -2);
        // k ≥ 64 on values past 64 bits; k ≥ 128 rounds everything to 0.
        assert_eq!(op(64, 62).apply(3i128 << 63), 2); // 1.5 → 2
        assert_eq!(op(64, 62).apply(-(3i128 << 63)), -1); // −1.5 → −1
        assert_eq!(op(100, 62).apply(i128::MAX), 1 << 27);
        assert_eq!(op(127, 62).apply(i128::MIN), -1);
        assert_eq!(op(200, 62).apply(i128::MAX), 0);
        assert_eq!(op(200, 62).apply(i128::MIN), 0);
        // Saturation: 7 and −8 are the last values 4 bits keep; 15 >> 1 rounds to 8.
        assert!(!op(0, 4).clamps(7) && !op(0, 4).clamps(-8));
        assert!(op(0, 4).clamps(8) && op(0, 4).clamps(-9));
        assert!(!op(1, 4).clamps(14) && op(1, 4).clamps(15));
        assert!(!op(1, 4).clamps(-16) && op(1, 4).clamps(-18));
    }

    #[test]
    fn matches_the_formula() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let k = (next() % 70) as u32;
            let bits = 2 + (next() % 61) as u32;
            // Values up to 2^100 keep y + 2^(k−1) inside i128 for the reference.
            let y = (next() as i128) << (next() % 37) as u32;
            let y = if next() % 2 == 0 { y } else { -y };
            let y = y + (next() % 5) as i128 - 2;
            let op = RequantOp::new(k, bits);
            assert_eq!(
                op.apply(y),
                reference(y, k, bits),
                "y {y} k {k} bits {bits}"
            );
        }
    }
}
