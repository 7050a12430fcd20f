//! verinfer-wasm: the browser verifier. A page hands it the files a person dropped (model,
//! optional settings, input, proof); it compiles the model and checks the proof exactly as
//! `verinfer verify` does, through `verinfer-cli-core` without the prover.
//!
//! [`Checker`] is plain Rust (tested on the host, timed natively by `examples/native.rs`);
//! [`Verifier`] is its wasm-bindgen face, which `web/verinfer.js` wraps as
//! `verify(modelBytes, settingsJson, inputJson, proofBytes)`.

use serde::Serialize;
use std::path::Path;
use verinfer_cli_core::args::{compile_bytes, parse_settings, Compiled, QuantKeys};
use verinfer_cli_core::engine::verify_any;
use verinfer_cli_core::report::{CircuitInfo, OutputReport};
use wasm_bindgen::prelude::*;

/// How messages name the settings file (the page passes the model's and the input's names).
const SETTINGS_LABEL: &str = "settings";

/// A model compiled from its file's bytes, ready to check proofs.
#[derive(Debug)]
pub struct Checker {
    compiled: Compiled,
}

/// The verdict on a proof, as the page shows it (JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict")]
pub enum Outcome {
    /// The proof is valid: what it established.
    #[serde(rename = "VALID")]
    Valid {
        /// The verified output (the command line's output report).
        output: OutputReport,
        /// Items in the batch.
        batch: usize,
        /// −log2 of the probability that a false output passed.
        soundness_bits: f64,
    },
    /// The proof was rejected (a proof file that does not decode too, as on the command
    /// line).
    #[serde(rename = "REJECTED")]
    Rejected {
        /// Why, in one line.
        reason: String,
    },
}

impl Checker {
    /// Compiles the model file `model` named `model_name` (its extension tells ONNX from JSON;
    /// its stem names an unnamed model) with an optional settings file, as
    /// `verinfer verify --model M [--settings S]` does. Errors are the command line's lines.
    pub fn new(model_name: &str, model: &[u8], settings: Option<&[u8]>) -> Result<Self, String> {
        let settings_path = Path::new(SETTINGS_LABEL);
        let settings = settings
            .map(|bytes| parse_settings(settings_path, bytes).map(|s| (settings_path, s)))
            .transpose()
            .map_err(|e| verinfer_cli_core::one_line(&e))?;
        let compiled = compile_bytes(
            Path::new(model_name),
            model,
            settings,
            &QuantKeys::default(),
        )
        .map_err(|e| verinfer_cli_core::one_line(&e))?;
        Ok(Checker { compiled })
    }

    /// The compiled circuit (name, digest, field, shapes, layers).
    pub fn info(&self) -> CircuitInfo {
        let model = &self.compiled.loaded.model;
        CircuitInfo::new(
            &self.compiled.circuit,
            &model.input_shape,
            model.input_range,
        )
    }

    /// Checks `proof` for this model on the input file `input` (JSON or `.npy`, named
    /// `input_name` in messages). An input that cannot be used is an error; a proof that does
    /// not hold is an [`Outcome::Rejected`].
    pub fn check(&self, input_name: &str, input: &[u8], proof: &[u8]) -> Result<Outcome, String> {
        let c = &self.compiled;
        let ints = c
            .input_bytes(Path::new(input_name), input)
            .map_err(|e| verinfer_cli_core::one_line(&e))?;
        Ok(match verify_any(&c.circuit, &ints, proof) {
            Ok(v) => Outcome::Valid {
                output: OutputReport::new(&c.circuit, &v.output),
                batch: v.report.batch,
                soundness_bits: v.report.soundness_bits,
            },
            Err(e) => Outcome::Rejected {
                reason: e.to_string(),
            },
        })
    }
}

/// The browser's verifier: a compiled model (`new Verifier(name, modelBytes, settingsBytes)`).
#[wasm_bindgen]
#[derive(Debug)]
pub struct Verifier {
    checker: Checker,
}

#[wasm_bindgen]
impl Verifier {
    /// Compiles a model file; throws the command line's one-line error.
    #[wasm_bindgen(constructor)]
    pub fn new(
        model_name: &str,
        model: &[u8],
        settings: Option<Vec<u8>>,
    ) -> Result<Verifier, JsError> {
        Checker::new(model_name, model, settings.as_deref())
            .map(|checker| Verifier { checker })
            .map_err(|e| JsError::new(&e))
    }

    /// The compiled circuit as JSON.
    pub fn info(&self) -> String {
        serde_json::to_string(&self.checker.info()).unwrap_or_default()
    }

    /// Checks a proof on an input file; returns the verdict as JSON (`{"verdict": "VALID",
    /// "output", "batch", "soundness_bits"}` or `{"verdict": "REJECTED", "reason"}`), throws
    /// for an input that cannot be used.
    pub fn verify(&self, input_name: &str, input: &[u8], proof: &[u8]) -> Result<String, JsError> {
        let outcome = self
            .checker
            .check(input_name, input, proof)
            .map_err(|e| JsError::new(&e))?;
        serde_json::to_string(&outcome).map_err(|e| JsError::new(&e.to_string()))
    }
}
