//! `verinfer._native`: the Rust half of the Python package. Every call goes through
//! `verinfer-cli-core`, so files, flags, formats and messages are the command line's; the
//! Python half (`verinfer/__init__.py`) turns arrays into `.npy` bytes and results into numpy.
//!
//! Long calls (compile, prove, verify, infer, calibrate) release the GIL.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit, WeightScale};
use verinfer_circuits::quant::dequantize;
use verinfer_circuits::witness::infer as run_inference;
use verinfer_cli_core::args::{
    check_batch_memory, check_infer_memory, default_memory_budget, parse_bytes, parse_range,
    parse_relu, Compiled, ModelArgs, QuantFlags, QuantKeys,
};
use verinfer_cli_core::calibrate::CalibrateArgs;
use verinfer_cli_core::engine::{claimed_output, prove_any, verify_any};
use verinfer_cli_core::report::CircuitInfo;

create_exception!(
    _native,
    VerinferError,
    PyValueError,
    "A model, settings file, input or flag that cannot be used (the command line's exit code 2)."
);
create_exception!(
    _native,
    VerificationError,
    VerinferError,
    "A proof that was rejected, with the reason (the command line's `REJECTED: ...`, exit code 1)."
);

/// The one-line message of an error and its causes, as the command line prints it.
fn usage(err: &(dyn std::error::Error + 'static)) -> PyErr {
    VerinferError::new_err(verinfer_cli_core::one_line(err))
}

/// How the Python side names an input given as an array in messages (a file keeps its path).
const ARRAY_LABEL: &str = "x";

/// An input: a file path (the command line's formats), or the `.npy` bytes of an array.
#[derive(Debug)]
enum Input {
    Npy(Vec<u8>),
    Path(PathBuf),
}

impl Input {
    fn new(x: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = x.extract::<&[u8]>() {
            return Ok(Input::Npy(bytes.to_vec()));
        }
        Ok(Input::Path(x.extract::<PathBuf>()?))
    }

    fn quantize(&self, c: &Compiled) -> PyResult<Vec<i128>> {
        match self {
            Input::Path(p) => c.quantized_input(p),
            Input::Npy(bytes) => c.input_bytes(Path::new(ARRAY_LABEL), bytes),
        }
        .map_err(|e| usage(&e))
    }
}

/// A model compiled with its quantization flags and settings.
#[pyclass(frozen, module = "verinfer._native")]
#[derive(Debug)]
struct Circuit {
    compiled: Compiled,
}

#[pymethods]
impl Circuit {
    /// The circuit as JSON: name, digest, field, shapes, quantization, layers (the server's
    /// `GET /v1/model` without its limits).
    fn info_json(&self) -> String {
        let c = &self.compiled;
        let info = CircuitInfo::new(
            &c.circuit,
            &c.loaded.model.input_shape,
            c.loaded.model.input_range,
        );
        serde_json::to_string(&info).unwrap_or_default()
    }

    /// Why the compiler picked its field.
    #[getter]
    fn field_reason(&self) -> String {
        self.compiled.circuit.field_reason.clone()
    }

    /// The importer's notes (e.g. a dropped trailing Softmax).
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.compiled.loaded.notes.clone()
    }
}

/// The quantization flags of the command line, by their flag names (`None`: not given).
#[allow(clippy::too_many_arguments)]
fn keys(
    input_bits: Option<u32>,
    weight_bits: Option<u32>,
    coef_bits: Option<u32>,
    weight_scale: Option<&str>,
    field: Option<&str>,
    input_range: Option<&str>,
    relu: Option<&str>,
) -> PyResult<QuantKeys> {
    let flag = |name: &str, e: String| VerinferError::new_err(format!("--{name}: {e}"));
    Ok(QuantKeys {
        input_bits,
        weight_bits,
        coef_bits,
        weight_scale: weight_scale
            .map(WeightScale::from_str)
            .transpose()
            .map_err(|e| flag("weight-scale", e.to_string()))?,
        field: field
            .map(FieldChoice::from_str)
            .transpose()
            .map_err(|e| flag("field", e.to_string()))?,
        input_range: input_range
            .map(parse_range)
            .transpose()
            .map_err(|e| flag("input-range", e))?,
        relu: relu
            .map(parse_relu)
            .transpose()
            .map_err(|e| flag("relu", e))?,
    })
}

/// Compiles a model file (`.onnx` or the JSON IR) with the command line's flags.
#[pyfunction]
#[pyo3(signature = (model, settings=None, input_bits=None, weight_bits=None, coef_bits=None,
                    weight_scale=None, field=None, input_range=None, relu=None))]
#[allow(clippy::too_many_arguments)]
fn compile(
    py: Python<'_>,
    model: PathBuf,
    settings: Option<PathBuf>,
    input_bits: Option<u32>,
    weight_bits: Option<u32>,
    coef_bits: Option<u32>,
    weight_scale: Option<&str>,
    field: Option<&str>,
    input_range: Option<&str>,
    relu: Option<&str>,
) -> PyResult<Circuit> {
    let args = ModelArgs {
        model,
        quant: QuantFlags {
            keys: keys(
                input_bits,
                weight_bits,
                coef_bits,
                weight_scale,
                field,
                input_range,
                relu,
            )?,
            settings,
        },
    };
    let compiled = py.detach(|| args.compile()).map_err(|e| usage(&e))?;
    Ok(Circuit { compiled })
}

/// The memory budget: `--max-memory`'s syntax, else the command line's default.
fn budget(max_memory: Option<&str>) -> PyResult<u64> {
    max_memory.map_or_else(
        || Ok(default_memory_budget()),
        |s| parse_bytes(s).map_err(|e| VerinferError::new_err(format!("--max-memory: {e}"))),
    )
}

/// Output integers with their dequantized floats.
type Values = (Vec<i128>, Vec<f64>);
/// What `prove` returns: output, dequantized, proof bytes, witness ms, total ms.
type ProveResult = (Vec<i128>, Vec<f64>, Py<PyBytes>, f64, f64);
/// What `verify` returns: output, dequantized, batch, soundness bits, ms.
type VerifyResult = (Vec<i128>, Vec<f64>, usize, f64, f64);

fn with_floats(c: &Compiled, output: Vec<i128>) -> Values {
    let s = c.circuit.output_scale();
    let floats = output.iter().map(|&v| dequantize(v, s)).collect();
    (output, floats)
}

/// Memory rule of a batch: [`check_batch_memory`] or [`check_infer_memory`].
type MemoryRule = fn(&LayeredCircuit, usize, u64) -> Result<(), String>;

/// The quantized input and its batch size, refused (as the command line does) if the batch's
/// estimated memory exceeds `budget` under `rule`.
fn batch_input(
    c: &Compiled,
    x: &Input,
    rule: MemoryRule,
    budget: u64,
) -> PyResult<(Vec<i128>, usize)> {
    let ints = x.quantize(c)?;
    let batch = ints.len() / c.circuit.input.item_len().max(1);
    rule(&c.circuit, batch, budget)
        .map_err(|e| VerinferError::new_err(format!("{}: {e}", label(x))))?;
    Ok((ints, batch))
}

/// Proves `circuit` on `x`: (output, dequantized, proof bytes, witness ms, total ms).
#[pyfunction]
#[pyo3(signature = (circuit, x, max_memory=None))]
fn prove(
    py: Python<'_>,
    circuit: &Circuit,
    x: &Bound<'_, PyAny>,
    max_memory: Option<&str>,
) -> PyResult<ProveResult> {
    let c = &circuit.compiled;
    let x = Input::new(x)?;
    let budget = budget(max_memory)?;
    let (values, proof, witness_ms, total_ms) = py.detach(|| {
        let (ints, _) = batch_input(c, &x, check_batch_memory, budget)?;
        let proved = prove_any(&c.circuit, &ints, &mut |_| {})
            .map_err(|e| VerinferError::new_err(format!("proving failed: {e}")))?;
        let r = proved.report;
        PyResult::Ok((
            with_floats(c, proved.output),
            proved.proof,
            r.witness_ms,
            r.total_ms,
        ))
    })?;
    Ok((
        values.0,
        values.1,
        PyBytes::new(py, &proof).unbind(),
        witness_ms,
        total_ms,
    ))
}

fn label(x: &Input) -> String {
    match x {
        Input::Path(p) => p.display().to_string(),
        Input::Npy(_) => ARRAY_LABEL.into(),
    }
}

/// Verifies `proof` for `circuit` on `x`: (output, dequantized, batch, soundness bits, ms).
/// A rejected proof raises `VerificationError` with the reason.
#[pyfunction]
fn verify(
    py: Python<'_>,
    circuit: &Circuit,
    x: &Bound<'_, PyAny>,
    proof: &[u8],
) -> PyResult<VerifyResult> {
    let c = &circuit.compiled;
    let x = Input::new(x)?;
    py.detach(|| {
        let ints = x.quantize(c)?;
        let t = std::time::Instant::now();
        let v = verify_any(&c.circuit, &ints, proof)
            .map_err(|e| VerificationError::new_err(e.to_string()))?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let (values, floats) = with_floats(c, v.output);
        Ok((values, floats, v.report.batch, v.report.soundness_bits, ms))
    })
}

/// The output a proof claims, decoded against `circuit` but not verified; a proof that does not
/// decode raises `VerificationError`.
#[pyfunction]
fn claimed(py: Python<'_>, circuit: &Circuit, proof: &[u8]) -> PyResult<Values> {
    let c = &circuit.compiled;
    py.detach(|| {
        let output = claimed_output(&c.circuit, proof)
            .map_err(|e| VerificationError::new_err(e.to_string()))?;
        Ok(with_floats(c, output))
    })
}

/// Quantized inference of `circuit` on `x`, no proof: (output, dequantized).
#[pyfunction]
#[pyo3(signature = (circuit, x, max_memory=None))]
fn infer(
    py: Python<'_>,
    circuit: &Circuit,
    x: &Bound<'_, PyAny>,
    max_memory: Option<&str>,
) -> PyResult<Values> {
    let c = &circuit.compiled;
    let x = Input::new(x)?;
    let budget = budget(max_memory)?;
    py.detach(|| {
        let (ints, batch) = batch_input(c, &x, check_infer_memory, budget)?;
        let out = run_inference(&c.circuit, batch, &ints)
            .map_err(|e| VerinferError::new_err(format!("inference failed: {e}")))?;
        Ok(with_floats(c, out))
    })
}

/// `verinfer calibrate`: writes the settings file and returns (its JSON, the printed report,
/// the importer's notes).
#[pyfunction]
#[pyo3(signature = (model, data, settings, labels=None, bits=16, headroom=1, input_bits=None,
                    weight_bits=None, coef_bits=None, weight_scale=None, field=None,
                    input_range=None, relu=None))]
#[allow(clippy::too_many_arguments)]
fn calibrate(
    py: Python<'_>,
    model: PathBuf,
    data: PathBuf,
    settings: PathBuf,
    labels: Option<PathBuf>,
    bits: u32,
    headroom: u32,
    input_bits: Option<u32>,
    weight_bits: Option<u32>,
    coef_bits: Option<u32>,
    weight_scale: Option<&str>,
    field: Option<&str>,
    input_range: Option<&str>,
    relu: Option<&str>,
) -> PyResult<(String, String, Vec<String>)> {
    let args = CalibrateArgs {
        model,
        data,
        labels,
        bits,
        headroom,
        keys: keys(
            input_bits,
            weight_bits,
            coef_bits,
            weight_scale,
            field,
            input_range,
            relu,
        )?,
        settings,
    };
    let c = py.detach(|| {
        verinfer_cli_core::calibrate::run(&args, &mut |_, _, _| {}).map_err(|e| usage(&e))
    })?;
    Ok((c.settings.to_json(), c.render(), c.notes))
}

/// The native module; the package `verinfer` wraps it.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("VerinferError", m.py().get_type::<VerinferError>())?;
    m.add("VerificationError", m.py().get_type::<VerificationError>())?;
    m.add_class::<Circuit>()?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(prove, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(claimed, m)?)?;
    m.add_function(wrap_pyfunction!(infer, m)?)?;
    m.add_function(wrap_pyfunction!(calibrate, m)?)?;
    Ok(())
}
