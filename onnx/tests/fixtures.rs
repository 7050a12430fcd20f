//! PyTorch-exported ONNX fixtures (tools/digits/fixtures.py) imported, compiled and run, against
//! the reference outputs the exporting script computed with its own exact integer implementation
//! of docs/protocol.md §3 (`NAME.ref.json` beside each model).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use verinfer_circuits::circuit::{FieldChoice, QuantParams, WeightScale};
use verinfer_circuits::compile::compile;
use verinfer_circuits::quant::quantize_input;
use verinfer_circuits::witness::infer;
use verinfer_onnx::{import_file, ImportOptions};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|x| flatten(x, out)),
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        other => panic!("unexpected {other}"),
    }
}

fn params(v: &Value) -> QuantParams {
    let bits = |k: &str| v[k].as_u64().unwrap() as u32;
    QuantParams {
        input_bits: bits("input_bits"),
        weight_bits: bits("weight_bits"),
        coef_bits: bits("coef_bits"),
        weight_scale: match v["weight_scale"].as_str().unwrap() {
            "uniform" => WeightScale::Uniform,
            "per-layer" | "per_layer" => WeightScale::PerLayer,
            other => panic!("weight_scale {other}"),
        },
    }
}

/// Imports `name`, runs exact quantized inference and compares with the reference.
fn check(name: &str) {
    let dir = fixtures();
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.ref.json"))).unwrap(),
    )
    .unwrap();
    let imported = import_file(
        &dir.join(r["model"].as_str().unwrap()),
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let model = imported.model;
    let range: Vec<f64> = r["input_range"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(
        model.input_range.to_vec(),
        range,
        "{name}: input range metadata"
    );
    let shape: Vec<usize> = r["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(model.input_shape, shape, "{name}: input shape");

    let circuit = compile(&model, &params(&r["params"]), FieldChoice::Auto)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut x = Vec::new();
    flatten(&r["input"], &mut x);
    let input = quantize_input(&circuit, &x).unwrap();
    let batch = input.len() / circuit.input.item_len();
    let got = infer(&circuit, batch, &input).unwrap();
    let want: Vec<i128> = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        circuit.output_scale() as u64,
        r["output_scale_bits"].as_u64().unwrap(),
        "{name}: output scale"
    );
    let mut out_shape = vec![batch];
    out_shape.extend(&circuit.output().dims);
    let want_shape: Vec<usize> = r["output_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(out_shape, want_shape, "{name}: output shape");
    assert_eq!(got, want, "{name}: outputs differ from the reference");
}

#[test]
fn conv_square_opset13() {
    check("conv_square");
}

#[test]
fn conv_square_plus_x_opset18() {
    check("conv_square_plus_x");
}

#[test]
fn dense_net() {
    check("dense");
}

#[test]
fn avgpool_and_batchnorm() {
    check("avgpool_bn");
}

#[test]
fn external_data() {
    check("external_data");
}

#[test]
fn trailing_softmax_is_dropped_with_a_note() {
    check("softmax");
    let imported =
        import_file(&fixtures().join("softmax.onnx"), &ImportOptions::default()).unwrap();
    assert!(
        imported.notes.iter().any(|n| n.contains("Softmax")),
        "{:?}",
        imported.notes
    );
}

/// Relu and MaxPool, as torch exports them, become exact layers the compiler puts at one
/// checkpoint.
#[test]
fn relu_and_maxpool_import_as_exact_layers() {
    let m = import_file(
        &fixtures().join("relu_maxpool.onnx"),
        &ImportOptions::default(),
    )
    .unwrap()
    .model;
    let ops: Vec<&str> = m.layers.iter().map(|l| l.op_name()).collect();
    assert_eq!(ops, ["conv2d", "relu", "max_pool", "flatten", "dense"]);
    let c = compile(&m, &QuantParams::default(), FieldChoice::Auto).unwrap();
    let kinds: Vec<&str> = c.layers.iter().map(|l| l.op.name()).collect();
    assert_eq!(kinds, ["conv2d", "requant", "dense"]);
}

#[test]
fn trained_digits_models_import_and_compile() {
    // The embedded demo models import and compile at the default parameters.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("onnx") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let res = import_file(&path, &ImportOptions::default());
        let m = res.unwrap_or_else(|e| panic!("{name}: {e}")).model;
        compile(&m, &QuantParams::default(), FieldChoice::Auto)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
