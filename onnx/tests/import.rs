//! Graphs built in Rust (the forms `torch.onnx.export` emits) through the importer: every
//! supported op, the polynomial and folding rules, and every refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::eval::eval;
use common::*;
use verinfer_circuits::model::{Activation, Conv2d, Layer, Model, Relu, SumPool};
use verinfer_onnx::proto::*;
use verinfer_onnx::{import_bytes, ImportOptions};

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{x} vs {y}\n{a:?}\n{b:?}"
        );
    }
}

/// The op names of a model's layers, in order.
fn kinds(m: &Model) -> Vec<&'static str> {
    m.layers.iter().map(Layer::op_name).collect()
}

fn dense(l: &Layer) -> &verinfer_circuits::model::Dense {
    match l {
        Layer::Dense(d) => d,
        other => panic!("expected dense, got {other:?}"),
    }
}

fn conv(l: &Layer) -> &Conv2d {
    match l {
        Layer::Conv2d(c) => c,
        other => panic!("expected conv, got {other:?}"),
    }
}

/// input [N, 4] → Gemm(4→3) = "h" → (nodes from `poly`, producing "a") → Gemm(3→2).
fn dense_net(poly: impl FnOnce(&mut G)) -> G {
    let mut g = G::new(&[-1, 4]);
    g.weight("W1", &[3, 4], 1).weight("b1", &[3], 2);
    g.weight("W2", &[2, 3], 3).weight("b2", &[2], 4);
    g.node("Gemm", &["input", "W1", "b1"], "h", vec![ai("transB", 1)]);
    poly(&mut g);
    g.node("Gemm", &["a", "W2", "b2"], "out", vec![ai("transB", 1)]);
    g
}

fn activation_of(poly: impl FnOnce(&mut G)) -> Vec<Layer> {
    ok(dense_net(poly).import("out")).model.layers
}

#[test]
fn quadratic_forms() {
    let two_f = || tf("two", &[], &[2.0]);
    let two_i = || ti("two", &[], &[2]);
    type Case = (&'static str, Box<dyn FnOnce(&mut G)>, Activation);
    let q = |a, b, c| Activation::Quadratic { a, b, c };
    let cases: Vec<Case> = vec![
        (
            "x*x",
            Box::new(|g| {
                g.node("Mul", &["h", "h"], "a", vec![]);
            }),
            Activation::Square,
        ),
        (
            "x**2 float",
            Box::new(move |g| {
                g.init(two_f()).node("Pow", &["h", "two"], "a", vec![]);
            }),
            Activation::Square,
        ),
        (
            "x**2 int",
            Box::new(move |g| {
                g.init(two_i()).node("Pow", &["h", "two"], "a", vec![]);
            }),
            Activation::Square,
        ),
        (
            "x*x+x",
            Box::new(|g| {
                g.node("Mul", &["h", "h"], "s", vec![])
                    .node("Add", &["s", "h"], "a", vec![]);
            }),
            Activation::SquarePlusX,
        ),
        (
            "x**2+x (Constant exponent)",
            Box::new(|g| {
                g.scalar("e", 2.0)
                    .node("Pow", &["h", "e"], "s", vec![])
                    .node("Add", &["h", "s"], "a", vec![]);
            }),
            Activation::SquarePlusX,
        ),
        (
            "x*(x+1)",
            Box::new(|g| {
                g.scalar("one", 1.0)
                    .node("Add", &["h", "one"], "h1", vec![])
                    .node("Mul", &["h", "h1"], "a", vec![]);
            }),
            Activation::SquarePlusX,
        ),
        (
            "0.5*x**2+x",
            Box::new(move |g| {
                g.init(two_f())
                    .scalar("half", 0.5)
                    .node("Pow", &["h", "two"], "s", vec![])
                    .node("Mul", &["half", "s"], "hs", vec![])
                    .node("Add", &["hs", "h"], "a", vec![]);
            }),
            q(0.5, 1.0, 0.0),
        ),
        (
            "(x+1)*(x+1)",
            Box::new(|g| {
                g.scalar("one", 1.0)
                    .node("Add", &["h", "one"], "h1", vec![])
                    .node("Mul", &["h1", "h1"], "a", vec![]);
            }),
            q(1.0, 2.0, 1.0),
        ),
        (
            "-(x*x)",
            Box::new(|g| {
                g.node("Mul", &["h", "h"], "s", vec![])
                    .node("Neg", &["s"], "a", vec![]);
            }),
            q(-1.0, 0.0, 0.0),
        ),
        (
            "x*x-x",
            Box::new(|g| {
                g.node("Mul", &["h", "h"], "s", vec![])
                    .node("Sub", &["s", "h"], "a", vec![]);
            }),
            q(1.0, -1.0, 0.0),
        ),
        (
            "x*x/2",
            Box::new(|g| {
                g.scalar("d", 2.0)
                    .node("Mul", &["h", "h"], "s", vec![])
                    .node("Div", &["s", "d"], "a", vec![]);
            }),
            q(0.5, 0.0, 0.0),
        ),
        (
            "(1-x)**2",
            Box::new(move |g| {
                g.init(two_f())
                    .scalar("one", 1.0)
                    .node("Sub", &["one", "h"], "m", vec![])
                    .node("Pow", &["m", "two"], "a", vec![]);
            }),
            q(1.0, -2.0, 1.0),
        ),
        (
            "(2x)*x",
            Box::new(|g| {
                g.scalar("k", 2.0)
                    .node("Mul", &["h", "k"], "h2", vec![])
                    .node("Mul", &["h2", "h"], "a", vec![]);
            }),
            q(2.0, 0.0, 0.0),
        ),
        (
            "identity, dropout",
            Box::new(|g| {
                g.node("Identity", &["h"], "i", vec![])
                    .node("Mul", &["i", "h"], "s", vec![])
                    .node("Dropout", &["s"], "a", vec![]);
            }),
            Activation::Square,
        ),
        (
            "cast to float",
            Box::new(|g| {
                g.node("Mul", &["h", "h"], "s", vec![]).node(
                    "Cast",
                    &["s"],
                    "a",
                    vec![ai("to", 1)],
                );
            }),
            Activation::Square,
        ),
    ];
    for (name, build, want) in cases {
        let layers = activation_of(build);
        assert_eq!(layers.len(), 3, "{name}: {layers:?}");
        assert_eq!(layers[1], Layer::Activation(want), "{name}");
    }
}

#[test]
fn polynomial_numerics_match_direct_computation() {
    // 0.5*h**2 + h - 3 between two dense layers, checked against a direct evaluation.
    let g = dense_net(|g| {
        g.init(tf("two", &[], &[2.0]))
            .scalar("half", 0.5)
            .scalar("three", 3.0)
            .node("Pow", &["h", "two"], "s", vec![])
            .node("Mul", &["s", "half"], "hs", vec![])
            .node("Add", &["hs", "h"], "t", vec![])
            .node("Sub", &["t", "three"], "a", vec![]);
    });
    let m = ok(g.import("out")).model;
    let w1 = f64s(&vals(12, 1));
    let b1 = f64s(&vals(3, 2));
    let w2 = f64s(&vals(6, 3));
    let b2 = f64s(&vals(2, 4));
    let x = [0.1, -0.7, 0.3, 0.9];
    let h: Vec<f64> = (0..3)
        .map(|o| (0..4).map(|i| w1[o * 4 + i] * x[i]).sum::<f64>() + b1[o])
        .collect();
    let a: Vec<f64> = h.iter().map(|v| 0.5 * v * v + v - 3.0).collect();
    let y: Vec<f64> = (0..2)
        .map(|o| (0..3).map(|i| w2[o * 3 + i] * a[i]).sum::<f64>() + b2[o])
        .collect();
    close(&eval(&m, &x), &y, 1e-12);
}

#[test]
fn identity_and_scalar_factors_between_dense_layers() {
    let layers = activation_of(|g| {
        g.node("Identity", &["h"], "a", vec![]);
    });
    assert_eq!(layers.len(), 2);
    // 2·h: folded forward into the next layer's weights.
    let layers = activation_of(|g| {
        g.scalar("k", 2.0).node("Mul", &["h", "k"], "a", vec![]);
    });
    assert_eq!(layers.len(), 2);
    let w2 = f64s(&vals(6, 3));
    assert_eq!(
        dense(&layers[1]).weight,
        w2.iter().map(|w| w * 2.0).collect::<Vec<_>>()
    );
    assert_eq!(dense(&layers[0]).weight, f64s(&vals(12, 1)));
    // h + 1: folded backward into the previous layer's bias.
    let layers = activation_of(|g| {
        g.scalar("one", 1.0).node("Add", &["h", "one"], "a", vec![]);
    });
    let b1 = f64s(&vals(3, 2));
    assert_eq!(
        dense(&layers[0]).bias.clone().unwrap(),
        b1.iter().map(|b| b + 1.0).collect::<Vec<_>>()
    );
    // 3·h − 1 at the graph output: W ← 3W, b ← 3b − 1.
    let mut g = dense_net(|g| {
        g.node("Identity", &["h"], "a", vec![]);
    });
    g.scalar("k", 3.0)
        .scalar("one", 1.0)
        .node("Mul", &["out", "k"], "o1", vec![])
        .node("Sub", &["o1", "one"], "o2", vec![]);
    let imp = ok(g.import("o2"));
    let d = dense(&imp.model.layers[1]);
    let b2 = f64s(&vals(2, 4));
    assert_eq!(
        d.weight,
        f64s(&vals(6, 3))
            .iter()
            .map(|w| w * 3.0)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        d.bias.clone().unwrap(),
        b2.iter().map(|b| b * 3.0 - 1.0).collect::<Vec<_>>()
    );
    assert!(
        imp.notes.iter().any(|n| n.contains("factor 3")),
        "{:?}",
        imp.notes
    );
}

#[test]
fn higher_degrees_import_and_branches_import() {
    let act = |m: &Model| match &m.layers[1] {
        Layer::Activation(a) => a.coefficients(),
        other => panic!("expected an activation, got {other:?}"),
    };
    // x·x·x as a Mul chain, x**3 as a Pow, (x²)², and a Horner form
    // x·(x·(0.5·x + 1) − 2) + 0.25, as torch exports them.
    let m = ok(dense_net(|g| {
        g.node("Mul", &["h", "h"], "s", vec![])
            .named("cube", "Mul", &["s", "h"], "a", vec![]);
    })
    .import("out"))
    .model;
    assert_eq!(act(&m), vec![0.0, 0.0, 0.0, 1.0]);
    let m = ok(dense_net(|g| {
        g.init(tf("three", &[], &[3.0]))
            .node("Pow", &["h", "three"], "a", vec![]);
    })
    .import("out"))
    .model;
    assert_eq!(act(&m), vec![0.0, 0.0, 0.0, 1.0]);
    let m = ok(dense_net(|g| {
        g.init(tf("two", &[], &[2.0]))
            .node("Mul", &["h", "h"], "s", vec![])
            .node("Pow", &["s", "two"], "a", vec![]);
    })
    .import("out"))
    .model;
    assert_eq!(act(&m), vec![0.0, 0.0, 0.0, 0.0, 1.0]);
    let m = ok(dense_net(|g| {
        g.scalar("half", 0.5)
            .scalar("one", 1.0)
            .scalar("two", 2.0)
            .scalar("quarter", 0.25)
            .node("Mul", &["h", "half"], "t1", vec![])
            .node("Add", &["t1", "one"], "t2", vec![])
            .node("Mul", &["h", "t2"], "t3", vec![])
            .node("Sub", &["t3", "two"], "t4", vec![])
            .node("Mul", &["h", "t4"], "t5", vec![])
            .node("Add", &["t5", "quarter"], "a", vec![]);
    })
    .import("out"))
    .model;
    assert_eq!(act(&m), vec![0.25, -2.0, 1.0, 0.5]);
    // Past degree 31, fractional and negative powers: one-line errors naming the node.
    let e = err(dense_net(|g| {
        g.init(tf("p", &[], &[16.0]))
            .node("Pow", &["h", "p"], "s", vec![])
            .named("too_high", "Mul", &["s", "s"], "a", vec![]);
    })
    .import("out"));
    assert!(
        e.contains("node 'too_high' (Mul)") && e.contains("degree 32") && !e.contains('\n'),
        "{e}"
    );
    for exp in [32.0, 2.5, -1.0, 0.0] {
        let e = err(dense_net(|g| {
            g.init(tf("e", &[], &[exp]))
                .node("Pow", &["h", "e"], "a", vec![]);
        })
        .import("out"));
        assert!(
            e.contains("(Pow)") && e.contains("integer power"),
            "{exp}: {e}"
        );
    }
    // A residual connection (the output of layer 2 plus the output of layer 0) and two layers
    // reading the same tensor now import: as an add, and as a branch.
    let mut g = dense_net(|g| {
        g.node("Identity", &["h"], "a", vec![]);
    });
    g.weight("W3", &[3, 2], 5)
        .node("Gemm", &["out", "W3"], "z", vec![ai("transB", 1)])
        .named("residual", "Add", &["z", "h"], "r", vec![]);
    let m = ok(g.import("r")).model;
    assert_eq!(kinds(&m), ["dense", "dense", "dense", "add"]);
    let mut g = dense_net(|g| {
        g.node("Identity", &["h"], "a", vec![]);
    });
    g.node("Gemm", &["h", "W2", "b2"], "out2", vec![ai("transB", 1)])
        .node("Add", &["out", "out2"], "sum", vec![]);
    let m = ok(g.import("sum")).model;
    assert_eq!(kinds(&m), ["dense", "dense", "branch", "dense", "add"]);
    // Division by an activation.
    let e = err(dense_net(|g| {
        g.scalar("one", 1.0).node("Div", &["one", "h"], "a", vec![]);
    })
    .import("out"));
    assert!(e.contains("division"), "{e}");
}

/// input [N, 1, 6, 6] → Conv(1→3, 3x3, pad 1) "c" (with or without bias) → (middle) "m" →
/// x*x → Flatten → Gemm(108→2).
fn conv_net(bias: bool, middle: impl FnOnce(&mut G)) -> G {
    let mut g = G::new(&[-1, 1, 6, 6]);
    g.weight("W", &[3, 1, 3, 3], 10);
    let mut ins = vec!["input", "W"];
    if bias {
        g.weight("B", &[3], 11);
        ins.push("B");
    }
    g.named(
        "/conv1/Conv",
        "Conv",
        &ins,
        "c",
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("pads", &[1, 1, 1, 1]),
            ints("strides", &[1, 1]),
            ai("group", 1),
            ints("dilations", &[1, 1]),
        ],
    );
    middle(&mut g);
    g.weight("F", &[2, 108], 12).weight("Fb", &[2], 13);
    g.node("Mul", &["m", "m"], "s", vec![])
        .node("Flatten", &["s"], "f", vec![ai("axis", 1)])
        .node("Gemm", &["f", "F", "Fb"], "out", vec![ai("transB", 1)]);
    g
}

type Channels = [f64; 3];

/// `bn_params`' (gamma, beta, mean, var) as the importer reads them, and epsilon 1e-3.
fn bn_constants() -> (Channels, Channels, Channels, Channels, f64) {
    let r = |v: [f32; 3]| v.map(f64::from);
    (
        r([1.5, 0.5, -2.0]),
        r([0.1, -0.2, 0.3]),
        r([0.25, -1.0, 2.0]),
        r([0.5, 2.0, 0.01]),
        f64::from(1e-3f32),
    )
}

/// `bn_params`' BatchNormalization of a `[3, …]` tensor with `plane` values per channel,
/// straight from its definition.
fn bn_reference(x: &[f64], plane: usize) -> Vec<f64> {
    let (gamma, beta, mean, var, eps) = bn_constants();
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let o = i / plane;
            (v - mean[o]) / (var[o] + eps).sqrt() * gamma[o] + beta[o]
        })
        .collect()
}

fn bn_params(g: &mut G) {
    g.init(tf("gamma", &[3], &[1.5, 0.5, -2.0]))
        .init(tf("beta", &[3], &[0.1, -0.2, 0.3]))
        .init(tf("mean", &[3], &[0.25, -1.0, 2.0]))
        .init(tf("var", &[3], &[0.5, 2.0, 0.01]));
}

#[test]
fn batchnorm_folds_exactly() {
    let x: Vec<f64> = f64s(&vals(36, 99));
    for bias in [true, false] {
        let plain = ok(conv_net(bias, |g| {
            g.node("Identity", &["c"], "m", vec![]);
        })
        .import("out"))
        .model;
        let folded = ok(conv_net(bias, |g| {
            bn_params(g);
            g.named(
                "/bn1/BatchNormalization",
                "BatchNormalization",
                &["c", "gamma", "beta", "mean", "var"],
                "m",
                vec![af("epsilon", 1e-3)],
            );
        })
        .import("out"));
        assert!(
            folded
                .notes
                .iter()
                .any(|n| n.contains("/bn1/BatchNormalization")),
            "{:?}",
            folded.notes
        );
        let folded = folded.model;
        assert_eq!(folded.layers.len(), 4);
        let conv_only = |m: &Model| Model {
            layers: m.layers[..1].to_vec(),
            ..m.clone()
        };
        let c = eval(&conv_only(&plain), &x);
        close(&eval(&conv_only(&folded), &x), &bn_reference(&c, 36), 1e-12);
        let (gamma, beta, mean, var, eps) = bn_constants();
        // The rest of the network is untouched.
        assert_eq!(folded.layers[1..], plain.layers[1..]);
        // The exact formula of the brief.
        let w = f64s(&vals(27, 10));
        let b = if bias {
            f64s(&vals(3, 11))
        } else {
            vec![0.0; 3]
        };
        let cv = conv(&folded.layers[0]);
        for o in 0..3 {
            let s = gamma[o] / (var[o] + eps).sqrt();
            for k in 0..9 {
                assert_eq!(cv.weight[o * 9 + k], w[o * 9 + k] * s);
            }
            let bo = (b[o] - mean[o]) * s + beta[o];
            assert_eq!(cv.bias.as_ref().unwrap()[o], bo);
        }
    }
}

#[test]
fn batchnorm_after_gemm_and_misplaced_batchnorm() {
    let layers = activation_of(|g| {
        bn_params(g);
        g.node(
            "BatchNormalization",
            &["h", "gamma", "beta", "mean", "var"],
            "a",
            vec![],
        );
    });
    assert_eq!(layers.len(), 2);
    // After an activation: refused, naming the node.
    let im = ok(conv_net(true, |g| {
        bn_params(g);
        g.node("Mul", &["c", "c"], "sq", vec![]).named(
            "bn_bad",
            "BatchNormalization",
            &["sq", "gamma", "beta", "mean", "var"],
            "m",
            vec![],
        );
    })
    .import("out"));
    // After an activation it cannot fold: it becomes its own per-channel 1×1 convolution.
    assert!(
        im.notes
            .iter()
            .any(|n| n.contains("node 'bn_bad'") && n.contains("per-channel")),
        "{:?}",
        im.notes
    );
    assert_eq!(
        kinds(&im.model),
        [
            "conv2d",
            "activation",
            "conv2d",
            "activation",
            "flatten",
            "dense"
        ]
    );
    // Training mode.
    let e = err(conv_net(true, |g| {
        bn_params(g);
        g.node(
            "BatchNormalization",
            &["c", "gamma", "beta", "mean", "var"],
            "m",
            vec![ai("training_mode", 1)],
        );
    })
    .import("out"));
    assert!(e.contains("eval"), "{e}");
}

#[test]
fn per_channel_constants_fold_into_the_bias() {
    // Conv without bias + Add([1, 3, 1, 1]) − Sub([3, 1, 1]) * Mul([3,1,1]).
    let m = ok(conv_net(false, |g| {
        g.init(tf("v", &[1, 3, 1, 1], &[1.0, 2.0, 3.0]))
            .init(tf("u", &[3, 1, 1], &[0.5, 0.5, 0.5]))
            .init(tf("k", &[3, 1, 1], &[2.0, -1.0, 4.0]))
            .node("Add", &["c", "v"], "c1", vec![])
            .node("Sub", &["c1", "u"], "c2", vec![])
            .node("Mul", &["c2", "k"], "m", vec![]);
    })
    .import("out"))
    .model;
    let cv = conv(&m.layers[0]);
    assert_eq!(cv.bias.clone().unwrap(), vec![1.0, -1.5, 10.0]);
    let w = f64s(&vals(27, 10));
    assert_eq!(cv.weight[9], -w[9]);
    assert_eq!(cv.weight[26], w[26] * 4.0);
    // A [C] constant broadcasts along the last (width) axis, not per channel: refused.
    let e = err(conv_net(true, |g| {
        g.init(tf("v", &[3], &[1.0, 2.0, 3.0]))
            .node("Add", &["c", "v"], "m", vec![]);
    })
    .import("out"));
    assert!(e.contains("per channel"), "{e}");
    // A bias add whose linear output is also used elsewhere.
    let e = err(dense_net(|g| {
        g.init(tf("v", &[3], &[1.0, 2.0, 3.0]))
            .node("Add", &["h", "v"], "hv", vec![])
            .node("Mul", &["hv", "h"], "a", vec![]);
    })
    .import("out"));
    // (The add becomes a per-channel layer of its own, and `hv · h` multiplies two layers.)
    assert!(e.contains("product"), "{e}");
}

#[test]
fn matmul_plus_add_is_dense() {
    let mut g = G::new(&[1, 4]);
    g.opset = 18;
    g.weight("W", &[4, 3], 20).weight("b", &[3], 21);
    g.node("MatMul", &["input", "W"], "mm", vec![])
        .node("Add", &["mm", "b"], "out", vec![]);
    let m = ok(g.import("out")).model;
    let d = dense(&m.layers[0]);
    let w = f64s(&vals(12, 20));
    for o in 0..3 {
        for i in 0..4 {
            assert_eq!(d.weight[o * 4 + i], w[i * 3 + o]);
        }
    }
    assert_eq!(d.bias.clone().unwrap(), f64s(&vals(3, 21)));
    // Gemm with transB = 0, alpha, beta, and a [1, out] bias.
    let mut g = G::new(&[1, 4]);
    g.weight("W", &[4, 3], 20).weight("b", &[1, 3], 21);
    g.node(
        "Gemm",
        &["input", "W", "b"],
        "out",
        vec![af("alpha", 2.0), af("beta", 0.5)],
    );
    let m = ok(g.import("out")).model;
    let d = dense(&m.layers[0]);
    assert_eq!(d.weight[1], w[3] * 2.0);
    assert_eq!(d.bias.clone().unwrap()[2], f64::from(vals(3, 21)[2]) * 0.5);
    // Integer weights are refused.
    let mut g = G::new(&[1, 4]);
    g.init(ti("W", &[4, 3], &[1; 12]));
    g.node("MatMul", &["input", "W"], "out", vec![]);
    assert!(err(g.import("out")).contains("floating point"));
}

#[test]
fn input_offsets_fold_forward_into_dense_and_unpadded_conv() {
    // (x − 0.5) · 2 on the input, then a Gemm.
    let mut g = G::new(&[-1, 4]);
    g.weight("W", &[3, 4], 30).weight("b", &[3], 31);
    g.scalar("h", 0.5)
        .scalar("k", 2.0)
        .node("Sub", &["input", "h"], "x1", vec![])
        .node("Mul", &["x1", "k"], "x2", vec![])
        .node("Gemm", &["x2", "W", "b"], "out", vec![ai("transB", 1)]);
    let m = ok(g.import("out")).model;
    let x = [0.2, 0.9, 0.4, 0.0];
    let (w, b) = (f64s(&vals(12, 30)), f64s(&vals(3, 31)));
    let want: Vec<f64> = (0..3)
        .map(|o| {
            (0..4)
                .map(|i| w[o * 4 + i] * (x[i] - 0.5) * 2.0)
                .sum::<f64>()
                + b[o]
        })
        .collect();
    close(&eval(&m, &x), &want, 1e-12);
    // Unpadded conv: same check against the conv on the transformed input.
    let build = |pads: &[i64]| {
        let mut g = G::new(&[-1, 1, 4, 4]);
        g.weight("W", &[2, 1, 3, 3], 32).weight("b", &[2], 33);
        g.scalar("h", 0.5)
            .node("Sub", &["input", "h"], "x1", vec![])
            .named(
                "conv",
                "Conv",
                &["x1", "W", "b"],
                "out",
                vec![ints("pads", pads)],
            );
        g.import("out")
    };
    let m = ok(build(&[0, 0, 0, 0])).model;
    let x = f64s(&vals(16, 34));
    let shifted: Vec<f64> = x.iter().map(|v| v - 0.5).collect();
    let reference = Model {
        layers: vec![Layer::Conv2d(Conv2d {
            bias: Some(f64s(&vals(2, 33))),
            ..conv(&m.layers[0]).clone()
        })],
        ..m.clone()
    };
    close(&eval(&m, &x), &eval(&reference, &shifted), 1e-12);
    let e = err(build(&[1, 1, 1, 1]));
    assert!(
        e.contains("node 'conv' (Conv)") && e.contains("padded"),
        "{e}"
    );
}

#[test]
fn sum_pooling_factors() {
    // conv → x² → AveragePool(2) → ×4 → Flatten → Gemm: a plain sum-pool, weights unchanged.
    let build = |times4: bool, end_after_pool: bool| {
        let mut g = G::new(&[-1, 1, 6, 6]);
        g.weight("W", &[2, 1, 3, 3], 40).weight("B", &[2], 41);
        g.weight("F", &[3, 18], 42);
        g.node(
            "Conv",
            &["input", "W", "B"],
            "c",
            vec![ints("pads", &[1, 1, 1, 1])],
        )
        .node("Mul", &["c", "c"], "s", vec![])
        .named(
            "/pool/AveragePool",
            "AveragePool",
            &["s"],
            "p",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        );
        let mut last = "p";
        if times4 {
            g.scalar("four", 4.0)
                .node("Mul", &["p", "four"], "p4", vec![]);
            last = "p4";
        }
        if end_after_pool {
            return g.import(last);
        }
        g.node("Flatten", &[last], "f", vec![]).node(
            "Gemm",
            &["f", "F"],
            "out",
            vec![ai("transB", 1)],
        );
        g.import("out")
    };
    let m = ok(build(true, false)).model;
    assert_eq!(
        m.layers[2],
        Layer::SumPool(SumPool {
            window: [2, 2],
            stride: None
        })
    );
    assert_eq!(dense(&m.layers[4]).weight, f64s(&vals(54, 42)));
    let imp = ok(build(false, false));
    let w: Vec<f64> = f64s(&vals(54, 42)).iter().map(|x| x * 0.25).collect();
    assert_eq!(dense(&imp.model.layers[4]).weight, w);
    assert!(
        imp.notes.iter().any(|n| n.contains("0.25")),
        "{:?}",
        imp.notes
    );
    // A sum-pool at the end is fine; an average pool after the last activation is not.
    ok(build(true, true));
    let e = err(build(false, true));
    assert!(e.contains("output") && e.contains("avg_pool2d"), "{e}");
    // conv → AveragePool → output: the factor folds back into the conv.
    let mut g = G::new(&[-1, 1, 6, 6]);
    g.weight("W", &[2, 1, 3, 3], 40).weight("B", &[2], 41);
    g.node("Conv", &["input", "W", "B"], "c", vec![]).node(
        "AveragePool",
        &["c"],
        "p",
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[1, 1])],
    );
    let m = ok(g.import("p")).model;
    let cv = conv(&m.layers[0]);
    assert_eq!(
        cv.weight,
        f64s(&vals(18, 40))
            .iter()
            .map(|x| x * 0.25)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        cv.bias.clone().unwrap(),
        f64s(&vals(2, 41))
            .iter()
            .map(|x| x * 0.25)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        m.layers[1],
        Layer::SumPool(SumPool {
            window: [2, 2],
            stride: Some([1, 1])
        })
    );
}

#[test]
fn pooling_refusals_and_global_pooling() {
    let pool = |attrs: Vec<AttributeProto>, op: &str| {
        let mut g = G::new(&[-1, 2, 5, 5]);
        g.named("/pool", op, &["input"], "p", attrs);
        g.import("p")
    };
    let e = err(pool(
        vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
        "AveragePool",
    ));
    assert!(e.contains("padd"), "{e}");
    let e = err(pool(
        vec![
            ints("kernel_shape", &[2, 2]),
            ints("strides", &[2, 2]),
            ai("ceil_mode", 1),
        ],
        "AveragePool",
    ));
    assert!(e.contains("ceil_mode"), "{e}");
    // MaxPool is an exact layer; padded, and with its indices output, it is refused.
    let m = ok(pool(vec![ints("kernel_shape", &[2, 2])], "MaxPool")).model;
    assert_eq!(
        m.layers,
        vec![Layer::MaxPool(SumPool {
            window: [2, 2],
            stride: Some([1, 1])
        })]
    );
    let m = ok(pool(vec![], "GlobalMaxPool")).model;
    assert_eq!(
        m.layers,
        vec![Layer::MaxPool(SumPool {
            window: [5, 5],
            stride: None
        })]
    );
    let e = err(pool(
        vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
        "MaxPool",
    ));
    assert!(
        e.contains("node '/pool' (MaxPool)") && e.contains("padded max"),
        "{e}"
    );
    let mut g = G::new(&[-1, 2, 5, 5]);
    g.named(
        "/pool",
        "MaxPool",
        &["input"],
        "p",
        vec![ints("kernel_shape", &[2, 2])],
    );
    g.graph
        .node
        .last_mut()
        .unwrap()
        .output
        .push("indices".into());
    let e = err(g.import("p"));
    assert!(e.contains("indices"), "{e}");
    // ceil_mode that changes nothing is accepted (5 = 3 + 2·1).
    let mut g = G::new(&[-1, 2, 5, 5]);
    g.scalar("nine", 9.0)
        .node(
            "AveragePool",
            &["input"],
            "p",
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ai("ceil_mode", 1),
            ],
        )
        .node("Mul", &["p", "nine"], "q", vec![])
        .node("Mul", &["q", "q"], "out", vec![]);
    let m = ok(g.import("out")).model;
    assert_eq!(
        m.layers,
        vec![
            Layer::SumPool(SumPool {
                window: [3, 3],
                stride: Some([2, 2])
            }),
            Layer::Activation(Activation::Square)
        ]
    );

    // GlobalAveragePool → Squeeze(axes input) → Gemm, and ReduceMean keepdims=0 → Gemm.
    for form in 0..3 {
        let mut g = G::new(&[-1, 2, 4, 4]);
        g.weight("F", &[3, 2], 50);
        match form {
            0 => {
                g.init(ti("axes", &[2], &[2, 3]))
                    .node("GlobalAveragePool", &["input"], "p", vec![])
                    .node("Squeeze", &["p", "axes"], "f", vec![]);
            }
            1 => {
                g.init(ti("axes", &[2], &[-2, -1])).node(
                    "ReduceMean",
                    &["input", "axes"],
                    "f",
                    vec![ai("keepdims", 0)],
                );
            }
            _ => {
                g.node(
                    "ReduceMean",
                    &["input"],
                    "f",
                    vec![ints("axes", &[2, 3]), ai("keepdims", 0)],
                );
            }
        }
        g.node("Gemm", &["f", "F"], "out", vec![ai("transB", 1)]);
        let m = ok(g.import("out")).model;
        assert_eq!(
            m.layers[0],
            Layer::SumPool(SumPool {
                window: [4, 4],
                stride: None
            }),
            "{form}"
        );
        assert_eq!(m.layers[1], Layer::Flatten);
        let w: Vec<f64> = f64s(&vals(6, 50)).iter().map(|x| x / 16.0).collect();
        assert_eq!(dense(&m.layers[2]).weight, w);
    }
}

#[test]
fn conv_attributes() {
    let build = |attrs: Vec<AttributeProto>, wdims: &[i64], ch: i64| {
        let mut g = G::new(&[-1, ch, 7, 7]);
        g.weight("W", wdims, 60);
        g.named("/conv/Conv", "Conv", &["input", "W"], "out", attrs);
        g.import("out")
    };
    let m = ok(build(
        vec![ints("strides", &[2, 1]), ints("pads", &[1, 2, 1, 2])],
        &[3, 2, 3, 5],
        2,
    ))
    .model;
    let c = conv(&m.layers[0]);
    assert_eq!(
        (c.kernel, c.stride, c.padding, c.in_channels, c.out_channels),
        ([3, 5], [2, 1], [1, 2], 2, 3)
    );
    let m = ok(build(
        vec![astr("auto_pad", "SAME_UPPER")],
        &[3, 2, 3, 3],
        2,
    ))
    .model;
    assert_eq!(conv(&m.layers[0]).padding, [1, 1]);
    let m = ok(build(vec![astr("auto_pad", "VALID")], &[3, 2, 3, 3], 2)).model;
    assert_eq!(conv(&m.layers[0]).padding, [0, 0]);
    let e = err(build(vec![ints("pads", &[1, 1, 0, 0])], &[3, 2, 3, 3], 2));
    assert!(
        e.contains("node '/conv/Conv' (Conv)") && e.contains("asymmetric"),
        "{e}"
    );
    let e = err(build(vec![ai("group", 2)], &[4, 1, 3, 3], 2));
    assert!(
        e.contains("(Conv) is not supported") && e.contains("group"),
        "{e}"
    );
    let e = err(build(vec![ints("dilations", &[2, 2])], &[3, 2, 3, 3], 2));
    assert!(e.contains("dilat"), "{e}");
    let e = err(build(vec![], &[3, 5, 3, 3], 2));
    assert!(e.contains("input channels"), "{e}");
    let e = err(build(vec![ints("kernel_shape", &[2, 2])], &[3, 2, 3, 3], 2));
    assert!(e.contains("kernel_shape"), "{e}");
}

#[test]
fn relu_imports_and_leaky_relu_needs_a_power_of_two() {
    let m = ok(dense_net(|g| {
        g.named("/act/Relu", "Relu", &["h"], "a", vec![]);
    })
    .import("out"))
    .model;
    assert_eq!(m.layers[1], Layer::Relu(Relu { slope_shift: None }));
    let m = ok(dense_net(|g| {
        g.named(
            "/act/LeakyRelu",
            "LeakyRelu",
            &["h"],
            "a",
            vec![af("alpha", 0.0625)],
        );
    })
    .import("out"))
    .model;
    assert_eq!(
        m.layers[1],
        Layer::Relu(Relu {
            slope_shift: Some(4)
        })
    );
    for alpha in [0.01, 0.3, 1.0, 0.0] {
        let e = err(dense_net(|g| {
            g.named(
                "/act/LeakyRelu",
                "LeakyRelu",
                &["h"],
                "a",
                vec![af("alpha", alpha)],
            );
        })
        .import("out"));
        assert!(
            e.contains("node '/act/LeakyRelu' (LeakyRelu)")
                && e.contains("2^-k")
                && !e.contains('\n'),
            "{e}"
        );
    }
    // A polynomial before a ReLU becomes its own activation layer first.
    let m = ok(dense_net(|g| {
        g.node("Mul", &["h", "h"], "s", vec![])
            .node("Relu", &["s"], "a", vec![]);
    })
    .import("out"))
    .model;
    assert_eq!(m.layers[1], Layer::Activation(Activation::Square));
    assert_eq!(m.layers[2], Layer::Relu(Relu::default()));
}

#[test]
fn refused_activations_name_the_node() {
    for op in ["Sigmoid", "Tanh", "Gelu", "Clip"] {
        let e = err(dense_net(|g| {
            g.named(&format!("/act/{op}"), op, &["h"], "a", vec![]);
        })
        .import("out"));
        assert!(
            e.contains(&format!("node '/act/{op}' ({op}) is not supported")),
            "{e}"
        );
        assert!(e.contains("`x * x + x`") && e.contains("ReLU"), "{e}");
    }
    let e = err(dense_net(|g| {
        g.named("", "Foo", &["h"], "a", vec![]);
    })
    .import("out"));
    assert!(
        e.contains("node #1 (Foo)") && e.contains("unsupported op"),
        "{e}"
    );
    let e = err(dense_net(|g| {
        g.node("Mul", &["h", "h"], "a", vec![]);
        g.graph.node.last_mut().unwrap().domain = "com.microsoft".into();
    })
    .import("out"));
    assert!(e.contains("custom operator domain"), "{e}");
    // A refused op that does not feed the output is ignored.
    let mut g = dense_net(|g| {
        g.node("Identity", &["h"], "a", vec![]);
    });
    g.node("Sigmoid", &["h"], "unused", vec![]);
    ok(g.import("out"));
}

#[test]
fn softmax() {
    let mut g = dense_net(|g| {
        g.node("Mul", &["h", "h"], "a", vec![]);
    });
    g.named("/Softmax", "Softmax", &["out"], "prob", vec![ai("axis", 1)]);
    let imp = ok(g.import("prob"));
    assert_eq!(imp.model.layers.len(), 3);
    assert!(imp.notes.iter().any(|n| n == "dropped trailing Softmax (node '/Softmax'): argmax is unchanged, outputs are pre-softmax scores"), "{:?}", imp.notes);
    let mut g = dense_net(|g| {
        g.node("Mul", &["h", "h"], "a", vec![]);
    });
    g.named("ls", "LogSoftmax", &["out"], "prob", vec![]);
    assert!(ok(g.import("prob"))
        .notes
        .iter()
        .any(|n| n.contains("LogSoftmax")));
    let e = err(dense_net(|g| {
        g.named("mid", "Softmax", &["h"], "a", vec![]);
    })
    .import("out"));
    assert!(
        e.contains("node 'mid' (Softmax)") && e.contains("last"),
        "{e}"
    );
}

/// input [N, 2, 3, 3] → x*x → (reshape nodes from `f`, producing "r") → Gemm(18→2).
fn reshape_net(
    batch: i64,
    f: impl FnOnce(&mut G),
) -> Result<verinfer_onnx::Imported, verinfer_onnx::OnnxError> {
    let mut g = G::new(&[batch, 2, 3, 3]);
    g.weight("F", &[2, 18], 70);
    g.node("Mul", &["input", "input"], "s", vec![]);
    f(&mut g);
    g.node("Gemm", &["r", "F"], "out", vec![ai("transB", 1)]);
    g.import("out")
}

#[test]
fn reshapes_and_shape_computations() {
    let flat = [Layer::Activation(Activation::Square), Layer::Flatten];
    let check = |r: Result<verinfer_onnx::Imported, verinfer_onnx::OnnxError>| {
        let m = ok(r).model;
        assert_eq!(m.layers[..2], flat[..], "{:?}", m.layers);
        assert_eq!(m.layers.len(), 3);
    };
    // x.view(x.size(0), -1), TorchScript exporter at opset 13 (axes as an input).
    check(reshape_net(-1, |g| {
        g.view_flat("s", "r");
    }));
    // The same with the axes as an attribute (as opsets before 13 write them; the importer
    // still reads that form), with a Cast.
    check(reshape_net(-1, |g| {
        g.node("Shape", &["s"], "shp", vec![])
            .node(
                "Constant",
                &[],
                "zero",
                vec![at("value", ti("v", &[], &[0]))],
            )
            .node("Gather", &["shp", "zero"], "n", vec![])
            .node("Unsqueeze", &["n"], "n1", vec![ints("axes", &[0])])
            .consti("m1", &[-1])
            .node("Concat", &["n1", "m1"], "shape0", vec![ai("axis", 0)])
            .node("Cast", &["shape0"], "shape", vec![ai("to", 7)])
            .node("Reshape", &["s", "shape"], "r", vec![]);
    }));
    // Shape → Slice → Concat.
    check(reshape_net(-1, |g| {
        g.node("Shape", &["s"], "shp", vec![])
            .init(ti("st", &[1], &[0]))
            .init(ti("en", &[1], &[1]))
            .node("Slice", &["shp", "st", "en"], "n1", vec![])
            .consti("m1", &[-1])
            .node("Concat", &["n1", "m1"], "shape", vec![ai("axis", 0)])
            .node("Reshape", &["s", "shape"], "r", vec![]);
    }));
    // Shape initializer [-1, 18]; Constant node [1, -1] with a fixed batch of 1 (dynamo).
    check(reshape_net(-1, |g| {
        g.init(ti("shape", &[2], &[-1, 18]))
            .node("Reshape", &["s", "shape"], "r", vec![]);
    }));
    check(reshape_net(1, |g| {
        g.opset = 18;
        g.consti("shape", &[1, -1])
            .node("Reshape", &["s", "shape"], "r", vec![]);
    }));
    check(reshape_net(-1, |g| {
        g.node("Flatten", &["s"], "r", vec![]);
    }));
    // Reshape to [N, 2, 9] then Flatten.
    let m = ok(reshape_net(-1, |g| {
        g.consti("shape", &[0, 2, 9])
            .node("Reshape", &["s", "shape"], "r0", vec![])
            .node("Flatten", &["r0"], "r", vec![]);
    }))
    .model;
    assert_eq!(m.layers[1], Layer::Reshape { shape: vec![2, 9] });
    assert_eq!(m.layers[2], Layer::Flatten);
    // Refusals: a fixed batch size other than the model's, flattening the batch axis.
    let e = err(reshape_net(-1, |g| {
        g.consti("shape", &[2, -1])
            .named("rs", "Reshape", &["s", "shape"], "r", vec![]);
    }));
    assert!(
        e.contains("node 'rs' (Reshape)") && e.contains("batch"),
        "{e}"
    );
    let e = err(reshape_net(-1, |g| {
        g.consti("shape", &[-1, -1])
            .node("Reshape", &["s", "shape"], "r", vec![]);
    }));
    assert!(e.contains("cannot reshape [N, 2, 3, 3] to [-1, -1]"), "{e}");
    let e = err(reshape_net(-1, |g| {
        g.node("Flatten", &["s"], "r", vec![ai("axis", 2)]);
    }));
    assert!(e.contains("batch"), "{e}");
    let e = err(reshape_net(-1, |g| {
        g.consti("shape", &[0, 5, -1])
            .node("Reshape", &["s", "shape"], "r", vec![]);
    }));
    assert!(e.contains("cannot reshape"), "{e}");
}

#[test]
fn unsqueeze_to_image_and_squeeze_refusals() {
    // [N, 4] → Gemm → Unsqueeze(2, 3) → [N, 3, 1, 1] → 1x1 conv.
    let mut g = G::new(&[-1, 4]);
    g.weight("W1", &[3, 4], 80).weight("K", &[2, 3, 1, 1], 81);
    g.consti("axes", &[2, 3])
        .node("Gemm", &["input", "W1"], "h", vec![ai("transB", 1)])
        .node("Unsqueeze", &["h", "axes"], "u", vec![])
        .node("Conv", &["u", "K"], "out", vec![]);
    let m = ok(g.import("out")).model;
    assert_eq!(
        m.layers[1],
        Layer::Reshape {
            shape: vec![3, 1, 1]
        }
    );
    assert_eq!(m.validate().unwrap().last().unwrap(), &vec![2, 1, 1]);
    let mut g = G::new(&[-1, 4]);
    g.consti("axes", &[0])
        .node("Squeeze", &["input", "axes"], "out", vec![]);
    assert!(err(g.import("out")).contains("batch"));
    let mut g = G::new(&[-1, 4]);
    g.consti("axes", &[1])
        .node("Squeeze", &["input", "axes"], "out", vec![]);
    assert!(err(g.import("out")).contains("not 1"));
}

#[test]
fn input_range_and_name() {
    let mk = || {
        dense_net(|g| {
            g.node("Mul", &["h", "h"], "a", vec![]);
        })
    };
    let imp = ok(mk().import("out"));
    assert_eq!(imp.model.input_range, [0.0, 1.0]);
    assert_eq!(imp.model.name, "onnx-model");
    assert!(imp.notes.is_empty(), "{:?}", imp.notes);
    let over = ImportOptions {
        input_range: Some([-2.0, 3.0]),
    };
    let imp = import_bytes(&mk().bytes("out"), None, &over).unwrap();
    assert_eq!(imp.model.input_range, [-2.0, 3.0]);
    let mut g = mk();
    g.meta.clear();
    g.graph.name = "digits_cnn".into();
    let imp = ok(g.import("out"));
    assert_eq!(imp.model.input_range, [-1.0, 1.0]);
    assert_eq!(imp.model.name, "digits_cnn");
    assert!(
        imp.notes.iter().any(|n| n.contains("--input-range lo,hi")),
        "{:?}",
        imp.notes
    );
    let mut g = mk();
    g.meta = vec![
        ("verinfer.input_range".into(), " -0.5 , 0.5".into()),
        ("verinfer.name".into(), "net".into()),
    ];
    let imp = ok(g.import("out"));
    assert_eq!(
        (imp.model.input_range, imp.model.name.as_str()),
        ([-0.5, 0.5], "net")
    );
    for bad in ["0", "a,b", "1,0", "0,1,2", "nan,1"] {
        let mut g = mk();
        g.meta = vec![("verinfer.input_range".into(), bad.into())];
        let e = err(g.import("out"));
        assert!(e.contains("verinfer.input_range"), "{e}");
    }
}

#[test]
fn graph_inputs_and_outputs() {
    // Two real inputs.
    let mut g = dense_net(|g| {
        g.node("Mul", &["h", "h"], "a", vec![]);
    });
    let extra = g.graph.input[0].clone();
    g.graph.input.push(ValueInfoProto {
        name: "other".into(),
        ..extra.clone()
    });
    assert!(err(g.import("out")).contains("exactly one input"));
    // Initializers listed as inputs too (older exporters) are fine.
    let mut g = dense_net(|g| {
        g.node("Mul", &["h", "h"], "a", vec![]);
    });
    g.graph.input.push(ValueInfoProto {
        name: "W1".into(),
        ..extra
    });
    ok(g.import("out"));
    // Rank-3 input, symbolic spatial size.
    let mut g = G::new(&[-1, 3, 8]);
    g.node("Mul", &["input", "input"], "out", vec![]);
    assert!(err(g.import("out")).contains("rank 3"));
    let mut g = G::new(&[-1, 1, -1, 8]);
    g.node("Mul", &["input", "input"], "out", vec![]);
    assert!(err(g.import("out")).contains("fixed"));
    // Constant output, missing output, unknown tensor.
    let mut g = G::new(&[-1, 4]);
    g.scalar("c", 1.0);
    assert!(err(g.import("c")).contains("does not depend on the input"));
    let g = G::new(&[-1, 4]);
    assert!(err(g.import("nothing")).contains("not produced"));
    let mut g = G::new(&[-1, 4]);
    g.named("m", "Mul", &["input", "ghost"], "out", vec![]);
    assert!(err(g.import("out")).contains("'ghost' is not produced"));
    // Identity model: no layers.
    let mut g = G::new(&[-1, 4]);
    g.node("Identity", &["input"], "out", vec![]);
    assert!(err(g.import("out")).contains("no layers"));
    // No graph, not protobuf.
    let e = import_bytes(
        &prost::Message::encode_to_vec(&ModelProto::default()),
        None,
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no graph"), "{e}");
    let e = import_bytes(b"\xff\xff\xff\xff garbage", None, &ImportOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with("not a valid ONNX model"), "{e}");
}

#[test]
fn tensor_encodings() {
    let base = || {
        let mut g = G::new(&[-1, 2]);
        g.node("Gemm", &["input", "W"], "out", vec![ai("transB", 1)]);
        g
    };
    let want = vec![0.5, -1.0, 2.0, 0.25];
    let forms = [
        TensorProto {
            float_data: vec![0.5, -1.0, 2.0, 0.25],
            data_type: DT_FLOAT,
            ..Default::default()
        },
        TensorProto {
            double_data: want.clone(),
            data_type: DT_DOUBLE,
            ..Default::default()
        },
        TensorProto {
            raw_data: want.iter().flat_map(|x| x.to_le_bytes()).collect(),
            data_type: DT_DOUBLE,
            ..Default::default()
        },
        // FLOAT16: 0.5 = 0x3800, -1 = 0xbc00, 2 = 0x4000, 0.25 = 0x3400.
        TensorProto {
            raw_data: [0x3800u16, 0xbc00, 0x4000, 0x3400]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            data_type: DT_FLOAT16,
            ..Default::default()
        },
        TensorProto {
            int32_data: vec![0x3800, 0xbc00, 0x4000, 0x3400],
            data_type: DT_FLOAT16,
            ..Default::default()
        },
    ];
    for t in forms {
        let mut g = base();
        g.init(TensorProto {
            name: "W".into(),
            dims: vec![2, 2],
            ..t
        });
        assert_eq!(dense(&ok(g.import("out")).model.layers[0]).weight, want);
    }
    let mut g = base();
    g.init(TensorProto {
        name: "W".into(),
        dims: vec![2, 2],
        raw_data: vec![0; 15],
        data_type: DT_FLOAT,
        ..Default::default()
    });
    let e = err(g.import("out"));
    assert!(e.starts_with("tensor 'W'") && e.contains("15 bytes"), "{e}");
    let mut g = base();
    g.init(TensorProto {
        name: "W".into(),
        dims: vec![2, 2],
        float_data: vec![1.0; 3],
        data_type: DT_FLOAT,
        ..Default::default()
    });
    assert!(err(g.import("out")).contains("3 values"));
    let mut g = base();
    g.init(TensorProto {
        name: "W".into(),
        dims: vec![1 << 40, 1 << 40],
        data_type: DT_FLOAT,
        ..Default::default()
    });
    assert!(err(g.import("out")).contains("too large"));
    let mut g = base();
    g.init(TensorProto {
        name: "W".into(),
        dims: vec![2, 2],
        data_type: 8,
        ..Default::default()
    });
    assert!(err(g.import("out")).contains("element type"));
}

#[test]
fn dynamo_style_opset18_graph() {
    // Conv(stride 2) → 0.5·x**2 + x (Pow with an initializer exponent) → Conv → + [1,C,1,1]
    // Constant → x*x → GlobalAveragePool → Reshape([1, -1]) → MatMul + Add.
    let mut g = G::new(&[1, 1, 8, 8]);
    g.opset = 18;
    g.weight("W1", &[4, 1, 3, 3], 90)
        .weight("b1", &[4], 91)
        .weight("W2", &[6, 4, 3, 3], 92);
    g.weight("W3", &[6, 5], 93).weight("b3", &[5], 94);
    g.init(tf("two", &[], &[2.0])).init(tf("half", &[], &[0.5]));
    g.node(
        "Conv",
        &["input", "W1", "b1"],
        "c1",
        vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[2, 2])],
    )
    .node("Pow", &["c1", "two"], "p", vec![])
    .node("Mul", &["p", "half"], "hp", vec![])
    .node("Add", &["hp", "c1"], "a1", vec![])
    .node("Conv", &["a1", "W2"], "c2", vec![])
    .node(
        "Constant",
        &[],
        "bb",
        vec![at(
            "value",
            tf("v", &[1, 6, 1, 1], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        )],
    )
    .node("Add", &["c2", "bb"], "c2b", vec![])
    .node("Mul", &["c2b", "c2b"], "s2", vec![])
    .node("GlobalAveragePool", &["s2"], "gp", vec![])
    .consti("shape", &[1, -1])
    .node("Reshape", &["gp", "shape"], "flat", vec![])
    .node("MatMul", &["flat", "W3"], "mm", vec![])
    .node("Add", &["mm", "b3"], "out", vec![]);
    let m = ok(g.import("out")).model;
    let ops: Vec<&str> = m.layers.iter().map(Layer::op_name).collect();
    assert_eq!(
        ops,
        [
            "conv2d",
            "activation",
            "conv2d",
            "activation",
            "sum_pool",
            "flatten",
            "dense"
        ]
    );
    assert_eq!(
        m.layers[1],
        Layer::Activation(Activation::Quadratic {
            a: 0.5,
            b: 1.0,
            c: 0.0
        })
    );
    assert_eq!(
        conv(&m.layers[2]).bias.clone().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    assert_eq!(
        m.layers[4],
        Layer::SumPool(SumPool {
            window: [2, 2],
            stride: None
        })
    );
    assert_eq!(
        dense(&m.layers[6]).bias.clone().unwrap(),
        f64s(&vals(5, 94))
    );
    assert_eq!(
        dense(&m.layers[6]).weight[0],
        f64::from(vals(30, 93)[0]) * 0.25
    );
}

/// Gemm(4 → 2) then x², the smallest model for the ambiguity tests; `edit` changes the graph.
fn gemm_square(edit: impl FnOnce(&mut G)) -> G {
    let mut g = G::new(&[-1, 4]);
    g.weight("W", &[2, 4], 1)
        .node("Gemm", &["input", "W"], "h", vec![ai("transB", 1)])
        .node("Mul", &["h", "h"], "out", vec![]);
    edit(&mut g);
    g
}

#[test]
fn one_name_means_one_thing() {
    assert_eq!(ok(gemm_square(|_| {}).import("out")).model.layers.len(), 2);
    // A second initializer named W (onnxruntime would use the first, a map the last).
    let e = err(gemm_square(|g| {
        g.weight("W", &[2, 4], 2);
    })
    .import("out"));
    assert!(e.contains("two initializers are named 'W'"), "{e}");
    // The input declared twice.
    let e = err(gemm_square(|g| {
        let again = g.graph.input[0].clone();
        g.graph.input.push(again);
    })
    .import("out"));
    assert!(e.contains("two graph inputs are named 'input'"), "{e}");
    // Two nodes defining h, even when one of them is not used.
    let e = err(gemm_square(|g| {
        g.node("Neg", &["input"], "h", vec![]);
    })
    .import("out"));
    assert!(
        e.contains("defines 'h'") && e.contains("another node's output"),
        "{e}"
    );
    // A node output that shadows a weight or the input.
    for shadowed in ["W", "input"] {
        let e = err(gemm_square(|g| {
            g.node("Neg", &["out"], shadowed, vec![]);
        })
        .import("out"));
        assert!(
            e.contains(&format!("defines '{shadowed}'"))
                && e.contains("initializer or graph input"),
            "{e}"
        );
    }
    // Older exporters list the weights among the inputs too: still one meaning, accepted.
    let listed = gemm_square(|g| {
        let mut w = g.graph.input[0].clone();
        w.name = "W".into();
        g.graph.input.push(w);
    });
    assert_eq!(ok(listed.import("out")).model.layers.len(), 2);
}

#[test]
fn the_opset_is_checked() {
    use prost::Message as _;
    let import = |edit: &dyn Fn(&mut ModelProto)| {
        let mut m = gemm_square(|_| {}).model("out");
        edit(&mut m);
        import_bytes(&m.encode_to_vec(), None, &ImportOptions::default())
    };
    let set = |v: i64| move |m: &mut ModelProto| m.opset_import[0].version = v;
    for v in [13, 18] {
        ok(import(&set(v)));
    }
    ok(import(&|m: &mut ModelProto| {
        m.opset_import[0].domain = "ai.onnx".into()
    }));
    for v in [1, 11, 12, 19, 999, -3] {
        let e = err(import(&set(v)));
        assert!(
            e.contains(&format!("opset {v} is not supported")) && e.contains("13 to 18"),
            "{v}: {e}"
        );
    }
    let e = err(import(&|m: &mut ModelProto| m.opset_import.clear()));
    assert!(e.contains("declares no ONNX opset"), "{e}");
    // Only another domain (e.g. the dynamo exporter's function library) is no ONNX opset.
    let e = err(import(&|m: &mut ModelProto| {
        m.opset_import[0].domain = "pkg.onnxscript.torch_lib".into()
    }));
    assert!(e.contains("declares no ONNX opset"), "{e}");
    let e = err(import(&|m: &mut ModelProto| {
        let mut again = m.opset_import[0].clone();
        again.version = 13;
        m.opset_import.push(again);
    }));
    assert!(e.contains("imported 2 times"), "{e}");
}

/// What the importer says each value name stands for, as `layer N` or `refused: why`.
fn names_of(imported: &verinfer_onnx::Imported) -> std::collections::BTreeMap<String, String> {
    use verinfer_circuits::settings::TensorName;
    imported
        .names
        .iter()
        .map(|(n, t)| {
            let v = match t {
                TensorName::Layer(l) => format!("layer {l}"),
                TensorName::Refused(why) => format!("refused: {why}"),
            };
            (n.to_string(), v)
        })
        .collect()
}

#[test]
fn value_names_stand_for_the_layer_that_computes_them() {
    // conv "c" → BatchNorm "m" → m*m "s" → Flatten "f" → Gemm "out".
    let im = ok(conv_net(true, |g| {
        bn_params(g);
        g.node(
            "BatchNormalization",
            &["c", "gamma", "beta", "mean", "var"],
            "m",
            vec![],
        );
    })
    .import("out"));
    let n = names_of(&im);
    assert_eq!(n["m"], "layer 0");
    assert_eq!(n["s"], "layer 1");
    assert_eq!(n["f"], "layer 2");
    assert_eq!(n["out"], "layer 3");
    // The BatchNorm folds into the conv, so the conv's own output is gone.
    assert!(
        n["c"].starts_with("refused: changes when the importer folds"),
        "{}",
        n["c"]
    );
    assert!(n["c"].ends_with("name 'm' instead"), "{}", n["c"]);
    assert!(
        n["input"].starts_with("refused: is the model input"),
        "{}",
        n["input"]
    );
    // Constants have no name a checkpoint could use.
    assert!(!n.contains_key("W") && !n.contains_key("gamma"));

    // x*x + x: the square alone is inside the activation.
    let im = ok(dense_net(|g| {
        g.node("Mul", &["h", "h"], "sq", vec![])
            .node("Add", &["sq", "h"], "a", vec![]);
    })
    .import("out"));
    let n = names_of(&im);
    assert_eq!((n["h"].as_str(), n["a"].as_str()), ("layer 0", "layer 1"));
    assert!(
        n["sq"].starts_with("refused: is part of an elementwise expression")
            && n["sq"].ends_with("name 'a' instead"),
        "{}",
        n["sq"]
    );

    // An average pool's 1/4 folds forward: both the pool and the pool × 4 are the sum-pool.
    let mut g = G::new(&[-1, 1, 6, 6]);
    g.weight("W", &[2, 1, 3, 3], 40).weight("F", &[3, 18], 42);
    g.node(
        "Conv",
        &["input", "W"],
        "c",
        vec![ints("pads", &[1, 1, 1, 1])],
    )
    .node("Mul", &["c", "c"], "s", vec![])
    .node(
        "AveragePool",
        &["s"],
        "p",
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    )
    .scalar("four", 4.0)
    .node("Mul", &["p", "four"], "p4", vec![])
    .node("Flatten", &["p4"], "f", vec![])
    .node("Gemm", &["f", "F"], "out", vec![ai("transB", 1)]);
    let n = names_of(&ok(g.import("out")));
    assert_eq!(n["p"], "layer 2");
    assert_eq!(n["p4"], "layer 2");

    // 2·h + 1 folds backward into the first Gemm: its output is then the offset value, and
    // the names before the fold no longer describe any layer.
    let im = ok(dense_net(|g| {
        g.scalar("two", 2.0)
            .scalar("one", 1.0)
            .node("Mul", &["h", "two"], "h2", vec![])
            .node("Add", &["h2", "one"], "a", vec![]);
    })
    .import("out"));
    let n = names_of(&im);
    assert_eq!(n["a"], "layer 0");
    for stale in ["h", "h2"] {
        assert!(
            n[stale].starts_with("refused: changes when the importer folds")
                && n[stale].ends_with("name 'a' instead"),
            "{stale}: {}",
            n[stale]
        );
    }
}

/// A residual network as torch exports it: conv "c0" → x² "a0" (the block input), then the
/// block's conv "c1" → x² → conv "c2", added to (or subtracted from) the block input, → x² →
/// Flatten → Gemm; with `project`, the block's first conv has stride 2 and the shortcut is a
/// 1×1 stride-2 conv of the block input.
fn residual_net(op: &str, shortcut_first: bool, project: bool) -> G {
    let mut g = G::new(&[-1, 1, 6, 6]);
    let conv = |stride: i64, k: i64, pad: i64| {
        vec![
            ints("kernel_shape", &[k, k]),
            ints("pads", &[pad; 4]),
            ints("strides", &[stride, stride]),
        ]
    };
    let side = if project { 3 } else { 6 };
    g.weight("W0", &[2, 1, 3, 3], 50)
        .weight("W1", &[2, 2, 3, 3], 51)
        .weight("W2", &[2, 2, 3, 3], 52)
        .weight("Ws", &[2, 2, 1, 1], 53)
        .weight("F", &[3, 2 * side * side], 54);
    let s1 = if project { 2 } else { 1 };
    g.node("Conv", &["input", "W0"], "c0", conv(1, 3, 1))
        .node("Mul", &["c0", "c0"], "a0", vec![])
        .node("Conv", &["a0", "W1"], "c1", conv(s1, 3, 1))
        .node("Mul", &["c1", "c1"], "a1", vec![])
        .node("Conv", &["a1", "W2"], "c2", conv(1, 3, 1));
    let short = if project {
        g.node("Conv", &["a0", "Ws"], "sc", conv(2, 1, 0));
        "sc"
    } else {
        "a0"
    };
    let ins = if shortcut_first {
        [short, "c2"]
    } else {
        ["c2", short]
    };
    g.node(op, &ins, "s", vec![])
        .node("Mul", &["s", "s"], "a2", vec![])
        .node("Flatten", &["a2"], "f", vec![])
        .node("Gemm", &["f", "F"], "out", vec![ai("transB", 1)]);
    g
}

#[test]
fn residual_blocks_become_add_and_branch_layers() {
    use verinfer_circuits::model::{Add, Branch};
    for (op, first) in [("Add", false), ("Add", true), ("Sub", false), ("Sub", true)] {
        let m = ok(residual_net(op, first, false).import("out")).model;
        assert_eq!(
            kinds(&m),
            [
                "conv2d",
                "activation",
                "conv2d",
                "activation",
                "conv2d",
                "add",
                "activation",
                "flatten",
                "dense"
            ],
            "{op} {first}"
        );
        // c2 is the current output; the shortcut a0 (layer 1) is `with`. `a0 − c2` is
        // −(c2 − a0): the sign goes into the square that follows.
        assert_eq!(
            m.layers[5],
            Layer::Add(Add {
                with: 1,
                subtract: op == "Sub"
            })
        );
        assert_eq!(m.layers[6], Layer::Activation(Activation::Square));
    }
    // The projection shortcut comes after the main path: a branch from the block input, the
    // 1×1 stride-2 conv, then the add of the main path's output.
    let m = ok(residual_net("Add", false, true).import("out")).model;
    assert_eq!(
        kinds(&m),
        [
            "conv2d",
            "activation",
            "conv2d",
            "activation",
            "conv2d",
            "branch",
            "conv2d",
            "add",
            "activation",
            "flatten",
            "dense"
        ]
    );
    assert_eq!(m.layers[5], Layer::Branch(Branch { from: 1 }));
    assert_eq!(
        m.layers[7],
        Layer::Add(Add {
            with: 4,
            subtract: false
        })
    );
    let shapes = m.validate().unwrap();
    assert_eq!(shapes[8], vec![2, 3, 3]);
    // The names: the add's output stands for the add layer.
    let im = ok(residual_net("Add", false, true).import("out"));
    let n = names_of(&im);
    assert_eq!(n["s"], "layer 7");
    assert_eq!(n["sc"], "layer 6");
    // A product of two layers' outputs is not a residual connection.
    let e = err(residual_net("Mul", false, false).import("out"));
    assert!(e.contains("not a polynomial of one tensor"), "{e}");
}

/// A factor folded back into a layer whose own output another node still reads would change
/// that read too: `m = 2·out; r = m + hh; z = r + out` must not scale `out`'s layer (3·out + hh
/// is the right output, not 4·out + hh); the importer refuses instead.
#[test]
fn a_factor_is_not_folded_into_a_layer_read_elsewhere() {
    let net = |read_again: bool| {
        let mut g = dense_net(|g| {
            g.weight("W3", &[2, 3], 7)
                .node("Gemm", &["h", "W3"], "hh", vec![ai("transB", 1)])
                .node("Identity", &["h"], "a", vec![]);
        });
        g.scalar("two", 2.0)
            .node("Mul", &["out", "two"], "m", vec![])
            .node("Add", &["m", "hh"], "r", vec![]);
        if read_again {
            g.node("Add", &["r", "out"], "z", vec![]);
            g.import("z")
        } else {
            g.import("r")
        }
    };
    let e = err(net(true));
    assert!(e.contains("cannot be folded"), "{e}");
    // Without the second read the same factor folds into the layer.
    let m = ok(net(false)).model;
    assert_eq!(kinds(&m), ["dense", "dense", "branch", "dense", "add"]);
}

/// A pre-activation residual block: the BatchNormalization after the add cannot fold into a
/// linear layer, so it becomes a per-channel 1×1 convolution that computes it exactly.
#[test]
fn batchnorm_after_an_add_is_a_per_channel_layer() {
    use verinfer_circuits::float;
    let mut g = G::new(&[-1, 1, 6, 6]);
    let conv = || vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])];
    g.weight("W0", &[3, 1, 3, 3], 60)
        .weight("W1", &[3, 3, 3, 3], 61)
        .weight("F", &[2, 108], 62);
    bn_params(&mut g);
    g.node("Conv", &["input", "W0"], "c0", conv())
        .node("Mul", &["c0", "c0"], "a0", vec![])
        .node("Conv", &["a0", "W1"], "c1", conv())
        .node("Add", &["c1", "a0"], "s", vec![])
        .node(
            "BatchNormalization",
            &["s", "gamma", "beta", "mean", "var"],
            "bn",
            vec![af("epsilon", 1e-3)],
        )
        .node("Mul", &["bn", "bn"], "a1", vec![])
        .node("Flatten", &["a1"], "f", vec![])
        .node("Gemm", &["f", "F"], "out", vec![ai("transB", 1)]);
    let m = ok(g.import("out")).model;
    assert_eq!(
        kinds(&m),
        [
            "conv2d",
            "activation",
            "conv2d",
            "add",
            "conv2d",
            "activation",
            "flatten",
            "dense"
        ]
    );
    let x: Vec<f64> = f64s(&vals(36, 3));
    let run = float::run(&m, &x).unwrap();
    close(&run.layers[4], &bn_reference(&run.layers[3], 36), 1e-12);
}
