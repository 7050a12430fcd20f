//! The flags of `verinfer compare` and the built-in architectures and lowerings they select.

use std::path::PathBuf;
use verinfer_circuits::lower::MAX_TOTAL_GATES;
use verinfer_cli_core::args::QuantFlags;

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
    /// Quantization, field, input range and settings (checkpoints are placed in every
    /// activation's model by `layer:N`); a forced field too small for an activation skips that
    /// activation's rows.
    #[command(flatten)]
    pub quant: QuantFlags,
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
