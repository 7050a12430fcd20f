//! A plain float evaluator of the model IR (one item), for checking imports numerically.

use verinfer_circuits::model::{Layer, Model};

/// Runs `model` on one item `x` (row-major, `model.input_shape`) in f64.
pub fn eval(model: &Model, x: &[f64]) -> Vec<f64> {
    let shapes = model.validate().expect("valid model");
    let mut v = x.to_vec();
    for (i, layer) in model.layers.iter().enumerate() {
        let sh = &shapes[i];
        let out = &shapes[i + 1];
        v = match layer {
            Layer::Conv2d(c) => {
                let (ci, h, w) = (sh[0], sh[1] as isize, sh[2] as isize);
                let (oh, ow) = (out[1], out[2]);
                let [kh, kw] = c.kernel;
                let mut y = vec![0.0; c.out_channels * oh * ow];
                for o in 0..c.out_channels {
                    for i0 in 0..oh {
                        for j0 in 0..ow {
                            let mut s = c.bias.as_ref().map_or(0.0, |b| b[o]);
                            for ch in 0..ci {
                                for u in 0..kh {
                                    for t in 0..kw {
                                        let r =
                                            (i0 * c.stride[0] + u) as isize - c.padding[0] as isize;
                                        let q =
                                            (j0 * c.stride[1] + t) as isize - c.padding[1] as isize;
                                        if r < 0 || q < 0 || r >= h || q >= w {
                                            continue;
                                        }
                                        let wv = c.weight[((o * ci + ch) * kh + u) * kw + t];
                                        s += wv
                                            * v[(ch * h as usize + r as usize) * w as usize
                                                + q as usize];
                                    }
                                }
                            }
                            y[(o * oh + i0) * ow + j0] = s;
                        }
                    }
                }
                y
            }
            Layer::Dense(d) => (0..d.out_features)
                .map(|o| {
                    let s: f64 = (0..d.in_features)
                        .map(|k| d.weight[o * d.in_features + k] * v[k])
                        .sum();
                    s + d.bias.as_ref().map_or(0.0, |b| b[o])
                })
                .collect(),
            Layer::SumPool(p) => {
                let (c, h, w) = (sh[0], sh[1], sh[2]);
                let (oh, ow) = (out[1], out[2]);
                let [sh0, sw0] = p.stride();
                let mut y = vec![0.0; c * oh * ow];
                for ch in 0..c {
                    for i0 in 0..oh {
                        for j0 in 0..ow {
                            let mut s = 0.0;
                            for u in 0..p.window[0] {
                                for t in 0..p.window[1] {
                                    s += v[(ch * h + i0 * sh0 + u) * w + j0 * sw0 + t];
                                }
                            }
                            y[(ch * oh + i0) * ow + j0] = s;
                        }
                    }
                }
                y
            }
            // A checkpoint is the identity in the float model.
            Layer::Flatten | Layer::Reshape { .. } | Layer::Requant(_) => v,
            Layer::Activation(a) => {
                let (a, b, c) = a.coefficients();
                v.iter().map(|x| a * x * x + b * x + c).collect()
            }
            Layer::Add(_) | Layer::Branch(_) => panic!("this evaluator runs chains only"),
        };
    }
    v
}
