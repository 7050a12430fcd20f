//! verinfer-compare, the harness of `verinfer compare`: what each quadratic activation costs
//! to prove, and what it does to accuracy (issue 6).
//!
//! One architecture (a model file whose activations are replaced in turn, or a built-in one:
//! `digits`, `cifar-small`, `timit`) is compiled once per activation. Every row (activation ×
//! lowering) is proved and verified once to read its static figures (layers, sumcheck rounds,
//! proof bytes, soundness), then `--repeat` times, round-robin over the rows within each repeat
//! so that machine drift hits every row alike; the times reported are medians.
//!
//! For `digits`, the models trained once per preset by `tools/digits/train.py` are embedded;
//! their accuracy on the 360 held-out images is reported as recorded by the training script
//! (float, quantized) and as proven here (argmax of the verified outputs of proofs of the whole
//! held-out set, made once outside the timed repeats).
//!
//! The crate is split by job: [`args`] (the flags), [`activations`] (presets and the
//! `--activations` parser), the driver that compiles one model per activation and measures
//! every row ([`compare`]), [`accuracy`] (the digits models' test accuracy), [`table`] (the
//! printed table and the JSON report) and [`chart`] (the SVG bar chart, drawn with plotters).
#![forbid(unsafe_code)]

pub mod accuracy;
pub mod activations;
pub mod args;
pub mod chart;
mod measure;
pub mod table;
mod variants;

pub use accuracy::{RowAccuracy, ACCURACY_BATCH};
pub use activations::{parse_activations, preset, Choice, Preset, PRESETS};
pub use args::{parse_arch, parse_lowerings, Arch, CompareArgs, Lowerings};
pub use chart::render_svg;
pub use measure::{compare, machine, MAX_BATCH};
pub use table::{render_json, render_table};

use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;
use verinfer_circuits::circuit::QuantParams;
use verinfer_cli_core::files::FileError;
use verinfer_cli_core::{out, outln};

/// Why a comparison could not run.
#[derive(Debug, Error)]
pub enum CompareError {
    /// Bad flags (unknown activation, zero batch, ...).
    #[error("{0}")]
    Usage(String),
    /// The model file is unreadable or malformed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The model has nothing to compare.
    #[error("{0}: the model has no activation layer to replace")]
    NoActivation(String),
    /// An embedded digits model or the test set is unreadable (a build problem).
    #[error("embedded digits data: {0}")]
    Embedded(String),
    /// An honest proof failed or disagreed with another lowering: a bug, not a user error.
    #[error("{activation} ({lowering}): {reason}")]
    Proof {
        /// The row's activation.
        activation: String,
        /// The row's lowering.
        lowering: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The SVG chart could not be drawn.
    #[error("cannot draw the SVG chart: {0}")]
    Chart(String),
    /// A report file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One row of the comparison: an activation under one lowering. Times are medians (ms).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Preset name or `quadratic:a,b,c`.
    pub activation: String,
    /// `[a, b, c]` of a·x² + b·x + c (zeros for a `relu:…` row).
    pub coefficients: [f64; 3],
    /// Highest degree of an activation the circuit proves (0: none).
    pub degree: Option<usize>,
    /// Requantization checkpoints in the circuit.
    pub checkpoints: Option<usize>,
    /// `structured` or `gates`.
    pub lowering: &'static str,
    /// Where the weights come from.
    pub weights: String,
    /// The field the circuit is compiled for.
    pub field: Option<String>,
    /// Why that field.
    pub field_reason: Option<String>,
    /// Worst-case bits of any value.
    pub max_bits: Option<u32>,
    /// Circuit layers proved (compiled stages, or gate layers).
    pub layers: Option<usize>,
    /// Gates of the gate-level circuit (gates lowering only).
    pub gates: Option<usize>,
    /// Sumcheck rounds in one proof, over all layers.
    pub sumcheck_rounds: Option<usize>,
    /// Integer inference and conversion to field elements.
    pub witness_ms: Option<f64>,
    /// Proving, witness included.
    pub prove_ms: Option<f64>,
    /// Verification, proof decoding included.
    pub verify_ms: Option<f64>,
    /// `prove_ms / witness_ms`.
    pub prove_over_witness: Option<f64>,
    /// Encoded proof size.
    pub proof_bytes: Option<usize>,
    /// −log2 of the soundness error.
    pub soundness_bits: Option<f64>,
    /// Test accuracy, where trained weights for this activation exist.
    pub accuracy: Option<RowAccuracy>,
    /// Why the row was not measured.
    pub skipped: Option<String>,
}

/// The whole comparison, as written by `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// `digits`, `cifar-small`, `timit` or the model file.
    pub arch: String,
    /// Items per timed proof.
    pub batch: usize,
    /// CPU model, cores, OS.
    pub machine: String,
    /// Timed runs per row (medians reported).
    pub repeat: usize,
    /// The command line that produced the report.
    pub command: String,
    /// Rayon threads.
    pub threads: usize,
    /// Quantization parameters.
    pub params: QuantParams,
    /// `/proc/loadavg` before and after the measurements (where available).
    pub loadavg: [Option<String>; 2],
    /// The rows, activation-major.
    pub rows: Vec<Row>,
}

/// Runs the comparison, prints the table and writes the requested files.
pub fn run(args: &CompareArgs) -> Result<(), CompareError> {
    let cmp = compare(args)?;
    out!("{}", render_table(&cmp));
    if let Some(path) = &args.json {
        write(path, render_json(&cmp)?.as_bytes())?;
        outln!("json -> {}", path.display());
    }
    if let Some(path) = &args.svg {
        write(path, render_svg(&cmp)?.as_bytes())?;
        outln!("svg -> {}", path.display());
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CompareError> {
    verinfer_cli_core::files::write_regular(path, bytes).map_err(|source| CompareError::Write {
        path: path.to_path_buf(),
        source,
    })
}
