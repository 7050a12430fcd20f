//! The built-in demonstration: a small CNN trained on real handwritten digits (scikit-learn's
//! 8×8 digits), embedded in the binary with held-out test images, proved and verified end to end.
//!
//! The default model (`models/digits/digits_square_plus_x.onnx`: conv → x²+x → sum-pool → conv →
//! x²+x → sum-pool → dense) and the test set were produced by `tools/digits/train.py`; LeNet-5
//! (`models/deep/lenet5.onnx`, four x²+x activations, a requantization checkpoint after each, on
//! the digits upsampled to 32×32) by `tools/deep/train.py`. They are imported and compiled here
//! exactly as `verinfer prove --model ... --settings ...` would.

use crate::args::QuantFlags;
use crate::engine::{prove_any, verify_any};
use crate::report::argmax;
use serde::Deserialize;
use std::time::Instant;
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit, QuantParams};
use verinfer_circuits::compile::compile;
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::settings::Settings;
use verinfer_onnx::{import_bytes, ImportOptions};
use verinfer_verifier::VerifyError;

/// The embedded model: ONNX exported by PyTorch, x²+x activations, sum-pooling.
pub const MODEL_ONNX: &[u8] = include_bytes!("../../models/digits/digits_square_plus_x.onnx");
/// Held-out test images (never seen in training) and their labels, as JSON.
pub const TEST_SET_JSON: &str = include_str!("../../models/digits/test_set.json");
/// The training script's recorded accuracies, as JSON.
pub const ACCURACY_JSON: &str = include_str!("../../models/digits/accuracy.json");
/// Key of the embedded model in `accuracy.json`.
pub const MODEL_KEY: &str = "square_plus_x";
/// LeNet-5 (x²+x) trained on the digits upsampled to 32×32.
pub const LENET5_ONNX: &[u8] = include_bytes!("../../models/deep/lenet5.onnx");
/// Its settings: a requantization checkpoint after each activation.
pub const LENET5_SETTINGS: &str = include_str!("../../models/deep/lenet5.settings.json");
/// `tools/deep/train.py`'s recorded accuracies, as JSON.
pub const DEEP_ACCURACY_JSON: &str = include_str!("../../models/deep/accuracy.json");

/// A model the demo proves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoModel {
    /// The digits CNN on 8×8 images: conv → x²+x → sum-pool → conv → x²+x → sum-pool → dense.
    #[default]
    Digits,
    /// LeNet-5 with x²+x on the digits upsampled to 32×32 (nearest neighbour), a
    /// requantization checkpoint after each of its four activations.
    Lenet5,
}

impl DemoModel {
    /// How many times each 8×8 digit is upsampled for this model.
    pub fn upsample(self) -> usize {
        match self {
            DemoModel::Digits => 1,
            DemoModel::Lenet5 => 4,
        }
    }

    /// Where the model comes from, for the report.
    pub fn source(self) -> &'static str {
        match self {
            DemoModel::Digits => "models/digits/digits_square_plus_x.onnx, tools/digits/train.py",
            DemoModel::Lenet5 => {
                "models/deep/lenet5.onnx + lenet5.settings.json, tools/deep/train.py"
            }
        }
    }

    /// The recorded float and quantized accuracy on the held-out digits.
    pub fn accuracy(self) -> Option<Accuracy> {
        match self {
            DemoModel::Digits => recorded_accuracy(MODEL_KEY),
            DemoModel::Lenet5 => {
                let v: serde_json::Value = serde_json::from_str(DEEP_ACCURACY_JSON).ok()?;
                let m = v.get("models")?.get("lenet5")?;
                Some(Accuracy {
                    float: m.get("float")?.as_f64(),
                    quantized: m.get("quantized")?.get("8bit")?.get("quantized")?.as_f64(),
                })
            }
        }
    }

    /// The model compiled with its settings.
    pub fn circuit(self) -> Result<LayeredCircuit, String> {
        match self {
            DemoModel::Digits => circuit(),
            DemoModel::Lenet5 => {
                let err = |e: String| format!("embedded LeNet-5: {e}");
                let imported = import_bytes(LENET5_ONNX, None, &ImportOptions::default())
                    .map_err(|e| err(e.to_string()))?;
                let settings =
                    Settings::from_json(LENET5_SETTINGS).map_err(|e| err(e.to_string()))?;
                let mut model = imported.model;
                if let Some(r) = settings.input_range {
                    model.input_range = r;
                }
                settings
                    .place_checkpoints(&mut model, &imported.names)
                    .map_err(|e| err(e.to_string()))?;
                let flags = QuantFlags::default();
                let params = flags.params(&settings, QuantParams::default());
                compile(&model, &params, flags.field(&settings)).map_err(|e| err(e.to_string()))
            }
        }
    }
}

/// The held-out digits: `images[n]` is `1×8×8` values in `[0, 1]`, `labels[n]` its digit.
#[derive(Clone, Debug, Deserialize)]
pub struct TestSet {
    /// Images, `[N][1][8][8]`.
    pub images: Vec<Vec<Vec<Vec<f64>>>>,
    /// True labels.
    pub labels: Vec<usize>,
}

impl TestSet {
    /// The embedded test set.
    pub fn embedded() -> Result<Self, String> {
        let t: TestSet =
            serde_json::from_str(TEST_SET_JSON).map_err(|e| format!("embedded test set: {e}"))?;
        if t.images.len() != t.labels.len() {
            return Err("embedded test set: images and labels differ in number".into());
        }
        Ok(t)
    }

    /// Image `i`, row-major.
    pub fn image(&self, i: usize) -> Vec<f64> {
        self.images
            .get(i)
            .map(|img| img.iter().flatten().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// Image `i` upsampled `k` times by nearest neighbour (each pixel a `k×k` block, so the
    /// values stay exact), row-major.
    pub fn image_upsampled(&self, i: usize, k: usize) -> Vec<f64> {
        let Some(img) = self.images.get(i) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for plane in img {
            for row in plane {
                let wide: Vec<f64> = row
                    .iter()
                    .flat_map(|&v| std::iter::repeat_n(v, k))
                    .collect();
                for _ in 0..k {
                    out.extend_from_slice(&wide);
                }
            }
        }
        out
    }
}

/// Recorded float and quantized test accuracy of a trained model.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Accuracy {
    /// Float model (PyTorch).
    pub float: Option<f64>,
    /// Exact integer inference under docs/protocol.md §3 (the script's independent reference).
    pub quantized: Option<f64>,
}

/// The recorded accuracy of the model trained with activation `key` (e.g. `square_plus_x`).
pub fn recorded_accuracy(key: &str) -> Option<Accuracy> {
    let v: serde_json::Value = serde_json::from_str(ACCURACY_JSON).ok()?;
    serde_json::from_value(v.get("models")?.get(key)?.clone()).ok()
}

/// Compiles the embedded model with the default quantization parameters.
pub fn circuit() -> Result<LayeredCircuit, String> {
    let imported = import_bytes(MODEL_ONNX, None, &ImportOptions::default())
        .map_err(|e| format!("embedded model: {e}"))?;
    compile(&imported.model, &QuantParams::default(), FieldChoice::Auto)
        .map_err(|e| format!("embedded model: {e}"))
}

/// One proved and verified test image.
#[derive(Clone, Debug)]
pub struct DemoRow {
    /// Index in the held-out set.
    pub index: usize,
    /// The true digit.
    pub label: usize,
    /// The digit the verified output predicts.
    pub predicted: usize,
    /// Prover time, witness included (ms).
    pub prove_ms: f64,
    /// Verifier time, decoding included (ms).
    pub verify_ms: f64,
    /// Proof size in bytes.
    pub proof_bytes: usize,
    /// Soundness of the proof in bits.
    pub soundness_bits: f64,
}

/// What the demo measured.
#[derive(Debug)]
pub struct DemoReport {
    /// The model proved.
    pub model: DemoModel,
    /// The compiled circuit.
    pub circuit: LayeredCircuit,
    /// One row per image, each proved on its own.
    pub rows: Vec<DemoRow>,
    /// The same images as one batch proof.
    pub batch: DemoRow,
    /// The error a proof whose claimed output was altered got (it must be rejected).
    pub tampered: Option<VerifyError>,
    /// The recorded accuracy of the embedded model.
    pub accuracy: Option<Accuracy>,
}

/// Proves and verifies the first `images` held-out digits with the digits CNN ([`run_model`]).
pub fn run(images: usize) -> Result<DemoReport, String> {
    run_model(DemoModel::Digits, images)
}

/// Proves and verifies the first `images` held-out digits with `model`, one by one and as one
/// batch, and checks that a proof with an altered output is rejected.
pub fn run_model(model: DemoModel, images: usize) -> Result<DemoReport, String> {
    let circuit = model.circuit()?;
    let test = TestSet::embedded()?;
    let k = model.upsample();
    let n = images.min(test.labels.len());
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let (row, _) = prove_and_verify(&circuit, &test.image_upsampled(i, k), i, test.labels[i])?;
        rows.push(row.into_iter().next().ok_or("empty proof")?);
    }
    let all: Vec<f64> = (0..n).flat_map(|i| test.image_upsampled(i, k)).collect();
    let (batch_rows, proof) = prove_and_verify(&circuit, &all, 0, 0)?;
    let mut batch = batch_rows.into_iter().next().ok_or("empty proof")?;
    batch.label = n;

    // Claim a different output (first score + 1) in an otherwise honest proof: the Fiat–Shamir
    // transcript and the output-layer claim must both catch it.
    let input = quantize_input(&circuit, &all).map_err(|e| e.to_string())?;
    let tampered = tamper_output(&proof).and_then(|bad| verify_any(&circuit, &input, &bad).err());
    Ok(DemoReport {
        model,
        circuit,
        rows,
        batch,
        tampered,
        accuracy: model.accuracy(),
    })
}

/// Proves and verifies `values` (one or more images); returns one row per item (batch-level
/// times and size repeated) and the proof.
fn prove_and_verify(
    circuit: &LayeredCircuit,
    values: &[f64],
    index: usize,
    label: usize,
) -> Result<(Vec<DemoRow>, Vec<u8>), String> {
    let input = quantize_input(circuit, values).map_err(|e| e.to_string())?;
    let proved = prove_any(circuit, &input, &mut |_| {}).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let verified = verify_any(circuit, &input, &proved.proof)
        .map_err(|e| format!("the honest proof was rejected: {e}"))?;
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    let per = circuit.output().item_len().max(1);
    let rows = verified
        .output
        .chunks(per)
        .map(|scores| DemoRow {
            index,
            label,
            predicted: argmax(scores),
            prove_ms: proved.report.total_ms,
            verify_ms,
            proof_bytes: proved.proof.len(),
            soundness_bits: verified.report.soundness_bits,
        })
        .collect();
    Ok((rows, proved.proof))
}

/// The proof with its first claimed output value increased by one, re-encoded.
fn tamper_output(proof: &[u8]) -> Option<Vec<u8>> {
    use verinfer_circuits::field::{FieldId, M127};
    use verinfer_verifier::Proof;
    if crate::engine::proof_field(proof).ok()? != FieldId::M127 {
        return None;
    }
    let mut p = Proof::<M127>::decode(proof).ok()?;
    *p.output.first_mut()? += M127::from(1u64);
    Some(p.encode())
}

impl DemoReport {
    /// Whether every honest proof verified, every prediction was shown and tampering was caught.
    pub fn ok(&self) -> bool {
        self.tampered.is_some()
    }

    /// The table the `demo` command prints.
    pub fn render(&self) -> String {
        let c = &self.circuit;
        let mut s = String::new();
        let k = self.model.upsample();
        let shape = if k == 1 {
            "8×8".to_string()
        } else {
            format!("8×8 upsampled to {0}×{0}", 8 * k)
        };
        s.push_str(&format!(
            "verinfer demo: {} on held-out handwritten digits (scikit-learn digits, {shape})\n",
            c.name
        ));
        s.push_str(&format!(
            "  {} layers, {} MACs per image, field {} ({}), input/weight bits {}/{}\n",
            c.layers.len(),
            c.macs_per_item(),
            c.field,
            c.field_reason,
            c.params.input_bits,
            c.params.weight_bits
        ));
        if let Some(a) = self.accuracy {
            let pct = |x: Option<f64>| x.map_or("n/a".into(), |v| format!("{:.1}%", 100.0 * v));
            s.push_str(&format!(
                "  recorded test accuracy: float {}, quantized {} ({})\n",
                pct(a.float),
                pct(a.quantized),
                self.model.source()
            ));
        }
        s.push('\n');
        s.push_str(&format!(
            "  {:>5} {:>5} {:>9} {:>10} {:>11} {:>11} {:>10}\n",
            "image", "label", "predicted", "prove ms", "verify ms", "proof bytes", "soundness"
        ));
        let mut correct = 0;
        for r in &self.rows {
            if r.label == r.predicted {
                correct += 1;
            }
            s.push_str(&format!(
                "  {:>5} {:>5} {:>9} {:>10.2} {:>11.2} {:>11} {:>7.1} bits{}\n",
                r.index,
                r.label,
                r.predicted,
                r.prove_ms,
                r.verify_ms,
                r.proof_bytes,
                r.soundness_bits,
                if r.label == r.predicted {
                    ""
                } else {
                    "  (wrong)"
                }
            ));
        }
        let b = &self.batch;
        s.push_str(&format!(
            "  {:>5} {:>5} {:>9} {:>10.2} {:>11.2} {:>11} {:>7.1} bits\n",
            "batch",
            format!("of {}", b.label),
            format!("{correct}/{} ok", self.rows.len()),
            b.prove_ms,
            b.verify_ms,
            b.proof_bytes,
            b.soundness_bits
        ));
        s.push('\n');
        match &self.tampered {
            Some(e) => s.push_str(&format!(
                "  a proof claiming a different output: rejected ({e})\n  result: every proof VALID\n"
            )),
            None => s.push_str("  a proof claiming a different output was ACCEPTED: soundness bug\n"),
        }
        s
    }
}
