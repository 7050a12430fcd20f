//! Quantization rules (docs/protocol.md §3), compilation (§4) and the bound analysis (§6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{
    bits_of, FieldChoice, LayeredCircuit, Layout, Op, QuantParams, WeightScale,
};
use verinfer_circuits::circuit::{ActivationOp, AddOp, Conv2dOp, DenseOp, GatesOp, SumPoolOp};
use verinfer_circuits::compile::{
    bound_analysis, compile, stage_bounds, CompileError, StageBounds,
};
use verinfer_circuits::field::FieldId;
use verinfer_circuits::gates::Gate;
use verinfer_circuits::model::{Activation, Conv2d, Dense, Layer, Model, SumPool};
use verinfer_circuits::quant::{
    check_input_ints, dequantize, quantize, quantize_activation, quantize_i64, quantize_input,
    quantize_linear, weight_scale_bits, InputError, QuantActivation, QuantError,
    MAX_PER_LAYER_WEIGHT_BITS,
};

fn params(input_bits: u32, weight_bits: u32, coef_bits: u32) -> QuantParams {
    QuantParams {
        input_bits,
        weight_bits,
        coef_bits,
        weight_scale: WeightScale::Uniform,
    }
}

fn dense(inp: usize, out: usize, weight: Vec<f64>, bias: Option<Vec<f64>>) -> Layer {
    Layer::Dense(Dense {
        in_features: inp,
        out_features: out,
        weight,
        bias,
    })
}

// ---------------------------------------------------------------------------------------------
// Quantization rules
// ---------------------------------------------------------------------------------------------

#[test]
fn rounding_is_half_away_from_zero() {
    assert_eq!(quantize(0.5, 0).unwrap(), 1);
    assert_eq!(quantize(-0.5, 0).unwrap(), -1);
    assert_eq!(quantize(1.5, 0).unwrap(), 2);
    assert_eq!(quantize(-1.5, 0).unwrap(), -2);
    assert_eq!(quantize(2.5, 0).unwrap(), 3);
    assert_eq!(quantize(-2.5, 0).unwrap(), -3);
    // Just below one half rounds to zero.
    assert_eq!(quantize(0.499_999_999_999_999_94, 0).unwrap(), 0);
    assert_eq!(quantize(-0.499_999_999_999_999_94, 0).unwrap(), 0);
    // x · 2^s: 0.125 · 4 = 0.5 → 1; 0.375 · 4 = 1.5 → 2; 0.3 · 256 = 76.8 → 77.
    assert_eq!(quantize(0.125, 2).unwrap(), 1);
    assert_eq!(quantize(-0.125, 2).unwrap(), -1);
    assert_eq!(quantize(0.375, 2).unwrap(), 2);
    assert_eq!(quantize(-0.375, 2).unwrap(), -2);
    assert_eq!(quantize(0.3, 8).unwrap(), 77);
    assert_eq!(quantize(-0.3, 8).unwrap(), -77);
    assert_eq!(quantize_i64(0.6, 3).unwrap(), 5);
    assert!(matches!(
        quantize(f64::NAN, 4),
        Err(QuantError::NonFinite(_))
    ));
    assert!(quantize(f64::INFINITY, 0).is_err());
    assert!(quantize(1e39, 0).is_err());
    assert!(quantize_i64(1e19, 0).is_err());
    assert_eq!(dequantize(77, 8), 77.0 / 256.0);
    assert_eq!(dequantize(-3, 1), -1.5);
}

#[test]
fn activation_coefficients_follow_the_contract() {
    // x² at scale 8: X², scale 16.
    assert_eq!(
        quantize_activation(&Activation::Square, 8, 8).unwrap(),
        QuantActivation {
            coefficients: vec![0, 0, 1],
            scale_bits: 16
        }
    );
    // x² + x at scale 8: X² + 2^8·X, scale 16.
    assert_eq!(
        quantize_activation(&Activation::SquarePlusX, 8, 8).unwrap(),
        QuantActivation {
            coefficients: vec![0, 256, 1],
            scale_bits: 16
        }
    );
    // Integer quadratic 2x² − 3x + 5 at scale 2: 2X² − 12X + 80, scale 4.
    let q = quantize_activation(
        &Activation::Quadratic {
            a: 2.0,
            b: -3.0,
            c: 5.0,
        },
        2,
        8,
    )
    .unwrap();
    assert_eq!(
        q,
        QuantActivation {
            coefficients: vec![80, -12, 2],
            scale_bits: 4
        }
    );
    // x = 0.75 → X = 3: 2·9 − 36 + 80 = 62 = 3.875 · 16 = f(0.75) · 2^4.
    let k = &q.coefficients;
    assert_eq!(k[2] * 9 + k[1] * 3 + k[0], 62);
    // 0.5x² + 0.25x + 0.125 at scale 3, coef_bits 4: q(a) = 8, q(b) = 4 → 4·2^3 = 32,
    // q(c) = 2 → 2·2^6 = 128; scale 2·3 + 4 = 10.
    let q = quantize_activation(
        &Activation::Quadratic {
            a: 0.5,
            b: 0.25,
            c: 0.125,
        },
        3,
        4,
    )
    .unwrap();
    assert_eq!(
        q,
        QuantActivation {
            coefficients: vec![128, 32, 8],
            scale_bits: 10
        }
    );
    // x = 0.5 → X = 4: 8·16 + 32·4 + 128 = 384 = 0.375 · 2^10.
    let k = &q.coefficients;
    assert_eq!(dequantize(k[2] * 16 + k[1] * 4 + k[0], q.scale_bits), 0.375);
    // A coefficient whose power of two overflows i128.
    assert!(matches!(
        quantize_activation(&Activation::SquarePlusX, 127, 8),
        Err(QuantError::Coefficient { .. })
    ));
    // x² has no power-of-two terms: any scale works.
    assert_eq!(
        quantize_activation(&Activation::Square, 200, 8)
            .unwrap()
            .scale_bits,
        400
    );
}

#[test]
fn linear_weights_and_bias_scales() {
    let p = params(8, 4, 8);
    let q = quantize_linear(&[0.5, -0.25, 0.3], Some(&[0.1]), 1, 8, &p).unwrap();
    // W at 2^4: 8, −4, round(4.8) = 5; bias at 2^(8+4): round(409.6) = 410.
    assert_eq!(q.weight, vec![8, -4, 5]);
    assert_eq!(q.bias, vec![410]);
    assert_eq!(q.weight_scale_bits, 4);
    assert_eq!(q.scale_bits, 12);
    let q = quantize_linear(&[1.0, 2.0], None, 2, 3, &p).unwrap();
    assert_eq!(q.bias, vec![0, 0]);
    assert!(matches!(
        quantize_linear(&[1.0], Some(&[0.0, 1.0]), 1, 3, &p),
        Err(QuantError::BiasLength { .. })
    ));
    // Uniform weights must fit i64.
    assert!(quantize_linear(&[1.0], None, 1, 0, &params(8, 70, 8)).is_err());
}

#[test]
fn per_layer_weight_scale_picks_documented_bits() {
    let per = |weight_bits| QuantParams {
        weight_scale: WeightScale::PerLayer,
        ..params(8, weight_bits, 8)
    };
    // max |W| = 0.3, 8 signed bits (≤ 127): 0.3·256 = 76.8 → 77 fits, 0.3·512 = 153.6 does not.
    assert_eq!(weight_scale_bits(&[0.1, -0.3, 0.2], &per(8)).unwrap(), 8);
    // max |W| = 3, 4 signed bits (≤ 7): 3·2 = 6 fits, 3·4 = 12 does not.
    assert_eq!(weight_scale_bits(&[-3.0, 1.0], &per(4)).unwrap(), 1);
    // Rounding decides: 0.99·128 = 126.72 → 127 fits; 0.996·128 = 127.49 → 127 fits;
    // 0.997·128 = 127.6 → 128 does not.
    assert_eq!(weight_scale_bits(&[0.99], &per(8)).unwrap(), 7);
    assert_eq!(weight_scale_bits(&[0.996], &per(8)).unwrap(), 7);
    assert_eq!(weight_scale_bits(&[-0.997], &per(8)).unwrap(), 6);
    // Tiny or zero weights are capped.
    assert_eq!(
        weight_scale_bits(&[1e-20], &per(8)).unwrap(),
        MAX_PER_LAYER_WEIGHT_BITS
    );
    assert_eq!(
        weight_scale_bits(&[0.0, 0.0], &per(8)).unwrap(),
        MAX_PER_LAYER_WEIGHT_BITS
    );
    // Huge weights: even scale 2^0 does not fit 8 signed bits.
    assert!(matches!(
        weight_scale_bits(&[1000.0], &per(8)),
        Err(QuantError::WeightTooLarge { .. })
    ));
    assert!(matches!(
        weight_scale_bits(&[0.5], &per(1)),
        Err(QuantError::BadWeightBits(1))
    ));
    // Uniform: always weight_bits.
    assert_eq!(weight_scale_bits(&[1000.0], &params(8, 5, 8)).unwrap(), 5);
    // quantize_linear uses the chosen bits for weights, output scale and bias.
    let q = quantize_linear(&[0.1, -0.3], Some(&[0.5]), 1, 6, &per(8)).unwrap();
    assert_eq!(q.weight_scale_bits, 8);
    assert_eq!(q.weight, vec![26, -77]);
    assert_eq!(q.scale_bits, 14);
    assert_eq!(q.bias, vec![8192]);
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

fn small_cnn() -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut w = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect() };
    Model {
        name: "small".into(),
        input_shape: vec![1, 8, 8],
        input_range: [0.0, 1.0],
        layers: vec![
            Layer::Conv2d(Conv2d {
                in_channels: 1,
                out_channels: 3,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
                weight: w(27),
                bias: Some(w(3)),
            }),
            Layer::Activation(Activation::SquarePlusX),
            Layer::SumPool(SumPool {
                window: [2, 2],
                stride: None,
            }),
            Layer::Flatten,
            Layer::Activation(Activation::Square),
            dense(48, 10, w(480), Some(w(10))),
        ],
    }
}

#[test]
fn compiles_a_small_cnn() {
    let c = compile(&small_cnn(), &QuantParams::default(), FieldChoice::Auto).unwrap();
    // Flatten emits no layer.
    assert_eq!(c.layers.len(), 5);
    let labels: Vec<&str> = c.layers.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "conv2d 1→3 3x3 s1 p1",
            "square_plus_x",
            "sum_pool 2x2/2",
            "square",
            "dense 48→10"
        ]
    );
    let dims: Vec<(Vec<usize>, Vec<usize>)> = c
        .layers
        .iter()
        .map(|l| (l.input.dims.clone(), l.output.dims.clone()))
        .collect();
    assert_eq!(
        dims,
        vec![
            (vec![1, 8, 8], vec![3, 8, 8]),
            (vec![3, 8, 8], vec![3, 8, 8]),
            (vec![3, 8, 8], vec![3, 4, 4]),
            // After Flatten the activation keeps the [C, H, W] layout ...
            (vec![3, 4, 4], vec![3, 4, 4]),
            // ... and so does the dense layer's input.
            (vec![3, 4, 4], vec![10]),
        ]
    );
    match &c.layers[4].op {
        Op::Dense(DenseOp {
            in_features,
            out_features,
            weight,
            bias,
        }) => {
            assert_eq!((*in_features, *out_features), (48, 10));
            assert_eq!(weight.len(), 480);
            assert_eq!(bias.len(), 10);
        }
        other => panic!("expected dense, got {other:?}"),
    }
    match &c.layers[1].op {
        Op::Activation(ActivationOp { a, b, c }) => assert_eq!((*a, *b, *c), (1, 1 << 16, 0)),
        other => panic!("expected activation, got {other:?}"),
    }
    // Scales: input 8, conv 8+8, x²+x 2·16, pool same, x² 2·32, dense +8.
    assert_eq!(c.input_scale, 8);
    let scales: Vec<u32> = c.layers.iter().map(|l| l.scale_bits).collect();
    assert_eq!(scales, [16, 32, 32, 64, 72]);
    assert_eq!(c.output_scale(), 72);
    assert_eq!((c.input_min, c.input_max), (0, 256));
    assert_eq!(c.field, FieldId::M127);
    assert!(
        c.field_reason.starts_with("auto: max ") && c.field_reason.contains("fits m127"),
        "{}",
        c.field_reason
    );
    assert!(c.check().is_ok());
    // The weights are those of §3.
    let model = small_cnn();
    if let (Layer::Conv2d(m), Op::Conv2d(Conv2dOp { weight, bias, .. })) =
        (&model.layers[0], &c.layers[0].op)
    {
        for (wq, wf) in weight.iter().zip(&m.weight) {
            assert_eq!(*wq as i128, quantize(*wf, 8).unwrap());
        }
        for (bq, bf) in bias.iter().zip(m.bias.as_ref().unwrap()) {
            assert_eq!(*bq, quantize(*bf, 16).unwrap());
        }
    }
    // The bound analysis reproduces the stored bounds.
    let bounds = bound_analysis(&c).unwrap();
    let stored: Vec<u32> = c.layers.iter().map(|l| l.bound_bits).collect();
    assert_eq!(bounds.iter().map(|b| b.bits()).collect::<Vec<_>>(), stored);
    assert!(bounds.iter().all(|b| b.exact));
    // Labels for non-square stride and padding.
    let m = Model {
        name: String::new(),
        input_shape: vec![2, 5, 7],
        input_range: [-1.0, 1.0],
        layers: vec![
            Layer::Conv2d(Conv2d {
                in_channels: 2,
                out_channels: 4,
                kernel: [3, 2],
                stride: [2, 1],
                padding: [1, 0],
                weight: vec![0.1; 48],
                bias: None,
            }),
            Layer::SumPool(SumPool {
                window: [2, 3],
                stride: Some([1, 2]),
            }),
            Layer::Activation(Activation::Quadratic {
                a: 0.5,
                b: 1.0,
                c: 0.25,
            }),
        ],
    };
    let c = compile(&m, &QuantParams::default(), FieldChoice::M127).unwrap();
    assert_eq!(c.layers[0].label, "conv2d 2→4 3x2 s2x1 p1x0");
    assert_eq!(c.layers[1].label, "sum_pool 2x3/1x2");
    assert_eq!(c.layers[2].label, "quadratic(0.5,1,0.25)");
    assert!(c.field_reason.starts_with("requested m127"));
}

#[test]
fn per_layer_weight_scale_in_compiled_circuit() {
    let m = Model {
        name: String::new(),
        input_shape: vec![2],
        input_range: [-1.0, 1.0],
        layers: vec![
            dense(2, 2, vec![0.01, -0.02, 0.005, 0.0], None),
            dense(2, 1, vec![3.0, -1.0], Some(vec![0.5])),
        ],
    };
    let p = QuantParams {
        weight_scale: WeightScale::PerLayer,
        ..params(4, 8, 8)
    };
    let c = compile(&m, &p, FieldChoice::Auto).unwrap();
    // Layer 0: max 0.02 → 0.02·2^12 = 81.92 fits 127, 2^13 does not: s_w = 12, scale 16.
    // Layer 1: max 3 → 3·2^5 = 96 fits, 2^6 does not: s_w = 5, scale 21.
    assert_eq!(c.layers[0].scale_bits, 16);
    assert_eq!(c.layers[1].scale_bits, 21);
    match &c.layers[1].op {
        Op::Dense(DenseOp { weight, bias, .. }) => {
            assert_eq!(weight, &vec![96, -32]);
            assert_eq!(bias, &vec![1 << 20]);
        }
        other => panic!("expected dense, got {other:?}"),
    }
    // Per-layer bits are part of the digest.
    let u = compile(&m, &params(4, 8, 8), FieldChoice::Auto).unwrap();
    assert_ne!(u.digest(), c.digest());
    // Huge weights are refused with the layer named.
    let mut big = m.clone();
    big.layers[1] = dense(2, 1, vec![1000.0, 0.0], None);
    let err = compile(&big, &p, FieldChoice::Auto).unwrap_err();
    assert!(
        matches!(
            err,
            CompileError::Quant {
                layer: 1,
                source: QuantError::WeightTooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn flatten_and_reshape_layouts() {
    let base = |layers: Vec<Layer>| Model {
        name: String::new(),
        input_shape: vec![2, 4, 4],
        input_range: [-1.0, 1.0],
        layers,
    };
    // A 1-D reshape and a reshape to the current layout are free.
    let m = base(vec![
        Layer::Reshape { shape: vec![32] },
        Layer::Reshape {
            shape: vec![2, 4, 4],
        },
        Layer::Activation(Activation::Square),
    ]);
    let c = compile(&m, &QuantParams::default(), FieldChoice::Auto).unwrap();
    assert_eq!(c.layers.len(), 1);
    assert_eq!(c.layers[0].input.dims, vec![2, 4, 4]);
    // Only free layers: nothing to prove.
    let m = base(vec![Layer::Flatten]);
    assert_eq!(
        compile(&m, &QuantParams::default(), FieldChoice::Auto).unwrap_err(),
        CompileError::NoLayers
    );
    // [2, 4, 4] → [4, 2, 4]: relay gates, all positions real (powers of two).
    let m = base(vec![
        Layer::Reshape {
            shape: vec![4, 2, 4],
        },
        Layer::Activation(Activation::Square),
    ]);
    let c = compile(&m, &QuantParams::default(), FieldChoice::Auto).unwrap();
    assert_eq!(c.layers.len(), 2);
    assert_eq!(c.layers[0].label, "reshape 2x4x4→4x2x4");
    assert_eq!(c.layers[0].output.dims, vec![4, 2, 4]);
    assert_eq!(c.layers[1].input.dims, vec![4, 2, 4]);
    match &c.layers[0].op {
        Op::Gates(GatesOp { layer }) => {
            assert_eq!(layer.gates.len(), 32);
            for (i, g) in layer.gates.iter().enumerate() {
                // Both layouts are unpadded, so the relabelling is the identity on offsets.
                assert_eq!(*g, Gate::Relay(i as u32));
            }
        }
        other => panic!("expected gates, got {other:?}"),
    }
    assert_eq!(c.layers[0].scale_bits, c.input_scale);
    // [2, 3, 4] → [3, 2, 4]: padded layouts, constant zero at output padding.
    let m = Model {
        input_shape: vec![2, 3, 4],
        ..base(vec![Layer::Reshape {
            shape: vec![3, 2, 4],
        }])
    };
    let c = compile(&m, &QuantParams::default(), FieldChoice::Auto).unwrap();
    let (inl, outl) = (Layout::new(vec![2, 3, 4]), Layout::new(vec![3, 2, 4]));
    match &c.layers[0].op {
        Op::Gates(GatesOp { layer }) => {
            assert_eq!(layer.gates.len(), outl.item_len_padded());
            let mut relays = 0;
            for (g, gate) in layer.gates.iter().enumerate() {
                match outl.padded_offsets().iter().position(|&o| o == g) {
                    Some(i) => {
                        assert_eq!(*gate, Gate::Relay(inl.padded_offset(i) as u32));
                        relays += 1;
                    }
                    None => assert_eq!(*gate, Gate::Const(0)),
                }
            }
            assert_eq!(relays, 24);
        }
        other => panic!("expected gates, got {other:?}"),
    }
    // The relay layer preserves every real value: check with the reference inference.
    let x: Vec<i128> = (0..24).map(|v| v - 12).collect();
    let stages = reference(&c, &x);
    assert_eq!(stages[1], x);
}

#[test]
fn size_limits_are_refused() {
    let m = Model {
        name: String::new(),
        input_shape: vec![1 << 14, 1 << 14],
        input_range: [0.0, 1.0],
        layers: vec![Layer::Activation(Activation::Square)],
    };
    assert!(compile(&m, &QuantParams::default(), FieldChoice::Auto).is_err());
    // Too many multiply-accumulates: refused before the bound analysis runs.
    let m = Model {
        name: String::new(),
        input_shape: vec![1, 4096, 4096],
        input_range: [0.0, 1.0],
        layers: vec![Layer::Conv2d(Conv2d {
            in_channels: 1,
            out_channels: 1,
            kernel: [100, 100],
            stride: [1, 1],
            padding: [0, 0],
            weight: vec![0.01; 10_000],
            bias: None,
        })],
    };
    assert!(matches!(
        compile(&m, &QuantParams::default(), FieldChoice::Auto),
        Err(CompileError::TooLarge { layer: 0, .. })
    ));
    // Kernel larger than the input.
    let m = Model {
        name: String::new(),
        input_shape: vec![1, 2, 2],
        input_range: [0.0, 1.0],
        layers: vec![Layer::Conv2d(Conv2d {
            in_channels: 1,
            out_channels: 1,
            kernel: [5, 5],
            stride: [1, 1],
            padding: [0, 0],
            weight: vec![0.0; 25],
            bias: None,
        })],
    };
    assert!(matches!(
        compile(&m, &QuantParams::default(), FieldChoice::Auto),
        Err(CompileError::Model(_))
    ));
    // An input range that does not quantize.
    let m = Model {
        name: String::new(),
        input_shape: vec![2],
        input_range: [0.0, 1e40],
        layers: vec![Layer::Activation(Activation::Square)],
    };
    assert!(matches!(
        compile(&m, &QuantParams::default(), FieldChoice::Auto),
        Err(CompileError::InputRange { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Bound analysis
// ---------------------------------------------------------------------------------------------

/// Plain i128 inference of one item over real row-major values: every stage, input first.
fn reference(c: &LayeredCircuit, x: &[i128]) -> Vec<Vec<i128>> {
    let mut stages = vec![x.to_vec()];
    for (k, l) in c.layers.iter().enumerate() {
        let reads = l.op.reads(k);
        let x = &stages[reads[0]];
        let (i, o) = (&l.input.dims, &l.output.dims);
        let y: Vec<i128> = match &l.op {
            Op::Conv2d(Conv2dOp {
                in_channels,
                kernel,
                stride,
                padding,
                weight,
                bias,
                ..
            }) => {
                let (h, w) = (i[1] as i64, i[2] as i64);
                let mut y = vec![];
                for oc in 0..o[0] {
                    for r in 0..o[1] {
                        for col in 0..o[2] {
                            let mut acc = bias[oc];
                            for ch in 0..*in_channels {
                                for u in 0..kernel[0] {
                                    for v in 0..kernel[1] {
                                        let ir = (r * stride[0] + u) as i64 - padding[0] as i64;
                                        let ic = (col * stride[1] + v) as i64 - padding[1] as i64;
                                        if ir < 0 || ir >= h || ic < 0 || ic >= w {
                                            continue;
                                        }
                                        let wt = weight[((oc * in_channels + ch) * kernel[0] + u)
                                            * kernel[1]
                                            + v];
                                        acc += wt as i128
                                            * x[(ch * i[1] + ir as usize) * i[2] + ic as usize];
                                    }
                                }
                            }
                            y.push(acc);
                        }
                    }
                }
                y
            }
            Op::Dense(DenseOp {
                in_features,
                out_features,
                weight,
                bias,
            }) => (0..*out_features)
                .map(|oo| {
                    bias[oo]
                        + (0..*in_features)
                            .map(|k| weight[oo * in_features + k] as i128 * x[k])
                            .sum::<i128>()
                })
                .collect(),
            Op::SumPool(SumPoolOp { window, stride }) => {
                let mut y = vec![];
                for ch in 0..o[0] {
                    for r in 0..o[1] {
                        for col in 0..o[2] {
                            let mut acc = 0;
                            for u in 0..window[0] {
                                for v in 0..window[1] {
                                    acc += x[(ch * i[1] + r * stride[0] + u) * i[2]
                                        + col * stride[1]
                                        + v];
                                }
                            }
                            y.push(acc);
                        }
                    }
                }
                y
            }
            Op::Activation(ActivationOp { a, b, c }) => {
                x.iter().map(|&v| a * v * v + b * v + c).collect()
            }
            Op::Mul(m) => x.iter().zip(&stages[m.with]).map(|(a, b)| a * b).collect(),
            Op::Polynomial(p) => x
                .iter()
                .map(|&v| {
                    p.coefficients
                        .iter()
                        .zip(0u32..)
                        .map(|(c, k)| c * v.pow(k))
                        .sum()
                })
                .collect(),
            // ⌊(v + 2^(k−1)) / 2^k⌋ by Euclidean division, then the clamp.
            Op::Requant(op) => x
                .iter()
                .map(|&v| {
                    let q = match op.shift {
                        0 => v,
                        k => (v + (1i128 << (k - 1))).div_euclid(1i128 << k),
                    };
                    q.clamp(-(1 << (op.bits - 1)), (1 << (op.bits - 1)) - 1)
                })
                .collect(),
            Op::Add(AddOp {
                with,
                lift,
                subtract,
            }) => x
                .iter()
                .zip(&stages[*with])
                .map(|(&a, &b)| {
                    let b = if *subtract { -b } else { b };
                    a * (1i128 << lift[0]) + b * (1i128 << lift[1])
                })
                .collect(),
            Op::Branch(_) | Op::Fork(_) => x.clone(),
            Op::Gates(GatesOp { layer }) => {
                let mut padded = vec![0i128; l.input.item_len_padded()];
                for (k, off) in l.input.padded_offsets().into_iter().enumerate() {
                    padded[off] = x[k];
                }
                let gates: Vec<i128> = layer
                    .gates
                    .iter()
                    .map(|g| match *g {
                        Gate::Relay(a) => padded[a as usize],
                        Gate::Const(k) => k,
                        Gate::Add(a, b) => padded[a as usize] + padded[b as usize],
                        Gate::Sub(a, b) => padded[a as usize] - padded[b as usize],
                        Gate::Mul(a, b) => padded[a as usize] * padded[b as usize],
                        Gate::Scale(a, k) => padded[a as usize] * k,
                        Gate::AddConst(a, k) => padded[a as usize] + k,
                    })
                    .collect();
                l.output
                    .padded_offsets()
                    .into_iter()
                    .map(|off| gates[off])
                    .collect()
            }
        };
        stages.push(y);
    }
    stages
}

/// Checks that every value of every stage lies within its element's bound from the analysis
/// and below 2^output_bits (and so below 2^bound_bits); records the largest |value| per layer.
fn check_covered(c: &LayeredCircuit, x: &[i128], seen: &mut [u128]) {
    assert!(x.iter().all(|&v| c.input_min <= v && v <= c.input_max));
    let bounds = bound_analysis(c).unwrap();
    let elems = stage_bounds(c).unwrap();
    let stages = reference(c, x);
    for (k, l) in c.layers.iter().enumerate() {
        assert!(bounds[k].output_bits <= l.bound_bits);
        for (e, &v) in stages[k + 1].iter().enumerate() {
            assert!(
                elems[k + 1].contains(e, v),
                "layer {k} ({}): value {v} of element {e} outside {:?}",
                l.label,
                match &elems[k + 1] {
                    StageBounds::Exact(iv) => format!("{:?}", iv[e]),
                    StageBounds::Magnitude(m) => format!("|v| <= {}", m[e]),
                }
            );
            assert!(
                bits_of(v.unsigned_abs()) <= bounds[k].output_bits,
                "layer {k} ({}): value {v} exceeds 2^{}",
                l.label,
                bounds[k].output_bits
            );
            seen[k] = seen[k].max(v.unsigned_abs());
        }
    }
}

fn random_input(c: &LayeredCircuit, rng: &mut ChaCha8Rng) -> Vec<i128> {
    let n = c.input.item_len();
    match rng.gen_range(0..3) {
        // Corners of the input box.
        0 => (0..n)
            .map(|_| if rng.gen() { c.input_min } else { c.input_max })
            .collect(),
        _ => (0..n)
            .map(|_| rng.gen_range(c.input_min..=c.input_max))
            .collect(),
    }
}

#[test]
fn bounds_cover_every_value_exhaustively() {
    // Two inputs in [−4, 4] (range [−1, 1] at 2 bits): all 81 inputs.
    let m = Model {
        name: String::new(),
        input_shape: vec![2],
        input_range: [-1.0, 1.0],
        layers: vec![
            dense(
                2,
                3,
                vec![0.75, -0.5, 0.25, 1.0, -1.0, -0.25],
                Some(vec![0.1, -0.2, 0.0]),
            ),
            Layer::Activation(Activation::Quadratic {
                a: 0.5,
                b: -1.0,
                c: 0.25,
            }),
            dense(3, 2, vec![1.0, -1.0, 0.5, -0.75, 0.25, 1.0], None),
            Layer::Activation(Activation::SquarePlusX),
        ],
    };
    let c = compile(&m, &params(2, 3, 3), FieldChoice::Auto).unwrap();
    let mut seen = vec![0u128; c.layers.len()];
    for a in c.input_min..=c.input_max {
        for b in c.input_min..=c.input_max {
            check_covered(&c, &[a, b], &mut seen);
        }
    }
    // The first layer's intervals are attained exactly.
    let out_bits = bound_analysis(&c).unwrap()[0].output_bits;
    assert_eq!(bits_of(seen[0]), out_bits);
}

#[test]
fn bounds_cover_sampled_values_of_a_cnn() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut w = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
    let m = Model {
        name: String::new(),
        input_shape: vec![2, 5, 6],
        input_range: [-1.0, 0.75],
        layers: vec![
            Layer::Conv2d(Conv2d {
                in_channels: 2,
                out_channels: 3,
                kernel: [3, 2],
                stride: [2, 1],
                padding: [1, 1],
                weight: w(36),
                bias: Some(w(3)),
            }),
            Layer::Activation(Activation::SquarePlusX),
            Layer::SumPool(SumPool {
                window: [2, 2],
                stride: Some([1, 2]),
            }),
            Layer::Reshape {
                shape: vec![3, 3, 2],
            },
            Layer::Flatten,
            Layer::Activation(Activation::Quadratic {
                a: -0.375,
                b: 0.5,
                c: 1.0,
            }),
            dense(18, 4, w(72), Some(w(4))),
        ],
    };
    let c = compile(&m, &params(3, 4, 4), FieldChoice::Auto).unwrap();
    assert_eq!(c.layers.len(), 6);
    assert!(matches!(c.layers[3].op, Op::Gates(GatesOp { .. })));
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut seen = vec![0u128; c.layers.len()];
    for _ in 0..3000 {
        let x = random_input(&c, &mut rng);
        check_covered(&c, &x, &mut seen);
    }
}

/// With positive weights everywhere, every element's upper (lower) bound is attained at the all-max
/// (all-min) input: the per-element intervals must match element by element, which pins down the
/// windows, strides, padding and relabelling of every layer.
#[test]
fn element_bounds_are_attained_with_positive_weights() {
    let m = Model {
        name: String::new(),
        input_shape: vec![2],
        input_range: [0.5, 1.0],
        layers: vec![
            dense(
                2,
                16,
                (0..32).map(|i| (i + 1) as f64 / 32.0).collect(),
                Some(vec![0.125; 16]),
            ),
            Layer::Reshape {
                shape: vec![1, 4, 4],
            },
            Layer::SumPool(SumPool {
                window: [2, 1],
                stride: Some([2, 1]),
            }),
            Layer::Conv2d(Conv2d {
                in_channels: 1,
                out_channels: 2,
                kernel: [3, 3],
                stride: [1, 2],
                padding: [1, 1],
                weight: (0..18).map(|i| (i + 1) as f64 / 16.0).collect(),
                bias: Some(vec![0.5, 0.25]),
            }),
            Layer::Activation(Activation::SquarePlusX),
            Layer::SumPool(SumPool {
                window: [1, 2],
                stride: Some([1, 1]),
            }),
            Layer::Flatten,
            dense(4, 2, vec![0.5, 0.25, 1.0, 0.75, 0.125, 1.5, 0.5, 2.0], None),
        ],
    };
    let c = compile(&m, &params(4, 4, 4), FieldChoice::Auto).unwrap();
    assert_eq!(c.layers.len(), 7);
    let elems = stage_bounds(&c).unwrap();
    for (x, pick_hi) in [(c.input_max, true), (c.input_min, false)] {
        let stages = reference(&c, &[x, x]);
        for (k, stage) in stages.iter().enumerate() {
            let StageBounds::Exact(iv) = &elems[k] else {
                panic!("stage {k} is not exact");
            };
            let attained: Vec<i128> = iv
                .iter()
                .map(|&(lo, hi)| if pick_hi { hi } else { lo })
                .collect();
            assert_eq!(&attained, stage, "stage {k}");
        }
    }
}

#[test]
fn bound_is_tight_for_positive_dense() {
    // y = Σ W·x with positive weights: the maximum is at input_max.
    let m = Model {
        name: String::new(),
        input_shape: vec![3],
        input_range: [-0.5, 1.0],
        layers: vec![dense(3, 1, vec![1.0, 0.5, 0.25], None)],
    };
    let c = compile(&m, &params(8, 8, 8), FieldChoice::Auto).unwrap();
    let y = reference(&c, &[c.input_max; 3])[1][0];
    // (256 + 128 + 64) · 256 = 114688: 17 bits.
    assert_eq!(y, 114_688);
    assert_eq!(c.layers[0].bound_bits, bits_of(y as u128));
    assert_eq!(c.layers[0].bound_bits, 17);
    assert_eq!(bound_analysis(&c).unwrap()[0].output_bits, 17);
    // Increase the weight a little: the bound moves with it (not a coarse bit count).
    let m2 = Model {
        layers: vec![dense(3, 1, vec![1.0, 0.5, 1.5], None)],
        ..m
    };
    let c2 = compile(&m2, &params(8, 8, 8), FieldChoice::Auto).unwrap();
    // (256 + 128 + 384) · 256 = 196608: 18 bits.
    assert_eq!(c2.layers[0].bound_bits, 18);
}

#[test]
fn activation_bounds_and_intermediates() {
    let act = |a: Activation, lo: f64, hi: f64, bits: u32| {
        let m = Model {
            name: String::new(),
            input_shape: vec![1],
            input_range: [lo, hi],
            layers: vec![Layer::Activation(a)],
        };
        let c = compile(&m, &params(bits, 8, 8), FieldChoice::Auto).unwrap();
        bound_analysis(&c).unwrap()[0]
    };
    // x² on [−1, 1] at 4 bits: X ∈ [−16, 16], max 256 → 9 bits.
    let b = act(Activation::Square, -1.0, 1.0, 4);
    assert_eq!((b.output_bits, b.intermediate_bits), (9, 9));
    // x² + x: X² + 16X, max 512 at X = 16 → 10 bits.
    let b = act(Activation::SquarePlusX, -1.0, 1.0, 4);
    assert_eq!((b.output_bits, b.intermediate_bits), (10, 10));
    // (x − 2)² = x² − 4x + 4 on [0, 4], scale 0: values in [0, 4] (3 bits), but
    // |X²| + |4X| + 4 reaches 36 (6 bits), which bound_bits must cover.
    let b = act(
        Activation::Quadratic {
            a: 1.0,
            b: -4.0,
            c: 4.0,
        },
        0.0,
        4.0,
        0,
    );
    assert_eq!((b.output_bits, b.intermediate_bits, b.bits()), (3, 6, 6));
    // The vertex matters: −x² + 3x on [0, 3] at scale 0 has max 2 at X = 1, 2 (not 0 at the
    // ends); the minimum 0 is at the ends. Output bits 2.
    let b = act(
        Activation::Quadratic {
            a: -1.0,
            b: 3.0,
            c: 0.0,
        },
        0.0,
        3.0,
        0,
    );
    assert_eq!(b.output_bits, 2);
    // x² on [0.5, 1] at 1 bit: X ∈ [1, 2], min 1 (not the vertex at 0), max 4 → 3 bits.
    let b = act(Activation::Square, 0.5, 1.0, 1);
    assert_eq!(b.output_bits, 3);
}

fn deep_square_model(input_bits: u32) -> (Model, QuantParams) {
    // Dense with weights 1 at 16 bits on 4 inputs in [−1, 1] at 16 bits: |y| ≤ 4·2^32 = 2^34
    // (35 bits); x² → 2^68 (69 bits); x² → 2^136 (137 bits).
    let m = Model {
        name: "deep".into(),
        input_shape: vec![4],
        input_range: [-1.0, 1.0],
        layers: vec![
            dense(4, 4, vec![1.0; 16], None),
            Layer::Activation(Activation::Square),
            Layer::Activation(Activation::Square),
        ],
    };
    (m, params(input_bits, 16, 8))
}

#[test]
fn too_large_for_m127_needs_bn254() {
    let (m, p) = deep_square_model(16);
    let err = compile(&m, &p, FieldChoice::M127).unwrap_err();
    match &err {
        CompileError::FieldTooSmall {
            layer,
            bits,
            field,
            capacity,
            ..
        } => {
            assert_eq!(*layer, Some(2));
            assert!((137..=138).contains(bits), "{bits}");
            assert_eq!((*field, *capacity), (FieldId::M127, 126));
        }
        other => panic!("expected FieldTooSmall, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("layer 2 (square"), "{msg}");
    assert!(msg.contains("--field bn254"), "{msg}");
    assert!(msg.contains("--weight-bits"), "{msg}");

    let c = compile(&m, &p, FieldChoice::Bn254).unwrap();
    assert_eq!(c.field, FieldId::Bn254);
    let auto = compile(&m, &p, FieldChoice::Auto).unwrap();
    assert_eq!(auto.field, FieldId::Bn254);
    assert!(auto.field_reason.contains("bn254"), "{}", auto.field_reason);
    let bounds = bound_analysis(&auto).unwrap();
    assert_eq!(bounds[0].output_bits, 35);
    assert_eq!(bounds[1].output_bits, 69);
    assert!(bounds[1].exact);
    // 2^136 overflows i128: the last layer falls back to f64 bounds.
    assert!(!bounds[2].exact);
    assert!((137..=138).contains(&bounds[2].output_bits));
    // At the edge of i128: X = ±2^14 → dense 2^32 (33 bits) → 2^64 (65 bits) → 2^128 (129 bits).
    let (m, p) = deep_square_model(14);
    let c = compile(&m, &p, FieldChoice::Auto).unwrap();
    assert_eq!(c.layers[2].bound_bits, 129);
    assert_eq!(c.field, FieldId::Bn254);
    // Fewer bits fit M127: X ≤ 2^8, W = 2^8 → 2^18 (19 bits) → 2^36 (37) → 2^72 (73).
    let (m, p) = deep_square_model(8);
    let p = QuantParams {
        weight_bits: 8,
        ..p
    };
    let c = compile(&m, &p, FieldChoice::M127).unwrap();
    assert_eq!(c.layers[2].bound_bits, 73);
    assert_eq!(c.field, FieldId::M127);
    // A third square needs ~270 bits: no field fits, naming the layer.
    let (mut m, p) = deep_square_model(16);
    m.layers.push(Layer::Activation(Activation::Square));
    for choice in [FieldChoice::Auto, FieldChoice::M127, FieldChoice::Bn254] {
        match compile(&m, &p, choice).unwrap_err() {
            CompileError::NoFieldFits { layer, bits, .. } => {
                assert_eq!(layer, Some(3));
                assert!((273..=275).contains(&bits), "{bits}");
            }
            other => panic!("expected NoFieldFits, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input quantization
// ---------------------------------------------------------------------------------------------

#[test]
fn input_quantization_and_errors() {
    let m = Model {
        name: String::new(),
        input_shape: vec![1, 2, 2],
        input_range: [-1.0, 1.0],
        layers: vec![Layer::Activation(Activation::Square)],
    };
    let c = compile(&m, &params(4, 8, 8), FieldChoice::Auto).unwrap();
    assert_eq!((c.input_min, c.input_max), (-16, 16));
    let q = quantize_input(&c, &[0.5, -0.5, 1.0, -1.0, 0.03125, -0.03125, 0.0, 0.25]).unwrap();
    assert_eq!(q, vec![8, -8, 16, -16, 1, -1, 0, 4]);
    assert_eq!(check_input_ints(&c, &q).unwrap(), 2);
    assert_eq!(dequantize(q[0], c.input_scale), 0.5);
    // Just outside the range but rounding into it is accepted (the rule is on X).
    assert_eq!(quantize_input(&c, &[1.01, 0.0, 0.0, 0.0]).unwrap()[0], 16);

    assert!(matches!(
        quantize_input(&c, &[0.0; 5]),
        Err(InputError::Length {
            got: 5,
            per_item: 4,
            ..
        })
    ));
    assert!(matches!(
        quantize_input(&c, &[]),
        Err(InputError::EmptyBatch { per_item: 4 })
    ));
    let err = quantize_input(&c, &[0.0, 0.0, 0.0, 0.0, 0.0, 1.5, 0.0, 0.0]).unwrap_err();
    assert!(matches!(
        err,
        InputError::OutOfRange {
            index: 5,
            min: -16,
            max: 16,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("index 5") && msg.contains("1.5") && msg.contains("[-1, 1]"),
        "{msg}"
    );
    assert!(matches!(
        quantize_input(&c, &[0.0, f64::NAN, 0.0, 0.0]),
        Err(InputError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        quantize_input(&c, &[0.0, 0.0, f64::NEG_INFINITY, 0.0]),
        Err(InputError::NonFinite { index: 2, .. })
    ));
    assert!(matches!(
        quantize_input(&c, &[0.0, 0.0, 0.0, -1e300]),
        Err(InputError::OutOfRange { index: 3, .. })
    ));
    assert!(matches!(
        check_input_ints(&c, &[0, 17, 0, 0]),
        Err(InputError::IntOutOfRange {
            index: 1,
            value: 17,
            ..
        })
    ));
    assert!(matches!(
        check_input_ints(&c, &[0, 1, 0]),
        Err(InputError::Length { .. })
    ));
}

#[test]
fn absurd_model_files_are_refused_without_panicking() {
    let cases = [
        // Padding that overflows h + 2p.
        r#"{"input_shape":[1,4,4],"layers":[{"op":"conv2d","in_channels":1,"out_channels":1,
            "kernel":[3,3],"padding":[9223372036854775807,0],"weight":[0,0,0,0,0,0,0,0,0]}]}"#,
        // Weight counts that overflow.
        r#"{"input_shape":[4],"layers":[{"op":"dense","in_features":4,
            "out_features":9223372036854775807,"weight":[]}]}"#,
        r#"{"input_shape":[1,4,4],"layers":[{"op":"conv2d","in_channels":1,
            "out_channels":4294967296,"kernel":[4294967296,3],"weight":[]}]}"#,
        // Shapes whose size overflows.
        r#"{"input_shape":[4],"layers":[{"op":"reshape","shape":[4294967296,4294967296,4]}]}"#,
        r#"{"input_shape":[4],"layers":[{"op":"reshape","shape":[4611686018427387905,4]}]}"#,
        r#"{"input_shape":[4294967296,4294967296,4],"layers":[{"op":"flatten"}]}"#,
    ];
    for text in cases {
        assert!(Model::from_json(text).is_err(), "{text}");
        let m: Model = serde_json::from_str(text).unwrap();
        assert!(
            compile(&m, &QuantParams::default(), FieldChoice::Auto).is_err(),
            "{text}"
        );
    }
}

/// A dense net with six x² activations: without checkpoints its values need far more bits than
/// any field holds; with a checkpoint after every activation every segment fits m127, the bound
/// analysis restarts from each clamp range, and the witness matches the contract.
#[test]
fn checkpoints_make_depth_unlimited() {
    use verinfer_circuits::model::Requant;
    use verinfer_circuits::witness::infer;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut w = |n: usize| {
        (0..n)
            .map(|_| rng.gen_range(-0.5..0.5))
            .collect::<Vec<f64>>()
    };
    let build = |checkpoint: Option<Requant>, w: &mut dyn FnMut(usize) -> Vec<f64>| {
        let mut layers = Vec::new();
        for block in 0..6 {
            layers.push(dense(8, 8, w(64), Some(w(8))));
            layers.push(Layer::Activation(Activation::Square));
            if let Some(r) = checkpoint {
                // Back to 16 fractional bits: 2·(8 + 8) after the first x², 2·(16 + 8) later.
                let shift = if block == 0 { 16 } else { 32 };
                layers.push(Layer::Requant(Requant { shift, ..r }));
            }
        }
        layers.push(dense(8, 2, w(16), None));
        Model {
            name: "deep".into(),
            input_shape: vec![8],
            input_range: [-1.0, 1.0],
            layers,
        }
    };
    let plain = build(None, &mut w);
    let err = compile(&plain, &QuantParams::default(), FieldChoice::Auto).unwrap_err();
    // (The scale doubles at every x², so the bias of a deep dense layer no longer quantizes.)
    assert!(
        matches!(
            err,
            CompileError::NoFieldFits { .. } | CompileError::Quant { .. }
        ),
        "{err}"
    );
    // x² doubles the scale: drop half of it (and more) at every checkpoint.
    let r = Requant {
        shift: 16,
        bits: 16,
    };
    let deep = build(Some(r), &mut w);
    let c = compile(&deep, &QuantParams::default(), FieldChoice::Auto).unwrap();
    assert_eq!(c.field, FieldId::M127);
    for (i, l) in c.layers.iter().enumerate() {
        if matches!(l.op, Op::Requant(_)) {
            // The layer after a checkpoint sees at most 16-bit inputs.
            let next = &c.layers[i + 1];
            assert!(next.bound_bits < 60, "{}: {}", next.label, next.bound_bits);
            assert_eq!(l.scale_bits, 16);
        }
    }
    // The integer engine against the plain per-item interpreter below.
    let input: Vec<i128> = (0..8).map(|i| (i * 37 % 255) - 127).collect();
    let x = reference(&c, &input).pop().unwrap();
    assert_eq!(infer(&c, 1, &input).unwrap(), x);
    // A checkpoint the compiler cannot place as asked is a clear error.
    let mut bad = deep.clone();
    bad.layers[2] = Layer::Requant(Requant {
        shift: 16,
        bits: 63,
    });
    let e = compile(&bad, &QuantParams::default(), FieldChoice::Auto).unwrap_err();
    assert_eq!(e.to_string(), "layer 2 (requant): bits 63 outside 2..=62");
    bad.layers[2] = Layer::Requant(Requant {
        shift: 99,
        bits: 16,
    });
    let e = compile(&bad, &QuantParams::default(), FieldChoice::Auto).unwrap_err();
    assert!(e.to_string().contains("shift 99 exceeds"), "{e}");
    // A checkpoint reads i128: a segment wider than 126 bits before it is refused, naming it,
    // although BN254 would hold the values.
    let mut wide = Vec::new();
    for _ in 0..3 {
        wide.push(dense(8, 8, w(64), None));
        wide.push(Layer::Activation(Activation::Square));
    }
    wide.push(Layer::Requant(Requant {
        shift: 160,
        bits: 16,
    }));
    wide.push(dense(8, 2, w(16), None));
    let m = Model {
        layers: wide,
        ..deep
    };
    let e = compile(&m, &QuantParams::default(), FieldChoice::Auto).unwrap_err();
    assert!(
        matches!(e, CompileError::SegmentTooWide { layer: 6, bits, max: 126, .. } if bits > 126),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("place a requantization checkpoint earlier"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Polynomial activations
// ---------------------------------------------------------------------------------------------

fn poly(coefficients: &[f64]) -> Activation {
    Activation::Polynomial {
        coefficients: coefficients.to_vec(),
    }
}

#[test]
fn polynomial_coefficients_follow_the_contract() {
    // 0.5 − x + 0.25x³ at scale 3, coef_bits 4: C_k = q(c_k, 4)·2^((3−k)·3), scale 3·3 + 4.
    let q = quantize_activation(&poly(&[0.5, -1.0, 0.0, 0.25]), 3, 4).unwrap();
    assert_eq!(q.coefficients, vec![8 << 9, -16 << 6, 0, 4]);
    assert_eq!(q.scale_bits, 13);
    // x = 0.75 → X = 6: the integer result is p(0.75)·2^13 exactly (dyadic coefficients).
    let y: i128 = q
        .coefficients
        .iter()
        .zip(0u32..)
        .map(|(c, k)| c * 6i128.pow(k))
        .sum();
    let x = 0.75f64;
    assert_eq!(dequantize(y, q.scale_bits), 0.5 - x + 0.25 * x.powi(3));
    // Integer coefficients need no coefficient bits; trailing zeros do not raise the degree.
    let q = quantize_activation(&poly(&[1.0, 0.0, 0.0, 2.0, 0.0]), 2, 8).unwrap();
    assert_eq!(
        (q.coefficients.clone(), q.scale_bits),
        (vec![64, 0, 0, 2], 6)
    );
    // A degree-2 polynomial is exactly the quadratic of the same coefficients.
    assert_eq!(
        quantize_activation(&poly(&[0.125, 0.25, 0.5]), 3, 4).unwrap(),
        quantize_activation(
            &Activation::Quadratic {
                a: 0.5,
                b: 0.25,
                c: 0.125
            },
            3,
            4
        )
        .unwrap()
    );
    // The lift 2^((d−k)·s) overflows i128 at degree 31 and scale 5.
    let mut big = vec![1.0; 32];
    big[31] = 0.5;
    assert!(matches!(
        quantize_activation(&poly(&big), 5, 8),
        Err(QuantError::Coefficient { .. })
    ));
}

#[test]
fn polynomial_layers_compile_to_their_kind() {
    let m = |act: Activation| Model {
        name: String::new(),
        input_shape: vec![3],
        input_range: [-1.0, 1.0],
        layers: vec![Layer::Activation(act)],
    };
    let c = compile(
        &m(poly(&[0.0, 1.0, 0.0, -0.5])),
        &params(4, 4, 4),
        FieldChoice::Auto,
    )
    .unwrap();
    match &c.layers[0].op {
        Op::Polynomial(p) => assert_eq!(p.coefficients, vec![0, 16 << 8, 0, -8]),
        other => panic!("expected a polynomial, got {other:?}"),
    }
    assert_eq!(c.layers[0].scale_bits, 16);
    // Degree 2 stays an activation layer (its own kind, with the cheaper proof).
    let c = compile(
        &m(poly(&[0.0, 1.0, 1.0])),
        &params(4, 4, 4),
        FieldChoice::Auto,
    )
    .unwrap();
    assert!(matches!(
        c.layers[0].op,
        Op::Activation(ActivationOp { a: 1, b: 16, c: 0 })
    ));
}

#[test]
fn malformed_polynomials_get_one_line_errors() {
    let m = poly_model_json;
    for (coefficients, want) in [
        (vec![3.0], "degree 0"),
        (vec![1.0, 0.0, 0.0], "degree 0"),
        (vec![0.5; 40], "40 coefficients"),
    ] {
        let e = Model::from_json(&m(coefficients)).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "{e}");
    }
    let nan = r#"{"input_shape": [2], "layers": [{"op": "activation", "kind": "polynomial", "coefficients": [0, 1, NaN]}]}"#;
    assert!(Model::from_json(nan).is_err());
    let mut m = Model::from_json(&m(vec![0.0, 1.0, 2.0])).unwrap();
    m.layers[0] = Layer::Activation(poly(&[0.0, f64::NAN, 1.0]));
    let e = m.validate().unwrap_err().to_string();
    assert!(e.contains("not a finite number"), "{e}");
    // Degree 31 is the most the proof allows; a model may still give 32 coefficients.
    let ok = (0..32).map(|k| 1.0 / (k + 1) as f64).collect();
    Model::from_json(&poly_model_json(ok)).unwrap();
}

fn poly_model_json(coefficients: Vec<f64>) -> String {
    serde_json::json!({
        "input_shape": [2],
        "layers": [{"op": "activation", "kind": "polynomial", "coefficients": coefficients}]
    })
    .to_string()
}

/// Every value of every stage of polynomial models lies in its bound: degrees 3 to 9, an
/// alternating minimax-like sign approximation on a wide interval (where cancellation matters),
/// after a clamp, and in the `f64` domain after an overflow of the exact one.
#[test]
fn polynomial_bounds_cover_every_value() {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    // An odd degree-7 approximation of sgn on [−1, 1]: large alternating coefficients.
    let sign7 = [0.0, 7.3, 0.0, -34.7, 0.0, 59.4, 0.0, -31.0];
    let cases: Vec<(Vec<f64>, u32)> = vec![
        (vec![0.25, -1.0, 0.5, 2.0], 4),
        (vec![0.0, 1.0, 0.0, -0.5, 0.0, 0.125], 4),
        (sign7.to_vec(), 6),
        (
            (0..10)
                .map(|k| if k % 3 == 0 { -0.75 } else { 0.5 })
                .collect(),
            3,
        ),
    ];
    for (coefficients, bits) in cases {
        let m = Model {
            name: String::new(),
            input_shape: vec![4],
            input_range: [-1.0, 1.0],
            layers: vec![
                dense(
                    4,
                    3,
                    (0..12).map(|k| [0.25, -0.5, 0.125][k % 3]).collect(),
                    None,
                ),
                Layer::Activation(poly(&coefficients)),
                dense(3, 2, vec![1.0, -1.0, 0.5, -0.75, 0.25, 1.0], None),
            ],
        };
        let c = compile(&m, &params(bits, 4, 8), FieldChoice::Auto).unwrap();
        let mut seen = vec![0u128; c.layers.len()];
        for _ in 0..300 {
            let x = random_input(&c, &mut rng);
            check_covered(&c, &x, &mut seen);
        }
        // The enclosure is tight: within 2 bits of the largest value seen.
        let out_bits = bound_analysis(&c).unwrap()[1].output_bits;
        assert!(
            out_bits <= bits_of(seen[1]) + 2,
            "{coefficients:?}: bound 2^{out_bits}, seen {}",
            seen[1]
        );
    }
}
