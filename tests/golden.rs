//! Golden proofs: the binary must produce, byte for byte, the proofs committed in
//! `tests/golden/` for fixed models, inputs and flags. They were written by the binary from
//! before the restructuring of the workspace (one home per layer kind; the cifar-small file again
//! once JSON model files were read with exact float parsing, which moved one quantized bias by
//! one in its last place), so any change of
//! the proof format, the transcript or a layer's messages shows up here; such a change must
//! bump the protocol or format version and re-bless the files on purpose:
//!
//! ```sh
//! VERINFER_BLESS=1 cargo test --test golden                                  # this binary
//! VERINFER_BLESS=1 VERINFER_GOLDEN_BIN=path/to/verinfer cargo test --test golden  # another one
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{code, s, stderr, Dir, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;
use verinfer_circuits::model::Activation;
use verinfer_circuits::zoo;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// One golden case: the files it needs and the flags it proves with.
struct Case {
    name: &'static str,
    model: PathBuf,
    input: PathBuf,
    flags: &'static [&'static str],
}

fn cases(dir: &Dir) -> Vec<Case> {
    // The cifar-small architecture of the benchmarks, written out as a model file.
    let (cifar, _) = zoo::cifar_small(7, Activation::SquarePlusX);
    let x = zoo::random_input(&cifar, 8, 7);
    // [8][3][32][32]
    let items: Vec<Vec<Vec<Vec<f64>>>> = x
        .chunks(3 * 32 * 32)
        .map(|item| {
            item.chunks(32 * 32)
                .map(|plane| plane.chunks(32).map(|row| row.to_vec()).collect())
                .collect()
        })
        .collect();
    vec![
        Case {
            name: "digits_square_plus_x_b24",
            model: common::model("digits_square_plus_x.onnx"),
            input: dir.input("digits24.json", 24, 0),
            flags: &[],
        },
        Case {
            name: "cifar_small_b8",
            model: dir.write("cifar.json", cifar.to_json()),
            input: dir.write(
                "cifar8.json",
                serde_json::to_string(&serde_json::json!({ "input": items })).unwrap(),
            ),
            flags: &[],
        },
        Case {
            name: "digits_square_b5_bn254",
            model: common::model("digits_square.onnx"),
            input: dir.input("digits5.json", 5, 100),
            flags: &["--field", "bn254"],
        },
    ]
}

fn prove(bin: &Path, case: &Case, proof: &Path) {
    let mut args = vec![
        "prove",
        "--model",
        s(&case.model),
        "--input",
        s(&case.input),
        "--proof",
        s(proof),
    ];
    args.extend_from_slice(case.flags);
    let out = Command::new(bin)
        .args(&args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run verinfer");
    assert_eq!(code(&out), 0, "{}: {}", case.name, stderr(&out));
}

#[test]
fn proofs_match_the_golden_files() {
    let dir = Dir::new("golden");
    let bless = std::env::var_os("VERINFER_BLESS").is_some();
    let bin = std::env::var_os("VERINFER_GOLDEN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BIN));
    for case in cases(&dir) {
        let golden = Path::new(GOLDEN).join(format!("{}.proof", case.name));
        let fresh = dir.file(&format!("{}.proof", case.name));
        prove(&bin, &case, &fresh);
        let bytes = std::fs::read(&fresh).unwrap();
        if bless {
            std::fs::create_dir_all(GOLDEN).unwrap();
            std::fs::write(&golden, &bytes).unwrap();
            continue;
        }
        let want = std::fs::read(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (bless with VERINFER_BLESS=1)", golden.display()));
        assert!(
            bytes == want,
            "{}: the proof differs from {} ({} bytes, golden {}; first difference at byte {:?})",
            case.name,
            golden.display(),
            bytes.len(),
            want.len(),
            bytes.iter().zip(&want).position(|(a, b)| a != b)
        );
        // And the golden proof still verifies.
        let mut args = vec![
            "verify",
            "--model",
            s(&case.model),
            "--input",
            s(&case.input),
            "--proof",
            s(&golden),
        ];
        args.extend_from_slice(case.flags);
        let out = common::verinfer(&args);
        assert_eq!(code(&out), 0, "{}: {}", case.name, stderr(&out));
    }
}
