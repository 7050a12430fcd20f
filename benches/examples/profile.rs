//! Per-layer timings of the prover and verifier on a built-in architecture (min over runs).
//! `cargo run --release -p verinfer-benches --example profile -- ARCH BATCH RUNS`, ARCH one of
//! cifar, timit, lenet5, vgg11, resnet20.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Instant;
use verinfer_circuits::circuit::FieldChoice;
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::M127;
use verinfer_circuits::model::Activation;
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::witness::{infer, witness};
use verinfer_circuits::zoo;
use verinfer_prover::inference::prove_witness;
use verinfer_verifier::inference::verify;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch = args.get(1).map(String::as_str).unwrap_or("cifar");
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let runs: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let (m, q, x) = match arch {
        "timit" => {
            let (m, q) = zoo::timit(1, Activation::Square);
            (m, q, zoo::timit_input(batch, 3))
        }
        "lenet5" | "vgg11" | "resnet20" => {
            let act = Activation::SquarePlusX;
            let (m, q) = match arch {
                "lenet5" => zoo::lenet5(1, act),
                "vgg11" => zoo::vgg11(1, act),
                _ => zoo::resnet20(1, act),
            };
            let x = zoo::random_input(&m, batch, 3);
            (m, q, x)
        }
        _ => {
            let (m, q) = zoo::cifar_small(1, Activation::SquarePlusX);
            let x = zoo::random_input(&m, batch, 3);
            (m, q, x)
        }
    };
    let c = compile(&m, &q, FieldChoice::M127).expect("compile");
    let input = quantize_input(&c, &x).expect("input");
    let min = |f: &mut dyn FnMut() -> f64| (0..runs).map(|_| f()).fold(f64::MAX, f64::min);
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let t_infer = min(&mut || {
        let t = Instant::now();
        infer(&c, batch, &input).expect("infer");
        ms(t)
    });
    let t_wit = min(&mut || {
        let t = Instant::now();
        witness::<M127>(&c, batch, &input).expect("witness");
        ms(t)
    });
    let w = witness::<M127>(&c, batch, &input).expect("witness");
    let mut best = vec![f64::MAX; c.layers.len()];
    let mut t_proofs = f64::MAX;
    let mut proof = None;
    for _ in 0..runs {
        let t = Instant::now();
        let (p, times) = prove_witness(&c, &input, &w).expect("prove");
        t_proofs = t_proofs.min(ms(t));
        for (b, t) in best.iter_mut().zip(times) {
            *b = b.min(t);
        }
        proof = Some(p);
    }
    let proof = proof.expect("proof");
    let t_digest = min(&mut || {
        let t = Instant::now();
        std::hint::black_box(c.digest());
        ms(t)
    });
    let mut vbest = vec![f64::MAX; c.layers.len() + 2];
    let t_verify = min(&mut || {
        let t = Instant::now();
        let r = verify(&c, &input, &w.output, &proof).expect("verify");
        vbest[0] = vbest[0].min(r.setup.0);
        vbest[1] = vbest[1].min(r.input.0);
        for (b, l) in vbest[2..].iter_mut().zip(&r.layers) {
            *b = b.min(l.0);
        }
        ms(t)
    });
    println!("{arch} batch {batch}: infer {t_infer:.2} ms, witness {t_wit:.2} ms, layer proofs {t_proofs:.2} ms, verify {t_verify:.2} ms, digest {t_digest:.2} ms");
    for (i, l) in c.layers.iter().enumerate() {
        println!(
            "  {:<28} prove {:>8.2} ms  verify {:>7.3} ms",
            l.label,
            best[i],
            vbest[i + 2]
        );
    }
    println!(
        "  verify setup {:.3} ms, input {:.3} ms",
        vbest[0], vbest[1]
    );
}
