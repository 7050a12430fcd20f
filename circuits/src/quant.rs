//! The quantization rules of docs/protocol.md §3 (a contract relied on by tests and users).
//!
//! All scales are powers of two: a value `v` at scale `s` stands for `v / 2^s`, and a real `x`
//! becomes `q(x, s) = round_half_away_from_zero(x · 2^s)` ([`quantize`]).
//!
//! - Input: `X = q(x, s_in)`, each within the circuit's `[input_min, input_max]`
//!   ([`quantize_input`], [`check_input_ints`]).
//! - Conv / Dense at input scale `s`: `Wq = q(W, s_w)`, output scale `s' = s + s_w`,
//!   `Bq = q(b, s')` ([`quantize_linear`]). `s_w` is `weight_bits`, or with
//!   [`WeightScale::PerLayer`] the largest value in `0..=`[`MAX_PER_LAYER_WEIGHT_BITS`] that keeps
//!   every |Wq| within `weight_bits` signed bits ([`weight_scale_bits`]).
//! - Activation `Σ_k c_k·x^k` of degree `d` at input scale `s` ([`quantize_activation`]):
//!   `Y = Σ_k (q(c_k, s_c)·2^((d−k)·s))·X^k` at scale `d·s + s_c`, with `s_c = 0` when every
//!   coefficient is an integer and `s_c = coef_bits` otherwise. For a quadratic `a·x² + b·x + c`:
//!   `Y = q(a,s_c)·X² + (q(b,s_c)·2^s)·X + q(c,s_c)·2^(2s)` at scale `2s + s_c`.
//! - SumPool keeps the scale; Flatten / Reshape do no arithmetic.

use crate::circuit::{LayeredCircuit, QuantParams, WeightScale};
use crate::model::Activation;
use thiserror::Error;

/// Largest fractional weight bits [`WeightScale::PerLayer`] picks (for tiny or all-zero weights).
pub const MAX_PER_LAYER_WEIGHT_BITS: u32 = 40;

/// Why a number could not be quantized.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum QuantError {
    /// NaN or infinite.
    #[error("{0} is not a finite number")]
    NonFinite(f64),
    /// `x · 2^s` rounds to an integer outside the target type.
    #[error("{value} at scale 2^{scale_bits} does not fit a signed {bits}-bit integer")]
    OutOfRange {
        /// The real value.
        value: f64,
        /// The scale (fractional bits).
        scale_bits: u32,
        /// Width of the target integer type.
        bits: u32,
    },
    /// With a per-layer weight scale, the largest |weight| does not fit even at scale 2^0.
    #[error(
        "largest |weight| {value} does not fit in {weight_bits} signed bits even with 0 fractional \
         bits; raise --weight-bits or rescale the layer"
    )]
    WeightTooLarge {
        /// The largest |weight| of the layer.
        value: f64,
        /// The signed width asked for.
        weight_bits: u32,
    },
    /// A per-layer signed weight width outside `2..=64`.
    #[error("--weight-bits {0} with a per-layer weight scale must be between 2 and 64")]
    BadWeightBits(u32),
    /// A scale (fractional bits) that overflows `u32`.
    #[error("the scale overflows (more than 2^32 fractional bits)")]
    ScaleOverflow,
    /// An activation coefficient times its power of two does not fit an `i128`.
    #[error("activation coefficient {coef} · 2^{shift} does not fit a signed 128-bit integer")]
    Coefficient {
        /// The integer coefficient before the shift.
        coef: i128,
        /// The power of two it is multiplied by.
        shift: u32,
    },
    /// The bias has the wrong number of values.
    #[error("bias has {got} values, expected {expected}")]
    BiasLength {
        /// Number of outputs.
        expected: usize,
        /// Number given.
        got: usize,
    },
}

/// Why an input batch is refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum InputError {
    /// No values at all.
    #[error("the input is empty: a batch needs at least one item of {per_item} values")]
    EmptyBatch {
        /// Values per item.
        per_item: usize,
    },
    /// The number of values is not a multiple of the per-item size.
    #[error("expected a multiple of {per_item} input values (per-item shape {dims:?}), got {got}")]
    Length {
        /// Values given.
        got: usize,
        /// Values per item.
        per_item: usize,
        /// Per-item shape.
        dims: Vec<usize>,
    },
    /// A NaN or infinite input value.
    #[error("input value {value} at index {index} is not a finite number")]
    NonFinite {
        /// Index in the flat, batch-major input.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A real input value whose quantization falls outside the declared range.
    #[error(
        "input value {value} at index {index} is outside the declared input range [{lo}, {hi}] \
         (quantized at 2^{scale_bits} it must lie in [{min}, {max}])"
    )]
    OutOfRange {
        /// Index in the flat, batch-major input.
        index: usize,
        /// The value.
        value: f64,
        /// Declared range, dequantized.
        lo: f64,
        /// Declared range, dequantized.
        hi: f64,
        /// Input scale (fractional bits).
        scale_bits: u32,
        /// Smallest allowed quantized value.
        min: i128,
        /// Largest allowed quantized value.
        max: i128,
    },
    /// An integer input value outside the declared range.
    #[error("input value {value} at index {index} is outside the declared range [{min}, {max}]")]
    IntOutOfRange {
        /// Index in the flat, batch-major input.
        index: usize,
        /// The value.
        value: i128,
        /// Smallest allowed value.
        min: i128,
        /// Largest allowed value.
        max: i128,
    },
}

/// `2^s` as an `f64` (infinite beyond the `f64` range, exact otherwise).
fn pow2_f64(s: u32) -> f64 {
    match i32::try_from(s) {
        Ok(e) if e <= 1023 => 2f64.powi(e),
        _ => f64::INFINITY,
    }
}

/// `round_half_away_from_zero(x · 2^s)` as an `f64`, checked finite.
fn scaled_round(x: f64, scale_bits: u32) -> Result<f64, QuantError> {
    if !x.is_finite() {
        return Err(QuantError::NonFinite(x));
    }
    if x == 0.0 {
        return Ok(0.0);
    }
    // Multiplying by a power of two is exact (barring overflow), and `f64::round` rounds half
    // away from zero.
    let r = (x * pow2_f64(scale_bits)).round();
    if r.is_finite() {
        Ok(r)
    } else {
        Err(QuantError::OutOfRange {
            value: x,
            scale_bits,
            bits: 128,
        })
    }
}

/// `q(x, s) = round_half_away_from_zero(x · 2^s)` as an `i128`; fails on NaN, infinities and
/// results outside the `i128` range.
pub fn quantize(x: f64, scale_bits: u32) -> Result<i128, QuantError> {
    let r = scaled_round(x, scale_bits)?;
    // 2^127 is exactly representable; the range of i128 is [−2^127, 2^127).
    let limit = 2f64.powi(127);
    if r >= limit || r < -limit {
        return Err(QuantError::OutOfRange {
            value: x,
            scale_bits,
            bits: 128,
        });
    }
    Ok(r as i128)
}

/// `q(x, s)` as an `i64` (weights); fails on NaN, infinities and results outside the `i64` range.
pub fn quantize_i64(x: f64, scale_bits: u32) -> Result<i64, QuantError> {
    let r = scaled_round(x, scale_bits)?;
    let limit = 2f64.powi(63);
    if r >= limit || r < -limit {
        return Err(QuantError::OutOfRange {
            value: x,
            scale_bits,
            bits: 64,
        });
    }
    Ok(r as i64)
}

/// The real value `v / 2^s` of an integer at scale `s` (nearest `f64`).
pub fn dequantize(v: i128, scale_bits: u32) -> f64 {
    let mut x = v as f64;
    let mut s = scale_bits;
    // Scale down in steps that stay within the normal f64 exponent range.
    while s > 0 {
        let step = s.min(1000);
        x *= 2f64.powi(-(step as i32));
        s -= step;
        if x == 0.0 {
            break;
        }
    }
    x
}

/// Quantizes a batch of real inputs (batch-major, each item row-major, unpadded) at the
/// circuit's input scale, checking the length and the declared range of every value.
pub fn quantize_input(circuit: &LayeredCircuit, values: &[f64]) -> Result<Vec<i128>, InputError> {
    check_length(circuit, values.len())?;
    let (min, max) = (circuit.input_min, circuit.input_max);
    let s = circuit.input_scale;
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            if !value.is_finite() {
                return Err(InputError::NonFinite { index, value });
            }
            match quantize(value, s) {
                Ok(v) if min <= v && v <= max => Ok(v),
                _ => Err(InputError::OutOfRange {
                    index,
                    value,
                    lo: dequantize(min, s),
                    hi: dequantize(max, s),
                    scale_bits: s,
                    min,
                    max,
                }),
            }
        })
        .collect()
}

/// Checks an already quantized input batch (length and declared range); returns the batch size.
pub fn check_input_ints(circuit: &LayeredCircuit, values: &[i128]) -> Result<usize, InputError> {
    let batch = check_length(circuit, values.len())?;
    let (min, max) = (circuit.input_min, circuit.input_max);
    for (index, &value) in values.iter().enumerate() {
        if value < min || value > max {
            return Err(InputError::IntOutOfRange {
                index,
                value,
                min,
                max,
            });
        }
    }
    Ok(batch)
}

/// The batch size of `len` input values, or why `len` is wrong.
fn check_length(circuit: &LayeredCircuit, len: usize) -> Result<usize, InputError> {
    let per_item = circuit.input.item_len();
    if len == 0 {
        return Err(InputError::EmptyBatch { per_item });
    }
    if per_item == 0 || len % per_item != 0 {
        return Err(InputError::Length {
            got: len,
            per_item,
            dims: circuit.input.dims.clone(),
        });
    }
    Ok(len / per_item)
}

/// The fractional bits `s_w` of a linear layer's weights: `weight_bits` with a uniform scale;
/// with a per-layer scale the largest `s_w ≤` [`MAX_PER_LAYER_WEIGHT_BITS`] such that
/// `max |q(W, s_w)| ≤ 2^(weight_bits−1) − 1`, or [`QuantError::WeightTooLarge`] if even `s_w = 0`
/// does not fit.
pub fn weight_scale_bits(weight: &[f64], params: &QuantParams) -> Result<u32, QuantError> {
    match params.weight_scale {
        WeightScale::Uniform => Ok(params.weight_bits),
        WeightScale::PerLayer => {
            let wb = params.weight_bits;
            if !(2..=64).contains(&wb) {
                return Err(QuantError::BadWeightBits(wb));
            }
            let limit: i128 = (1i128 << (wb - 1)) - 1;
            let mut largest = 0.0f64;
            for &w in weight {
                if !w.is_finite() {
                    return Err(QuantError::NonFinite(w));
                }
                largest = largest.max(w.abs());
            }
            // |q(w, s)| = round(|w|·2^s) grows with |w| and with s, so the largest weight
            // decides, and the first fitting s from the top is the largest.
            for s in (0..=MAX_PER_LAYER_WEIGHT_BITS).rev() {
                if matches!(quantize(largest, s), Ok(v) if v <= limit) {
                    return Ok(s);
                }
            }
            Err(QuantError::WeightTooLarge {
                value: largest,
                weight_bits: wb,
            })
        }
    }
}

/// A quantized linear layer (Conv2d or Dense).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantLinear {
    /// `q(W, s_w)`, in the order given.
    pub weight: Vec<i64>,
    /// `q(b, s + s_w)` per output (zeros without a bias).
    pub bias: Vec<i128>,
    /// The weights' fractional bits `s_w`.
    pub weight_scale_bits: u32,
    /// The output scale `s + s_w`.
    pub scale_bits: u32,
}

/// Quantizes the weights and bias of a linear layer with `outputs` outputs whose input is at
/// scale `in_scale` (docs/protocol.md §3).
pub fn quantize_linear(
    weight: &[f64],
    bias: Option<&[f64]>,
    outputs: usize,
    in_scale: u32,
    params: &QuantParams,
) -> Result<QuantLinear, QuantError> {
    let s_w = weight_scale_bits(weight, params)?;
    let scale_bits = in_scale.checked_add(s_w).ok_or(QuantError::ScaleOverflow)?;
    let weight = weight
        .iter()
        .map(|&w| quantize_i64(w, s_w))
        .collect::<Result<Vec<_>, _>>()?;
    let bias = match bias {
        Some(b) if b.len() != outputs => {
            return Err(QuantError::BiasLength {
                expected: outputs,
                got: b.len(),
            })
        }
        Some(b) => b
            .iter()
            .map(|&x| quantize(x, scale_bits))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![0; outputs],
    };
    Ok(QuantLinear {
        weight,
        bias,
        weight_scale_bits: s_w,
        scale_bits,
    })
}

/// A quantized activation `Y = Σ_k C_k·X^k` (coefficients already multiplied by their powers of
/// two) and its output scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantActivation {
    /// `C_0, …, C_d`, constant first (the constant is added at real positions only).
    pub coefficients: Vec<i128>,
    /// Output scale: `d·s`, or `d·s + coef_bits` for non-integer coefficients.
    pub scale_bits: u32,
}

impl QuantActivation {
    /// `C_k`, zero past the degree.
    pub fn coefficient(&self, k: usize) -> i128 {
        self.coefficients.get(k).copied().unwrap_or(0)
    }
}

/// `v · 2^shift`, checked.
fn mul_pow2(v: i128, shift: u32) -> Result<i128, QuantError> {
    if v == 0 {
        return Ok(0);
    }
    let overflow = QuantError::Coefficient { coef: v, shift };
    if shift >= 127 {
        return Err(overflow);
    }
    v.checked_mul(1i128 << shift).ok_or(overflow)
}

/// Quantizes an activation of degree `d` at input scale `s = in_scale` with `coef_bits`
/// fractional bits for non-integer coefficients (docs/protocol.md §3): `C_k = q(c_k, s_c)·2^((d−k)·s)`
/// at output scale `d·s + s_c`, where `s_c = 0` when every coefficient is an integer.
pub fn quantize_activation(
    act: &Activation,
    in_scale: u32,
    coef_bits: u32,
) -> Result<QuantActivation, QuantError> {
    let c = act.coefficients();
    if let Some(&x) = c.iter().find(|x| !x.is_finite()) {
        return Err(QuantError::NonFinite(x));
    }
    let d = u32::try_from(c.len() - 1).map_err(|_| QuantError::ScaleOverflow)?;
    let extra = if c.iter().all(|x| x.fract() == 0.0) {
        0
    } else {
        coef_bits
    };
    let ds = in_scale.checked_mul(d).ok_or(QuantError::ScaleOverflow)?;
    let scale_bits = ds.checked_add(extra).ok_or(QuantError::ScaleOverflow)?;
    let coefficients = c
        .iter()
        .enumerate()
        .map(|(k, &x)| {
            // k ≤ d, so (d − k)·s ≤ d·s, which did not overflow.
            let lift = (d - k as u32) * in_scale;
            mul_pow2(quantize(x, extra)?, lift)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(QuantActivation {
        coefficients,
        scale_bits,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dequantize_handles_huge_scales() {
        assert_eq!(dequantize(3, 1), 1.5);
        assert_eq!(dequantize(-1, 2), -0.25);
        assert_eq!(dequantize(1, 1074), f64::from_bits(1));
        assert_eq!(dequantize(1 << 100, 1100), 2f64.powi(-1000));
        assert_eq!(dequantize(5, 5000), 0.0);
    }

    #[test]
    fn quantize_bounds_of_i128_and_i64() {
        assert_eq!(quantize(-1.0, 127).unwrap(), i128::MIN);
        assert!(quantize(1.0, 127).is_err());
        assert_eq!(quantize_i64(-1.0, 63).unwrap(), i64::MIN);
        assert!(quantize_i64(1.0, 63).is_err());
        assert!(quantize(1.0, u32::MAX).is_err());
        assert_eq!(quantize(0.0, u32::MAX).unwrap(), 0);
        assert_eq!(mul_pow2(-1, 126).unwrap(), -(1i128 << 126));
        assert!(mul_pow2(1, 127).is_err());
        assert!(mul_pow2(2, 126).is_err());
        assert_eq!(mul_pow2(0, 5000).unwrap(), 0);
    }
}
