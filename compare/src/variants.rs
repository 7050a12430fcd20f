//! The architecture being compared and its models, one per activation: the embedded trained
//! digits models, the built-in zoo networks or a model file with its activations replaced,
//! each compiled with the comparison's parameters, with the input of the timed proofs.

use crate::activations::Choice;
use crate::args::{Arch, CompareArgs};
use crate::CompareError;
use std::sync::Arc;
use verinfer_circuits::circuit::{LayeredCircuit, QuantParams};
use verinfer_circuits::compile::compile;
use verinfer_circuits::model::{Activation, Layer, Model};
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::settings::{Settings, TensorNames};
use verinfer_circuits::zoo;
use verinfer_cli_core::demo::TestSet;
use verinfer_onnx::{import_bytes, ImportOptions};

/// The trained digits models, one per preset, as committed by `tools/digits/train.py` (and the
/// ReLU + max-pool original, the model of the `relu:…` rows).
const DIGITS_MODELS: [(&str, &[u8]); 7] = [
    (
        "relu",
        include_bytes!("../../models/digits/digits_relu.onnx"),
    ),
    (
        "square",
        include_bytes!("../../models/digits/digits_square.onnx"),
    ),
    (
        "square_plus_x",
        include_bytes!("../../models/digits/digits_square_plus_x.onnx"),
    ),
    (
        "relu_fourier",
        include_bytes!("../../models/digits/digits_relu_fourier.onnx"),
    ),
    (
        "relu_lsq",
        include_bytes!("../../models/digits/digits_relu_lsq.onnx"),
    ),
    (
        "relu_minimax",
        include_bytes!("../../models/digits/digits_relu_minimax.onnx"),
    ),
    (
        "faster_cryptonets",
        include_bytes!("../../models/digits/digits_faster_cryptonets.onnx"),
    ),
];

/// The architecture being compared.
pub(crate) enum Source {
    /// The trained digits models, with the held-out set.
    Digits(TestSet),
    /// A built-in network of `zoo`.
    Zoo(Arch),
    /// A model file (its name, the model).
    File(String, Model, TensorNames),
}

/// One activation's compiled model (or why it did not compile).
pub(crate) struct Variant {
    /// The activation.
    pub(crate) choice: Choice,
    /// Where the weights come from.
    pub(crate) weights: String,
    /// The trained digits model's key, if there is one for this activation.
    pub(crate) trained: Option<&'static str>,
    /// The circuit, or why the model does not compile.
    pub(crate) compiled: Result<Arc<LayeredCircuit>, String>,
    /// The quantized input of the timed proofs.
    pub(crate) input: Vec<i128>,
    /// The model compiled (its ReLUs replaced for a `relu:…` row): the float reference of its
    /// accuracy.
    pub(crate) model: Model,
}

/// The quantization parameters: the flags', else the settings file's, else the architecture's
/// defaults.
pub(crate) fn params_for(source: &Source, args: &CompareArgs, settings: &Settings) -> QuantParams {
    let base = match source {
        Source::Zoo(Arch::Timit) => zoo::timit(args.seed, Activation::Square).1,
        _ => QuantParams::default(),
    };
    args.quant.params(settings, base)
}

fn with_activation(model: &Model, act: Activation) -> Model {
    let mut m = model.clone();
    for l in &mut m.layers {
        if let Layer::Activation(a) = l {
            *a = act.clone();
        }
    }
    m
}

fn import_digits(key: &str) -> Result<(Model, TensorNames), CompareError> {
    let bytes = DIGITS_MODELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, b)| *b)
        .ok_or_else(|| CompareError::Embedded(format!("no model for {key}")))?;
    import_bytes(bytes, None, &ImportOptions::default())
        .map(|i| (i.model, i.names))
        .map_err(|e| CompareError::Embedded(format!("digits_{key}.onnx: {e}")))
}

/// One activation's model (trained, built-in or the file's with its activations replaced),
/// compiled, with the quantized input of the timed proofs.
pub(crate) fn variant(
    source: &Source,
    choice: Choice,
    params: &QuantParams,
    args: &CompareArgs,
    settings: &Settings,
) -> Result<Variant, CompareError> {
    let (mut model, weights, trained, values, names) = match source {
        Source::Digits(test) if choice.relu.is_some() => {
            let (model, names) = import_digits("relu")?;
            let n = test.labels.len().max(1);
            let values: Vec<f64> = (0..args.batch).flat_map(|i| test.image(i % n)).collect();
            let weights = "models/digits/digits_relu.onnx (ReLU + max-pool), no retraining".into();
            (model, weights, Some("relu"), values, names)
        }
        Source::Zoo(_) if choice.relu.is_some() => {
            return Err(CompareError::Usage(format!(
                "{}: the built-in networks have no ReLU layers; use --arch digits (the ReLU + \
                 max-pool digits model) or --model with a ReLU model",
                choice.name
            )))
        }
        Source::Digits(test) => {
            let trained = DIGITS_MODELS
                .iter()
                .map(|(k, _)| *k)
                .find(|k| *k == choice.name);
            let (model, weights, names) = match trained {
                Some(k) => {
                    let (model, names) = import_digits(k)?;
                    (model, format!("models/digits/digits_{k}.onnx"), names)
                }
                None => {
                    let (model, names) = import_digits("square_plus_x")?;
                    (
                        with_activation(&model, choice.activation.clone()),
                        "models/digits/digits_square_plus_x.onnx, activations replaced".into(),
                        names,
                    )
                }
            };
            let n = test.labels.len().max(1);
            let values: Vec<f64> = (0..args.batch).flat_map(|i| test.image(i % n)).collect();
            (model, weights, trained, values, names)
        }
        Source::Zoo(arch) => {
            let (model, weights) = match arch {
                Arch::Timit => (
                    zoo::timit(args.seed, choice.activation.clone()).0,
                    format!("zoo::timit, seed {}", args.seed),
                ),
                _ => (
                    zoo::cifar_small(args.seed, choice.activation.clone()).0,
                    format!("zoo::cifar_small, seed {}", args.seed),
                ),
            };
            let values = match arch {
                Arch::Timit => zoo::timit_input(args.batch, args.seed),
                _ => zoo::random_input(&model, args.batch, args.seed),
            };
            (model, weights, None, values, TensorNames::default())
        }
        Source::File(name, m, names) if choice.relu.is_some() => {
            let values = zoo::random_input(m, args.batch, args.seed);
            (m.clone(), name.clone(), None, values, names.clone())
        }
        Source::File(name, m, names) => {
            let model = with_activation(m, choice.activation.clone());
            let values = zoo::random_input(&model, args.batch, args.seed);
            (
                model,
                format!("{name}, activations replaced"),
                None,
                values,
                names.clone(),
            )
        }
    };
    let range = args.quant.input_range(settings);
    if let (Some(range), false) = (range, matches!(source, Source::File(..))) {
        model.input_range = range;
    }
    let origin = match &choice.relu {
        Some(relu) => relu
            .apply(&mut model, params)
            .map_err(|e| CompareError::Usage(format!("{}: {e}", choice.name)))?,
        None => (0..model.layers.len()).collect(),
    };
    settings
        .place_checkpoints_in(&mut model, &names, Some(&origin))
        .map_err(|e| CompareError::Usage(e.to_string()))?;
    let field = args.quant.field(settings);
    let compiled = compile(&model, params, field)
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
        model,
    })
}
