//! The float reference of the model IR: what a [`Model`] computes in `f64`, before any
//! quantization.
//!
//! Every layer is evaluated exactly as its definition in [`crate::model`] says: convolutions
//! with zero padding, dense layers on the row-major flattened input, plain sums over pooling
//! windows, flatten and reshape as relabellings, and `a·x² + b·x + c` activations. A
//! requantization checkpoint ([`Layer::Requant`]) is the identity: it only exists to keep the
//! integers of the compiled circuit inside the field.
//!
//! [`run`] evaluates a batch and keeps every layer's output (what `verinfer calibrate` records
//! the ranges of); [`eval`] returns the output only. Items are independent and evaluated in
//! parallel (rayon, with the `parallel` feature).

use crate::model::{horner, Conv2d, Dense, Layer, Model, ModelError, SumPool};
use thiserror::Error;

/// Why a float evaluation could not run.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FloatError {
    /// The model is malformed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The input is not a whole number of items, or empty.
    #[error("{got} input values are not a whole, non-empty batch of items of {per_item} values")]
    Length {
        /// Values given.
        got: usize,
        /// Values per item.
        per_item: usize,
    },
}

/// Every layer's output on a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatRun {
    /// Number of items.
    pub batch: usize,
    /// `layers[i]`: the output of model layer `i`, batch-major, each item row-major in the
    /// layer's output shape.
    pub layers: Vec<Vec<f64>>,
}

impl FloatRun {
    /// The model's output (the last layer's), batch-major.
    pub fn output(&self) -> &[f64] {
        self.layers.last().map_or(&[], Vec::as_slice)
    }

    /// The smallest and largest value of layer `i`'s output over the batch (`None` for a layer
    /// the model does not have). NaN never occurs for finite inputs and weights, but would be
    /// skipped.
    pub fn extremes(&self, i: usize) -> Option<(f64, f64)> {
        self.layers.get(i).map(|v| extremes(v))
    }
}

/// The smallest and largest of `values` (`(∞, −∞)` for none; NaN is skipped).
pub fn extremes(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Runs `model` on a batch (`input`: items of `model.input_shape`, batch-major, each row-major)
/// and returns every layer's output.
pub fn run(model: &Model, input: &[f64]) -> Result<FloatRun, FloatError> {
    let shapes = model.validate()?;
    let per_item: usize = model.input_shape.iter().product();
    if input.is_empty() || per_item == 0 || input.len() % per_item != 0 {
        return Err(FloatError::Length {
            got: input.len(),
            per_item,
        });
    }
    let items: Vec<&[f64]> = input.chunks(per_item).collect();
    let per_item_layers = map_items(&items, |x| item(model, &shapes, x));
    let mut layers: Vec<Vec<f64>> = shapes[1..]
        .iter()
        .map(|s| Vec::with_capacity(s.iter().product::<usize>() * items.len()))
        .collect();
    for outputs in per_item_layers {
        for (all, one) in layers.iter_mut().zip(outputs) {
            all.extend(one);
        }
    }
    Ok(FloatRun {
        batch: items.len(),
        layers,
    })
}

/// The model's output on `input` (one item or a batch, batch-major).
pub fn eval(model: &Model, input: &[f64]) -> Result<Vec<f64>, FloatError> {
    let mut r = run(model, input)?;
    Ok(r.layers.pop().unwrap_or_default())
}

/// `items.iter().map(f).collect()`, on rayon with the `parallel` feature.
fn map_items<T: Send>(items: &[&[f64]], f: impl Fn(&[f64]) -> T + Sync + Send) -> Vec<T> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        items.par_iter().map(|x| f(x)).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        items.iter().map(|x| f(x)).collect()
    }
}

/// Every layer's output on one item; `shapes` from [`Model::validate`].
fn item(model: &Model, shapes: &[Vec<usize>], x: &[f64]) -> Vec<Vec<f64>> {
    let mut outputs: Vec<Vec<f64>> = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        // The output of model layer `n` (the input for none).
        let of = |n: Option<usize>| n.and_then(|n| outputs.get(n)).map_or(x, Vec::as_slice);
        let input = of(i.checked_sub(1));
        let y = match layer {
            Layer::Conv2d(c) => conv2d(c, &shapes[i], &shapes[i + 1], input),
            Layer::Dense(d) => dense(d, input),
            Layer::SumPool(p) => pool(p, &shapes[i], &shapes[i + 1], input, (0.0, |s, v| s + v)),
            Layer::MaxPool(p) => pool(
                p,
                &shapes[i],
                &shapes[i + 1],
                input,
                (f64::NEG_INFINITY, f64::max),
            ),
            Layer::Activation(a) => {
                let c = a.coefficients();
                input.iter().map(|&v| horner(&c, v)).collect()
            }
            Layer::Relu(r) => input.iter().map(|&v| r.eval(v)).collect(),
            Layer::Scale { shift } => {
                let f = 2f64.powi(-((*shift).min(1100) as i32));
                input.iter().map(|&v| v * f).collect()
            }
            Layer::Flatten | Layer::Reshape { .. } | Layer::Requant(_) => input.to_vec(),
            Layer::Add(a) => {
                let sign = if a.subtract { -1.0 } else { 1.0 };
                input
                    .iter()
                    .zip(of(Some(a.with)))
                    .map(|(u, v)| u + sign * v)
                    .collect()
            }
            Layer::Mul(m) => input
                .iter()
                .zip(of(Some(m.with)))
                .map(|(u, v)| u * v)
                .collect(),
            Layer::Branch(b) => of(Some(b.from)).to_vec(),
        };
        outputs.push(y);
    }
    outputs
}

/// `y[o] = Σ_k W[o][k]·x[k] + b[o]`.
fn dense(d: &Dense, x: &[f64]) -> Vec<f64> {
    d.weight
        .chunks(d.in_features)
        .enumerate()
        .map(|(o, row)| {
            let s: f64 = row.iter().zip(x).map(|(w, v)| w * v).sum();
            s + d.bias.as_ref().map_or(0.0, |b| b[o])
        })
        .collect()
}

/// Zero-padded convolution, `[C, H, W]` → `[O, H', W']`. Each output is its bias plus the
/// products in (input channel, kernel row, kernel column) order; the loops run over whole
/// output rows per weight, so the innermost one is contiguous.
fn conv2d(c: &Conv2d, input: &[usize], output: &[usize], x: &[f64]) -> Vec<f64> {
    let (ci, h, w) = (input[0], input[1], input[2]);
    let (oh, ow) = (output[1], output[2]);
    let [kh, kw] = c.kernel;
    let [sh, sw] = c.stride;
    let [ph, pw] = c.padding;
    let plane = oh * ow;
    let mut y = vec![0.0; c.out_channels * plane];
    for (o, yo) in y.chunks_mut(plane).enumerate() {
        yo.fill(c.bias.as_ref().map_or(0.0, |b| b[o]));
        for ch in 0..ci {
            for u in 0..kh {
                for t in 0..kw {
                    let wv = c.weight[((o * ci + ch) * kh + u) * kw + t];
                    // Output columns q whose input column q·sw + t − pw is inside the input.
                    let first = pw.saturating_sub(t).div_ceil(sw);
                    let end = (w + pw).saturating_sub(t).div_ceil(sw).min(ow);
                    if first >= end {
                        continue;
                    }
                    for (r, yrow) in yo.chunks_mut(ow).enumerate() {
                        // Row in the unpadded input, if inside it.
                        let Some(row) = (r * sh + u).checked_sub(ph).filter(|&v| v < h) else {
                            continue;
                        };
                        let xrow = &x[(ch * h + row) * w..(ch * h + row + 1) * w];
                        let cols = xrow[first * sw + t - pw..].iter().step_by(sw);
                        for (out, xv) in yrow[first..end].iter_mut().zip(cols) {
                            *out += wv * xv;
                        }
                    }
                }
            }
        }
    }
    y
}

/// Sum over each window, `[C, H, W]` → `[C, H', W']`.
/// A pooling of `x` over `p`'s windows, each folded from `init` with `f`.
fn pool(
    p: &SumPool,
    input: &[usize],
    output: &[usize],
    x: &[f64],
    (init, f): (f64, fn(f64, f64) -> f64),
) -> Vec<f64> {
    let (c, h, w) = (input[0], input[1], input[2]);
    let (oh, ow) = (output[1], output[2]);
    let [kh, kw] = p.window;
    let [sh, sw] = p.stride();
    let mut y = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for r in 0..oh {
            for q in 0..ow {
                let mut s = init;
                for u in 0..kh {
                    for t in 0..kw {
                        s = f(s, x[(ch * h + r * sh + u) * w + q * sw + t]);
                    }
                }
                y.push(s);
            }
        }
    }
    y
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Activation, Requant};

    /// A 1×3×3 input through conv (2 channels, 2×2, padding 1, stride 2), x²+x, a 2×2 sum-pool,
    /// flatten, a checkpoint and a dense layer: every value worked out by hand below.
    fn small() -> Model {
        Model {
            name: "small".into(),
            input_shape: vec![1, 3, 3],
            input_range: [-1.0, 1.0],
            layers: vec![
                Layer::Conv2d(Conv2d {
                    in_channels: 1,
                    out_channels: 2,
                    kernel: [2, 2],
                    stride: [2, 2],
                    padding: [1, 1],
                    // Channel 0 sums its window; channel 1 takes the bottom-right entry, halved.
                    weight: vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5],
                    bias: Some(vec![0.0, -1.0]),
                }),
                Layer::Activation(Activation::SquarePlusX),
                Layer::SumPool(SumPool {
                    window: [2, 2],
                    stride: None,
                }),
                Layer::Flatten,
                Layer::Requant(Requant { shift: 3, bits: 8 }),
                Layer::Dense(Dense {
                    in_features: 2,
                    out_features: 2,
                    weight: vec![1.0, 0.0, 0.5, -1.0],
                    bias: Some(vec![0.25, 0.0]),
                }),
            ],
        }
    }

    #[test]
    fn every_layer_by_hand() {
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] / 10.
        let x: Vec<f64> = (1..=9).map(|v| f64::from(v) / 10.0).collect();
        let r = run(&small(), &x).unwrap();
        assert_eq!(r.batch, 1);
        // Padded 5×5 input, 2×2 windows at stride 2 → 2×2 output; window (i, j) covers padded
        // rows 2i, 2i+1 and columns 2j, 2j+1, i.e. input rows 2i−1, 2i (and likewise columns).
        // Channel 0: window sums {x00}, {x01 + x02}, {x10 + x20}, {x11 + x12 + x21 + x22}.
        // Channel 1: 0.5·(bottom-right entry of the window) − 1: x00, x02, x20, x22.
        let c0 = [0.1, 0.5, 1.1, 2.8];
        let c1 = [
            0.5 * 0.1 - 1.0,
            0.5 * 0.3 - 1.0,
            0.5 * 0.7 - 1.0,
            0.5 * 0.9 - 1.0,
        ];
        let conv: Vec<f64> = c0.iter().chain(&c1).copied().collect();
        close(&r.layers[0], &conv);
        let act: Vec<f64> = conv.iter().map(|v| v * v + v).collect();
        close(&r.layers[1], &act);
        let pooled = [act[..4].iter().sum::<f64>(), act[4..].iter().sum::<f64>()];
        close(&r.layers[2], &pooled);
        close(&r.layers[3], &pooled);
        // The checkpoint is the identity in float.
        close(&r.layers[4], &pooled);
        let out = [pooled[0] + 0.25, 0.5 * pooled[0] - pooled[1]];
        close(&r.layers[5], &out);
        close(r.output(), &out);
        // The numbers themselves, once: conv channel 0 = [0.1, 0.5, 1.1, 2.8] → x²+x sums to
        // 0.11 + 0.75 + 2.31 + 10.64 = 13.81.
        assert!((pooled[0] - 13.81).abs() < 1e-12);
        let (lo, hi) = r.extremes(1).unwrap();
        assert!((lo - act[4..].iter().copied().fold(f64::INFINITY, f64::min)).abs() < 1e-12);
        assert!((hi - 2.8 * 3.8).abs() < 1e-12);
        assert_eq!(r.extremes(6), None);
    }

    /// Convolutions of other strides, paddings and kernels against the definition, summed
    /// over the padded input directly.
    #[test]
    fn convolutions_match_the_definition() {
        for (kernel, stride, padding) in [
            ([3, 2], [1, 2], [0, 1]),
            ([2, 3], [2, 1], [1, 2]),
            ([1, 1], [3, 3], [0, 0]),
            ([3, 3], [1, 1], [2, 2]),
        ] {
            let (ci, co, h, w) = (2, 3, 5, 6);
            let c = Conv2d {
                in_channels: ci,
                out_channels: co,
                kernel,
                stride,
                padding,
                weight: (0..co * ci * kernel[0] * kernel[1])
                    .map(|i| ((i * 29) % 13) as f64 / 6.0 - 1.0)
                    .collect(),
                bias: Some(vec![0.5, -0.25, 0.0]),
            };
            let x: Vec<f64> = (0..ci * h * w)
                .map(|i| ((i * 17) % 23) as f64 / 11.0 - 1.0)
                .collect();
            let input = [ci, h, w];
            let out = output_of(&Layer::Conv2d(c.clone()), &input);
            let got = conv2d(&c, &input, &out, &x);
            let padded = |ch: usize, r: usize, q: usize| {
                let (r, q) = (
                    r as isize - padding[0] as isize,
                    q as isize - padding[1] as isize,
                );
                if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                    0.0
                } else {
                    x[(ch * h + r as usize) * w + q as usize]
                }
            };
            let mut want = Vec::new();
            for o in 0..co {
                for r in 0..out[1] {
                    for q in 0..out[2] {
                        let mut s = c.bias.as_ref().unwrap()[o];
                        for ch in 0..ci {
                            for u in 0..kernel[0] {
                                for t in 0..kernel[1] {
                                    s += c.weight[((o * ci + ch) * kernel[0] + u) * kernel[1] + t]
                                        * padded(ch, r * stride[0] + u, q * stride[1] + t);
                                }
                            }
                        }
                        want.push(s);
                    }
                }
            }
            close(&got, &want);
        }
    }

    fn output_of(layer: &Layer, input: &[usize]) -> Vec<usize> {
        crate::model::output_shape(layer, input, 0).unwrap()
    }

    #[test]
    fn batches_are_items_side_by_side() {
        let m = small();
        let a: Vec<f64> = (0..9).map(|v| f64::from(v) / 9.0 - 0.5).collect();
        let b: Vec<f64> = (0..9).map(|v| 0.3 - f64::from(v) / 20.0).collect();
        let both: Vec<f64> = a.iter().chain(&b).copied().collect();
        let r = run(&m, &both).unwrap();
        assert_eq!(r.batch, 2);
        let (ra, rb) = (run(&m, &a).unwrap(), run(&m, &b).unwrap());
        for (i, layer) in r.layers.iter().enumerate() {
            let n = layer.len() / 2;
            assert_eq!(layer[..n], ra.layers[i][..], "layer {i}");
            assert_eq!(layer[n..], rb.layers[i][..], "layer {i}");
        }
        assert_eq!(eval(&m, &both).unwrap(), r.output());
    }

    #[test]
    fn wrong_lengths_and_models_are_errors() {
        let m = small();
        assert_eq!(
            run(&m, &[0.0; 10]),
            Err(FloatError::Length {
                got: 10,
                per_item: 9
            })
        );
        assert!(run(&m, &[]).is_err());
        let mut bad = small();
        bad.layers.clear();
        assert_eq!(
            run(&bad, &[0.0; 9]),
            Err(FloatError::Model(ModelError::Empty))
        );
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }
}
