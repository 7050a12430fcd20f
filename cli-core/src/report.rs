//! The output report (contract of the command line, README "File formats"):
//! `{"shape": [...], "scale_bits": s, "values": ["<signed decimal>", ...], "dequantized": [...],
//! "argmax": [...]}`, row-major, integers as strings because they exceed 2^53.

use serde::{Deserialize, Serialize};
use verinfer_circuits::circuit::{LayeredCircuit, QuantParams};
use verinfer_circuits::quant::dequantize;

/// A model's output on a batch, as integers at `scale_bits` fractional bits.
///
/// Unknown fields are refused when parsing: a report checked against a proof is checked whole,
/// so it may not carry anything the proof does not establish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputReport {
    /// `[batch, ...per-item output shape]`.
    pub shape: Vec<usize>,
    /// Fractional bits of `values`.
    pub scale_bits: u32,
    /// The exact integers, row-major, as signed decimal strings.
    pub values: Vec<String>,
    /// `values / 2^scale_bits` as floats.
    pub dequantized: Vec<f64>,
    /// Index of the largest value of each batch item.
    pub argmax: Vec<usize>,
}

impl OutputReport {
    /// The report of `output` (batch-major integers) of `circuit`.
    pub fn new(circuit: &LayeredCircuit, output: &[i128]) -> Self {
        let per = circuit.output().item_len().max(1);
        let batch = output.len() / per;
        let mut shape = vec![batch];
        shape.extend(&circuit.output().dims);
        let scale_bits = circuit.output_scale();
        OutputReport {
            shape,
            scale_bits,
            values: output.iter().map(|v| v.to_string()).collect(),
            dequantized: output.iter().map(|&v| dequantize(v, scale_bits)).collect(),
            argmax: output.chunks(per).map(argmax).collect(),
        }
    }

    /// Parses a report written by `--output` (untrusted: errors, never panics).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let r: OutputReport =
            serde_json::from_slice(bytes).map_err(|e| format!("not an output report: {e}"))?;
        Ok(r)
    }

    /// The exact integers, or why a value is not one.
    pub fn integers(&self) -> Result<Vec<i128>, String> {
        self.values
            .iter()
            .map(|s| {
                s.parse::<i128>()
                    .map_err(|_| format!("output value \"{s}\" is not a signed integer"))
            })
            .collect()
    }

    /// The first field of this (untrusted) report that differs from `proved`, the report of
    /// what a proof established, described in one line naming the field; `None` when every
    /// field is equal. Values are compared as integers, `dequantized` exactly.
    pub fn first_difference(&self, proved: &OutputReport) -> Option<String> {
        if self.shape != proved.shape {
            return Some(format!(
                "field `shape` is {:?}, the proof establishes {:?}",
                self.shape, proved.shape
            ));
        }
        if self.scale_bits != proved.scale_bits {
            return Some(format!(
                "field `scale_bits` is {}, the proof establishes {}",
                self.scale_bits, proved.scale_bits
            ));
        }
        // Integers compare by value ("+5" is 5); anything else stays as written and differs.
        let canonical = |vs: &[String]| -> Vec<String> {
            vs.iter()
                .map(|v| {
                    v.parse::<i128>()
                        .map_or_else(|_| v.clone(), |n| n.to_string())
                })
                .collect()
        };
        first_mismatch(
            "values",
            &canonical(&self.values),
            &canonical(&proved.values),
        )
        .or_else(|| first_mismatch("dequantized", &self.dequantized, &proved.dequantized))
        .or_else(|| first_mismatch("argmax", &self.argmax, &proved.argmax))
    }

    /// Pretty JSON for files.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A short human-readable rendering: per batch item, its argmax and the dequantized scores
    /// (the first few).
    pub fn summary(&self, max_items: usize) -> String {
        let per = (self.dequantized.len() / self.argmax.len().max(1)).max(1);
        let items = self.dequantized.len().div_ceil(per);
        let mut out = String::new();
        for (b, chunk) in self.dequantized.chunks(per).enumerate() {
            if b == max_items {
                out.push_str(&format!("  ... {} more items\n", items - max_items));
                break;
            }
            let shown: Vec<String> = chunk.iter().take(10).map(|x| format!("{x:.3}")).collect();
            let more = if chunk.len() > 10 { ", ..." } else { "" };
            out.push_str(&format!(
                "  item {b}: argmax {}  [{}{more}]\n",
                self.argmax.get(b).copied().unwrap_or(0),
                shown.join(", ")
            ));
        }
        out
    }
}

/// A compiled circuit described for a client: enough to check it runs the same circuit and to
/// shape its input (the server's `GET /v1/model`, the Python package's `Circuit`, the browser
/// verifier).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CircuitInfo {
    /// Model name.
    pub name: String,
    /// Circuit digest (hex): covers weights, quantization, field and every layer.
    pub digest: String,
    /// The field (`m127` or `bn254`).
    pub field: String,
    /// Per-item input shape (an input may add a leading batch dimension).
    pub input_shape: Vec<usize>,
    /// The declared input range `[lo, hi]`: values outside it are refused before quantizing.
    pub input_range: [f64; 2],
    /// Quantization parameters (`weight_scale` is `uniform` or `per-layer`).
    pub quantization: QuantParams,
    /// The compiled layers, input first.
    pub layers: Vec<LayerInfo>,
    /// Per-item output shape.
    pub output_shape: Vec<usize>,
    /// Fractional bits of the output values.
    pub output_scale_bits: u32,
    /// Worst-case bits of any value in the circuit.
    pub max_bits: u32,
}

/// One compiled layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Operation (`conv2d`, `dense`, `sum_pool`, `activation`, `gates`).
    pub kind: String,
    /// Human-readable description.
    pub label: String,
    /// Per-item input dims.
    pub input_dims: Vec<usize>,
    /// Per-item output dims.
    pub output_dims: Vec<usize>,
    /// Fractional bits of the layer's output.
    pub scale_bits: u32,
    /// Worst-case bits of the layer's values.
    pub bound_bits: u32,
}

impl CircuitInfo {
    /// The description of `circuit` (per-item input shape `input_shape`, declared input range
    /// `input_range`).
    pub fn new(circuit: &LayeredCircuit, input_shape: &[usize], input_range: [f64; 2]) -> Self {
        CircuitInfo {
            name: circuit.name.clone(),
            digest: hex(&circuit.digest()),
            field: circuit.field.to_string(),
            input_shape: input_shape.to_vec(),
            input_range,
            quantization: circuit.params,
            layers: circuit
                .layers
                .iter()
                .map(|l| LayerInfo {
                    kind: l.op.name().into(),
                    label: l.label.clone(),
                    input_dims: l.input.dims.clone(),
                    output_dims: l.output.dims.clone(),
                    scale_bits: l.scale_bits,
                    bound_bits: l.bound_bits,
                })
                .collect(),
            output_shape: circuit.output().dims.clone(),
            output_scale_bits: circuit.output_scale(),
            max_bits: circuit.max_bits(),
        }
    }
}

/// The first position where two sequences of a report field differ (or their lengths), as
/// one line naming the field.
fn first_mismatch<T: PartialEq + std::fmt::Debug>(
    field: &str,
    got: &[T],
    want: &[T],
) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!(
            "field `{field}` has {} entries, the proof establishes {}",
            got.len(),
            want.len()
        ));
    }
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g != w)
        .map(|(i, (g, w))| format!("field `{field}`[{i}] is {g:?}, the proof establishes {w:?}"))
}

/// Lower-case hex of `bytes` (circuit digests in reports, the server API and `inspect`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `8×8×8` for `[8, 8, 8]` (shapes in tables).
pub fn dims(d: &[usize]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// Index of the largest value (the first on ties; NaN is never larger).
pub fn argmax<T: PartialOrd>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn argmax_first_on_ties() {
        assert_eq!(argmax(&[1, 5, 5, -2]), 1);
        assert_eq!(argmax(&[-3]), 0);
        assert_eq!(argmax::<i128>(&[]), 0);
        assert_eq!(argmax(&[0.5, 2.0, f64::NAN, 2.0]), 1);
    }

    #[test]
    fn json_round_trip_keeps_big_integers() {
        let r = OutputReport {
            shape: vec![1, 2],
            scale_bits: 3,
            values: vec![(1i128 << 100).to_string(), "-8".into()],
            dequantized: vec![2f64.powi(97), -1.0],
            argmax: vec![0],
        };
        let back = OutputReport::from_json(r.to_json().as_bytes()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.integers().unwrap(), vec![1i128 << 100, -8]);
        assert!(OutputReport::from_json(b"{}").is_err());
    }
}
