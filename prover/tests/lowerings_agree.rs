//! The two lowerings of one compiled model, `structured` (specialised sumchecks) and `gates`
//! (plain fan-in-2 GKR), give the same output and both proofs verify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use verinfer_circuits::circuit::{FieldChoice, QuantParams};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::{from_i128, to_i128, M127};
use verinfer_circuits::lower::lower_to_gates;
use verinfer_circuits::model::{Activation, Conv2d, Dense, Layer, Model, SumPool};
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::zoo::SplitMix;

fn model(act: Activation, seed: u64) -> Model {
    let mut rng = SplitMix::new(seed);
    let mut w = |n: usize| (0..n).map(|_| rng.uniform(-0.5, 0.5)).collect::<Vec<f64>>();
    Model {
        name: "small".into(),
        input_shape: vec![3, 5, 7],
        input_range: [-1.0, 1.0],
        layers: vec![
            Layer::Conv2d(Conv2d {
                in_channels: 3,
                out_channels: 4,
                kernel: [3, 2],
                stride: [2, 1],
                padding: [1, 1],
                weight: w(72),
                bias: Some(w(4)),
            }),
            Layer::Activation(act),
            Layer::SumPool(SumPool {
                window: [2, 2],
                stride: Some([1, 2]),
            }),
            Layer::Flatten,
            Layer::Dense(Dense {
                in_features: 32,
                out_features: 10,
                weight: w(320),
                bias: Some(w(10)),
            }),
        ],
    }
}

#[test]
fn structured_and_gates_lowerings_agree() {
    let acts = [
        Activation::Square,
        Activation::SquarePlusX,
        Activation::Quadratic {
            a: 0.5,
            b: -0.25,
            c: 0.125,
        },
        Activation::Polynomial {
            coefficients: vec![0.1, 0.5, 0.25, -0.125],
        },
        Activation::Polynomial {
            coefficients: vec![0.0, 1.0, 0.0, -0.5, 0.0, 0.0625],
        },
    ];
    for (k, act) in acts.into_iter().enumerate() {
        let params = QuantParams {
            input_bits: 4,
            weight_bits: 4,
            coef_bits: 4,
            ..QuantParams::default()
        };
        let c = compile(&model(act.clone(), k as u64), &params, FieldChoice::M127).unwrap();
        for batch in [1, 3] {
            let mut rng = SplitMix::new(batch as u64 + 10 * k as u64);
            let x: Vec<f64> = (0..batch * 105).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let input = quantize_input(&c, &x).unwrap();

            let (out_s, proof_s, _) =
                verinfer_prover::inference::prove::<M127>(&c, &input).unwrap();
            verinfer_verifier::inference::verify(&c, &input, &out_s, &proof_s).unwrap();

            let g = lower_to_gates(&c, batch).unwrap();
            let gin: Vec<M127> = input.iter().map(|v| from_i128(*v).unwrap()).collect();
            let (out_g, proof_g) = verinfer_prover::gkr::prove(&g, &gin).unwrap();
            verinfer_verifier::gkr::verify(&g, &gin, &out_g, &proof_g).unwrap();

            let out_g: Vec<i128> = out_g.iter().map(|v| to_i128(*v).unwrap()).collect();
            assert_eq!(out_g, out_s, "{act:?} batch {batch}");
        }
    }
}
