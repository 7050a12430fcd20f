//! Narrower exact products when the data allow (see the module docs of `witness`): the weight
//! facts of a linear layer, 16-bit and limb-split products, and the bias.

use super::*;

/// Facts about the weights of a dense or conv layer that decide whether a narrower kernel is
/// exact on given data.
pub(crate) struct Linear<'a> {
    pub(super) weight: &'a [i64],
    pub(super) bias: &'a [i128],
    /// Outputs per item (`out_features`, or `out_channels × positions`).
    pub(super) item: usize,
    /// Output rows of the weight matrix.
    pub(super) rows: usize,
    /// Bits of the largest L1 norm of one output's weights.
    pub(super) norm_bits: u32,
    /// Bits of the largest |weight|.
    pub(super) w_bits: u32,
}

impl<'a> Linear<'a> {
    /// The facts of `rows` output rows of `weight` with `cols` columns per weight, or `None`
    /// for products with fewer than 4 columns per weight (where the product streams the
    /// weights, narrower types hardly pay, and computing the norm, one more pass over the
    /// weights, does not).
    pub(crate) fn new(
        weight: &'a [i64],
        bias: &'a [i128],
        item: usize,
        rows: usize,
        cols: usize,
    ) -> Option<Self> {
        if cols < 4 || rows == 0 {
            return None;
        }
        let (norm, or) = max_row_norm(weight, (weight.len() / rows).max(1));
        Some(Linear {
            weight,
            bias,
            item,
            rows,
            norm_bits: bits_of(norm),
            w_bits: bits_of(or as u128),
        })
    }
}

/// The largest L1 norm of a row of `per` weights, and the OR of all magnitudes.
pub(super) fn max_row_norm(weight: &[i64], per: usize) -> (u128, u64) {
    let row = |r: &[i64]| -> (u128, u64) {
        // A 64-bit sum is exact when the largest |w| times the row length stays below 2^64;
        // the OR of the magnitudes bounds the largest one.
        let (sum, or) = r.iter().fold((0u64, 0u64), |(s, o), &w| {
            let a = w.unsigned_abs();
            (s.wrapping_add(a), o | a)
        });
        if bits_of(or as u128) + bits_of(r.len() as u128) <= 63 {
            (sum as u128, or)
        } else {
            (r.iter().map(|w| w.unsigned_abs() as u128).sum(), or)
        }
    };
    let merge = |a: (u128, u64), b: (u128, u64)| (a.0.max(b.0), a.1 | b.1);
    #[cfg(feature = "parallel")]
    if weight.len() >= PAR_WORK * 8 {
        use rayon::prelude::*;
        return weight.par_chunks(per).map(row).reduce(|| (0, 0), merge);
    }
    weight.chunks(per).map(row).fold((0, 0), merge)
}

/// Whether 16-bit operands with 32-bit accumulators compute `W ⊛ x` exactly for |x| < 2^x_bits:
/// every partial sum is below `‖W‖₁·max|x| < 2^31`.
pub(super) fn fits_i16(lin: &Linear, x_bits: u32) -> bool {
    lin.w_bits <= 15 && x_bits <= 15 && lin.norm_bits + x_bits <= 31
}

/// Adds the bias at every output position (`[b][o]` for dense, `[b][o][pos]` for conv).
pub(super) fn add_bias<T: Copy + Send>(
    out: &mut [T],
    lin: &Linear,
    f: impl Fn(T, i128) -> T + Sync + Send,
) {
    let per_o = (lin.item / lin.rows).max(1);
    let par = out.len() >= PAR_WORK;
    for_chunks(out, lin.item, par, |_, chunk| {
        for (i, v) in chunk.iter_mut().enumerate() {
            *v = f(*v, lin.bias[i / per_o]);
        }
    });
}

/// An `i64` dense or conv layer on 16-bit operands, when the weights and the actual data
/// allow it exactly ([`fits_i16`]); `None` otherwise.
pub(super) fn linear_narrow_i64(layer: &CircuitLayer, batch: usize, x: &[i64]) -> Option<Vec<i64>> {
    let x_bits = bits_of(x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0) as u128);
    if x_bits > 15 {
        return None;
    }
    let kind = layer.op.spec();
    let lin = kind.weight_facts(layer, batch)?;
    if !fits_i16(&lin, x_bits) {
        return None;
    }
    let mut out = kind.weight_products(layer, &lin, batch, x, x_bits)?;
    // Truncating the bias is reduction modulo 2^64, like every i64 layer (the bounds say the
    // true values fit).
    add_bias(&mut out, &lin, |v, b| v.wrapping_add(b as i64));
    Some(out)
}

/// An `i128` dense or conv layer as at most three 64-bit products over limbs of the input, when
/// the weights and the actual data allow it; `None` for other ops or when they do not.
///
/// With `x = Σ_l x_l·2^(l·k)` (`x_l ∈ [0, 2^k)` for the low limbs, the top limb signed), each
/// limb product `S_l = W ⊛ x_l` is bounded by `‖W‖₁·2^k`, with `‖W‖₁` the largest L1 norm of an
/// output's weights (computed from the weights) and `k` from the largest |x| of this input.
/// When that bound is below 2^62, every `S_l` is exact in `i64`, and so is
/// `Σ_l S_l·2^(l·k) + B` in wrapping `i128` (the layer's values fit 126 bits). This rigorous
/// check replaces 128-bit multiply-accumulates (two multiplies each) by one to three 64-bit
/// ones; worst-case bounds are usually far above the actual values.
pub(super) fn linear_by_limbs(layer: &CircuitLayer, batch: usize, x: &[i128]) -> Option<Vec<i128>> {
    let kind = layer.op.spec();
    let lin = kind.weight_facts(layer, batch)?;
    let xb = bits_of(x.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0));
    let (limbs, k) = (1..=3usize)
        .map(|l| (l, xb.div_ceil(l as u32)))
        .find(|&(_, k)| lin.norm_bits + k <= 62)?;
    let mut out: Vec<i128> = Vec::new();
    for l in 0..limbs {
        let shift = l as u32 * k;
        let plane: Vec<i64> = if l + 1 == limbs {
            // The top limb keeps the sign (arithmetic shift).
            x.iter().map(|&v| (v >> shift) as i64).collect()
        } else {
            let mask = (1i128 << k) - 1;
            x.iter().map(|&v| ((v >> shift) & mask) as i64).collect()
        };
        let s = kind.weight_products(layer, &lin, batch, &plane, k)?;
        if l == 0 {
            out = s.into_iter().map(i128::from).collect();
        } else {
            let par = out.len() >= PAR_WORK;
            for_chunks(&mut out, PAR_WORK, par, |ci, chunk| {
                let src = &s[ci * PAR_WORK..][..chunk.len()];
                for (o, &v) in chunk.iter_mut().zip(src) {
                    *o = o.wrapping_add((v as i128).wrapping_shl(shift));
                }
            });
        }
    }
    add_bias(&mut out, &lin, |v, b| v.wrapping_add(b));
    Some(out)
}
