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
        let circuit = compile(&model, &QuantParams::default(), FieldChoice::Auto).unwrap();
        let input = quantize_input(&circuit, &values).unwrap();
        let out = infer(&circuit, n, &input).unwrap();
        let per = circuit.output().item_len();
        let correct = out
            .chunks(per)
            .zip(&test.labels)
            .filter(|(scores, &label)| argmax(scores) == label)
            .count();
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
