//! Times the browser verifier's Rust half natively, for comparison with the same code in
//! WebAssembly (`TIMING_RUNS=N node web/test.mjs`): the digits model at batch 1 and 64,
//! `Checker::new` (compile) and `Checker::check` (read the input, verify, report), medians.
//!
//!     cargo run --release -p verinfer-wasm --example native -- [runs]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;
use verinfer_cli_core::engine::prove_any;
use verinfer_wasm::{Checker, Outcome};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = std::fs::read(root.join("models/digits/digits_square_plus_x.onnx")).unwrap();
    let set: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("models/digits/test_set.json")).unwrap())
            .unwrap();
    let mut compile_ms = Vec::new();
    for batch in [1usize, 64] {
        let images = &set["images"].as_array().unwrap()[..batch];
        let input = serde_json::to_vec(&serde_json::json!({ "input": images })).unwrap();
        let c = verinfer_cli_core::args::compile_bytes(
            Path::new("digits.onnx"),
            &model,
            None,
            &Default::default(),
        )
        .unwrap();
        let ints = c.input_bytes(Path::new("x.json"), &input).unwrap();
        let proof = prove_any(&c.circuit, &ints, &mut |_| {}).unwrap().proof;
        let mut ms = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let checker = Checker::new("digits.onnx", &model, None).unwrap();
            compile_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let out = checker.check("x.json", &input, &proof).unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(matches!(out, Outcome::Valid { .. }));
        }
        println!("native verify, batch {batch}: {:.3} ms", median(ms));
    }
    println!(
        "native compile: {:.3} ms (medians of {runs})",
        median(compile_ms)
    );
}
