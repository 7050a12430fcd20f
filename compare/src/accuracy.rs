//! Test accuracy of the trained digits models: as recorded by the training script (float,
//! quantized) and as proven here, from the verified outputs of proofs of the held-out set.

use crate::args::CompareArgs;
use crate::variants::{Source, Variant};
use crate::CompareError;
use serde::{Deserialize as _, Serialize};
use verinfer_circuits::circuit::QuantParams;
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::witness::infer;
use verinfer_cli_core::demo::ACCURACY_JSON;
use verinfer_cli_core::engine::{prove_any, verify_any};
use verinfer_cli_core::report::argmax;

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

/// Images per proof of the held-out set for the proven accuracy.
pub const ACCURACY_BATCH: usize = 64;

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

/// The test accuracy of a trained digits model: recorded and, unless `--no-proven-accuracy`,
/// proven; `None` for other architectures and activations without a trained model.
pub(crate) fn accuracy(
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
    // A `relu:…` row proves the ReLU model with its ReLUs replaced: its float accuracy is that
    // of the replaced model (our float reference), and its quantized one is measured here.
    let (float, recorded_q) = if v.choice.relu.is_some() {
        let values: Vec<f64> = (0..n).flat_map(|i| test.image(i)).collect();
        let out = verinfer_circuits::float::run(&v.model, &values)
            .map_err(|e| CompareError::Usage(format!("{}: float model: {e}", v.choice.name)))?;
        let per = out.output().len() / n.max(1);
        let correct = out
            .output()
            .chunks(per.max(1))
            .zip(&test.labels)
            .filter(|(s, l)| (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])) == Some(**l))
            .count();
        (Some(correct as f64 / n.max(1) as f64), None)
    } else {
        (float, recorded_q)
    };
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
