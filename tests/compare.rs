//! `verinfer compare` end to end on the digits models: the JSON report has every field of the
//! contract, the accuracy figures are the training script's (and the proven one equals the
//! quantized one exactly), the SVG is well-formed XML, and bad flags are one-line usage errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use verinfer_cli_core::demo::recorded_accuracy;
use verinfer_compare::{parse_activations, preset, PRESETS};

mod common;
use common::{verinfer, Dir as TempDir};

/// `verinfer compare --arch digits --repeat 1` and `extra`.
fn compare_digits(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["compare", "--arch", "digits", "--repeat", "1"];
    args.extend_from_slice(extra);
    verinfer(&args)
}

#[test]
fn digits_end_to_end_json_accuracy_and_svg() {
    let dir = TempDir::new("digits");
    let (json, svg) = (dir.file("out.json"), dir.file("out.svg"));
    let o = compare_digits(&[
        "--batch",
        "1",
        "--lowering",
        "both",
        "--activations",
        "square,square_plus_x,relu_fourier,relu_lsq,relu_minimax,faster_cryptonets,quadratic:0.25,1/2,0",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("relu_minimax") && stdout.contains("prove ms"),
        "{stdout}"
    );

    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["arch"], "digits");
    assert_eq!(v["batch"], 1);
    assert!(v["machine"].as_str().unwrap().contains("cores"));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 14, "7 activations × 2 lowerings");
    for r in rows {
        let name = r["activation"].as_str().unwrap();
        let lowering = r["lowering"].as_str().unwrap();
        assert!(lowering == "structured" || lowering == "gates");
        assert!(
            r["skipped"].is_null(),
            "{name} {lowering}: {}",
            r["skipped"]
        );
        let field = r["field"].as_str().unwrap();
        for key in ["max_bits", "layers", "sumcheck_rounds", "proof_bytes"] {
            assert!(r[key].as_u64().unwrap() > 0, "{name} {lowering} {key}");
        }
        for key in ["witness_ms", "prove_ms", "verify_ms", "soundness_bits"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{name} {lowering} {key}");
        }
        assert!(r["prove_ms"].as_f64() >= r["witness_ms"].as_f64() || lowering == "gates");
        assert!(r["soundness_bits"].as_f64().unwrap() > 100.0);
        // The four presets with fractional coefficients need more than 126 bits at 8/8/8.
        let bits = r["max_bits"].as_u64().unwrap();
        let expect = if bits > 126 { "bn254" } else { "m127" };
        assert_eq!(field, expect, "{name}");
        if ["square", "square_plus_x"].contains(&name) {
            assert_eq!(field, "m127");
        }
        if ["relu_fourier", "relu_lsq", "relu_minimax"].contains(&name) {
            assert_eq!(field, "bn254");
        }

        let acc = &r["accuracy"];
        if name.starts_with("quadratic:") {
            assert!(acc.is_null(), "no trained model for {name}");
            continue;
        }
        let recorded = recorded_accuracy(name).unwrap();
        let float = acc["float"].as_f64().unwrap();
        let quantized = acc["quantized"].as_f64().unwrap();
        let proven = acc["proven"].as_f64().unwrap();
        assert!((float - recorded.float.unwrap()).abs() < 1e-12, "{name}");
        assert!(
            (quantized - recorded.quantized.unwrap()).abs() < 1e-12,
            "{name}"
        );
        // Verified outputs are the exact integer outputs: the same count of correct images.
        let recorded_correct = (recorded.quantized.unwrap() * 360.0).round() as u64;
        assert_eq!(
            acc["proven_correct"].as_u64(),
            Some(recorded_correct),
            "{name}"
        );
        assert!(
            (proven - quantized).abs() < 1e-12,
            "{name}: {proven} vs {quantized}"
        );
        assert_eq!(acc["test_images"], 360);
    }
    // Same circuit, same output: the gates rows agree on field and bits with the structured ones,
    // and generic GKR needs more sumcheck rounds.
    for pair in rows.chunks(2) {
        assert_eq!(pair[0]["lowering"], "structured");
        assert_eq!(pair[1]["lowering"], "gates");
        assert_eq!(pair[0]["field"], pair[1]["field"]);
        assert_eq!(pair[0]["accuracy"], pair[1]["accuracy"]);
        assert!(pair[1]["sumcheck_rounds"].as_u64() > pair[0]["sumcheck_rounds"].as_u64());
    }

    let text = std::fs::read_to_string(&svg).unwrap();
    check_well_formed(&text).unwrap_or_else(|e| panic!("SVG not well-formed: {e}"));
    assert!(text.contains("<svg"));
    // The chart's texts are lines of their own: panel titles, legend, one name per activation
    // and panel, no missing figure.
    let lines: Vec<&str> = text.lines().collect();
    let count = |t: &str| lines.iter().filter(|l| **l == t).count();
    for title in [
        "prover time (ms)",
        "verifier time (ms)",
        "proof size (bytes)",
    ] {
        assert_eq!(count(title), 1, "{title}");
    }
    assert_eq!(count("structured lowering"), 1);
    assert_eq!(count("gates lowering"), 1);
    assert_eq!(count("n/a"), 0, "every row has its three figures");
    for pair in rows.chunks(2) {
        let name = pair[0]["activation"].as_str().unwrap();
        let field = pair[0]["field"].as_str().unwrap();
        assert_eq!(
            count(&format!("{name} [{field}]")),
            3,
            "{name} under each panel"
        );
    }
    // One bar per row and panel in its lowering's colour, besides the legend's square.
    for (lowering, fill) in [("structured", "#3B6EA5"), ("gates", "#E07B39")] {
        let bars = lines
            .iter()
            .filter(|l| l.starts_with("<rect") && l.contains(&format!("fill=\"{fill}\"")))
            .count();
        assert_eq!(bars, 1 + 3 * 7, "{lowering} bars");
    }
}

/// `relu:…` rows: the ReLU + max-pool digits model with its ReLUs proved exactly or through the
/// composite minimax ReLU, no retraining: the float accuracy is the replaced model's (exact:
/// what PyTorch recorded), the proven accuracy equals the quantized one, and the degree and
/// checkpoint columns say what each choice costs.
#[test]
fn relu_choices_on_the_relu_digits_model() {
    let dir = TempDir::new("relu");
    let json = dir.file("relu.json");
    let o = compare_digits(&[
        "--batch",
        "2",
        "--activations",
        "relu:exact,relu:minimax:7@8",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let acc = |r: &Value, k: &str| r["accuracy"][k].as_f64().unwrap();
    let (exact, composite) = (&rows[0], &rows[1]);
    assert_eq!(exact["activation"], "relu:exact");
    assert_eq!(exact["degree"], 0);
    assert_eq!(exact["checkpoints"], 2);
    assert!((acc(exact, "float") - 352.0 / 360.0).abs() < 1e-9);
    assert_eq!(composite["degree"], 7);
    assert_eq!(composite["checkpoints"], 8);
    for r in rows {
        assert!(r["skipped"].is_null(), "{}", r["skipped"]);
        assert_eq!(acc(r, "proven"), acc(r, "quantized"));
        assert!(acc(r, "quantized") > 0.95, "{r}");
    }
}

#[test]
fn bad_flags_are_one_line_usage_errors() {
    let cases: [(&[&str], &str); 8] = [
        (&["--activations", "relu"], "square_plus_x"),
        (&["--activations", "relu:fast"], "relu choice"),
        (&["--activations", "relu:minimax:99"], "alpha"),
        (
            &["--arch", "cifar-small", "--activations", "relu:exact"],
            "no ReLU layers",
        ),
        (&["--activations", "quadratic:1,2"], "three coefficients"),
        (&["--activations", "quadratic:1,x,2"], "not a finite number"),
        (&["--batch", "0"], "--batch"),
        (&["--model", "/nonexistent/model.onnx"], "model.onnx"),
    ];
    for (args, mention) in cases {
        let mut all = vec!["compare"];
        all.extend_from_slice(args);
        let o = verinfer(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(mention), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    let o = verinfer(&["compare", "--arch", "mnist"]);
    assert_eq!(o.status.code(), Some(2));
    let o = verinfer(&["compare", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--model",
        "--arch",
        "--activations",
        "--lowering",
        "--batch",
        "--repeat",
        "--json",
        "--svg",
        "--coef-bits",
        "--field",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn presets_and_parsing() {
    let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "square",
            "square_plus_x",
            "relu_fourier",
            "relu_lsq",
            "relu_minimax",
            "faster_cryptonets"
        ]
    );
    for p in PRESETS {
        let c = preset(p.name).unwrap().coefficients();
        assert_eq!(c, vec![p.c, p.b, p.a], "{}", p.name);
        assert!(!p.source.is_empty());
    }
    let pi = std::f64::consts::PI;
    let fourier = preset("relu_fourier").unwrap().coefficients();
    assert!(
        (fourier[2] - 4.0 / (3.0 * pi)).abs() < 1e-15
            && (fourier[0] - 1.0 / (3.0 * pi)).abs() < 1e-15
    );
    let got = parse_activations("square, quadratic:1/2,-0.25,3 ,relu_lsq").unwrap();
    let got: Vec<(String, Vec<f64>)> = got
        .into_iter()
        .map(|c| (c.name, c.activation.coefficients()))
        .collect();
    assert_eq!(got[0], ("square".into(), vec![0.0, 0.0, 1.0]));
    assert_eq!(
        got[1],
        ("quadratic:0.5,-0.25,3".into(), vec![3.0, -0.25, 0.5])
    );
    assert_eq!(got[2].0, "relu_lsq");
    assert!(parse_activations("square,square").is_err());
    assert!(parse_activations("").is_err());
    assert!(parse_activations("quadratic:1,2,inf").is_err());
}

/// A small XML well-formedness check: one root element, properly nested and closed tags,
/// quoted unique attributes without `<`, valid entity and character references, comments,
/// processing instructions (the declaration) and no stray markup.
fn check_well_formed(doc: &str) -> Result<(), String> {
    let b = doc.as_bytes();
    let mut i = 0;
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let name_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':');
    let check_text = |t: &str| -> Result<(), String> {
        let mut rest = t;
        while let Some(at) = rest.find('&') {
            let end = rest[at..].find(';').ok_or("unterminated entity")?;
            let ent = &rest[at + 1..at + end];
            let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
                || ent
                    .strip_prefix("#x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                || ent
                    .strip_prefix('#')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(format!("bad entity &{ent};"));
            }
            rest = &rest[at + end + 1..];
        }
        if t.contains('>') && t.contains("]]>") {
            return Err("]]> in text".into());
        }
        Ok(())
    };
    while i < b.len() {
        if b[i] != b'<' {
            let end = doc[i..].find('<').map_or(b.len(), |k| i + k);
            let text = &doc[i..end];
            if stack.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {:?}", text.trim()));
            }
            check_text(text)?;
            i = end;
            continue;
        }
        let rest = &doc[i..];
        if rest.starts_with("<?") {
            if roots > 0 || !stack.is_empty() {
                return Err("processing instruction after the root started".into());
            }
            i += rest.find("?>").ok_or("unterminated <?")? + 2;
        } else if rest.starts_with("<!--") {
            let end = rest.find("-->").ok_or("unterminated comment")?;
            if rest[4..end].contains("--") {
                return Err("-- inside a comment".into());
            }
            i += end + 3;
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or("unterminated end tag")?;
            let name = after[..end].trim_end();
            let open = stack
                .pop()
                .ok_or(format!("</{name}> without an open tag"))?;
            if open != name {
                return Err(format!("<{open}> closed by </{name}>"));
            }
            i += 2 + end + 1;
        } else {
            // Start tag: name, attributes, optional '/', '>'.
            let mut j = i + 1;
            let start = j;
            while j < b.len() && name_char(b[j]) {
                j += 1;
            }
            if j == start || !b[start].is_ascii_alphabetic() {
                return Err(format!("bad tag name at byte {i}"));
            }
            let name = doc[start..j].to_string();
            let mut attrs: Vec<String> = Vec::new();
            loop {
                let ws = j;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                match b.get(j) {
                    None => return Err("unterminated start tag".into()),
                    Some(b'>') => {
                        j += 1;
                        if stack.is_empty() {
                            roots += 1;
                        }
                        stack.push(name.clone());
                        break;
                    }
                    Some(b'/') if b.get(j + 1) == Some(&b'>') => {
                        j += 2;
                        if stack.is_empty() {
                            roots += 1;
                        }
                        break;
                    }
                    Some(_) if j == ws => {
                        return Err(format!("<{name}>: attributes need whitespace before them"))
                    }
                    Some(_) => {
                        let a0 = j;
                        while j < b.len() && name_char(b[j]) {
                            j += 1;
                        }
                        let attr = doc[a0..j].to_string();
                        if attr.is_empty() || b.get(j) != Some(&b'=') {
                            return Err(format!("<{name}>: bad attribute at byte {a0}"));
                        }
                        j += 1;
                        let q = *b.get(j).ok_or("unterminated attribute")?;
                        if q != b'"' && q != b'\'' {
                            return Err(format!("<{name} {attr}>: unquoted value"));
                        }
                        let close = doc[j + 1..]
                            .find(q as char)
                            .ok_or("unterminated attribute value")?;
                        let value = &doc[j + 1..j + 1 + close];
                        if value.contains('<') {
                            return Err(format!("<{name} {attr}>: '<' in a value"));
                        }
                        check_text(value)?;
                        if attrs.contains(&attr) {
                            return Err(format!("<{name}>: attribute {attr} twice"));
                        }
                        attrs.push(attr);
                        j += close + 2;
                    }
                }
            }
            i = j;
        }
        if roots > 1 {
            return Err("more than one root element".into());
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> never closed"));
    }
    if roots != 1 {
        return Err("no root element".into());
    }
    Ok(())
}

#[test]
fn the_xml_check_catches_malformed_documents() {
    assert!(check_well_formed("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; u</a>\n").is_ok());
    for bad in [
        "<a><b></a></b>",
        "<a x=1/>",
        "<a x=\"1\" x=\"2\"/>",
        "<a>&nbsp;</a>",
        "<a/><b/>",
        "<a>",
        "<a x=\"<\"/>",
        "text<a/>",
    ] {
        assert!(check_well_formed(bad).is_err(), "{bad}");
    }
}
