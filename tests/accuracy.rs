//! The committed digits models reach exactly the quantized test accuracy the training script
//! recorded with its own integer reference (tools/digits/train.py), and proofs of a batch of
//! held-out digits verify with the same predictions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use verinfer_circuits::circuit::{FieldChoice, QuantParams};
use verinfer_circuits::compile::compile;
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::witness::infer;
use verinfer_cli_core::demo::{recorded_accuracy, TestSet};
use verinfer_cli_core::engine::{prove_any, verify_any};
use verinfer_cli_core::report::argmax;
use verinfer_onnx::{import_file, ImportOptions};

fn models() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/digits")
}

/// `model` compiled at the default parameters and run on every item of `values`: the circuit,
/// its integer outputs, and how many argmaxes equal `labels`.
fn integer_run(
    model: &verinfer_circuits::model::Model,
    values: &[f64],
    labels: &[usize],
) -> (verinfer_circuits::circuit::LayeredCircuit, Vec<i128>, usize) {
    let circuit = compile(model, &QuantParams::default(), FieldChoice::Auto).unwrap();
    let input = quantize_input(&circuit, values).unwrap();
    let out = infer(&circuit, labels.len(), &input).unwrap();
    let per = circuit.output().item_len();
    let correct = out
        .chunks(per)
        .zip(labels)
        .filter(|(scores, &label)| argmax(scores) == label)
        .count();
    (circuit, out, correct)
}

#[test]
fn quantized_accuracy_matches_the_recorded_figure() {
    let test = TestSet::embedded().unwrap();
    let n = test.labels.len();
    assert!(n >= 100, "held-out set has only {n} images");
    let values: Vec<f64> = (0..n).flat_map(|i| test.image(i)).collect();
    let mut checked = 0;
    for entry in std::fs::read_dir(models()).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some(key) = stem.strip_prefix("digits_") else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some("onnx") || key == "relu" {
            continue;
        }
        let recorded = recorded_accuracy(key)
            .and_then(|a| a.quantized)
            .unwrap_or_else(|| panic!("no recorded quantized accuracy for {key}"));
        let model = import_file(&path, &ImportOptions::default()).unwrap().model;
        let (_, _, correct) = integer_run(&model, &values, &test.labels);
        let acc = correct as f64 / n as f64;
        assert!(
            (acc - recorded).abs() < 1e-9,
            "{key}: quantized accuracy {acc} here, {recorded} recorded by the training script"
        );
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} models checked");
}

#[test]
fn proven_predictions_equal_inferred_ones() {
    let circuit = verinfer_cli_core::demo::circuit().unwrap();
    let test = TestSet::embedded().unwrap();
    let values: Vec<f64> = (0..32).flat_map(|i| test.image(i)).collect();
    let input = quantize_input(&circuit, &values).unwrap();
    let proved = prove_any(&circuit, &input, &mut |_| {}).unwrap();
    let verified = verify_any(&circuit, &input, &proved.proof).unwrap();
    assert_eq!(verified.output, infer(&circuit, 32, &input).unwrap());
    assert!(verified.report.soundness_bits > 100.0);
}

/// The deep models (`models/deep/`, checkpointed by their settings files) against the
/// independent integer reference `tools/deep/qref_deep.py`: the exact outputs of the first test
/// images and the accuracy over the whole held-out set, at every bit setting it recorded.
#[test]
fn deep_models_match_the_integer_reference() {
    use verinfer_circuits::settings::Settings;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/deep");
    let test = TestSet::embedded().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("fixtures")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("input_") {
            continue;
        }
        let fx: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let imported = import_file(
            &dir.join(fx["model"].as_str().unwrap()),
            &ImportOptions::default(),
        )
        .unwrap();
        let settings = Settings::from_json(&fx["settings"].to_string()).unwrap();
        let mut model = imported.model;
        model.input_range = settings.input_range.unwrap();
        settings
            .place_checkpoints(&mut model, &imported.names)
            .unwrap();
        let params = QuantParams {
            input_bits: settings.input_bits.unwrap(),
            weight_bits: settings.weight_bits.unwrap(),
            coef_bits: settings.coef_bits.unwrap(),
            weight_scale: settings.weight_scale.unwrap(),
        };
        let circuit = compile(&model, &params, FieldChoice::Auto).unwrap();
        assert_eq!(
            circuit.output_scale(),
            fx["output_scale"].as_u64().unwrap() as u32,
            "{name}"
        );
        let k = fx["upsample"].as_u64().unwrap() as usize;
        let n = test.labels.len();
        let values: Vec<f64> = (0..n).flat_map(|i| test.image_upsampled(i, k)).collect();
        let input = quantize_input(&circuit, &values).unwrap();
        let out = infer(&circuit, n, &input).unwrap();
        let per = circuit.output().item_len();
        for (i, want) in fx["outputs"].as_array().unwrap().iter().enumerate() {
            let want: Vec<i128> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().parse().unwrap())
                .collect();
            assert_eq!(out[i * per..(i + 1) * per], want[..], "{name}: image {i}");
        }
        let correct = out
            .chunks(per)
            .zip(&test.labels)
            .filter(|(scores, &label)| argmax(scores) == label)
            .count();
        assert_eq!(
            correct as u64,
            fx["quantized_correct"].as_u64().unwrap(),
            "{name}: correct predictions here and in the reference"
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} fixtures checked");
}

/// The digits model trained with ReLU and max-pooling (`digits_relu.onnx`), proved exactly
/// (both as functions of checkpoints): the imported float model reaches exactly the accuracy
/// PyTorch recorded (so the importer reads Relu and MaxPool as torch computes them), the
/// quantized integer inference loses at most one point on the held-out set and agrees with the
/// float argmax almost everywhere, and a proof of a batch verifies with the same predictions.
#[test]
fn relu_maxpool_model_is_proved_exactly() {
    let test = TestSet::embedded().unwrap();
    let n = test.labels.len();
    let values: Vec<f64> = (0..n).flat_map(|i| test.image(i)).collect();
    let model = import_file(
        &models().join("digits_relu.onnx"),
        &ImportOptions::default(),
    )
    .unwrap()
    .model;
    let accuracy = |scores: &[f64], per: usize| {
        scores
            .chunks(per)
            .zip(&test.labels)
            .filter(|(s, &label)| argmax_f64(s) == label)
            .count()
    };
    let float = verinfer_circuits::float::run(&model, &values).unwrap();
    let float_correct = accuracy(float.output(), 10);
    let recorded = recorded_accuracy("relu").and_then(|a| a.float).unwrap();
    assert!(
        (float_correct as f64 / n as f64 - recorded).abs() < 1e-9,
        "float accuracy {float_correct}/{n} here, {recorded} recorded by PyTorch"
    );
    let (circuit, out, correct) = integer_run(&model, &values, &test.labels);
    let per = circuit.output().item_len();
    assert!(
        correct + n / 100 >= float_correct,
        "{correct} vs {float_correct}"
    );
    let agree = out
        .chunks(per)
        .zip(float.output().chunks(10))
        .filter(|(q, f)| argmax(q) == argmax_f64(f))
        .count();
    assert!(agree * 100 >= n * 99, "{agree}/{n} agree");
    let batch = 16;
    let input = quantize_input(&circuit, &values[..batch * 64]).unwrap();
    let proved = prove_any(&circuit, &input, &mut |_| {}).unwrap();
    let verified = verify_any(&circuit, &input, &proved.proof).unwrap();
    assert_eq!(verified.output, out[..batch * per]);
}

fn argmax_f64(v: &[f64]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}
