//! Command-line arguments shared by every command that compiles a model (prove, verify, infer,
//! inspect, and the server and client): the model file and the quantization and field flags.
//! Prover and verifier must be given the same values, or the proof is rejected.

use crate::files::{input_from_bytes, model_from_bytes, read_input, read_limited};
use crate::files::{FileError, InputBatch, LoadedModel, MAX_INPUT_BYTES};
use clap::Args;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use thiserror::Error;
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit, QuantParams, WeightScale};
use verinfer_circuits::compile::{compile, CompileError};
use verinfer_circuits::memory;
use verinfer_circuits::quant::{quantize_input, InputError};
use verinfer_circuits::relu::ReluChoice;
use verinfer_circuits::settings::{Settings, SettingsError};

/// The model and how to compile it; prove and verify must be given the same values.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model file: .onnx (exported by torch.onnx.export) or the JSON model IR.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub model: PathBuf,
    /// How to quantize and compile it.
    #[command(flatten)]
    pub quant: QuantFlags,
}

/// The quantization, field, input-range and settings flags every command that compiles a model
/// takes. Each flag overrides the settings file's key; a key set by neither takes its default.
#[derive(Args, Debug, Clone, Default)]
pub struct QuantFlags {
    /// The quantization, field and input-range flags.
    #[command(flatten)]
    pub keys: QuantKeys,
    /// Settings file (JSON, "format": "verinfer-settings/1"): quantization, field, input range
    /// and requantization checkpoints; the flags above override its keys. Prover and verifier
    /// must use the same settings (they are bound into the circuit digest).
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
}

/// The flags for the keys of a settings file other than its checkpoints: quantization, field
/// and input range (`verinfer calibrate` takes these, and writes them to its settings file).
#[derive(Args, Debug, Clone, Default)]
pub struct QuantKeys {
    /// Fractional bits of the input (inputs are rounded to multiples of 2^-N) [default: 8;
    /// compare's timit architecture: 0].
    #[arg(long, value_name = "N")]
    pub input_bits: Option<u32>,
    /// Fractional bits of weights and biases (with --weight-scale per-layer: the signed width)
    /// [default: 8; compare's timit architecture: 0].
    #[arg(long, value_name = "N")]
    pub weight_bits: Option<u32>,
    /// Fractional bits of non-integer activation coefficients (a·x²+b·x+c) [default: 8].
    #[arg(long, value_name = "N")]
    pub coef_bits: Option<u32>,
    /// One weight scale for every layer (uniform), or the finest scale that fits each layer
    /// [default: uniform].
    #[arg(long, value_name = "uniform|per-layer", value_parser = WeightScale::from_str)]
    pub weight_scale: Option<WeightScale>,
    /// Field: auto picks the smallest that holds every worst-case value (m127 = 2^127−1, else
    /// bn254) [default: auto].
    #[arg(long, value_name = "auto|m127|bn254", value_parser = FieldChoice::from_str)]
    pub field: Option<FieldChoice>,
    /// Declared range of input values, "lo,hi" (overrides the model file's; the default for an
    /// ONNX file without one is -1,1). The worst-case bounds are computed from it.
    #[arg(long, value_name = "LO,HI", value_parser = parse_range, allow_hyphen_values = true)]
    pub input_range: Option<[f64; 2]>,
    /// How ReLU / LeakyReLU layers are proved: exact (a function of a requantization
    /// checkpoint, no approximation); replaced by a polynomial preset fitted on [-B, B]:
    /// poly:NAME[@B] with NAME one of square, square_plus_x, chebyshev:D, lsq:D, minimax:D,
    /// taylor:D, lee_relu:4..6 (D = degree 1..31); or Lee et al.'s composite minimax ReLU of
    /// precision ALPHA (4..14) on inputs within [-B, B]: minimax:ALPHA[@B] [default: exact].
    #[arg(long, value_name = "exact|poly:NAME[@B]|minimax:ALPHA[@B]", value_parser = parse_relu)]
    pub relu: Option<ReluChoice>,
}

/// Parses `--relu` ([`ReluChoice`]).
pub fn parse_relu(s: &str) -> Result<ReluChoice, String> {
    s.parse()
        .map_err(|e: verinfer_circuits::approx::ApproxError| e.to_string())
}

impl QuantFlags {
    /// The settings file, parsed (empty settings without `--settings`).
    pub fn read_settings(&self) -> Result<Settings, ArgsError> {
        read_settings(self.settings.as_deref())
    }

    /// The quantization parameters: each flag, else the settings file's key, else `base`'s.
    pub fn params(&self, settings: &Settings, base: QuantParams) -> QuantParams {
        self.keys.params(settings, base)
    }

    /// The field: the flag, else the settings file's, else auto.
    pub fn field(&self, settings: &Settings) -> FieldChoice {
        self.keys.field(settings)
    }

    /// The declared input range, if the flag or the settings file sets one.
    pub fn input_range(&self, settings: &Settings) -> Option<[f64; 2]> {
        self.keys.input_range(settings)
    }
}

impl QuantKeys {
    /// The quantization parameters: each flag, else the settings file's key, else `base`'s.
    pub fn params(&self, settings: &Settings, base: QuantParams) -> QuantParams {
        QuantParams {
            input_bits: self
                .input_bits
                .or(settings.input_bits)
                .unwrap_or(base.input_bits),
            weight_bits: self
                .weight_bits
                .or(settings.weight_bits)
                .unwrap_or(base.weight_bits),
            coef_bits: self
                .coef_bits
                .or(settings.coef_bits)
                .unwrap_or(base.coef_bits),
            weight_scale: self
                .weight_scale
                .or(settings.weight_scale)
                .unwrap_or(base.weight_scale),
        }
    }

    /// The field: the flag, else the settings file's, else auto.
    pub fn field(&self, settings: &Settings) -> FieldChoice {
        self.field.or(settings.field).unwrap_or_default()
    }

    /// The declared input range, if the flag or the settings file sets one.
    pub fn input_range(&self, settings: &Settings) -> Option<[f64; 2]> {
        self.input_range.or(settings.input_range)
    }

    /// How ReLU layers are proved: the flag, else the settings file's, else exact.
    pub fn relu(&self, settings: &Settings) -> ReluChoice {
        self.relu
            .clone()
            .or_else(|| settings.relu.clone())
            .unwrap_or_default()
    }
}

/// Parses `--input-range LO,HI` (finite, `LO ≤ HI`).
pub fn parse_range(s: &str) -> Result<[f64; 2], String> {
    let (lo, hi) = s
        .split_once(',')
        .ok_or_else(|| format!("'{s}': expected LO,HI, e.g. 0,1"))?;
    let num = |t: &str| {
        t.trim()
            .parse::<f64>()
            .map_err(|_| format!("'{t}' is not a number"))
    };
    let (lo, hi) = (num(lo)?, num(hi)?);
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return Err(format!("'{s}': need finite LO ≤ HI"));
    }
    Ok([lo, hi])
}

/// Cores available to this process (1 if unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Most threads `--threads` and `serve --workers` accept: 8 per core, at least 64. Proving is
/// CPU-bound, so more threads than cores only add memory and switching; far more (say 100,000)
/// exhaust the process's stacks or run on for minutes instead of failing with a message.
pub fn max_threads() -> usize {
    cores().saturating_mul(8).max(64)
}

/// Checks a thread-count flag (`--threads`, `--workers`): from 1 to [`max_threads`].
pub fn check_threads(flag: &str, n: usize) -> Result<usize, String> {
    let max = max_threads();
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{flag} must be between 1 and {max} (8 per core, at least 64; this machine has {} \
             cores)",
            cores()
        ))
    }
}

/// Sizes the global rayon pool the prover runs on from a `--threads` flag (`None`: one thread
/// per core). Call once, before any proving.
#[cfg(feature = "prove")]
pub fn set_threads(threads: Option<usize>) -> Result<(), String> {
    if let Some(n) = threads {
        let n = check_threads("--threads", n)?;
        verinfer_prover::set_global_threads(n).map_err(|e| format!("--threads: {e}"))?;
    }
    Ok(())
}

/// Parses a byte count: an integer with an optional binary suffix `K`, `M`, `G` or `T`
/// (`8G` = 8 GiB; a trailing `B` or `iB` is allowed).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => {
                    return Err(format!(
                        "'{s}': expected a size such as 8G, 512M or 1000000"
                    ))
                }
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("'{s}': expected a positive size such as 8G, 512M or 1000000"))
}

/// Physical memory in bytes (`MemTotal` of /proc/meminfo), if the system says.
pub fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// The default memory budget of one proof: half the physical memory (the rest is left to the
/// system and, on a server, to requests being read), or 8 GiB where it is not known.
pub fn default_memory_budget() -> u64 {
    physical_memory().map_or(8 << 30, |m| m / 2)
}

/// `bytes` for messages, in GiB or MiB.
pub fn show_bytes(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Refuses a batch whose estimated proving memory ([`verinfer_circuits::memory::estimate`])
/// exceeds `budget`, naming the largest batch that fits: checked before anything of the
/// proof is allocated, so that an oversized batch is a one-line error instead of an abort.
pub fn check_batch_memory(
    circuit: &LayeredCircuit,
    batch: usize,
    budget: u64,
) -> Result<(), String> {
    check_memory(
        batch,
        memory::estimate(circuit, batch),
        budget,
        "prove",
        || memory::largest_batch(circuit, budget),
    )
}

/// [`check_batch_memory`] for plain inference ([`verinfer_circuits::memory::infer_estimate`]).
pub fn check_infer_memory(
    circuit: &LayeredCircuit,
    batch: usize,
    budget: u64,
) -> Result<(), String> {
    check_memory(
        batch,
        memory::infer_estimate(circuit, batch),
        budget,
        "infer",
        || memory::largest_infer_batch(circuit, budget),
    )
}

fn check_memory(
    batch: usize,
    need: u64,
    budget: u64,
    work: &str,
    largest: impl FnOnce() -> usize,
) -> Result<(), String> {
    if need <= budget {
        return Ok(());
    }
    Err(format!(
        "a batch of {batch} needs about {} to {work}, over the memory budget of {} \
         (--max-memory; default half the physical memory); the largest batch that fits is {}",
        show_bytes(need),
        show_bytes(budget),
        largest()
    ))
}

/// A model loaded and compiled with the user's flags.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The float model (with the settings file's checkpoints placed) and the importer's notes.
    pub loaded: LoadedModel,
    /// The compiled circuit.
    pub circuit: LayeredCircuit,
    /// The tensors a settings file can name, before its checkpoints are placed: for model
    /// layer `N` (`"layer:N"`), its operation and output shape.
    pub tensors: Vec<(&'static str, Vec<usize>)>,
}

/// Largest settings file read.
pub const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// Reads and parses a settings file (`None`: empty settings).
pub fn read_settings(path: Option<&Path>) -> Result<Settings, ArgsError> {
    let Some(path) = path else {
        return Ok(Settings::default());
    };
    let bytes = read_limited(path, MAX_SETTINGS_BYTES)?;
    parse_settings(path, &bytes)
}

/// Parses a settings file's bytes; `path` names it in messages.
pub fn parse_settings(path: &Path, bytes: &[u8]) -> Result<Settings, ArgsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ArgsError::Settings {
        path: path.to_path_buf(),
        source: SettingsError::Json("not UTF-8 text".into()),
    })?;
    Settings::from_json(text).map_err(|source| ArgsError::Settings {
        path: path.to_path_buf(),
        source,
    })
}

impl ModelArgs {
    /// Loads the model file and compiles it with these flags and the settings file: its
    /// checkpoints are placed in the model first.
    pub fn compile(&self) -> Result<Compiled, ArgsError> {
        let q = &self.quant;
        let settings = q.read_settings()?;
        let bytes = read_limited(&self.model, MAX_INPUT_BYTES)?;
        let settings = q.settings.as_deref().map(|path| (path, settings));
        compile_bytes(&self.model, &bytes, settings, &q.keys)
    }
}

/// [`ModelArgs::compile`] of a model file's bytes and a parsed settings file with its path
/// (both paths name the files in messages; the model's is also where ONNX external data is
/// looked for): what front ends that hold files rather than paths (the browser) compile with.
pub fn compile_bytes(
    model_path: &Path,
    model_bytes: &[u8],
    settings: Option<(&Path, Settings)>,
    keys: &QuantKeys,
) -> Result<Compiled, ArgsError> {
    let (settings_path, settings) = match settings {
        Some((path, s)) => (Some(path), s),
        None => (None, Settings::default()),
    };
    let mut loaded = model_from_bytes(model_path, model_bytes, keys.input_range(&settings))?;
    // A loaded model is valid: its shapes are known (input first).
    let shapes = loaded.model.validate().unwrap_or_default();
    let tensors = loaded
        .model
        .layers
        .iter()
        .zip(shapes.into_iter().skip(1))
        .map(|(l, shape)| (l.op_name(), shape))
        .collect();
    let params = keys.params(&settings, QuantParams::default());
    // ReLUs replaced first (a composite lays out its own checkpoints from the scales), then the
    // settings' checkpoints, named in the model as read.
    let origin = keys
        .relu(&settings)
        .apply(&mut loaded.model, &params)
        .map_err(|e| ArgsError::Relu(e.to_string()))?;
    if let Some(path) = settings_path {
        settings
            .check_model(&loaded.model.name)
            .and_then(|()| {
                settings.place_checkpoints_in(&mut loaded.model, &loaded.names, Some(&origin))
            })
            .map_err(|source| ArgsError::Settings {
                path: path.to_path_buf(),
                source,
            })?;
    }
    let circuit = compile(&loaded.model, &params, keys.field(&settings)).map_err(|source| {
        ArgsError::Compile {
            path: model_path.to_path_buf(),
            source,
        }
    })?;
    Ok(Compiled {
        loaded,
        circuit,
        tensors,
    })
}

impl Compiled {
    /// Reads an input file and quantizes it for this circuit: shape checked, and every value
    /// within the declared input range before quantizing. Returns the values as read and
    /// their quantization.
    pub fn input(&self, path: &Path) -> Result<(InputBatch, Vec<i128>), ArgsError> {
        let batch = read_input(path, &self.loaded.model.input_shape)?;
        let ints = self.quantize(path, &batch)?;
        Ok((batch, ints))
    }

    /// [`Compiled::input`] of an input file's bytes (JSON or `.npy`); `path` names it in
    /// messages.
    pub fn input_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Vec<i128>, ArgsError> {
        let batch = input_from_bytes(path, bytes, &self.loaded.model.input_shape)?;
        self.quantize(path, &batch)
    }

    /// Checks a batch read from `path` against the declared input range and quantizes it.
    fn quantize(&self, path: &Path, batch: &InputBatch) -> Result<Vec<i128>, ArgsError> {
        batch
            .check_range(self.loaded.model.input_range)
            .map_err(|msg| FileError::Input {
                path: path.to_path_buf(),
                msg,
            })?;
        quantize_input(&self.circuit, &batch.values).map_err(|source| ArgsError::Input {
            path: path.to_path_buf(),
            source,
        })
    }

    /// [`Compiled::input`], the quantized values only.
    pub fn quantized_input(&self, path: &Path) -> Result<Vec<i128>, ArgsError> {
        Ok(self.input(path)?.1)
    }
}

/// Why a model could not be compiled or an input not used.
#[derive(Debug, Error)]
pub enum ArgsError {
    /// The model or input file is unreadable or malformed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The settings file is malformed, or a checkpoint it names cannot be placed.
    #[error("{}: {source}", path.display())]
    Settings {
        /// The settings file.
        path: PathBuf,
        /// Why.
        source: SettingsError,
    },
    /// The `--relu` choice does not apply to this model.
    #[error("--relu: {0}")]
    Relu(String),
    /// The model does not compile with these flags (bounds, quantization).
    #[error("{}: cannot compile: {source}", path.display())]
    Compile {
        /// The model file.
        path: PathBuf,
        /// Why.
        source: CompileError,
    },
    /// The input does not fit the circuit (length, declared range).
    #[error("{}: {source}", path.display())]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why.
        source: InputError,
    },
}
