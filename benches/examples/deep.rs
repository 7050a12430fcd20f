//! Deep-network figures (the deep-networks issue): for each case, the median over runs of the
//! integer inference, the proof (witness included) and the verification (digest included), the
//! proof bytes, the checkpoints, and the peak memory of a process that only runs that case.
//!
//! `cargo run --release -p verinfer-benches --example deep [-- RUNS [CASE...]]`
//!
//! Cases: `lenet5-b1`, `lenet5-b64`, `vgg11-b1`, `resnet20-b1` (built-in random-weight
//! architectures at their zoo settings, `verinfer_circuits::zoo`). Each runs in a child
//! process of this binary so its peak resident memory (`VmHWM`) is its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Instant;
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit, Op};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::M127;
use verinfer_circuits::model::Activation;
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::witness::infer;
use verinfer_circuits::zoo;
use verinfer_prover::inference::prove;
use verinfer_verifier::inference::verify;

const CASES: [&str; 4] = ["lenet5-b1", "lenet5-b64", "vgg11-b1", "resnet20-b1"];

fn case(name: &str) -> (LayeredCircuit, Vec<i128>, usize) {
    let (arch, batch) = name.split_once("-b").expect("CASE is ARCH-bN");
    let batch: usize = batch.parse().expect("batch");
    let act = Activation::SquarePlusX;
    let (m, q) = match arch {
        "lenet5" => zoo::lenet5(1, act),
        "vgg11" => zoo::vgg11(1, act),
        "resnet20" => zoo::resnet20(1, act),
        other => panic!("unknown architecture {other}"),
    };
    let c = compile(&m, &q, FieldChoice::M127).expect("compile");
    let x = zoo::random_input(&m, batch, 3);
    let input = quantize_input(&c, &x).expect("input");
    (c, input, batch)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one case and prints one tab-separated line.
fn run_one(name: &str, runs: usize) {
    let (c, input, batch) = case(name);
    let checkpoints = c
        .layers
        .iter()
        .filter(|l| matches!(l.op, Op::Requant(_)))
        .count();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let mut t_infer = Vec::new();
    let mut t_prove = Vec::new();
    let mut t_verify = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = infer(&c, batch, &input).expect("infer");
        t_infer.push(ms(t));
        let t = Instant::now();
        let (proved, proof, _) = prove::<M127>(&c, &input).expect("prove");
        t_prove.push(ms(t));
        assert_eq!(proved, out);
        bytes = proof.encode().len();
        let t = Instant::now();
        verify(&c, &input, &proved, &proof).expect("verify");
        t_verify.push(ms(t));
    }
    println!(
        "{name}\t{}\t{}\t{checkpoints}\t{:.2}\t{:.2}\t{:.2}\t{bytes}\t{}",
        c.layers.len(),
        c.macs_per_item(),
        median(t_infer),
        median(t_prove),
        median(t_verify),
        peak_kib()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--one") {
        run_one(&args[2], args[1].parse().expect("runs"));
        return;
    }
    let runs: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let cases: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        CASES.iter().map(|s| s.to_string()).collect()
    };
    let exe = std::env::current_exe().expect("own path");
    println!(
        "{:<12} {:>6} {:>11} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "case",
        "layers",
        "MACs/item",
        "ckpts",
        "infer ms",
        "prove ms",
        "verify ms",
        "proof KB",
        "peak MiB"
    );
    for name in cases {
        let out = Command::new(&exe)
            .args(["--one", &runs.to_string(), &name])
            .output()
            .expect("run case");
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = line.trim().split('\t').collect();
        if !out.status.success() || f.len() != 9 {
            println!("{name}: failed: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        }
        let kb = f[7].parse::<f64>().unwrap_or(0.0) / 1000.0;
        let mib = f[8].parse::<f64>().unwrap_or(0.0) / 1024.0;
        println!(
            "{:<12} {:>6} {:>11} {:>5} {:>10} {:>10} {:>10} {:>10.1} {:>9.0}",
            f[0], f[1], f[2], f[3], f[4], f[5], f[6], kb, mib
        );
    }
}
