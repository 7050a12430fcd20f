//! Arbitrary bytes through the ONNX importer (`verinfer_onnx::import_bytes`, no external data):
//! never a panic; every error is one line; whatever is accepted is a valid model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verinfer_onnx::{import_bytes, ImportOptions};

fuzz_target!(|data: &[u8]| {
    match import_bytes(data, None, &ImportOptions::default()) {
        Ok(imported) => {
            imported
                .model
                .validate()
                .expect("an imported model must validate");
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }
});
