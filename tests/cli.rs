//! End-to-end tests of the `verinfer` binary: exit codes, files, messages (README contract).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

mod common;
use common::*;

/// A usage error: exit 2, one line on stderr starting with "error:", no panic.
fn assert_usage_error(o: &Output, mentions: &str) {
    let err = stderr(o);
    assert_eq!(code(o), 2, "stdout: {}\nstderr: {err}", stdout(o));
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("note:")).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error:"), "{err}");
    assert!(
        err.to_lowercase().contains(&mentions.to_lowercase()),
        "expected '{mentions}' in: {err}"
    );
}

/// `verinfer prove --model m --input input --proof proof` and `extra` flags.
fn prove(m: &Path, input: &Path, proof: &Path, extra: &[&str]) -> Output {
    with_proof("prove", m, input, proof, extra)
}

/// `verinfer verify --model m --input input --proof proof` and `extra` flags.
fn verify_cmd(m: &Path, input: &Path, proof: &Path, extra: &[&str]) -> Output {
    with_proof("verify", m, input, proof, extra)
}

fn with_proof(command: &str, m: &Path, input: &Path, proof: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        command,
        "--model",
        s(m),
        "--input",
        s(input),
        "--proof",
        s(proof),
    ];
    args.extend(extra);
    verinfer(&args)
}

/// `verinfer infer --model m --input input --output output`.
fn infer_to(m: &Path, input: &Path, output: &Path) -> Output {
    verinfer(&[
        "infer",
        "--model",
        s(m),
        "--input",
        s(input),
        "--output",
        s(output),
    ])
}

#[test]
fn prove_then_verify_and_every_rejection() {
    let d = Dir::new("roundtrip");
    let m = model("digits_square_plus_x.onnx");
    let input = d.write("x.json", digits_json(3, 0));
    let proof = d.file("x.proof");
    let out = d.file("y.json");

    let o = verinfer(&[
        "prove",
        "--model",
        s(&m),
        "--input",
        s(&input),
        "--proof",
        s(&proof),
        "--output",
        s(&out),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // stderr is not a terminal here: no progress bar, no notes for this model.
    assert_eq!(stderr(&o), "");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["shape"], serde_json::json!([3, 10]));
    assert_eq!(report["values"].as_array().unwrap().len(), 30);
    assert_eq!(report["dequantized"].as_array().unwrap().len(), 30);
    assert_eq!(report["argmax"].as_array().unwrap().len(), 3);
    assert!(report["values"][0].is_string());

    let verify = |extra: &[&str], proof: &Path, input: &Path| {
        let mut args = vec!["verify", "--input", s(input), "--proof", s(proof)];
        if !extra.contains(&"--model") {
            args.extend(["--model", s(&m)]);
        }
        args.extend(extra);
        verinfer(&args)
    };
    let o = verify(&["--output", s(&out)], &proof, &input);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("VALID"), "{}", stdout(&o));
    assert!(stdout(&o).contains("soundness"), "{}", stdout(&o));

    // `infer` computes the same output without a proof.
    let inferred = d.file("inferred.json");
    let o = infer_to(&m, &input, &inferred);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&inferred).unwrap(),
        std::fs::read_to_string(&out).unwrap()
    );

    // Flipped bytes anywhere in the proof: rejected with exit 1.
    let bytes = std::fs::read(&proof).unwrap();
    for at in [0, 5, 7, 20, 60, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        let p = d.write("bad.proof", &bad);
        let o = verify(&[], &p, &input);
        assert_eq!(code(&o), 1, "byte {at}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("REJECTED"), "{}", stdout(&o));
    }
    // A proof file that does not decode (truncated, empty, not a proof at all) is a rejected
    // proof (exit 1, the reason on stdout), as README "Exit codes" says: the proof is the
    // claim under test, not a file the user got wrong.
    for (name, bad) in [
        ("short.proof", &bytes[..bytes.len() - 3]),
        ("empty.proof", &[][..]),
        ("text.proof", &b"hello, this is not a proof"[..]),
    ] {
        let p = d.write(name, bad);
        let o = verify(&[], &p, &input);
        assert_eq!(code(&o), 1, "{name}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).starts_with("REJECTED: "),
            "{name}: {}",
            stdout(&o)
        );
        assert_eq!(stderr(&o), "", "{name}");
    }

    // Another input (other digits, same shape): rejected.
    let other = d.write("other.json", digits_json(3, 3));
    let o = verify(&[], &proof, &other);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));

    // Another model, or the same model with other quantization flags: rejected.
    let other_model = model("digits_square.onnx");
    let o = verify(&["--model", s(&other_model)], &proof, &input);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let o = verify(&["--weight-bits", "7"], &proof, &input);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let o = verify(&["--field", "bn254"], &proof, &input);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));

    // A valid proof whose output differs from the expected report: rejected.
    let mut changed = report.clone();
    let v0: i128 = changed["values"][0].as_str().unwrap().parse().unwrap();
    changed["values"][0] = serde_json::Value::String((v0 + 1).to_string());
    let wrong = d.write("wrong.json", serde_json::to_string(&changed).unwrap());
    let o = verify(&["--output", s(&wrong)], &proof, &input);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    // Every field is checked against the proof, not only the values: each edit is a
    // rejection that names the field.
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 5] = [
        ("shape", |r| r["shape"] = serde_json::json!([3, 10, 1])),
        ("scale_bits", |r| {
            r["scale_bits"] = serde_json::json!(r["scale_bits"].as_u64().unwrap() + 1)
        }),
        ("values", |r| r["values"][29] = serde_json::json!("12345")),
        ("dequantized", |r| {
            r["dequantized"][4] = serde_json::json!(r["dequantized"][4].as_f64().unwrap() + 0.5)
        }),
        ("argmax", |r| {
            r["argmax"][1] = serde_json::json!((r["argmax"][1].as_u64().unwrap() + 1) % 10)
        }),
    ];
    for (field, edit) in edits {
        let mut changed = report.clone();
        edit(&mut changed);
        let wrong = d.write("wrong.json", serde_json::to_string(&changed).unwrap());
        let o = verify(&["--output", s(&wrong)], &proof, &input);
        assert_eq!(code(&o), 1, "{field}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains(&format!("field `{field}`")),
            "{field}: {}",
            stdout(&o)
        );
    }
    // A field the proof does not establish makes the file no output report.
    let mut extra = report.clone();
    extra["confidence"] = serde_json::json!(0.99);
    let extra = d.write("extra.json", serde_json::to_string(&extra).unwrap());
    assert_usage_error(
        &verify(&["--output", s(&extra)], &proof, &input),
        "confidence",
    );
    // An expected-output file that is not a report is a usage error, not a rejection.
    let garbage = d.write("garbage.json", "{\"shape\": 3}");
    assert_usage_error(
        &verify(&["--output", s(&garbage)], &proof, &input),
        "garbage.json",
    );
}

#[test]
fn npy_input_matches_json_input() {
    let d = Dir::new("npy");
    let m = model("digits_square_plus_x.onnx");
    let json = digits_json(2, 5);
    let values: Vec<f64> = serde_json::from_str::<serde_json::Value>(&json)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|img| {
            img.as_array().unwrap()[0]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 8, 8), }".to_string();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend((header.len() as u16).to_le_bytes());
    npy.extend(header.as_bytes());
    for v in &values {
        npy.extend((*v as f32).to_le_bytes());
    }
    let a = d.write("x.npy", npy);
    let b = d.write("x.json", json);
    let (oa, ob) = (d.file("a.json"), d.file("b.json"));
    for (i, o) in [(&a, &oa), (&b, &ob)] {
        let r = infer_to(&m, i, o);
        assert_eq!(code(&r), 0, "{}", stderr(&r));
    }
    assert_eq!(
        std::fs::read_to_string(&oa).unwrap(),
        std::fs::read_to_string(&ob).unwrap()
    );
}

#[test]
fn bad_files_are_usage_errors() {
    let d = Dir::new("bad");
    let m = model("digits_square_plus_x.onnx");
    let good = d.write("x.json", digits_json(1, 0));
    let proof = d.file("p.proof");
    let prove_in = |model: &Path, input: &Path| prove(model, input, &proof, &[]);

    let bad = d.write("bad.json", "[[[1, 2,");
    assert_usage_error(&prove_in(&m, &bad), "json");
    let shape = d.write("shape.json", "[[1, 2, 3]]");
    assert_usage_error(&prove_in(&m, &shape), "shape");
    let range = d.write("range.json", digits_json(1, 0).replacen("0.", "9.", 1));
    assert_usage_error(&prove_in(&m, &range), "range");
    assert_usage_error(&prove_in(&m, &d.file("missing.json")), "missing.json");
    assert_usage_error(&prove_in(&d.file("missing.onnx"), &good), "missing.onnx");

    let onnx = std::fs::read(&m).unwrap();
    for cut in [10, onnx.len() / 3, onnx.len() - 7] {
        let t = d.write("truncated.onnx", &onnx[..cut]);
        assert_usage_error(&prove_in(&t, &good), "truncated.onnx");
    }
    let garbage = d.write("garbage.onnx", [0xffu8; 64]);
    assert_usage_error(&prove_in(&garbage, &good), "garbage.onnx");

    // An operator outside what can be proved is refused with a message that names the node.
    let mut onnx = std::fs::read(model("digits_relu.onnx")).unwrap();
    // NodeProto.op_type is field 4, a string: tag 0x22, then the length.
    let at = onnx
        .windows(6)
        .position(|w| w == b"\x22\x04Relu")
        .expect("a Relu node");
    onnx[at + 2..at + 6].copy_from_slice(b"Tanh");
    let tanh = d.write("tanh.onnx", &onnx);
    let o = prove_in(&tanh, &good);
    assert_usage_error(&o, "(Tanh)");

    // verify: a missing proof file is a usage error, not a rejection.
    let o = verinfer(&[
        "verify",
        "--model",
        s(&m),
        "--input",
        s(&good),
        "--proof",
        s(&d.file("none.proof")),
    ]);
    assert_usage_error(&o, "none.proof");
    // Bad flags.
    let o = prove(&m, &good, &proof, &["--field", "gf2"]);
    assert_eq!(code(&o), 2);
    let o = prove(&m, &good, &proof, &["--threads", "0"]);
    assert_usage_error(&o, "threads");
}

#[test]
fn inspect_and_demo_run() {
    let m = model("digits_square_plus_x.onnx");
    let o = verinfer(&["inspect", "--model", s(&m)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for word in ["digest", "MACs", "field", "proof", "conv2d", "sum_pool"] {
        assert!(out.contains(word), "missing {word}: {out}");
    }
    // The tensors a settings file names: model layers, flatten included.
    assert!(out.contains("layer:1    activation 8×8×8"), "{out}");
    assert!(out.contains("layer:6    flatten    64"), "{out}");
    let o = verinfer(&["demo", "--images", "2"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("rejected"), "{out}");
    assert!(out.contains("VALID"), "{out}");
    assert!(out.contains("soundness"), "{out}");
}

#[test]
fn help_explains_every_command() {
    for cmd in ["prove", "verify", "infer", "inspect", "demo"] {
        let o = verinfer(&[cmd, "--help"]);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).len() > 200, "{cmd}: {}", stdout(&o));
    }
}

/// Generous bound for commands that must fail at once; reached only if one hangs.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(120);

#[test]
fn special_files_are_refused_without_reading_them() {
    let d = Dir::new("special");
    let m = model("digits_square_plus_x.onnx");
    let good = d.write("x.json", digits_json(1, 0));
    let fifo = d.file("pipe");
    mkfifo(&fifo);
    let proof = d.file("p.proof");
    let o = prove(&m, &good, &proof, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let run = |args: &[&str]| verinfer_guarded(args, HANG_GUARD);
    let (m, good, proof) = (s(&m), s(&good), s(&proof));

    // Each command line with `@` where the special file goes: a FIFO would block on open until
    // a writer (reading) or a reader (writing) comes, /dev/zero never ends, /dev/full fails
    // late; all are refused before they are opened.
    let reads: [&[&str]; 4] = [
        &["inspect", "--model", "@"],
        &["infer", "--model", m, "--input", "@"],
        &["verify", "--model", m, "--input", good, "--proof", "@"],
        &[
            "verify", "--model", m, "--input", good, "--proof", proof, "--output", "@",
        ],
    ];
    let writes: [&[&str]; 2] = [
        &["prove", "--model", m, "--input", good, "--proof", "@"],
        &["infer", "--model", m, "--input", good, "--output", "@"],
    ];
    let dir = s(&d.0);
    for (lines, specials) in [
        (&reads[..], [s(&fifo), "/dev/zero", dir]),
        (&writes[..], [s(&fifo), "/dev/full", dir]),
    ] {
        for line in lines {
            for special in specials {
                let args: Vec<&str> = line
                    .iter()
                    .map(|&a| if a == "@" { special } else { a })
                    .collect();
                assert_usage_error(&run(&args), "not a regular file");
            }
        }
    }

    // An ONNX model whose external data location is a FIFO beside it.
    let ext = d.file("ext");
    std::fs::create_dir_all(&ext).unwrap();
    let onnx = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/onnx/tests/fixtures/external_data.onnx"
    );
    std::fs::copy(onnx, ext.join("model.onnx")).unwrap();
    mkfifo(&ext.join("external_data.onnx.data"));
    assert_usage_error(
        &run(&[
            "inspect",
            "--model",
            s(&ext.join("model.onnx")),
            "--input-range",
            "0,1",
        ]),
        "not a regular file",
    );
}

#[test]
fn outputs_never_overwrite_inputs_or_each_other() {
    let d = Dir::new("same");
    let m = d.write(
        "m.onnx",
        std::fs::read(model("digits_square_plus_x.onnx")).unwrap(),
    );
    let input = d.write("x.json", digits_json(1, 0));
    let before = std::fs::read(&input).unwrap();
    let proof = d.file("p.proof");
    let prove_to = |proof: &Path, output: Option<&Path>| match output {
        Some(o) => prove(&m, &input, proof, &["--output", s(o)]),
        None => prove(&m, &input, proof, &[]),
    };
    // The same file spelled differently (./, .., a symbolic link) is still the same file.
    let dotted = d.0.join(".").join("x.json");
    let up = d.0.join("sub").join("..").join("x.json");
    std::fs::create_dir_all(d.file("sub")).unwrap();
    let link = d.file("link.json");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&input, &link).unwrap();
    for same in [&input, &dotted, &up, &link] {
        assert_usage_error(&prove_to(same, None), "--input and --proof");
        assert_usage_error(&prove_to(&proof, Some(same)), "--input and --output");
    }
    assert_usage_error(&prove_to(&m, None), "--model and --proof");
    assert_usage_error(&prove_to(&proof, Some(&proof)), "--proof and --output");
    let o = infer_to(&m, &input, &m);
    assert_usage_error(&o, "--model and --output");
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the input is untouched"
    );
    assert!(!proof.exists());
    // Distinct files are fine, including an output that does not exist yet.
    let o = prove_to(&proof, Some(&d.file("y.json")));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn values_outside_the_declared_range_are_refused_before_rounding() {
    let d = Dir::new("range");
    let m = model("digits_square_plus_x.onnx");
    let with = |x: f64| {
        let mut v: serde_json::Value = serde_json::from_str(&digits_json(1, 0)).unwrap();
        v[0][0][3][4] = serde_json::json!(x);
        d.write("x.json", v.to_string())
    };
    let out = d.file("y.json");
    // The digits model declares [0, 1]; both values round into it at 8 input bits.
    for x in [-0.001, 1.000_000_000_000_000_2] {
        let input = with(x);
        let o = infer_to(&m, &input, &out);
        assert_usage_error(&o, "outside the declared input range [0, 1]");
        assert!(stderr(&o).contains(&x.to_string()), "{}", stderr(&o));
        assert_usage_error(&prove(&m, &input, &d.file("p.proof"), &[]), "input range");
        // A wider declared range admits it.
        let o = prove(&m, &input, &d.file("p.proof"), &["--input-range", "-1,2"]);
        assert_eq!(code(&o), 0, "{x}: {}", stderr(&o));
    }
    // The ends themselves are inside.
    for x in [0.0, 1.0] {
        let o = infer_to(&m, &with(x), &out);
        assert_eq!(code(&o), 0, "{x}: {}", stderr(&o));
    }
}

#[test]
fn thread_counts_are_capped() {
    let d = Dir::new("threads");
    let m = model("digits_square_plus_x.onnx");
    let input = d.write("x.json", digits_json(1, 0));
    let proof = d.file("p.proof");
    // Far past the cap (8 per core, at least 64): refused at once with the cap named, where
    // 100,000 threads used to abort after a minute on a failed stack allocation.
    let run = |args: &[&str]| verinfer_guarded(args, HANG_GUARD);
    for n in ["0", "100000"] {
        let o = run(&[
            "prove",
            "--model",
            s(&m),
            "--input",
            s(&input),
            "--proof",
            s(&proof),
            "--threads",
            n,
        ]);
        assert_usage_error(&o, "--threads must be between 1 and");
        assert_usage_error(
            &run(&["demo", "--images", "1", "--threads", n]),
            "--threads",
        );
        let o = run(&[
            "serve",
            "--model",
            s(&m),
            "--addr",
            "127.0.0.1:0",
            "--workers",
            n,
        ]);
        assert_usage_error(&o, "--workers must be between 1 and");
    }
    // 64 is always allowed, whatever the machine.
    let o = prove(&m, &input, &proof, &["--threads", "64"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn batches_over_the_inference_memory_budget_are_refused() {
    let d = Dir::new("infer-memory");
    let m = model("digits_square_plus_x.onnx");
    let run = |n: usize, budget: &str| {
        let input = d.input(&format!("x{n}.json"), n, 0);
        verinfer(&[
            "infer",
            "--model",
            s(&m),
            "--input",
            s(&input),
            "--max-memory",
            budget,
        ])
    };
    // Just above the fixed part (64 MiB base plus the weights), the digits model's inference
    // (about 18 KiB per item, unpadded) fits a few dozen items: 300 are refused naming the
    // largest batch that fits, which then runs, and one more is refused again.
    let o = run(300, "65M");
    assert_usage_error(&o, "the largest batch that fits is");
    let err = stderr(&o);
    let fits: usize = err
        .rsplit("the largest batch that fits is ")
        .next()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no batch named: {err}"));
    assert!((10..300).contains(&fits), "{err}");
    let o = run(fits, "65M");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(fits + 1, "65M");
    assert_usage_error(&o, &format!("the largest batch that fits is {fits}"));
    // The default budget (half the physical memory) admits the whole test set.
    let input = d.input("all.json", 360, 0);
    let o = verinfer(&["infer", "--model", s(&m), "--input", s(&input)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn batches_over_the_memory_budget_are_refused_before_proving() {
    let d = Dir::new("memory");
    let m = model("digits_square_plus_x.onnx");
    let proof = d.file("p.proof");
    // With a 100 MiB budget, the digits model's estimate (about 58 KiB per padded item plus a
    // 64 MiB base) fits 512 items: 600 are refused at once, naming 512, which then proves.
    let big = d.input("big.json", 600, 0);
    let o = prove(&m, &big, &proof, &["--max-memory", "100M"]);
    assert_usage_error(&o, "the largest batch that fits is 512");
    assert!(stderr(&o).contains("big.json"), "{}", stderr(&o));
    assert!(!proof.exists());
    let fits = d.input("fits.json", 512, 0);
    let o = prove(&m, &fits, &proof, &["--max-memory", "100M"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Below the fixed part nothing fits; sizes must parse.
    let o = prove(&m, &fits, &proof, &["--max-memory", "1M"]);
    assert_usage_error(&o, "the largest batch that fits is 0");
    for bad in ["lots", "0", "12X", "99999999999T"] {
        let o = prove(&m, &fits, &proof, &["--max-memory", bad]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--max-memory"), "{bad}: {}", stderr(&o));
    }
}

/// A deep JSON model (four x² activations) is refused without checkpoints and proved with one
/// after each activation: prove, verify, infer agree; the proof is format version 2; a model with
/// another checkpoint shift does not verify the proof; flipped bytes are rejected.
/// A JSON dense layer `n_in → n_out` with fixed weights in [−0.5, 0.5] varied by `seed`.
fn dense_json(n_in: usize, n_out: usize, seed: usize) -> serde_json::Value {
    let w: Vec<f64> = (0..n_in * n_out)
        .map(|i| ((i * 7 + seed * 13) % 11) as f64 / 10.0 - 0.5)
        .collect();
    let b: Vec<f64> = (0..n_out).map(|i| (i % 3) as f64 / 10.0 - 0.1).collect();
    serde_json::json!({"op": "dense", "in_features": n_in, "out_features": n_out,
                       "weight": w, "bias": b})
}

#[test]
fn checkpointed_model_proves_and_verifies() {
    let d = Dir::new("checkpoints");
    let dense = dense_json;
    let model = |checkpoints: bool, shift: u32| {
        let mut layers = vec![];
        for block in 0..4 {
            layers.push(dense(6, 6, block));
            layers.push(serde_json::json!({"op": "activation", "kind": "square"}));
            if checkpoints {
                // Back to 16 fractional bits: 2·(8 + 8) after the first x², 2·(16 + 8) later.
                let k = if block == 0 { shift } else { shift + 16 };
                layers.push(serde_json::json!({"op": "requant", "shift": k, "bits": 16}));
            }
        }
        layers.push(dense(6, 3, 9));
        serde_json::json!({"name": "deep", "input_shape": [6], "input_range": [-1, 1],
                           "layers": layers})
        .to_string()
    };
    let plain = d.write("plain.json", model(false, 0));
    let deep = d.write("deep.json", model(true, 16));
    let other = d.write("other.json", model(true, 15));
    let input = d.write(
        "x.json",
        "[[0.5, -0.25, 0.125, 1, -1, 0], [0, 0, 0, 0, 0, 0.75]]",
    );
    let proof = d.file("x.proof");
    let out = d.file("y.json");

    let o = prove(&plain, &input, &proof, &[]);
    assert_usage_error(&o, "layer");

    let o = prove(&deep, &input, &proof, &["--output", s(&out)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let bytes = std::fs::read(&proof).unwrap();
    assert_eq!(
        &bytes[4..6],
        &2u16.to_le_bytes(),
        "checkpoint proofs are version 2"
    );
    let verify_with = |m: &Path, p: &Path, extra: &[&str]| verify_cmd(m, &input, p, extra);
    let verify = |m: &Path, p: &Path| verify_with(m, p, &[]);
    let o = verify(&deep, &proof);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("VALID"), "{}", stdout(&o));
    let inferred = d.file("inferred.json");
    let o = infer_to(&deep, &input, &inferred);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&inferred).unwrap(),
        std::fs::read_to_string(&out).unwrap()
    );
    let o = verinfer(&["inspect", "--model", s(&deep)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("requant"), "{}", stdout(&o));

    // Another checkpoint shift is another circuit: the proof does not verify under it.
    let o = verify(&other, &proof);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("REJECTED"), "{}", stdout(&o));
    for at in [7, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x04;
        let p = d.write("bad.proof", &bad);
        let o = verify(&deep, &p);
        assert_eq!(code(&o), 1, "byte {at}: {}{}", stdout(&o), stderr(&o));
    }

    // The same checkpoints from a settings file on the plain model: the same circuit, so the
    // same proof verifies; settings with another shift are another circuit.
    let settings = |shift: u32| {
        let list: Vec<serde_json::Value> = (0..4)
            .map(|b| {
                let k = if b == 0 { shift } else { shift + 16 };
                serde_json::json!({"tensor": format!("layer:{}", 2 * b + 1), "shift": k,
                                   "bits": 16})
            })
            .collect();
        serde_json::json!({"format": "verinfer-settings/1", "requant": list}).to_string()
    };
    let s16 = d.write("s16.json", settings(16));
    let s15 = d.write("s15.json", settings(15));
    let with = |m: &Path, st: &Path, p: &Path| verify_with(m, p, &["--settings", s(st)]);
    let o = with(&plain, &s16, &proof);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = with(&plain, &s15, &proof);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("digest"), "{}", stdout(&o));
    let proof2 = d.file("x2.proof");
    let o = prove(&plain, &input, &proof2, &["--settings", s(&s15)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = with(&plain, &s15, &proof2);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // Flags override the settings file's keys; the settings' keys override the defaults.
    let keys = d.write(
        "keys.json",
        r#"{"format": "verinfer-settings/1", "input_bits": 7, "coef_bits": 5}"#,
    );
    let o = verinfer(&[
        "inspect",
        "--model",
        s(&deep),
        "--settings",
        s(&keys),
        "--input-bits",
        "8",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("input 8 bits, weights 8 bits (uniform), coefficients 5 bits"),
        "{}",
        stdout(&o)
    );

    // Malformed settings and checkpoints that cannot be placed: exit 2, one line naming the key.
    for (text, mentions) in [
        ("{", "not JSON"),
        (r#"{"format": "verinfer-settings/9"}"#, "format"),
        (
            r#"{"format": "verinfer-settings/1", "input_bits": "x"}"#,
            "input_bits",
        ),
        (
            r#"{"format": "verinfer-settings/1", "requant": [{"tensor": "layer:99", "shift": 1, "bits": 8}]}"#,
            "requant[0].tensor",
        ),
        (
            r#"{"format": "verinfer-settings/1", "requant": [{"tensor": "conv1", "shift": 1, "bits": 8}]}"#,
            "names no tensor",
        ),
        (
            r#"{"format": "verinfer-settings/1", "requant": [{"tensor": "layer:1", "shift": 1, "bits": 99}]}"#,
            "requant[0].bits",
        ),
    ] {
        let bad = d.write("bad-settings.json", text);
        let o = prove(&plain, &input, &proof2, &["--settings", s(&bad)]);
        assert_usage_error(&o, mentions);
    }
}

#[test]
fn settings_name_onnx_values() {
    let d = Dir::new("onnx-names");
    let m = model("digits_square_plus_x.onnx");
    let settings = |a: &str, b: &str| {
        serde_json::json!({"format": "verinfer-settings/1", "requant": [
            {"tensor": a, "shift": 24, "bits": 16}, {"tensor": b, "shift": 24, "bits": 16}]})
        .to_string()
    };
    let digest = |st: &Path| {
        let o = verinfer(&["inspect", "--model", s(&m), "--settings", s(st)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let out = stdout(&o);
        out.lines()
            .find(|l| l.starts_with("digest"))
            .unwrap()
            .to_string()
    };
    let by_index = d.write("index.json", settings("layer:1", "layer:4"));
    let by_name = d.write("names.json", settings("/Add_output_0", "/Add_1_output_0"));
    let other = d.write("other.json", settings("/Add_output_0", "/Mul_3_output_0"));
    assert_eq!(digest(&by_index), digest(&by_name));
    assert_ne!(digest(&by_name), digest(&other));

    // inspect shows which names a checkpoint can use.
    let o = verinfer(&["inspect", "--model", s(&m)]);
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.contains("layer:1") && l.contains("/Add_output_0")),
        "{}",
        stdout(&o)
    );

    // x*x inside x*x + x, the input, a name the model does not have: exit 2, one line each.
    let input = d.write("x.json", "[[0.5]]");
    for (name, says) in [
        ("/Mul_output_0", "name '/Add_output_0' instead"),
        ("input", "is the model input"),
        ("conv9", "names no tensor of the model"),
    ] {
        let bad = d.write("bad.json", settings(name, "layer:4"));
        let o = verinfer(&[
            "infer",
            "--model",
            s(&m),
            "--input",
            s(&input),
            "--settings",
            s(&bad),
        ]);
        assert_usage_error(&o, says);
    }
}

#[test]
fn demo_proves_lenet5_with_checkpoints() {
    let o = verinfer(&["demo", "--model", "lenet5", "--images", "2"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("lenet5") && out.contains("32×32"), "{out}");
    assert!(out.contains("every proof VALID"), "{out}");
    assert!(out.contains("rejected"), "{out}");
    let o = verinfer(&["demo", "--model", "resnet9000"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// The correct predictions and the total of a "(k/n)" figure after `label` in a line of `out`.
fn counted(out: &str, line: &str, label: &str) -> (usize, usize) {
    let l = out
        .lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no {line} line in: {out}"));
    let rest = &l[l.find(label).unwrap_or_else(|| panic!("{label} in {l}")) + label.len()..];
    let figure = &rest[rest.find('(').unwrap() + 1..rest.find(')').unwrap()];
    let (k, n) = figure.split_once('/').unwrap();
    (k.parse().unwrap(), n.parse().unwrap())
}

/// `verinfer calibrate --model m --data data --settings out` and `extra` flags.
fn calibrate(m: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "calibrate",
        "--model",
        s(m),
        "--data",
        s(data),
        "--settings",
        s(out),
    ];
    args.extend(extra);
    verinfer(&args)
}

/// A JSON file, parsed.
fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `verinfer calibrate` on the digits x²+x model with its held-out test set (labels from the
/// file): the settings parse and name ONNX values, prove and verify accept them, the quantized
/// accuracy it prints is what `verinfer infer` gives with them, within a point of the float
/// one; a model whose segments overflow without more checkpoints gets them on dense outputs;
/// bad inputs are one-line usage errors.
#[test]
fn calibrate_writes_settings_that_prove_and_keep_accuracy() {
    let d = Dir::new("calibrate");
    let m = model("digits_square_plus_x.onnx");
    let data = model("test_set.json");
    let settings = d.file("s.json");
    let o = calibrate(&m, &data, &settings, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let written = json_file(&settings);
    assert_eq!(written["format"], "verinfer-settings/1");
    assert_eq!(written["input_bits"], 8);
    assert_eq!(written["input_range"], serde_json::json!([0.0, 1.0]));
    let requant = written["requant"].as_array().unwrap();
    let tensors: Vec<&str> = requant
        .iter()
        .map(|r| r["tensor"].as_str().unwrap())
        .collect();
    assert_eq!(tensors, ["/Add_output_0", "/Add_1_output_0"], "{out}");
    assert!(requant.iter().all(|r| r["bits"] == 16), "{written}");
    assert!(
        out.contains("layer:1") && out.contains("/Add_output_0"),
        "{out}"
    );

    // Quantized accuracy as `infer --settings` gives it on the same images.
    let (float, n) = counted(&out, "accuracy", "float");
    let (quantized, n2) = counted(&out, "accuracy", "quantized");
    assert_eq!((n, n2), (360, 360));
    let images = d.input("images.json", 360, 0);
    let report = d.file("y.json");
    let o = verinfer(&[
        "infer",
        "--model",
        s(&m),
        "--input",
        s(&images),
        "--output",
        s(&report),
        "--settings",
        s(&settings),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = json_file(&report);
    let test = json_file(&data);
    let correct = report["argmax"]
        .as_array()
        .unwrap()
        .iter()
        .zip(test["labels"].as_array().unwrap())
        .filter(|(p, l)| p == l)
        .count();
    assert_eq!(correct, quantized, "{out}");
    assert!(
        (float as f64 - quantized as f64).abs() * 100.0 / 360.0 <= 1.0,
        "float {float}, quantized {quantized}: {out}"
    );

    // Prove and verify with the written settings.
    let few = d.input("few.json", 8, 0);
    let proof = d.file("few.proof");
    let o = prove(&m, &few, &proof, &["--settings", s(&settings)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = verinfer(&[
        "verify",
        "--model",
        s(&m),
        "--input",
        s(&few),
        "--proof",
        s(&proof),
        "--settings",
        s(&settings),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("VALID"), "{}", stdout(&o));

    // Fewer bits keep fewer fractional bits: a smaller shift is not what 16 bits chose.
    let s12 = d.file("s12.json");
    let o = calibrate(&m, &data, &s12, &["--bits", "12"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let w12 = json_file(&s12);
    assert_eq!(
        w12["requant"][0]["shift"].as_u64().unwrap(),
        requant[0]["shift"].as_u64().unwrap() + 4
    );

    // Eight dense layers before each x²: segments of about 170 bits without more checkpoints.
    let dense = |seed: usize, n_out: usize| {
        let w: Vec<f64> = (0..6 * n_out)
            .map(|i| ((i * 7 + seed * 13) % 11) as f64 / 10.0 - 0.5)
            .collect();
        serde_json::json!({"op": "dense", "in_features": 6, "out_features": n_out, "weight": w})
    };
    let mut layers = vec![];
    for block in 0..2 {
        for k in 0..8 {
            layers.push(dense(block * 8 + k, 6));
        }
        layers.push(serde_json::json!({"op": "activation", "kind": "square"}));
    }
    layers.push(dense(99, 3));
    let chain = d.write(
        "chain.json",
        serde_json::json!({"name": "chain", "input_shape": [6], "layers": layers}).to_string(),
    );
    let samples = d.write(
        "samples.json",
        "[[0.5, -0.25, 0.125, 1, -1, 0], [0, 0, 0, 0, 0, 0.75], [-0.5, 0.5, 0.3, 0.1, 0.9, -0.9]]",
    );
    // Checkpoints after the activations alone leave the segments too wide to requantize.
    let acts_only = d.write(
        "acts-only.json",
        r#"{"format": "verinfer-settings/1", "requant": [
            {"tensor": "layer:8", "shift": 0, "bits": 16},
            {"tensor": "layer:17", "shift": 0, "bits": 16}]}"#,
    );
    let infer_chain = |settings: &Path| {
        verinfer(&[
            "infer",
            "--model",
            s(&chain),
            "--input",
            s(&samples),
            "--settings",
            s(settings),
        ])
    };
    let o = infer_chain(&acts_only);
    assert_usage_error(&o, "place a requantization checkpoint earlier");
    let cs = d.file("chain-settings.json");
    let o = calibrate(&chain, &samples, &cs, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("2 on linear outputs where a segment overflowed (layer:7, layer:16)"),
        "{}",
        stdout(&o)
    );
    let o = infer_chain(&cs);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // Bad inputs: exit 2, one line.
    let out_s = d.file("bad-s.json");
    let one = d.input("one.json", 1, 0);
    let wide = d.write("wide.json", "[[1, 2, 3]]");
    let outside = d.write("outside.json", digits_json(1, 0).replace("0.0,", "2.0,"));
    let two_labels = d.write("two.json", "[1, 2]");
    let big_label = d.write("big.json", "[12]");
    let not_labels = d.write("not-labels.json", "{\"x\": 1}");
    let mut nan = b"\x93NUMPY\x01\x00".to_vec();
    let mut header =
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 8, 8), }".to_string();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    nan.extend((header.len() as u16).to_le_bytes());
    nan.extend(header.as_bytes());
    for i in 0..64 {
        nan.extend(if i == 5 { f64::NAN } else { 0.5 }.to_le_bytes());
    }
    let nan = d.write("nan.npy", nan);
    let missing = d.file("missing.json");
    let labels = |p: &Path| ["--labels", s(p)].map(str::to_string);
    for (data, out, extra, mentions) in [
        (&data, &out_s, vec!["--bits", "63"], "--bits 63"),
        (&data, &out_s, vec!["--bits", "1"], "--bits 1"),
        (&data, &out_s, vec!["--headroom", "15"], "--headroom 15"),
        (&wide, &out_s, vec![], "expects [1, 8, 8]"),
        (&nan, &out_s, vec![], "not a finite number"),
        (&missing, &out_s, vec![], "cannot read"),
        (&outside, &out_s, vec![], "outside the declared input range"),
        (
            &data,
            &m,
            vec![],
            "--model and --settings name the same file",
        ),
        (
            &data,
            &data,
            vec![],
            "--data and --settings name the same file",
        ),
    ] {
        assert_usage_error(&calibrate(&m, data, out, &extra), mentions);
    }
    for (data, l, mentions) in [
        (&data, &two_labels, "2 labels for 360 samples"),
        (
            &one,
            &big_label,
            "label 12 at index 0 is not one of the model's 10 classes",
        ),
        (&one, &not_labels, "\"labels\" list"),
    ] {
        let extra = labels(l);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        assert_usage_error(&calibrate(&m, data, &out_s, &extra), mentions);
    }
    assert!(!out_s.exists(), "no settings are written on a usage error");
    let o = verinfer(&["calibrate", "--help"]);
    assert_eq!(code(&o), 0);
    for flag in [
        "--data",
        "--labels",
        "--bits",
        "--headroom",
        "--settings",
        "--input-bits",
    ] {
        assert!(stdout(&o).contains(flag), "{flag}: {}", stdout(&o));
    }
    assert!(stdout(&o).contains("R·2^f ≤ 2^(B−1−h)"), "{}", stdout(&o));
}

#[test]
fn settings_for_another_model_are_refused() {
    let d = Dir::new("other-model");
    let m = model("digits_square_plus_x.onnx");
    let settings = d.write(
        "s.json",
        r#"{"format": "verinfer-settings/1", "model": "lenet5", "requant": [{"tensor": "layer:1", "shift": 24, "bits": 16}]}"#,
    );
    let o = verinfer(&["inspect", "--model", s(&m), "--settings", s(&settings)]);
    assert_usage_error(
        &o,
        "settings: model: the file was written for the model \"lenet5\"",
    );
}

/// A model with ReLU and LeakyReLU layers (and a degree-5 polynomial) is proved and verified
/// under each `--relu` choice; a proof made under one choice does not verify under another; a
/// settings file can make the choice; bad choices are one-line usage errors.
#[test]
fn relu_models_prove_under_each_choice() {
    let d = Dir::new("relu");
    let dense = dense_json;
    let model = serde_json::json!({"name": "relu-net", "input_shape": [6], "input_range": [-1, 1],
        "layers": [
            dense(6, 8, 1), {"op": "relu"},
            dense(8, 8, 2), {"op": "relu", "slope_shift": 3},
            dense(8, 4, 3),
            {"op": "activation", "kind": "polynomial", "coefficients": [0, 1, 0, -0.25, 0, 0.0625]},
            dense(4, 3, 4)]})
    .to_string();
    let m = d.write("relu.json", model);
    let input = d.write(
        "x.json",
        "[[0.5, -0.25, 0.125, 1, -1, 0], [0, 0.5, -0.5, 0, 0, 0.75]]",
    );
    let verify = |p: &Path, extra: &[&str]| verify_cmd(&m, &input, p, extra);
    // Exact needs no settings (the compiler inserts the ReLUs' checkpoints).
    let exact = d.file("exact.proof");
    let o = prove(&m, &input, &exact, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = verify(&exact, &["--relu", "exact"]);
    assert!(
        code(&o) == 0 && stdout(&o).contains("VALID"),
        "{}",
        stderr(&o)
    );
    // Approximations raise the scale with their degree: calibrate places the checkpoints for
    // the chosen one and records the choice, which prove and verify then read (12-bit
    // checkpoints keep a degree-8 activation's output within the 126 bits a checkpoint reads).
    let choices = [
        "poly:square_plus_x",
        "poly:chebyshev:8@4",
        "poly:lsq:4@2",
        "minimax:7@4",
    ];
    let mut runs = vec![];
    for (k, choice) in choices.iter().enumerate() {
        let settings = d.file(&format!("s{k}.json"));
        let o = calibrate(&m, &input, &settings, &["--relu", choice, "--bits", "12"]);
        assert_eq!(code(&o), 0, "{choice}: {}{}", stdout(&o), stderr(&o));
        assert_eq!(json_file(&settings)["relu"], *choice);
        let proof = d.file(&format!("p{k}.proof"));
        let o = prove(&m, &input, &proof, &["--settings", s(&settings)]);
        assert_eq!(code(&o), 0, "{choice}: {}{}", stdout(&o), stderr(&o));
        let o = verify(&proof, &["--settings", s(&settings)]);
        assert!(
            code(&o) == 0 && stdout(&o).contains("VALID"),
            "{choice}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        // The flag overrides the file: exact is another circuit.
        let o = verify(&proof, &["--settings", s(&settings), "--relu", "exact"]);
        assert_ne!(code(&o), 0, "{choice} verified as exact");
        runs.push((settings, proof));
    }
    // A proof made under one choice does not verify under another's settings.
    for k in 0..runs.len() {
        let (other, _) = &runs[(k + 1) % runs.len()];
        let o = verify(&runs[k].1, &["--settings", s(other)]);
        assert_ne!(code(&o), 0, "{} verified under another choice", choices[k]);
    }
    let o = verify(&runs[0].1, &[]);
    assert_ne!(code(&o), 0, "an approximation verified as exact");
    let o = verinfer(&["inspect", "--model", s(&m)]);
    assert!(stdout(&o).contains("relu"), "{}", stdout(&o));
    for bad in [
        "fast",
        "poly:nope",
        "poly:chebyshev:40",
        "poly:lsq:4@-1",
        "poly:lsq:4@x",
    ] {
        // clap's own format for a bad flag value: the error line, then a pointer to --help.
        let o = prove(&m, &input, &d.file("bad.proof"), &["--relu", bad]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        let first = stderr(&o).lines().next().unwrap_or_default().to_string();
        assert!(
            first.starts_with("error:") && first.contains("relu"),
            "{bad}: {first}"
        );
    }
}
