//! The browser verifier's Rust half on the host: a valid proof is VALID, a tampered one
//! REJECTED, a bad input or model an error with the command line's message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use verinfer_cli_core::engine::prove_any;
use verinfer_wasm::{Checker, Outcome};

const MODEL: &[u8] = include_bytes!("../../models/digits/digits_square_plus_x.onnx");

fn proof_for(checker_input: &str) -> Vec<u8> {
    let args = verinfer_cli_core::args::compile_bytes(
        std::path::Path::new("digits.onnx"),
        MODEL,
        None,
        &Default::default(),
    )
    .unwrap();
    let ints = args
        .input_bytes(std::path::Path::new("x.json"), checker_input.as_bytes())
        .unwrap();
    prove_any(&args.circuit, &ints, &mut |_| {}).unwrap().proof
}

#[test]
fn valid_tampered_and_bad_inputs() {
    let checker = Checker::new("digits.onnx", MODEL, None).unwrap();
    assert_eq!(checker.info().name, "digits-square_plus_x");
    let input = format!(
        "[[{}]]",
        vec![format!("[{}]", ["0.5"; 8].join(",")); 8].join(",")
    );
    let proof = proof_for(&input);
    match checker.check("x.json", input.as_bytes(), &proof).unwrap() {
        Outcome::Valid { batch, output, .. } => {
            assert_eq!(batch, 1);
            assert_eq!(output.shape, vec![1, 10]);
        }
        other => panic!("{other:?}"),
    }
    let mut bad = proof.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert!(matches!(
        checker.check("x.json", input.as_bytes(), &bad).unwrap(),
        Outcome::Rejected { .. }
    ));
    let err = checker.check("x.json", b"[[[2]]]", &proof).unwrap_err();
    assert!(err.starts_with("x.json: "), "{err}");
    let err = Checker::new("m.onnx", b"junk", None).unwrap_err();
    assert!(err.starts_with("m.onnx: "), "{err}");
    let err = Checker::new("digits.onnx", MODEL, Some(b"{")).unwrap_err();
    assert!(err.starts_with("settings: "), "{err}");
}
