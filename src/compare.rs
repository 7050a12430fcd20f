//! `verinfer compare`: what each quadratic activation costs to prove, and what it does to
//! accuracy (issue 6).
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

use crate::args::{parse_field, parse_range, parse_weight_scale};
use crate::demo::{TestSet, ACCURACY_JSON};
use crate::engine::{proof_shapes, prove_any, verify_any};
use crate::files::{load_model, FileError};
use crate::report::argmax;
use serde::{Deserialize as _, Serialize};
use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit, QuantParams, WeightScale};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::{from_i128, to_i128, Bn254, FieldId, ProofField, M127};
use verinfer_circuits::gates::GateCircuit;
use verinfer_circuits::lower::{
    lower_to_gates_with_limits, lowered_stats_with_limits, GateLimits, MAX_TOTAL_GATES,
};
use verinfer_circuits::model::{Activation, Layer, Model};
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::witness::infer;
use verinfer_circuits::zoo;
use verinfer_onnx::{import_bytes, ImportOptions};
use verinfer_verifier::Proof;

/// A quadratic activation from the literature, selectable by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// Name on the command line and in reports.
    pub name: &'static str,
    /// The polynomial, as written in the table.
    pub formula: &'static str,
    /// Coefficient of x².
    pub a: f64,
    /// Coefficient of x.
    pub b: f64,
    /// Constant term.
    pub c: f64,
    /// Where it comes from.
    pub source: &'static str,
}

/// The built-in activations, in table order.
///
/// - `square`, x²: CryptoNets (Gilad-Bachrach et al., ICML 2016) and SafetyNets (Ghodsi, Gu and
///   Garg, NeurIPS 2017), the square activation of encrypted and verifiable inference.
/// - `square_plus_x`, x² + x: Ali, So and Avestimehr, "On Polynomial Approximations for
///   Privacy-Preserving and Verifiable ReLU Networks" (2020), proposed as a better quadratic
///   stand-in for ReLU than x².
/// - `relu_fourier`, 4/(3π)·x² + x/2 + 1/(3π): ReLU = (x + |x|)/2 with |x| replaced by the
///   degree-2 truncation of its Chebyshev series on [−1, 1] (the Fourier cosine series in θ,
///   x = cos θ): |x| ≈ 2/π + 4/(3π)·T₂(x).
/// - `relu_lsq`, 15/32·x² + x/2 + 3/32: the least-squares quadratic fit of ReLU on [−1, 1]
///   (Legendre truncation: |x| ≈ 1/2 + 5/8·P₂(x)).
/// - `relu_minimax`, x²/2 + x/2 + 1/16: the minimax (best uniform) quadratic approximation of
///   ReLU on [−1, 1] (|x| ≈ x² + 1/8, error 1/8 equioscillating at 0, ±1/√2, ±1).
/// - `faster_cryptonets`, 2⁻³x² + 2⁻¹x + 2⁻²: Faster CryptoNets (Chou et al., 2018), a quadratic
///   ReLU approximation with power-of-two coefficients.
pub const PRESETS: [Preset; 6] = [
    Preset {
        name: "square",
        formula: "x²",
        a: 1.0,
        b: 0.0,
        c: 0.0,
        source: "CryptoNets (Gilad-Bachrach et al. 2016), SafetyNets (Ghodsi et al. 2017)",
    },
    Preset {
        name: "square_plus_x",
        formula: "x² + x",
        a: 1.0,
        b: 1.0,
        c: 0.0,
        source: "Ali, So, Avestimehr 2020, polynomial approximations of ReLU networks",
    },
    Preset {
        name: "relu_fourier",
        formula: "4/(3π)·x² + x/2 + 1/(3π)",
        a: 4.0 / (3.0 * PI),
        b: 0.5,
        c: 1.0 / (3.0 * PI),
        source: "degree-2 Chebyshev (Fourier-cosine) truncation of ReLU on [-1,1]",
    },
    Preset {
        name: "relu_lsq",
        formula: "15/32·x² + x/2 + 3/32",
        a: 15.0 / 32.0,
        b: 0.5,
        c: 3.0 / 32.0,
        source: "least-squares quadratic fit of ReLU on [-1,1]",
    },
    Preset {
        name: "relu_minimax",
        formula: "x²/2 + x/2 + 1/16",
        a: 0.5,
        b: 0.5,
        c: 1.0 / 16.0,
        source: "minimax quadratic approximation of ReLU on [-1,1]",
    },
    Preset {
        name: "faster_cryptonets",
        formula: "2⁻³x² + 2⁻¹x + 2⁻²",
        a: 0.125,
        b: 0.5,
        c: 0.25,
        source: "Faster CryptoNets (Chou et al. 2018)",
    },
];

/// The activation of a preset name, or `None`.
pub fn preset(name: &str) -> Option<Activation> {
    let p = PRESETS.iter().find(|p| p.name == name)?;
    Some(match p.name {
        "square" => Activation::Square,
        "square_plus_x" => Activation::SquarePlusX,
        _ => Activation::Quadratic {
            a: p.a,
            b: p.b,
            c: p.c,
        },
    })
}

fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One activation to compare: its name in the report and the polynomial.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Preset name or `quadratic:a,b,c`.
    pub name: String,
    /// The activation.
    pub activation: Activation,
}

/// Parses `--activations`: preset names and `quadratic:a,b,c` items, comma-separated (the three
/// numbers of a quadratic take the two commas after it; `p/q` fractions are accepted).
pub fn parse_activations(s: &str) -> Result<Vec<Choice>, CompareError> {
    let mut tokens = s.split(',').map(str::trim);
    let mut out: Vec<Choice> = Vec::new();
    while let Some(tok) = tokens.next() {
        if tok.is_empty() {
            continue;
        }
        let choice = if let Some(first) = tok.strip_prefix("quadratic:") {
            let rest: Vec<&str> = tokens.by_ref().take(2).collect();
            let texts = [Some(first), rest.first().copied(), rest.get(1).copied()];
            let mut coef = [0.0; 3];
            for (slot, text) in coef.iter_mut().zip(texts) {
                let text = text.ok_or_else(|| {
                    CompareError::Usage(format!(
                        "'{}': a quadratic needs three coefficients, quadratic:a,b,c",
                        clip(tok)
                    ))
                })?;
                *slot = parse_number(text)?;
            }
            let [a, b, c] = coef;
            Choice {
                name: format!("quadratic:{a},{b},{c}"),
                activation: Activation::Quadratic { a, b, c },
            }
        } else {
            match preset(tok) {
                Some(activation) => Choice {
                    name: tok.to_string(),
                    activation,
                },
                None => {
                    return Err(CompareError::Usage(format!(
                        "unknown activation '{}'; presets: {}, or quadratic:a,b,c",
                        clip(tok),
                        preset_names()
                    )))
                }
            }
        };
        if out.iter().any(|c| c.name == choice.name) {
            return Err(CompareError::Usage(format!(
                "activation '{}' is listed twice",
                choice.name
            )));
        }
        out.push(choice);
    }
    if out.is_empty() {
        return Err(CompareError::Usage(
            "--activations lists no activation".into(),
        ));
    }
    Ok(out)
}

/// Cuts untrusted text for a one-line message.
fn clip(s: &str) -> String {
    let mut t: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        t.push('…');
    }
    t
}

fn parse_number(t: &str) -> Result<f64, CompareError> {
    let bad = || CompareError::Usage(format!("'{}' is not a finite number", clip(t)));
    let v = match t.split_once('/') {
        Some((p, q)) => {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            let q: f64 = q.trim().parse().map_err(|_| bad())?;
            p / q
        }
        None => t.trim().parse().map_err(|_| bad())?,
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(bad())
    }
}

/// A built-in architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// The digits CNN of `tools/digits/train.py` (trained weights per preset embedded).
    Digits,
    /// `zoo::cifar_small`: the CIFAR-sized CNN with deterministic random weights.
    CifarSmall,
    /// `zoo::timit`: SafetyNets' TIMIT-shaped dense network, 2-bit integer weights.
    Timit,
}

impl Arch {
    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Digits => "digits",
            Arch::CifarSmall => "cifar-small",
            Arch::Timit => "timit",
        }
    }
}

/// Parses `--arch`.
pub fn parse_arch(s: &str) -> Result<Arch, String> {
    match s {
        "digits" => Ok(Arch::Digits),
        "cifar-small" | "cifar_small" => Ok(Arch::CifarSmall),
        "timit" => Ok(Arch::Timit),
        _ => Err(format!("'{s}': expected digits, cifar-small or timit")),
    }
}

/// Which lowerings to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lowerings {
    /// Specialised sumchecks per layer (the default prover).
    Structured,
    /// Every layer as fan-in-2 gates, proved with generic GKR.
    Gates,
    /// Both, one row each.
    Both,
}

/// Parses `--lowering`.
pub fn parse_lowerings(s: &str) -> Result<Lowerings, String> {
    match s {
        "structured" => Ok(Lowerings::Structured),
        "gates" => Ok(Lowerings::Gates),
        "both" => Ok(Lowerings::Both),
        _ => Err(format!("'{s}': expected structured, gates or both")),
    }
}

/// Flags of `verinfer compare`.
///
/// Example: verinfer compare --arch digits --lowering both --json digits.json --svg digits.svg
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Model file (.onnx or JSON IR) whose activation layers are replaced by each activation in
    /// turn. Accuracy is not reported for it.
    #[arg(long, short = 'm', value_name = "FILE", conflicts_with = "arch")]
    pub model: Option<PathBuf>,
    /// Built-in architecture (default digits): digits (the trained 8×8 digits CNN; accuracy
    /// reported), cifar-small (3×32×32 CNN, random weights), timit (SafetyNets' dense net,
    /// 2-bit weights).
    #[arg(long, value_name = "digits|cifar-small|timit", value_parser = parse_arch)]
    pub arch: Option<Arch>,
    /// Activations to compare, comma-separated: presets square (x²), square_plus_x (x²+x),
    /// relu_fourier, relu_lsq, relu_minimax, faster_cryptonets, or quadratic:a,b,c for
    /// a·x²+b·x+c (p/q fractions allowed). Default: every preset.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub activations: Option<String>,
    /// structured (the specialised sumchecks), gates (plain gate-level GKR) or both (one row
    /// each, to see what the structured sumchecks save).
    #[arg(long, default_value = "structured", value_name = "structured|gates|both", value_parser = parse_lowerings)]
    pub lowering: Lowerings,
    /// Items per proof in the timed runs (digits: the first N held-out images; otherwise
    /// deterministic random inputs in the declared range).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: usize,
    /// Timed runs per row; times are medians, rows are measured round-robin within each run.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub repeat: usize,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw prover time, verifier time and proof size per activation as an SVG chart here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Fractional bits of the input (default: the architecture's, 8; timit 0).
    #[arg(long, value_name = "N")]
    pub input_bits: Option<u32>,
    /// Fractional bits of weights and biases (default: the architecture's, 8; timit 0).
    #[arg(long, value_name = "N")]
    pub weight_bits: Option<u32>,
    /// Fractional bits of non-integer activation coefficients (default 8; with 4 the
    /// fractional presets of digits fit 2^127−1 instead of BN254).
    #[arg(long, value_name = "N")]
    pub coef_bits: Option<u32>,
    /// Weight scale: uniform or per-layer (default: uniform).
    #[arg(long, value_name = "uniform|per-layer", value_parser = parse_weight_scale)]
    pub weight_scale: Option<WeightScale>,
    /// Field: auto picks the smallest that holds every worst-case value (m127 = 2^127−1, else
    /// bn254); a forced field too small for an activation skips that activation's rows.
    #[arg(long, default_value = "auto", value_name = "auto|m127|bn254", value_parser = parse_field)]
    pub field: FieldChoice,
    /// Declared input range "lo,hi" (overrides the model's; worst-case bounds follow from it).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range, allow_hyphen_values = true)]
    pub input_range: Option<[f64; 2]>,
    /// Seed of the built-in architectures' random weights and of random inputs.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Largest gate count of a gates lowering; bigger ones are reported as skipped.
    #[arg(long, default_value_t = MAX_TOTAL_GATES, value_name = "N")]
    pub max_gates: usize,
    /// Do not prove the held-out set for the "proven" accuracy (digits only; saves time).
    #[arg(long)]
    pub no_proven_accuracy: bool,
    /// Rayon threads for the prover (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

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
    /// A report file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Test accuracy of the model trained with one activation, on the held-out digits.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RowAccuracy {
    /// Float model (PyTorch), as recorded by the training script.
    pub float: Option<f64>,
    /// Exact integer inference: the training script's reference (tools/digits/qref.py) when it
    /// recorded these quantization parameters, else `verinfer`'s own quantized inference.
    pub quantized: Option<f64>,
    /// Argmax of verified outputs of proofs over the whole held-out set (structured lowering).
    pub proven: Option<f64>,
    /// Held-out images.
    pub test_images: usize,
    /// Correct predictions among the verified outputs.
    pub proven_correct: Option<usize>,
    /// Where `quantized` comes from.
    pub quantized_source: String,
    /// Proofs made for `proven`, and their batch size.
    pub proofs: usize,
}

/// One row of the comparison: an activation under one lowering. Times are medians (ms).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Preset name or `quadratic:a,b,c`.
    pub activation: String,
    /// `[a, b, c]` of a·x² + b·x + c.
    pub coefficients: [f64; 3],
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

/// The trained digits models, one per preset, as committed by `tools/digits/train.py`.
const DIGITS_MODELS: [(&str, &[u8]); 6] = [
    (
        "square",
        include_bytes!("../models/digits/digits_square.onnx"),
    ),
    (
        "square_plus_x",
        include_bytes!("../models/digits/digits_square_plus_x.onnx"),
    ),
    (
        "relu_fourier",
        include_bytes!("../models/digits/digits_relu_fourier.onnx"),
    ),
    (
        "relu_lsq",
        include_bytes!("../models/digits/digits_relu_lsq.onnx"),
    ),
    (
        "relu_minimax",
        include_bytes!("../models/digits/digits_relu_minimax.onnx"),
    ),
    (
        "faster_cryptonets",
        include_bytes!("../models/digits/digits_faster_cryptonets.onnx"),
    ),
];

/// Images per proof of the held-out set for the proven accuracy.
pub const ACCURACY_BATCH: usize = 64;

/// Largest `--batch`.
pub const MAX_BATCH: usize = 1 << 16;

/// Gate circuits kept in memory between runs up to this many gates in all (32 bytes each);
/// larger lowerings are rebuilt, untimed, before each run.
const GATE_CACHE: usize = 1 << 25;

/// Runs the comparison, prints the table and writes the requested files.
pub fn run(args: &CompareArgs) -> Result<(), CompareError> {
    let cmp = compare(args)?;
    crate::out!("{}", render_table(&cmp));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&cmp)
            .map_err(|e| CompareError::Usage(format!("cannot encode the JSON report: {e}")))?;
        write(path, text.as_bytes())?;
        crate::outln!("json -> {}", path.display());
    }
    if let Some(path) = &args.svg {
        write(path, render_svg(&cmp).as_bytes())?;
        crate::outln!("svg -> {}", path.display());
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CompareError> {
    crate::files::write_regular(path, bytes).map_err(|source| CompareError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The architecture being compared.
enum Source {
    Digits(TestSet),
    Zoo(Arch),
    File(String, Model),
}

/// One activation's compiled model (or why it did not compile).
struct Variant {
    choice: Choice,
    weights: String,
    trained: Option<&'static str>,
    compiled: Result<Arc<LayeredCircuit>, String>,
    input: Vec<i128>,
}

/// A row being measured.
struct Bench {
    row: Row,
    kind: Kind,
    samples: Vec<[f64; 3]>,
}

enum Kind {
    Skipped,
    Structured {
        circuit: Arc<LayeredCircuit>,
        input: Arc<Vec<i128>>,
    },
    Gates {
        circuit: Arc<LayeredCircuit>,
        input: Arc<Vec<i128>>,
        cached: Option<GateCircuit>,
        limits: GateLimits,
    },
}

/// One proof and verification of a row.
struct Run {
    witness_ms: f64,
    prove_ms: f64,
    verify_ms: f64,
    proof_bytes: usize,
    rounds: usize,
    soundness_bits: f64,
    output: Vec<i128>,
}

/// Measures every row and returns the report (nothing printed but progress on stderr).
pub fn compare(args: &CompareArgs) -> Result<Comparison, CompareError> {
    if args.batch == 0 || args.batch > MAX_BATCH {
        return Err(CompareError::Usage(format!(
            "--batch must be between 1 and {MAX_BATCH}"
        )));
    }
    if args.repeat == 0 || args.repeat > 1000 {
        return Err(CompareError::Usage(
            "--repeat must be between 1 and 1000".into(),
        ));
    }
    crate::args::set_threads(args.threads).map_err(CompareError::Usage)?;
    let choices = match &args.activations {
        Some(list) => parse_activations(list)?,
        None => PRESETS
            .iter()
            .map(|p| Choice {
                name: p.name.to_string(),
                activation: preset(p.name).unwrap_or(Activation::Square),
            })
            .collect(),
    };
    let (source, arch_name) = match (&args.model, args.arch) {
        (Some(path), _) => {
            let loaded = load_model(path, args.input_range)?;
            if !loaded
                .model
                .layers
                .iter()
                .any(|l| matches!(l, Layer::Activation(_)))
            {
                return Err(CompareError::NoActivation(path.display().to_string()));
            }
            for note in &loaded.notes {
                eprintln!("note: {note}");
            }
            let name = path.display().to_string();
            (Source::File(name.clone(), loaded.model), name)
        }
        (None, None) | (None, Some(Arch::Digits)) => (
            Source::Digits(TestSet::embedded().map_err(CompareError::Embedded)?),
            "digits".to_string(),
        ),
        (None, Some(arch)) => (Source::Zoo(arch), arch.name().to_string()),
    };
    let params = params_for(&source, args);
    let loadavg_start = loadavg();

    // Compile once per activation.
    let mut variants = Vec::with_capacity(choices.len());
    for choice in choices {
        variants.push(variant(&source, choice, &params, args)?);
    }

    // Rows: every activation under each requested lowering; first run gives the static figures.
    let lowerings: &[&'static str] = match args.lowering {
        Lowerings::Structured => &["structured"],
        Lowerings::Gates => &["gates"],
        Lowerings::Both => &["structured", "gates"],
    };
    let mut benches: Vec<Bench> = Vec::new();
    let mut cached_gates = 0usize;
    for v in &variants {
        let mut structured_output: Option<Vec<i128>> = None;
        let input = Arc::new(v.input.clone());
        for &lowering in lowerings {
            let mut row = empty_row(v, lowering);
            let kind = match &v.compiled {
                Err(reason) => {
                    row.skipped = Some(reason.clone());
                    Kind::Skipped
                }
                Ok(circuit) if lowering == "structured" => Kind::Structured {
                    circuit: circuit.clone(),
                    input: input.clone(),
                },
                Ok(circuit) => {
                    let limits = GateLimits {
                        max_total_gates: args.max_gates,
                        ..GateLimits::default()
                    };
                    match lowered_stats_with_limits(circuit, args.batch, &limits) {
                        Err(e) => {
                            row.skipped = Some(format!("gates lowering refused: {e}"));
                            Kind::Skipped
                        }
                        Ok(stats) => {
                            let gates = stats.gate_count();
                            row.gates = Some(gates);
                            row.layers = Some(stats.depth());
                            let cached = if cached_gates + gates <= GATE_CACHE {
                                cached_gates += gates;
                                Some(lower(circuit, args.batch, &limits, &v.choice.name)?)
                            } else {
                                None
                            };
                            Kind::Gates {
                                circuit: circuit.clone(),
                                input: input.clone(),
                                cached,
                                limits,
                            }
                        }
                    }
                }
            };
            let mut bench = Bench {
                row,
                kind,
                samples: Vec::new(),
            };
            eprintln!(
                "compare: {} ({lowering}): first proof",
                bench.row.activation
            );
            if let Some(first) = measure(&bench, args.batch)? {
                bench.row.sumcheck_rounds = Some(first.rounds);
                bench.row.proof_bytes = Some(first.proof_bytes);
                bench.row.soundness_bits = Some(first.soundness_bits);
                // Both lowerings must compute the same output.
                match &structured_output {
                    None => structured_output = Some(first.output),
                    Some(out) if *out != first.output => {
                        return Err(CompareError::Proof {
                            activation: bench.row.activation.clone(),
                            lowering,
                            reason: "the lowerings' verified outputs differ".into(),
                        })
                    }
                    Some(_) => {}
                }
            }
            benches.push(bench);
        }
    }

    // Accuracy of trained models: once, outside the timed runs.
    for v in &variants {
        let acc = accuracy(&source, v, &params, args)?;
        for b in benches
            .iter_mut()
            .filter(|b| b.row.activation == v.choice.name)
        {
            b.row.accuracy = acc.clone();
        }
    }

    // Timed runs, round-robin over the rows.
    for r in 0..args.repeat {
        eprintln!("compare: run {} of {}", r + 1, args.repeat);
        for bench in &mut benches {
            if let Some(run) = measure(bench, args.batch)? {
                bench
                    .samples
                    .push([run.witness_ms, run.prove_ms, run.verify_ms]);
            }
        }
    }
    let rows = benches
        .into_iter()
        .map(|mut b| {
            if !b.samples.is_empty() {
                let med = |k: usize| median(b.samples.iter().map(|s| s[k]).collect());
                let (w, p, v) = (med(0), med(1), med(2));
                b.row.witness_ms = Some(w);
                b.row.prove_ms = Some(p);
                b.row.verify_ms = Some(v);
                b.row.prove_over_witness = (w > 0.0).then(|| p / w);
            }
            b.row
        })
        .collect();
    Ok(Comparison {
        arch: arch_name,
        batch: args.batch,
        machine: machine(),
        repeat: args.repeat,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        threads: args.threads.unwrap_or_else(crate::args::cores),
        params,
        loadavg: [loadavg_start, loadavg()],
        rows,
    })
}

fn params_for(source: &Source, args: &CompareArgs) -> QuantParams {
    let base = match source {
        Source::Zoo(Arch::Timit) => zoo::timit(args.seed, Activation::Square).1,
        _ => QuantParams::default(),
    };
    QuantParams {
        input_bits: args.input_bits.unwrap_or(base.input_bits),
        weight_bits: args.weight_bits.unwrap_or(base.weight_bits),
        coef_bits: args.coef_bits.unwrap_or(base.coef_bits),
        weight_scale: args.weight_scale.unwrap_or(base.weight_scale),
    }
}

fn with_activation(model: &Model, act: Activation) -> Model {
    let mut m = model.clone();
    for l in &mut m.layers {
        if let Layer::Activation(a) = l {
            *a = act;
        }
    }
    m
}

fn import_digits(key: &str) -> Result<Model, CompareError> {
    let bytes = DIGITS_MODELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, b)| *b)
        .ok_or_else(|| CompareError::Embedded(format!("no model for {key}")))?;
    import_bytes(bytes, None, &ImportOptions::default())
        .map(|i| i.model)
        .map_err(|e| CompareError::Embedded(format!("digits_{key}.onnx: {e}")))
}

fn variant(
    source: &Source,
    choice: Choice,
    params: &QuantParams,
    args: &CompareArgs,
) -> Result<Variant, CompareError> {
    let (mut model, weights, trained, values) = match source {
        Source::Digits(test) => {
            let trained = DIGITS_MODELS
                .iter()
                .map(|(k, _)| *k)
                .find(|k| *k == choice.name);
            let (model, weights) = match trained {
                Some(k) => (import_digits(k)?, format!("models/digits/digits_{k}.onnx")),
                None => (
                    with_activation(&import_digits("square_plus_x")?, choice.activation),
                    "models/digits/digits_square_plus_x.onnx, activations replaced".into(),
                ),
            };
            let n = test.labels.len().max(1);
            let values: Vec<f64> = (0..args.batch).flat_map(|i| test.image(i % n)).collect();
            (model, weights, trained, values)
        }
        Source::Zoo(arch) => {
            let (model, weights) = match arch {
                Arch::Timit => (
                    zoo::timit(args.seed, choice.activation).0,
                    format!("zoo::timit, seed {}", args.seed),
                ),
                _ => (
                    zoo::cifar_small(args.seed, choice.activation).0,
                    format!("zoo::cifar_small, seed {}", args.seed),
                ),
            };
            let values = match arch {
                Arch::Timit => zoo::timit_input(args.batch, args.seed),
                _ => zoo::random_input(&model, args.batch, args.seed),
            };
            (model, weights, None, values)
        }
        Source::File(name, m) => {
            let model = with_activation(m, choice.activation);
            let values = zoo::random_input(&model, args.batch, args.seed);
            (model, format!("{name}, activations replaced"), None, values)
        }
    };
    if let (Some(range), false) = (args.input_range, matches!(source, Source::File(..))) {
        model.input_range = range;
    }
    let compiled = compile(&model, params, args.field)
        .map(Arc::new)
        .map_err(|e| format!("does not compile: {e}"));
    let input = match &compiled {
        Ok(c) => quantize_input(c, &values).map_err(|e| CompareError::Proof {
            activation: choice.name.clone(),
            lowering: "structured",
            reason: format!("input: {e}"),
        })?,
        Err(_) => Vec::new(),
    };
    Ok(Variant {
        choice,
        weights,
        trained,
        compiled,
        input,
    })
}

fn empty_row(v: &Variant, lowering: &'static str) -> Row {
    let (a, b, c) = v.choice.activation.coefficients();
    let c_ok = v.compiled.as_ref().ok();
    Row {
        activation: v.choice.name.clone(),
        coefficients: [a, b, c],
        lowering,
        weights: v.weights.clone(),
        field: c_ok.map(|c| c.field.name().to_string()),
        field_reason: c_ok.map(|c| c.field_reason.to_string()),
        max_bits: c_ok.map(|c| c.max_bits()),
        layers: c_ok.map(|c| c.layers.len()),
        gates: None,
        sumcheck_rounds: None,
        witness_ms: None,
        prove_ms: None,
        verify_ms: None,
        prove_over_witness: None,
        proof_bytes: None,
        soundness_bits: None,
        accuracy: None,
        skipped: None,
    }
}

fn lower(
    circuit: &LayeredCircuit,
    batch: usize,
    limits: &GateLimits,
    name: &str,
) -> Result<GateCircuit, CompareError> {
    lower_to_gates_with_limits(circuit, batch, limits).map_err(|e| CompareError::Proof {
        activation: name.to_string(),
        lowering: "gates",
        reason: e.to_string(),
    })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Proves and verifies a row once; `None` for a skipped row.
fn measure(bench: &Bench, batch: usize) -> Result<Option<Run>, CompareError> {
    let fail = |reason: String| CompareError::Proof {
        activation: bench.row.activation.clone(),
        lowering: bench.row.lowering,
        reason,
    };
    match &bench.kind {
        Kind::Skipped => Ok(None),
        Kind::Structured { circuit, input } => {
            let proved = prove_any(circuit, input, &mut |_| {})
                .map_err(|e| fail(format!("proving failed: {e}")))?;
            let t = Instant::now();
            let verified = verify_any(circuit, input, &proved.proof)
                .map_err(|e| fail(format!("the honest proof was rejected: {e}")))?;
            let verify_ms = ms(t);
            let rounds = proof_shapes(&proved.proof)
                .map_err(|e| fail(e.to_string()))?
                .iter()
                .flat_map(|l| l.sumchecks.iter().map(|(_, r)| *r))
                .sum();
            if verified.output != proved.output {
                return Err(fail("verified output differs from the proved one".into()));
            }
            Ok(Some(Run {
                witness_ms: proved.report.witness_ms,
                prove_ms: proved.report.total_ms,
                verify_ms,
                proof_bytes: proved.proof.len(),
                rounds,
                soundness_bits: verified.report.soundness_bits,
                output: verified.output,
            }))
        }
        Kind::Gates {
            circuit,
            input,
            cached,
            limits,
        } => {
            let built;
            let g = match cached {
                Some(g) => g,
                None => {
                    built = lower(circuit, batch, limits, &bench.row.activation)?;
                    &built
                }
            };
            match circuit.field {
                FieldId::M127 => gates_run::<M127>(g, input).map_err(fail),
                FieldId::Bn254 => gates_run::<Bn254>(g, input).map_err(fail),
            }
            .map(Some)
        }
    }
}

/// Generic GKR on the gate-level circuit: evaluation (the witness), proof, verification.
fn gates_run<F: ProofField>(g: &GateCircuit, input: &[i128]) -> Result<Run, String> {
    let to_field = |v: &[i128]| -> Result<Vec<F>, String> {
        v.iter()
            .map(|x| from_i128::<F>(*x).map_err(|e| e.to_string()))
            .collect()
    };
    let t = Instant::now();
    let gin = to_field(input)?;
    let values = g.evaluate(&gin).map_err(|e| e.to_string())?;
    let witness_ms = ms(t);
    drop(values);

    let t = Instant::now();
    let gin = to_field(input)?;
    let (out, proof) =
        crate::prover::gkr::prove(g, &gin).map_err(|e| format!("proving failed: {e}"))?;
    let prove_ms = ms(t);
    let bytes = proof.encode();

    let t = Instant::now();
    let gin = to_field(input)?;
    let decoded = Proof::<F>::decode(&bytes).map_err(|e| e.to_string())?;
    let report = crate::verifier::gkr::verify(g, &gin, &decoded.output, &decoded)
        .map_err(|e| format!("the honest proof was rejected: {e}"))?;
    let verify_ms = ms(t);
    let output = out
        .iter()
        .map(|v| to_i128(*v).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let rounds = proof
        .layers
        .iter()
        .flat_map(|l| l.sumchecks.iter().map(|s| s.rounds.len()))
        .sum();
    Ok(Run {
        witness_ms,
        prove_ms,
        verify_ms,
        proof_bytes: bytes.len(),
        rounds,
        soundness_bits: report.soundness_bits,
        output,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The recorded accuracy of a trained digits model, if the script recorded these parameters.
fn recorded(key: &str, params: &QuantParams) -> (Option<f64>, Option<f64>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(ACCURACY_JSON) else {
        return (None, None);
    };
    let Some(m) = v.get("models").and_then(|m| m.get(key)) else {
        return (None, None);
    };
    // The script records the parameters as `QuantParams` serializes them.
    let same = |p: Option<&serde_json::Value>| {
        p.and_then(|p| QuantParams::deserialize(p).ok()).as_ref() == Some(params)
    };
    let float = m.get("float").and_then(|x| x.as_f64());
    let quantized = if same(m.get("params")) {
        m.get("quantized").and_then(|x| x.as_f64())
    } else {
        m.get("alternative")
            .filter(|alt| same(alt.get("params")))
            .and_then(|alt| alt.get("quantized"))
            .and_then(|x| x.as_f64())
    };
    (float, quantized)
}

fn accuracy(
    source: &Source,
    v: &Variant,
    params: &QuantParams,
    args: &CompareArgs,
) -> Result<Option<RowAccuracy>, CompareError> {
    let (Source::Digits(test), Some(key)) = (source, v.trained) else {
        return Ok(None);
    };
    let n = test.labels.len();
    let (float, recorded_q) = recorded(key, params);
    let Ok(circuit) = &v.compiled else {
        return Ok(Some(RowAccuracy {
            float,
            quantized: recorded_q,
            proven: None,
            test_images: n,
            proven_correct: None,
            quantized_source: "tools/digits/train.py (qref.py)".into(),
            proofs: 0,
        }));
    };
    let fail = |reason: String| CompareError::Proof {
        activation: v.choice.name.clone(),
        lowering: "structured",
        reason: format!("held-out set: {reason}"),
    };
    let per = circuit.output().item_len().max(1);
    let count = |out: &[i128], labels: &[usize]| {
        out.chunks(per)
            .zip(labels)
            .filter(|(s, l)| argmax(s) == **l)
            .count()
    };
    let (quantized, quantized_source) = match recorded_q {
        Some(q) => (Some(q), "tools/digits/train.py (qref.py)".to_string()),
        None => {
            let values: Vec<f64> = (0..n).flat_map(|i| test.image(i)).collect();
            let input = quantize_input(circuit, &values).map_err(|e| fail(e.to_string()))?;
            let out = infer(circuit, n, &input).map_err(|e| fail(e.to_string()))?;
            (
                Some(count(&out, &test.labels) as f64 / n as f64),
                "verinfer infer (the script recorded no figure for these parameters)".into(),
            )
        }
    };
    let mut proven_correct = None;
    let mut proofs = 0;
    if !args.no_proven_accuracy {
        eprintln!(
            "compare: {}: proving the {n} held-out images in batches of {ACCURACY_BATCH}",
            v.choice.name
        );
        let mut correct = 0;
        for start in (0..n).step_by(ACCURACY_BATCH) {
            let end = (start + ACCURACY_BATCH).min(n);
            let values: Vec<f64> = (start..end).flat_map(|i| test.image(i)).collect();
            let input = quantize_input(circuit, &values).map_err(|e| fail(e.to_string()))?;
            let proved = prove_any(circuit, &input, &mut |_| {})
                .map_err(|e| fail(format!("proving failed: {e}")))?;
            let verified = verify_any(circuit, &input, &proved.proof)
                .map_err(|e| fail(format!("the honest proof was rejected: {e}")))?;
            correct += count(&verified.output, &test.labels[start..end]);
            proofs += 1;
        }
        proven_correct = Some(correct);
    }
    Ok(Some(RowAccuracy {
        float,
        quantized,
        proven: proven_correct.map(|c| c as f64 / n as f64),
        test_images: n,
        proven_correct,
        quantized_source,
        proofs,
    }))
}

/// "CPU model, N cores, OS".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = crate::args::cores();
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    let os = match (pretty, kernel) {
        (Some(p), Some(k)) => format!("{p}, {} {k}", std::env::consts::OS),
        (Some(p), None) => p,
        (None, Some(k)) => format!("{} {k}", std::env::consts::OS),
        (None, None) => std::env::consts::OS.to_string(),
    };
    format!("{cpu}, {cores} cores, {os}")
}

fn loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x < 10.0 => format!("{x:.2}"),
        Some(x) if x < 100.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.0}"),
    }
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

/// The aligned table `compare` prints.
pub fn render_table(cmp: &Comparison) -> String {
    let head = [
        "activation",
        "lowering",
        "field",
        "bits",
        "layers",
        "rounds",
        "witness ms",
        "prove ms",
        "verify ms",
        "proof B",
        "sound bits",
        "prove/wit",
        "gates",
        "float",
        "quant",
        "proven",
    ];
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut notes = Vec::new();
    for r in &cmp.rows {
        let acc = r.accuracy.as_ref();
        cells.push(vec![
            r.activation.clone(),
            r.lowering.to_string(),
            opt(r.field.clone()),
            opt(r.max_bits),
            opt(r.layers),
            opt(r.sumcheck_rounds),
            fmt_ms(r.witness_ms),
            fmt_ms(r.prove_ms),
            fmt_ms(r.verify_ms),
            opt(r.proof_bytes),
            r.soundness_bits.map_or("-".into(), |s| format!("{s:.1}")),
            r.prove_over_witness
                .map_or("-".into(), |s| format!("{s:.1}")),
            opt(r.gates),
            fmt_pct(acc.and_then(|a| a.float)),
            fmt_pct(acc.and_then(|a| a.quantized)),
            fmt_pct(acc.and_then(|a| a.proven)),
        ]);
        if let Some(why) = &r.skipped {
            notes.push(format!(
                "  skipped {} ({}): {why}",
                r.activation, r.lowering
            ));
        }
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([head[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let mut s = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            s.push(' ');
            if i < 3 {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = format!(
        "verinfer compare: {}, batch {}, median of {} run{}, {} threads\n  machine: {}\n  quantization: input {} / weight {} / coef {} bits\n\n",
        cmp.arch,
        cmp.batch,
        cmp.repeat,
        if cmp.repeat == 1 { "" } else { "s" },
        cmp.threads,
        cmp.machine,
        cmp.params.input_bits,
        cmp.params.weight_bits,
        cmp.params.coef_bits
    );
    out.push_str(&line(&head.map(String::from)));
    for c in &cells {
        out.push_str(&line(c));
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A three-panel grouped bar chart (prover time, verifier time, proof size; log scales), as SVG.
pub fn render_svg(cmp: &Comparison) -> String {
    let mut acts: Vec<&str> = Vec::new();
    let mut lows: Vec<&str> = Vec::new();
    for r in &cmp.rows {
        if !acts.contains(&r.activation.as_str()) {
            acts.push(&r.activation);
        }
        if !lows.contains(&r.lowering) {
            lows.push(r.lowering);
        }
    }
    type Get = fn(&Row) -> Option<f64>;
    let panels: [(&str, &str, Get); 3] = [
        ("prover time", "ms", |r| r.prove_ms),
        ("verifier time", "ms", |r| r.verify_ms),
        ("proof size", "bytes", |r| r.proof_bytes.map(|b| b as f64)),
    ];
    let (pw, ph) = (360.0_f64, 300.0_f64);
    let (left, top, gap) = (60.0, 100.0, 40.0);
    let bottom = 120.0;
    let width = left + 3.0 * pw + 2.0 * gap + 20.0;
    let height = top + ph + bottom;
    let colors = ["#3b6ea5", "#e07b39"];
    let mut s = String::new();
    s.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\">\n"
    ));
    s.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"white\"/>\n"
    ));
    s.push_str(&format!(
        "<text x=\"{:.0}\" y=\"26\" font-size=\"17\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
        width / 2.0,
        esc(&format!(
            "verinfer compare: {} — batch {}, median of {} run{} (log scales)",
            cmp.arch,
            cmp.batch,
            cmp.repeat,
            if cmp.repeat == 1 { "" } else { "s" }
        ))
    ));
    s.push_str(&format!(
        "<text x=\"{:.0}\" y=\"46\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n",
        width / 2.0,
        esc(&format!(
            "{} · {} threads · input/weight/coef bits {}/{}/{} · prover time includes the witness",
            cmp.machine,
            cmp.threads,
            cmp.params.input_bits,
            cmp.params.weight_bits,
            cmp.params.coef_bits
        ))
    ));
    // Legend.
    for (k, low) in lows.iter().enumerate() {
        let x = width / 2.0 - 85.0 * lows.len() as f64 + 170.0 * k as f64;
        s.push_str(&format!(
            "<rect x=\"{x:.0}\" y=\"58\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"69\" font-size=\"12\">{}</text>\n",
            colors[k % 2],
            x + 16.0,
            esc(&format!("{low} lowering"))
        ));
    }
    for (p, (title, unit, get)) in panels.iter().enumerate() {
        let x0 = left + p as f64 * (pw + gap);
        let vals: Vec<f64> = cmp
            .rows
            .iter()
            .filter_map(get)
            .filter(|v| *v > 0.0)
            .collect();
        let lo_v = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi_v = vals.iter().copied().fold(0.0, f64::max);
        let (lo, mut hi) = if vals.is_empty() {
            (0.0, 1.0)
        } else {
            (lo_v.log10().floor(), hi_v.log10().ceil())
        };
        if hi <= lo {
            hi = lo + 1.0;
        }
        let y_of = |v: f64| top + ph - (v.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * ph;
        s.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"13\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
            x0 + pw / 2.0,
            top - 8.0,
            esc(&format!("{title} ({unit})"))
        ));
        // Decade grid and axis labels.
        let mut d = lo;
        while d <= hi + 1e-9 {
            let y = y_of(10f64.powf(d));
            s.push_str(&format!(
                "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>\n",
                x0 + pw,
                x0 - 4.0,
                y + 3.0,
                esc(&short(10f64.powf(d)))
            ));
            d += 1.0;
        }
        s.push_str(&format!(
            "<line x1=\"{x0:.1}\" y1=\"{top:.1}\" x2=\"{x0:.1}\" y2=\"{:.1}\" stroke=\"#333\"/><line x1=\"{x0:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\n",
            top + ph,
            top + ph,
            x0 + pw,
            top + ph
        ));
        let group = pw / acts.len().max(1) as f64;
        let bar = (group * 0.8 / lows.len().max(1) as f64).min(40.0);
        for (i, act) in acts.iter().enumerate() {
            let gx = x0 + i as f64 * group + (group - bar * lows.len() as f64) / 2.0;
            for (k, low) in lows.iter().enumerate() {
                let bx = gx + k as f64 * bar;
                let row = cmp
                    .rows
                    .iter()
                    .find(|r| r.activation == *act && r.lowering == *low);
                match row.and_then(get) {
                    Some(v) if v > 0.0 => {
                        let y = y_of(v);
                        s.push_str(&format!(
                            "<rect x=\"{bx:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}</title></rect>\n",
                            bar - 1.0,
                            top + ph - y,
                            colors[k % 2],
                            esc(&format!("{act} ({low}): {} {unit}", short(v)))
                        ));
                        s.push_str(&format!(
                            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{}</text>\n",
                            bx + bar / 2.0,
                            y - 3.0,
                            esc(&short(v))
                        ));
                    }
                    _ => s.push_str(&format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#a00\">n/a</text>\n",
                        bx + bar / 2.0,
                        top + ph - 4.0
                    )),
                }
            }
            let lx = x0 + (i as f64 + 0.5) * group;
            let field = cmp
                .rows
                .iter()
                .find(|r| r.activation == *act)
                .and_then(|r| r.field.as_deref());
            let label = match field {
                Some(f) => format!("{act} [{f}]"),
                None => act.to_string(),
            };
            let ly = top + ph + 14.0;
            s.push_str(&format!(
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"11\" text-anchor=\"end\" transform=\"rotate(-35 {lx:.1} {ly:.1})\">{}</text>\n",
                esc(&label)
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}
