//! Built-in architectures with deterministic random weights, for benchmarks and comparisons.
//!
//! - [`cifar_small`]: 3×32×32 input; conv 3→16 3×3 pad 1, x²+x, sum-pool 2, conv 16→32 3×3
//!   pad 1, x²+x, sum-pool 2, dense 2048→10. Weights uniform in ±1/√fan_in (PyTorch's default
//!   initialisation scale), inputs in [0, 1]; at the default 8 fractional bits its worst case
//!   fits Mersenne-127.
//! - [`timit`]: SafetyNets' TIMIT shape, dense 1845 → 2000 → 2000 → 2000 → 183 with x² after the
//!   first two hidden layers; weights and inputs are random 2-bit integers (−2..=1) quantized
//!   with 0 fractional bits, so every value is an exact integer that fits Mersenne-127 and i128.

use crate::circuit::{QuantParams, WeightScale};
use crate::model::{Activation, Conv2d, Dense, Layer, Model, SumPool};

/// A deterministic generator (splitmix64), so a seed always gives the same model.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }

    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

fn init(rng: &mut SplitMix, n: usize, fan_in: usize) -> Vec<f64> {
    let b = 1.0 / (fan_in as f64).sqrt();
    (0..n).map(|_| rng.uniform(-b, b)).collect()
}

/// The CIFAR-sized CNN of the compiler issue, with the given activation, and its quantization
/// parameters (the defaults).
pub fn cifar_small(seed: u64, act: Activation) -> (Model, QuantParams) {
    let mut rng = SplitMix::new(seed);
    let conv = |rng: &mut SplitMix, c: usize, o: usize| {
        Layer::Conv2d(Conv2d {
            in_channels: c,
            out_channels: o,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            weight: init(rng, o * c * 9, c * 9),
            bias: Some(init(rng, o, c * 9)),
        })
    };
    let pool = || {
        Layer::SumPool(SumPool {
            window: [2, 2],
            stride: None,
        })
    };
    let layers = vec![
        conv(&mut rng, 3, 16),
        Layer::Activation(act),
        pool(),
        conv(&mut rng, 16, 32),
        Layer::Activation(act),
        pool(),
        Layer::Flatten,
        Layer::Dense(Dense {
            in_features: 2048,
            out_features: 10,
            weight: init(&mut rng, 20480, 2048),
            bias: Some(init(&mut rng, 10, 2048)),
        }),
    ];
    (
        Model {
            name: "cifar-small".into(),
            input_shape: vec![3, 32, 32],
            input_range: [0.0, 1.0],
            layers,
        },
        QuantParams::default(),
    )
}

/// Random inputs in a model's declared range for `batch` items (floats, batch-major).
pub fn random_input(model: &Model, batch: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix::new(seed ^ 0x5eed);
    let n: usize = model.input_shape.iter().product::<usize>() * batch;
    let [lo, hi] = model.input_range;
    (0..n).map(|_| rng.uniform(lo, hi)).collect()
}

/// Layer widths of the TIMIT-shaped network.
pub const TIMIT_WIDTHS: [usize; 5] = [1845, 2000, 2000, 2000, 183];

/// The SafetyNets TIMIT-shaped dense network with the given activation after the first two
/// hidden layers, 2-bit integer weights, and its quantization parameters (0 fractional bits).
pub fn timit(seed: u64, act: Activation) -> (Model, QuantParams) {
    let mut rng = SplitMix::new(seed);
    let mut layers = Vec::new();
    for (i, w) in TIMIT_WIDTHS.windows(2).enumerate() {
        let (k, o) = (w[0], w[1]);
        layers.push(Layer::Dense(Dense {
            in_features: k,
            out_features: o,
            weight: (0..k * o).map(|_| rng.int(-2, 1) as f64).collect(),
            bias: None,
        }));
        if i < 2 {
            layers.push(Layer::Activation(act));
        }
    }
    (
        Model {
            name: "timit".into(),
            input_shape: vec![TIMIT_WIDTHS[0]],
            input_range: [-2.0, 1.0],
            layers,
        },
        QuantParams {
            input_bits: 0,
            weight_bits: 0,
            coef_bits: 8,
            weight_scale: WeightScale::Uniform,
        },
    )
}

/// Random 2-bit integer inputs (−2..=1) for the TIMIT network.
pub fn timit_input(batch: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix::new(seed ^ 0x71_417);
    (0..batch * TIMIT_WIDTHS[0])
        .map(|_| rng.int(-2, 1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::FieldChoice;
    use crate::field::FieldId;

    #[test]
    fn builtins_validate_and_fit_m127() {
        let (m, q) = cifar_small(1, Activation::SquarePlusX);
        assert_eq!(m.validate().unwrap().last().unwrap(), &vec![10]);
        let c = crate::compile::compile(&m, &q, FieldChoice::Auto).unwrap();
        assert_eq!(c.field, FieldId::M127, "{}", c.field_reason);
        let (t, q) = timit(1, Activation::Square);
        assert_eq!(t.validate().unwrap().last().unwrap(), &vec![183]);
        let c = crate::compile::compile(&t, &q, FieldChoice::M127).unwrap();
        assert!(c.max_bits() <= 126);
    }
}
