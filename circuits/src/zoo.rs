//! Built-in architectures with deterministic random weights, for benchmarks and comparisons.
//!
//! - [`cifar_small`]: 3×32×32 input; conv 3→16 3×3 pad 1, x²+x, sum-pool 2, conv 16→32 3×3
//!   pad 1, x²+x, sum-pool 2, dense 2048→10. Weights uniform in ±1/√fan_in (PyTorch's default
//!   initialisation scale), inputs in [0, 1]; at the default 8 fractional bits its worst case
//!   fits Mersenne-127.
//! - [`lenet5`]: LeNet-5 on 1×32×32 (zkCNN's benchmark shape): conv 1→6 5×5, act, sum-pool 2,
//!   conv 6→16 5×5, act, sum-pool 2, dense 400→120, act, dense 120→84, act, dense 84→10.
//! - [`vgg11`]: VGG-11 at CIFAR shape (3×32×32): eight 3×3 convolutions (64, 128, 256, 256,
//!   512, 512, 512, 512 channels) with five 2×2 sum-pools, then dense 512→512→512→10; an
//!   activation after every convolution and the first two dense layers; 9.75 M weights.
//! - [`resnet20`]: ResNet-20 at CIFAR shape: a 3×3 stem of 16 channels, three stages of three
//!   basic blocks (16, 32, 64 channels; the first block of stages 2 and 3 has stride 2 and a 1×1
//!   stride-2 projection shortcut), a global 8×8 sum-pool and dense 64→10.
//!
//!   These three carry a requantization checkpoint after every activation, so their depth
//!   never outgrows the field: calibrated as `verinfer calibrate` does (the most fractional bits
//!   that keep four random inputs' largest value within [`CHECKPOINT_BITS`] signed bits, one bit
//!   of headroom) where the float model stays finite (LeNet-5, VGG-11), else back to the
//!   input's fractional bits (ResNet-20: with random weights x²+x compounds past `f64` over its
//!   19 activations); weights uniform in ±1/√fan_in, inputs in [0, 1].
//! - [`timit`]: SafetyNets' TIMIT shape, dense 1845 → 2000 → 2000 → 2000 → 183 with x² after the
//!   first two hidden layers; weights and inputs are random 2-bit integers (−2..=1) quantized
//!   with 0 fractional bits, so every value is an exact integer that fits Mersenne-127 and i128.

use crate::circuit::{QuantParams, WeightScale};
use crate::model::{Activation, Add, Branch, Conv2d, Dense, Layer, Model, Requant, SumPool};
use crate::quant;

/// Signed bits a built-in deep network's checkpoints keep.
pub const CHECKPOINT_BITS: u32 = 16;

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
        Layer::Activation(act.clone()),
        pool(),
        conv(&mut rng, 16, 32),
        Layer::Activation(act.clone()),
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

fn conv(rng: &mut SplitMix, c: usize, o: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer::Conv2d(Conv2d {
        in_channels: c,
        out_channels: o,
        kernel: [k, k],
        stride: [stride, stride],
        padding: [pad, pad],
        weight: init(rng, o * c * k * k, c * k * k),
        bias: Some(init(rng, o, c * k * k)),
    })
}

fn dense(rng: &mut SplitMix, k: usize, o: usize) -> Layer {
    Layer::Dense(Dense {
        in_features: k,
        out_features: o,
        weight: init(rng, o * k, k),
        bias: Some(init(rng, o, k)),
    })
}

fn pool(k: usize) -> Layer {
    Layer::SumPool(SumPool {
        window: [k, k],
        stride: None,
    })
}

/// The fallback of [`calibrated`]: `layers` with a checkpoint after every activation that brings
/// the scale back to the input's `params.input_bits` fractional bits in [`CHECKPOINT_BITS`] signed bits. Scales follow the
/// quantization rules (docs/protocol.md §3); a layer that does not quantize keeps its scale
/// (the compiler reports it).
fn checkpointed(layers: Vec<Layer>, params: &QuantParams) -> Vec<Layer> {
    let keep = params.input_bits;
    let mut scales: Vec<u32> = Vec::with_capacity(layers.len() * 2);
    let mut out: Vec<Layer> = Vec::with_capacity(layers.len() * 2);
    // Model indices move as checkpoints go in: map each original layer to its new index.
    let mut moved: Vec<usize> = Vec::with_capacity(layers.len());
    let scale_at = |scales: &[u32], i: Option<usize>| i.map_or(keep, |i| scales[i]);
    for layer in layers {
        let prev = out.len().checked_sub(1);
        let s = scale_at(&scales, prev);
        let (layer, scale) = match layer {
            Layer::Conv2d(c) => {
                let q =
                    quant::quantize_linear(&c.weight, c.bias.as_deref(), c.out_channels, s, params);
                (Layer::Conv2d(c), q.map_or(s, |q| q.scale_bits))
            }
            Layer::Dense(d) => {
                let q =
                    quant::quantize_linear(&d.weight, d.bias.as_deref(), d.out_features, s, params);
                (Layer::Dense(d), q.map_or(s, |q| q.scale_bits))
            }
            Layer::Activation(a) => {
                let q = quant::quantize_activation(&a, s, params.coef_bits);
                (Layer::Activation(a), q.map_or(s, |q| q.scale_bits))
            }
            Layer::Add(a) => {
                let with = moved[a.with];
                let t = Layer::Add(Add { with, ..a });
                (t, s.max(scales[with]))
            }
            Layer::Branch(b) => {
                let from = moved[b.from];
                (Layer::Branch(Branch { from }), scales[from])
            }
            other => (other, s),
        };
        let act = matches!(layer, Layer::Activation(_));
        out.push(layer);
        scales.push(scale);
        if act {
            out.push(Layer::Requant(Requant {
                shift: scale.saturating_sub(keep),
                bits: CHECKPOINT_BITS,
            }));
            scales.push(keep.min(scale));
        }
        moved.push(out.len() - 1);
    }
    out
}

fn deep(name: &str, input: Vec<usize>, layers: Vec<Layer>) -> (Model, QuantParams) {
    let params = QuantParams::default();
    let model = Model {
        name: name.into(),
        input_shape: input,
        input_range: [0.0, 1.0],
        layers,
    };
    let layers = match calibrated(&model, &params) {
        Some(layers) => layers,
        None => checkpointed(model.layers.clone(), &params),
    };
    (Model { layers, ..model }, params)
}

/// `model`'s layers with the checkpoints `verinfer calibrate` places at [`CHECKPOINT_BITS`]
/// bits from four random inputs in its range; `None` when it cannot (a float model whose values
/// overflow `f64`, as x²+x compounded over ResNet-20's 19 activations with random weights does).
fn calibrated(model: &Model, params: &QuantParams) -> Option<Vec<Layer>> {
    let samples = random_input(model, 4, 0xca11b);
    let run = crate::float::run(model, &samples).ok()?;
    let max_abs: Vec<f64> = run
        .layers
        .iter()
        .map(|l| l.iter().fold(0.0f64, |m, v| m.max(v.abs())))
        .collect();
    let opts = crate::calibrate::Options {
        params: *params,
        field: crate::circuit::FieldChoice::Auto,
        bits: CHECKPOINT_BITS,
        headroom: 1,
    };
    crate::calibrate::plan(model, &max_abs, &opts)
        .ok()
        .map(|p| p.model.layers)
}

/// LeNet-5 on 1×32×32 with the given activation, checkpointed (module docs).
pub fn lenet5(seed: u64, act: Activation) -> (Model, QuantParams) {
    let rng = &mut SplitMix::new(seed);
    let a = || Layer::Activation(act.clone());
    let layers = vec![
        conv(rng, 1, 6, 5, 1, 0),
        a(),
        pool(2),
        conv(rng, 6, 16, 5, 1, 0),
        a(),
        pool(2),
        Layer::Flatten,
        dense(rng, 400, 120),
        a(),
        dense(rng, 120, 84),
        a(),
        dense(rng, 84, 10),
    ];
    deep("lenet5", vec![1, 32, 32], layers)
}

/// VGG-11 at CIFAR shape with the given activation, checkpointed (module docs).
pub fn vgg11(seed: u64, act: Activation) -> (Model, QuantParams) {
    let rng = &mut SplitMix::new(seed);
    let mut layers = Vec::new();
    let mut c = 3;
    for item in [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0] {
        if item == 0 {
            layers.push(pool(2));
        } else {
            layers.push(conv(rng, c, item, 3, 1, 1));
            layers.push(Layer::Activation(act.clone()));
            c = item;
        }
    }
    layers.push(Layer::Flatten);
    layers.push(dense(rng, 512, 512));
    layers.push(Layer::Activation(act.clone()));
    layers.push(dense(rng, 512, 512));
    layers.push(Layer::Activation(act.clone()));
    layers.push(dense(rng, 512, 10));
    deep("vgg11", vec![3, 32, 32], layers)
}

/// ResNet-20 at CIFAR shape with the given activation, checkpointed (module docs).
pub fn resnet20(seed: u64, act: Activation) -> (Model, QuantParams) {
    let rng = &mut SplitMix::new(seed);
    let mut layers = vec![conv(rng, 3, 16, 3, 1, 1), Layer::Activation(act.clone())];
    let mut c = 16;
    for (stage, width) in [16, 32, 64].into_iter().enumerate() {
        for block in 0..3 {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let input = layers.len() - 1;
            layers.push(conv(rng, c, width, 3, stride, 1));
            layers.push(Layer::Activation(act.clone()));
            layers.push(conv(rng, width, width, 3, 1, 1));
            if stride == 1 && c == width {
                layers.push(Layer::Add(Add {
                    with: input,
                    subtract: false,
                }));
            } else {
                let main = layers.len() - 1;
                layers.push(Layer::Branch(Branch { from: input }));
                layers.push(conv(rng, c, width, 1, stride, 0));
                layers.push(Layer::Add(Add {
                    with: main,
                    subtract: false,
                }));
            }
            layers.push(Layer::Activation(act.clone()));
            c = width;
        }
    }
    layers.push(pool(8));
    layers.push(Layer::Flatten);
    layers.push(dense(rng, 64, 10));
    deep("resnet20", vec![3, 32, 32], layers)
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
            layers.push(Layer::Activation(act.clone()));
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
        for (m, q) in [
            lenet5(1, Activation::SquarePlusX),
            vgg11(1, Activation::SquarePlusX),
            resnet20(1, Activation::SquarePlusX),
        ] {
            let c = crate::compile::compile(&m, &q, FieldChoice::Auto).unwrap();
            assert_eq!(c.field, FieldId::M127, "{}: {}", m.name, c.field_reason);
            assert_eq!(c.output().dims, vec![10], "{}", m.name);
        }
        let (t, q) = timit(1, Activation::Square);
        assert_eq!(t.validate().unwrap().last().unwrap(), &vec![183]);
        let c = crate::compile::compile(&t, &q, FieldChoice::M127).unwrap();
        assert!(c.max_bits() <= 126);
    }
}
