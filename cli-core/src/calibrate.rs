//! `verinfer calibrate`: requantization checkpoints chosen from sample data
//! ([`verinfer_circuits::calibrate`]: after every activation, and wherever a segment would
//! overflow, each keeping the most fractional bits the samples allow), written as a settings
//! file that prove, verify and infer read unchanged, with a per-tensor table and, given labels,
//! the float and quantized accuracy.
//!
//! The float side is the model IR's float reference ([`verinfer_circuits::float`]); the
//! quantized side compiles the model from the settings file just written, exactly as
//! `verinfer infer --settings` does, and runs the same integer inference.

use crate::args::{check_infer_memory, default_memory_budget, ArgsError, ModelArgs, QuantFlags};
use crate::args::{Compiled, QuantKeys};
use crate::files::{check_outputs, load_model, read_labels, read_samples, write_regular};
use crate::files::{FileError, InputBatch, LoadedModel};
use crate::report::{argmax, dims};
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use thiserror::Error;
use verinfer_circuits::calibrate::{plan, CalibrateError, Options, Plan, Why};
use verinfer_circuits::circuit::{Op, QuantParams, WeightScale};
use verinfer_circuits::float::{self, FloatError};
use verinfer_circuits::model::Model;
use verinfer_circuits::quant::{quantize_input, InputError};
use verinfer_circuits::settings::Settings;
use verinfer_circuits::witness::{infer_each, WitnessError};

/// The flags of `verinfer calibrate`.
#[derive(Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Model file: .onnx (exported by torch.onnx.export) or the JSON model IR.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub model: PathBuf,
    /// Sample inputs, one batch: JSON nested arrays in the model's input shape (or
    /// {"input": ...}), .npy, or a labelled set {"images": [...], "labels": [...]} such as
    /// models/digits/test_set.json, whose labels are used unless --labels is given. Every value
    /// must lie in the declared input range.
    #[arg(long, short = 'd', value_name = "FILE")]
    pub data: PathBuf,
    /// The samples' classes: a JSON list of class indices, one per sample (or an object with a
    /// "labels" list). With labels, the float and quantized accuracy are printed.
    #[arg(long, short = 'l', value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Signed bits B every checkpoint keeps (2 to 62).
    #[arg(long, value_name = "B", default_value_t = 16)]
    pub bits: u32,
    /// Bits of headroom h: each checkpoint keeps the most fractional bits f with
    /// max|x|·2^f ≤ 2^(B−1−h), max|x| over the samples; its shift is the tensor's fractional
    /// bits minus f (0 if negative).
    #[arg(long, value_name = "H", default_value_t = 1)]
    pub headroom: u32,
    /// How to quantize the model (written to the settings file with the checkpoints).
    #[command(flatten)]
    pub keys: QuantKeys,
    /// Where to write the settings file (then give it to prove, verify, infer, ... with
    /// --settings).
    #[arg(long, short = 's', value_name = "FILE")]
    pub settings: PathBuf,
}

/// Why `verinfer calibrate` failed. One line each.
#[derive(Debug, Error)]
pub enum CalibrationError {
    /// `--bits` or `--headroom` out of range.
    #[error(transparent)]
    Options(CalibrateError),
    /// A model, data or labels file that cannot be read or used.
    #[error(transparent)]
    File(#[from] FileError),
    /// The samples do not fit the model (range, NaN, labels).
    #[error("{}: {msg}", path.display())]
    Data {
        /// The data or labels file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// No checkpoints make the model compile, or it does not compile for another reason.
    #[error("{}: cannot calibrate: {source}", path.display())]
    Plan {
        /// The model file.
        path: PathBuf,
        /// Why.
        source: CalibrateError,
    },
    /// The float model cannot run on the samples.
    #[error("{}: float model: {source}", path.display())]
    Float {
        /// The model file.
        path: PathBuf,
        /// Why.
        source: FloatError,
    },
    /// Compiling the model with the written settings failed.
    #[error(transparent)]
    Compile(#[from] ArgsError),
    /// The written settings compile to another circuit than the calibrated one.
    #[error(
        "{}: the written settings compile to another circuit than the calibrated one",
        path.display()
    )]
    Mismatch {
        /// The settings file.
        path: PathBuf,
    },
    /// The samples do not quantize for the circuit.
    #[error("{}: {source}", path.display())]
    Input {
        /// The data file.
        path: PathBuf,
        /// Why.
        source: InputError,
    },
    /// The quantized inference failed.
    #[error("quantized inference: {0}")]
    Infer(#[from] WitnessError),
}

/// One tensor of the table: the input, or the output of a model layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `input` or `layer:N`.
    pub tensor: String,
    /// Its ONNX value name, if any.
    pub name: String,
    /// The layer's operation (`input` for the input).
    pub op: String,
    /// Per-item shape.
    pub shape: Vec<usize>,
    /// Smallest and largest float value on the samples.
    pub range: (f64, f64),
    /// Fractional bits of its integers (before its checkpoint, if it has one).
    pub scale: u32,
    /// Worst-case bits of its integers (of the layer computing it, intermediate sums
    /// included).
    pub worst_bits: u32,
    /// Its checkpoint.
    pub checkpoint: Option<RowCheckpoint>,
    /// Worst-case bits of the segment after it, up to the next checkpoint or the output (the
    /// input and checkpointed tensors).
    pub segment_bits: Option<u32>,
}

/// A checkpoint in the table.
#[derive(Clone, Debug, PartialEq)]
pub struct RowCheckpoint {
    /// Fractional bits dropped.
    pub shift: u32,
    /// Signed bits kept.
    pub bits: u32,
    /// Fractional bits kept.
    pub kept: u32,
    /// Why it is there.
    pub why: Why,
    /// Values of the samples it saturates, out of `values`.
    pub clamped: usize,
    /// Values it requantizes on the samples.
    pub values: usize,
    /// Whether even 0 fractional bits do not hold the samples' largest value.
    pub saturates: bool,
}

/// Correct predictions on the labelled samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accuracy {
    /// By the float model.
    pub float: usize,
    /// By the quantized circuit.
    pub quantized: usize,
}

/// What `verinfer calibrate` found and wrote.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The model's name.
    pub model: String,
    /// The data file.
    pub data: PathBuf,
    /// The settings file written.
    pub settings_path: PathBuf,
    /// The settings written.
    pub settings: Settings,
    /// The importer's notes.
    pub notes: Vec<String>,
    /// Number of samples.
    pub samples: usize,
    /// Signed bits per checkpoint.
    pub bits: u32,
    /// Bits of headroom.
    pub headroom: u32,
    /// The table.
    pub rows: Vec<Row>,
    /// The field and why.
    pub field: String,
    /// Worst-case bits of the calibrated circuit.
    pub max_bits: u32,
    /// With labels: correct predictions.
    pub accuracy: Option<Accuracy>,
    /// Samples whose float and quantized argmax agree.
    pub agree: usize,
}

/// Steps reported to the progress callback.
const STEPS: usize = 5;

/// Runs `verinfer calibrate`; `progress(done, total, what)` hears of each step.
pub fn run(
    args: &CalibrateArgs,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Calibration, CalibrationError> {
    let none = Settings::default();
    let params = args.keys.params(&none, QuantParams::default());
    let opts = Options {
        params,
        field: args.keys.field(&none),
        bits: args.bits,
        headroom: args.headroom,
    };
    opts.check().map_err(CalibrationError::Options)?;
    let mut inputs = vec![("--model", args.model.as_path()), ("--data", &args.data)];
    inputs.extend(args.labels.as_deref().map(|l| ("--labels", l)));
    check_outputs(&inputs, &[("--settings", &args.settings)])?;

    progress(0, STEPS, "reading the model and the samples");
    let mut loaded = load_model(&args.model, args.keys.input_range(&none))?;
    // Calibrate the model that will be proved: ReLUs replaced as `--relu` says (prove places
    // the settings' checkpoints before replacing them, so they are named in the model as read).
    let origin = args
        .keys
        .relu(&none)
        .apply(&mut loaded.model, &params)
        .map_err(|e| CalibrationError::Data {
            path: args.model.clone(),
            msg: format!("--relu: {e}"),
        })?;
    let (batch, labels) = samples(args, &loaded)?;

    progress(1, STEPS, "running the float model");
    let floats = FloatStats::run(&loaded.model, &batch.values).map_err(|source| {
        CalibrationError::Float {
            path: args.model.clone(),
            source,
        }
    })?;
    let max_abs: Vec<f64> = floats
        .ranges
        .iter()
        .map(|(lo, hi)| lo.abs().max(hi.abs()))
        .collect();

    progress(2, STEPS, "choosing checkpoints");
    let plan = plan(&loaded.model, &max_abs, &opts).map_err(|source| CalibrationError::Plan {
        path: args.model.clone(),
        source,
    })?;
    let settings = Settings {
        model: Some(loaded.model.name.clone()),
        input_bits: Some(params.input_bits),
        weight_bits: Some(params.weight_bits),
        coef_bits: Some(params.coef_bits),
        weight_scale: Some(params.weight_scale),
        field: Some(opts.field),
        input_range: Some(loaded.model.input_range),
        relu: args.keys.relu.clone(),
        requant: plan.requant(|n| {
            let n = origin.get(n).copied().unwrap_or(n);
            loaded
                .names
                .of_layer(n)
                .next()
                .map_or_else(|| format!("layer:{n}"), str::to_string)
        }),
    };
    write_regular(&args.settings, settings.to_json().as_bytes()).map_err(|source| {
        FileError::Write {
            path: args.settings.clone(),
            source,
        }
    })?;

    // The quantized side: the model compiled from the file just written, as `infer` does.
    progress(3, STEPS, "compiling with the written settings");
    let compiled = ModelArgs {
        model: args.model.clone(),
        quant: QuantFlags {
            keys: QuantKeys::default(),
            settings: Some(args.settings.clone()),
        },
    }
    .compile()?;
    if compiled.circuit.digest() != plan.circuit.digest() {
        return Err(CalibrationError::Mismatch {
            path: args.settings.clone(),
        });
    }

    progress(4, STEPS, "quantized inference");
    let quantized = Quantized::run(&compiled, &batch, &args.data)?;
    let rows = rows(&loaded, &plan, &floats, &batch, &quantized);
    let float_argmax = &floats.argmax;
    let agree = float_argmax
        .iter()
        .zip(&quantized.argmax)
        .filter(|(f, q)| f == q)
        .count();
    let accuracy = labels.map(|labels| {
        let correct = |pred: &[usize]| pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
        Accuracy {
            float: correct(float_argmax),
            quantized: correct(&quantized.argmax),
        }
    });
    progress(STEPS, STEPS, "done");
    Ok(Calibration {
        model: compiled.circuit.name.clone(),
        data: args.data.clone(),
        settings_path: args.settings.clone(),
        settings,
        notes: loaded.notes.clone(),
        samples: batch.batch,
        bits: args.bits,
        headroom: args.headroom,
        rows,
        field: format!(
            "{} ({})",
            compiled.circuit.field, compiled.circuit.field_reason
        ),
        max_bits: compiled.circuit.max_bits(),
        accuracy,
        agree,
    })
}

/// The samples, checked against the model (shape, finite, declared range), and their labels
/// (`--labels`, else the data file's own), checked against the samples and the classes.
fn samples(
    args: &CalibrateArgs,
    loaded: &LoadedModel,
) -> Result<(InputBatch, Option<Vec<usize>>), CalibrationError> {
    let model = &loaded.model;
    let (batch, own_labels) = read_samples(&args.data, &model.input_shape)?;
    let data_err = |msg: String| CalibrationError::Data {
        path: args.data.clone(),
        msg,
    };
    if let Some((i, x)) = batch
        .values
        .iter()
        .enumerate()
        .find(|(_, x)| !x.is_finite())
    {
        return Err(data_err(format!(
            "value {x} at index {i} is not a finite number"
        )));
    }
    batch.check_range(model.input_range).map_err(|msg| {
        data_err(format!(
            "{msg} (the samples must be inputs the model accepts; --input-range declares \
             another range)"
        ))
    })?;
    let (labels, from) = match &args.labels {
        Some(path) => (Some(read_labels(path)?), path.as_path()),
        None => (own_labels, args.data.as_path()),
    };
    let Some(labels) = labels else {
        return Ok((batch, None));
    };
    let label_err = |msg: String| CalibrationError::Data {
        path: from.to_path_buf(),
        msg,
    };
    if labels.len() != batch.batch {
        return Err(label_err(format!(
            "{} labels for {} samples in {}",
            labels.len(),
            batch.batch,
            args.data.display()
        )));
    }
    let shapes = model.validate().unwrap_or_default();
    let classes: usize = shapes.last().map_or(0, |s| s.iter().product());
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(label_err(format!(
            "label {l} at index {i} is not one of the model's {classes} classes"
        )));
    }
    Ok((batch, Some(labels)))
}

/// Samples the float model runs on at a time (memory: every layer's output of a chunk).
const FLOAT_CHUNK: usize = 1024;

/// What calibration keeps of the float model on the samples: each layer's smallest and largest
/// value and each sample's argmax.
struct FloatStats {
    /// Per model layer.
    ranges: Vec<(f64, f64)>,
    /// Per sample.
    argmax: Vec<usize>,
}

impl FloatStats {
    /// The float model on `values` (samples, batch-major), [`FLOAT_CHUNK`] samples at a time.
    fn run(model: &Model, values: &[f64]) -> Result<Self, FloatError> {
        let shapes = model.validate()?;
        let per: usize = model.input_shape.iter().product();
        let classes: usize = shapes.last().map_or(1, |s| s.iter().product());
        let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); model.layers.len()];
        let mut argmaxes = Vec::with_capacity(values.len() / per.max(1));
        for chunk in values.chunks(per.max(1) * FLOAT_CHUNK) {
            let run = float::run(model, chunk)?;
            for (n, range) in ranges.iter_mut().enumerate() {
                let (lo, hi) = run.extremes(n).unwrap_or(*range);
                *range = (range.0.min(lo), range.1.max(hi));
            }
            argmaxes.extend(run.output().chunks(classes.max(1)).map(argmax));
        }
        Ok(FloatStats {
            ranges,
            argmax: argmaxes,
        })
    }
}

/// The quantized circuit on the samples: its predictions and what each checkpoint saturates.
struct Quantized {
    /// Argmax per sample.
    argmax: Vec<usize>,
    /// Per circuit layer: for a checkpoint, the values it saturates and the values it reads.
    clamped: Vec<Option<(usize, usize)>>,
}

impl Quantized {
    fn run(c: &Compiled, batch: &InputBatch, data: &Path) -> Result<Self, CalibrationError> {
        let circuit = &c.circuit;
        check_infer_memory(circuit, batch.batch, default_memory_budget()).map_err(|msg| {
            CalibrationError::Data {
                path: data.to_path_buf(),
                msg,
            }
        })?;
        let ints =
            quantize_input(circuit, &batch.values).map_err(|source| CalibrationError::Input {
                path: data.to_path_buf(),
                source,
            })?;
        let is_checkpoint = |i: usize| {
            circuit
                .layers
                .get(i)
                .is_some_and(|l| matches!(l.op, Op::Requant(_)))
        };
        // Per checkpoint (circuit layer i, whose input is stage i): values clamped, values read.
        let mut clamped: Vec<Option<(usize, usize)>> = vec![None; circuit.layers.len()];
        let output = infer_each(
            circuit,
            batch.batch,
            &ints,
            &is_checkpoint,
            &mut |i, values| {
                if let Some(Op::Requant(op)) = circuit.layers.get(i).map(|l| &l.op) {
                    let (k, n) = clamped[i].get_or_insert((0, 0));
                    *k += values.iter().filter(|&&y| op.clamps(y)).count();
                    *n += values.len();
                }
            },
        )?;
        let classes = circuit.output().item_len().max(1);
        Ok(Quantized {
            argmax: output.chunks(classes).map(argmax).collect(),
            clamped,
        })
    }
}

/// The table: the input, then every model layer's output.
fn rows(
    loaded: &LoadedModel,
    plan: &Plan,
    floats: &FloatStats,
    batch: &InputBatch,
    quantized: &Quantized,
) -> Vec<Row> {
    let circuit = &plan.circuit;
    let model = &loaded.model;
    let shapes = model.validate().unwrap_or_default();
    let mut rows = vec![Row {
        tensor: "input".into(),
        name: String::new(),
        op: "input".into(),
        shape: model.input_shape.clone(),
        range: float::extremes(&batch.values),
        scale: circuit.input_scale,
        worst_bits: circuit.input_bits(),
        checkpoint: None,
        segment_bits: Some(plan.segment_bits(None)),
    }];
    for (n, layer) in model.layers.iter().enumerate() {
        let at = plan.circuit_layer(n);
        let (scale, worst_bits) = match at.map(|i| &circuit.layers[i]) {
            Some(l) => (l.scale_bits, l.bound_bits),
            None => (circuit.input_scale, circuit.input_bits()),
        };
        let checkpoint = plan.checkpoints.iter().find(|c| c.layer == n);
        // The checkpoint's own circuit layer follows the layer computing the tensor.
        let requant = at.map_or(0, |i| i + 1);
        rows.push(Row {
            tensor: format!("layer:{n}"),
            name: loaded.names.of_layer(n).next().unwrap_or("").to_string(),
            op: layer.op_name().to_string(),
            shape: shapes.get(n + 1).cloned().unwrap_or_default(),
            range: floats.ranges.get(n).copied().unwrap_or((0.0, 0.0)),
            scale,
            worst_bits,
            checkpoint: checkpoint.map(|c| {
                let (clamped, values) = quantized
                    .clamped
                    .get(requant)
                    .copied()
                    .flatten()
                    .unwrap_or((0, 0));
                RowCheckpoint {
                    shift: c.shift,
                    bits: c.bits,
                    kept: c.kept(),
                    why: c.why,
                    clamped,
                    values,
                    saturates: c.wanted.is_some_and(|f| f < 0),
                }
            }),
            segment_bits: checkpoint.map(|_| plan.segment_bits(Some(requant))),
        });
    }
    rows
}

impl Calibration {
    /// The report printed on stdout: the rule, the table, the checkpoints, the accuracy and
    /// where the settings went.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let p = &self.settings;
        let [lo, hi] = p.input_range.unwrap_or([0.0, 0.0]);
        let _ = writeln!(
            out,
            "calibrated {} on {} samples ({})",
            self.model,
            self.samples,
            self.data.display()
        );
        let _ = writeln!(
            out,
            "  rule          each checkpoint keeps B = {} signed bits and the most fractional bits \
             f with\n                max|x|·2^f ≤ 2^(B−1−h) = 2^{} on the samples (headroom h = \
             {}); shift = scale − f, at least 0",
            self.bits,
            self.bits - 1 - self.headroom,
            self.headroom,
        );
        let _ = writeln!(
            out,
            "  quantization  input {} bits, weights {} bits ({}), coefficients {} bits; input \
             range [{lo}, {hi}]",
            p.input_bits.unwrap_or_default(),
            p.weight_bits.unwrap_or_default(),
            match p.weight_scale {
                Some(WeightScale::PerLayer) => "per-layer",
                _ => "uniform",
            },
            p.coef_bits.unwrap_or_default(),
        );
        out.push('\n');
        out.push_str(&self.table());
        out.push('\n');
        let named = |why: Why| -> Vec<&str> {
            self.rows
                .iter()
                .filter(|r| r.checkpoint.as_ref().is_some_and(|c| c.why == why))
                .map(|r| r.tensor.as_str())
                .collect()
        };
        let (acts, splits) = (named(Why::Activation), named(Why::Segment));
        let mut what = format!(
            "{} after the activations ({})",
            acts.len(),
            list_or_none(&acts)
        );
        if !splits.is_empty() {
            let _ = write!(
                what,
                ", {} on linear outputs where a segment overflowed ({})",
                splits.len(),
                splits.join(", ")
            );
        }
        let _ = writeln!(out, "checkpoints {what}");
        for r in &self.rows {
            if let Some(c) = r.checkpoint.as_ref().filter(|c| c.saturates) {
                let reach = r.range.0.abs().max(r.range.1.abs());
                let _ = writeln!(
                    out,
                    "  note: {} reaches {} on the samples, over 2^(B−1−h) = 2^{} even with no \
                     fractional bits: less headroom than asked for, and values past the {} bits \
                     saturate (clamped); raise --bits",
                    r.tensor,
                    num(reach),
                    self.bits - 1 - self.headroom,
                    c.bits
                );
            }
        }
        let _ = writeln!(
            out,
            "circuit     worst case {} bits, field {}",
            self.max_bits, self.field
        );
        let pct = |k: usize| 100.0 * k as f64 / self.samples.max(1) as f64;
        let n = self.samples;
        if let Some(a) = self.accuracy {
            let _ = writeln!(
                out,
                "accuracy    float {:.2}% ({}/{n}), quantized {:.2}% ({}/{n})",
                pct(a.float),
                a.float,
                pct(a.quantized),
                a.quantized
            );
        }
        let _ = writeln!(
            out,
            "agreement   float and quantized argmax agree on {:.2}% ({}/{n})",
            pct(self.agree),
            self.agree
        );
        let _ = writeln!(
            out,
            "settings    -> {} (use with --settings on prove, verify, infer, inspect, serve)",
            self.settings_path.display()
        );
        out
    }

    /// The per-tensor table.
    fn table(&self) -> String {
        let named = self.rows.iter().any(|r| !r.name.is_empty());
        let name_w = self
            .rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let name_col = |s: &str| {
            if named {
                format!(" {s:<name_w$}")
            } else {
                String::new()
            }
        };
        let mut out = String::new();
        let mut line = |c: [&str; 13]| {
            let text = format!(
                "  {:<9}{} {:<10} {:>9} {:>10} {:>10} {:>5} {:>5} {:>5} {:>4} {:>4} {:>7} {:>7}",
                c[0],
                name_col(c[1]),
                c[2],
                c[3],
                c[4],
                c[5],
                c[6],
                c[7],
                c[8],
                c[9],
                c[10],
                c[11],
                c[12]
            );
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line([
            "tensor",
            "name",
            "op",
            "shape",
            "float min",
            "float max",
            "scale",
            "worst",
            "shift",
            "bits",
            "frac",
            "clamped",
            "segment",
        ]);
        let opt = |v: Option<u32>| v.map_or(String::new(), |v| v.to_string());
        for r in &self.rows {
            let c = r.checkpoint.as_ref();
            let clamped = c.map_or(String::new(), |c| match c.clamped {
                0 => "0".to_string(),
                k => format!("{:.2}%", 100.0 * k as f64 / c.values.max(1) as f64),
            });
            line([
                &r.tensor,
                &r.name,
                &r.op,
                &dims(&r.shape),
                &num(r.range.0),
                &num(r.range.1),
                &r.scale.to_string(),
                &r.worst_bits.to_string(),
                &opt(c.map(|c| c.shift)),
                &opt(c.map(|c| c.bits)),
                &opt(c.map(|c| c.kept)),
                &clamped,
                &opt(r.segment_bits),
            ]);
        }
        let _ = writeln!(
            out,
            "  scale: fractional bits (before the checkpoint); worst: worst-case bits of the \
             tensor's layer;\n  shift, bits: the checkpoint requant(shift, bits); frac: \
             fractional bits it keeps; clamped: sample\n  values it saturates; segment: \
             worst-case bits after it, up to the next checkpoint or the output"
        );
        out
    }
}

fn list_or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// A float for the table: 4 decimals, or scientific notation when very large or small.
fn num(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use verinfer_circuits::model::{Activation, Dense, Layer};

    #[test]
    fn float_stats_in_chunks_equal_one_run() {
        let model = Model {
            name: String::new(),
            input_shape: vec![2],
            input_range: [-1.0, 1.0],
            layers: vec![
                Layer::Dense(Dense {
                    in_features: 2,
                    out_features: 3,
                    weight: vec![0.5, -1.0, 0.25, 0.75, -0.5, 0.1],
                    bias: Some(vec![0.0, 0.1, -0.2]),
                }),
                Layer::Activation(Activation::SquarePlusX),
            ],
        };
        // More than two chunks, the largest value in the last one.
        let n = 2 * FLOAT_CHUNK + 7;
        let mut values: Vec<f64> = (0..2 * n)
            .map(|i| ((i * 37) % 101) as f64 / 101.0 - 0.5)
            .collect();
        values[2 * n - 2] = 1.0;
        values[2 * n - 1] = -1.0;
        let stats = FloatStats::run(&model, &values).unwrap();
        let whole = float::run(&model, &values).unwrap();
        for n in 0..2 {
            assert_eq!(stats.ranges[n], whole.extremes(n).unwrap());
        }
        let want: Vec<usize> = whole.output().chunks(3).map(argmax).collect();
        assert_eq!(stats.argmax, want);
        assert_eq!(stats.argmax.len(), n);
    }

    #[test]
    fn numbers_in_the_table() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-4.88761), "-4.8876");
        assert_eq!(num(3.04e-7), "3.040e-7");
        assert_eq!(num(2.5e6), "2.500e6");
    }
}
