//! Writes seed corpora for the fuzz targets: valid encoded proofs for `decode_proof`, a few
//! edit lists for `verify_proof` and `verify_inference`, a settings file for `read_input`, and
//! the ONNX fixtures for `import_onnx`.
//!
//! `cargo run --release --example seed_corpus` (from `fuzz/`; stable toolchain is fine).
use std::fs;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_circuits::gates::GateCircuit;
use verinfer_prover::gkr;

fn proof_bytes<F: ProofField>(width: usize, depth: usize, seed: u64) -> Vec<u8> {
    // SplitMix64, to avoid a dependency on rand.
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let c = GateCircuit::random(width, depth, &mut next);
    let input: Vec<F> = (0..width).map(|_| F::from(next() % 1000)).collect();
    let (_, proof) = gkr::prove(&c, &input).expect("honest proof");
    proof.encode()
}

fn main() -> std::io::Result<()> {
    let dec = "corpus/decode_proof";
    let ver = "corpus/verify_proof";
    fs::create_dir_all(dec)?;
    fs::create_dir_all(ver)?;
    let mut i = 0;
    for (w, d) in [(1, 1), (2, 1), (3, 2), (5, 3), (8, 2), (13, 4)] {
        fs::write(format!("{dec}/m127_{i}"), proof_bytes::<M127>(w, d, i))?;
        fs::write(format!("{dec}/bn254_{i}"), proof_bytes::<Bn254>(w, d, i))?;
        i += 1;
    }
    // Field selector, then [op, offset lo, offset hi, value] edits.
    let seeds: [&[u8]; 6] = [
        &[0],
        &[1],
        &[0, 0, 60, 0, 1],
        &[1, 0, 60, 0, 1],
        &[0, 4, 100, 0, 0, 7, 50, 0, 0],
        &[1, 6, 80, 0, 3],
    ];
    // The same edit lists seed the whole-inference verifier target.
    let inf = "corpus/verify_inference";
    fs::create_dir_all(inf)?;
    for (k, s) in seeds.iter().enumerate() {
        fs::write(format!("{ver}/seed_{k}"), s)?;
        fs::write(format!("{inf}/seed_{k}"), s)?;
    }
    // A settings file with every key seeds `read_input`, which also parses settings.
    let inputs = "corpus/read_input";
    fs::create_dir_all(inputs)?;
    fs::write(
        format!("{inputs}/settings"),
        r#"{"format": "verinfer-settings/1", "input_bits": 8, "weight_bits": 8, "coef_bits": 8,
 "weight_scale": "per-layer", "field": "auto", "input_range": [-1, 1],
 "requant": [{"tensor": "layer:0", "shift": 8, "bits": 12}, {"tensor": "layer:2", "shift": 0, "bits": 2}]}"#,
    )?;
    // The ONNX importer fixtures (PyTorch exports) seed `import_onnx`.
    let onnx = "corpus/import_onnx";
    fs::create_dir_all(onnx)?;
    let mut models = 0;
    for entry in fs::read_dir("../onnx/tests/fixtures")? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("onnx") {
            if let Some(name) = path.file_name() {
                fs::copy(&path, std::path::Path::new(onnx).join(name))?;
                models += 1;
            }
        }
    }
    println!(
        "wrote {} decode seeds, {} verify seeds and {models} ONNX seeds",
        2 * i,
        seeds.len()
    );
    Ok(())
}
