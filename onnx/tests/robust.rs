//! External data files (and paths that try to leave the model's directory), and untrusted
//! bytes: arbitrary input, truncations and byte flips of valid models never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use proptest::prelude::*;
use verinfer_onnx::proto::*;
use verinfer_onnx::{import_bytes, import_file, ImportOptions};

/// A fresh empty directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("verinfer-onnx-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn external(name: &str, dims: &[i64], location: &str, offset: usize, length: usize) -> TensorProto {
    let kv = |k: &str, v: String| StringStringEntryProto {
        key: k.into(),
        value: v,
    };
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DT_FLOAT,
        data_location: LOCATION_EXTERNAL,
        external_data: vec![
            kv("location", location.into()),
            kv("offset", offset.to_string()),
            kv("length", length.to_string()),
        ],
        ..Default::default()
    }
}

/// Gemm(4 → 2) with W and b in a data file at `location` (W at offset 8, b right after).
fn gemm_external(location: &str, b_length: usize) -> G {
    let mut g = G::new(&[-1, 4]);
    g.init(external("W", &[2, 4], location, 8, 32))
        .init(external("b", &[2], location, 40, b_length))
        .node("Gemm", &["input", "W", "b"], "h", vec![ai("transB", 1)])
        .node("Mul", &["h", "h"], "out", vec![]);
    g
}

fn write_data(path: &Path) {
    let mut bytes = vec![0xAAu8; 8];
    bytes.extend(vals(8, 1).iter().flat_map(|x| x.to_le_bytes()));
    bytes.extend(vals(2, 2).iter().flat_map(|x| x.to_le_bytes()));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn external_data_is_read_relative_to_the_model() {
    let dir = temp_dir("ext");
    write_data(&dir.join("data/model.onnx.data"));
    let g = gemm_external("data/model.onnx.data", 8);
    let file = dir.join("model.onnx");
    std::fs::write(&file, g.bytes("out")).unwrap();
    let imp = import_file(&file, &ImportOptions::default()).unwrap();
    // The same weights inline.
    let mut inline = G::new(&[-1, 4]);
    inline
        .weight("W", &[2, 4], 1)
        .weight("b", &[2], 2)
        .node("Gemm", &["input", "W", "b"], "h", vec![ai("transB", 1)])
        .node("Mul", &["h", "h"], "out", vec![]);
    assert_eq!(imp.model.layers, inline.import("out").unwrap().model.layers);
    // The file stem names the model when nothing else does.
    assert_eq!(imp.model.name, "model");
    let by_bytes = import_bytes(&g.bytes("out"), Some(&dir), &ImportOptions::default()).unwrap();
    assert_eq!(by_bytes.model.layers, imp.model.layers);
    // Without a base directory, external data is an error.
    let e = err(import_bytes(
        &g.bytes("out"),
        None,
        &ImportOptions::default(),
    ));
    assert!(e.contains("tensor 'W'") && e.contains("external"), "{e}");
    // Wrong length, missing file, data past the end of the file.
    let e = err(import_bytes(
        &gemm_external("data/model.onnx.data", 12).bytes("out"),
        Some(&dir),
        &ImportOptions::default(),
    ));
    assert!(e.contains("length 12"), "{e}");
    let e = err(import_bytes(
        &gemm_external("data/missing.data", 8).bytes("out"),
        Some(&dir),
        &ImportOptions::default(),
    ));
    assert!(e.contains("cannot open"), "{e}");
    let mut g = G::new(&[-1, 4]);
    g.init(external("W", &[2, 4], "data/model.onnx.data", 40, 32))
        .node("Gemm", &["input", "W"], "out", vec![ai("transB", 1)]);
    let e = err(import_bytes(
        &g.bytes("out"),
        Some(&dir),
        &ImportOptions::default(),
    ));
    assert!(e.contains("holds 8 bytes"), "{e}");
    // A missing model file.
    let e = import_file(&dir.join("nope.onnx"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read") && e.contains("nope.onnx"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn external_data_cannot_escape_the_model_directory() {
    let root = temp_dir("escape");
    let dir = root.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    write_data(&root.join("secret.data"));
    let outside = root.join("secret.data");
    for loc in [
        "../secret.data",
        "sub/../../secret.data",
        outside.to_str().unwrap(),
        "..\\secret.data",
    ] {
        let e = err(import_bytes(
            &gemm_external(loc, 8).bytes("out"),
            Some(&dir),
            &ImportOptions::default(),
        ));
        assert!(e.contains("inside the model's directory"), "{loc}: {e}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, dir.join("link.data")).unwrap();
        let e = err(import_bytes(
            &gemm_external("link.data", 8).bytes("out"),
            Some(&dir),
            &ImportOptions::default(),
        ));
        assert!(e.contains("outside the model's directory"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A model exercising most of the importer: conv, BN, x²+x, avg-pool ×4, the shape-op chain
/// of `x.view(x.size(0), -1)`, Gemm, Softmax.
fn rich_model() -> Vec<u8> {
    let mut g = G::new(&[-1, 1, 6, 6]);
    g.weight("W", &[2, 1, 3, 3], 1).weight("B", &[2], 2);
    g.init(tf("gamma", &[2], &[1.0, 0.5]))
        .init(tf("beta", &[2], &[0.0, 0.1]))
        .init(tf("mean", &[2], &[0.2, -0.2]))
        .init(tf("var", &[2], &[1.0, 2.0]));
    g.weight("F", &[3, 18], 3).weight("Fb", &[3], 4);
    g.node(
        "Conv",
        &["input", "W", "B"],
        "c",
        vec![ints("pads", &[1, 1, 1, 1])],
    )
    .node(
        "BatchNormalization",
        &["c", "gamma", "beta", "mean", "var"],
        "bn",
        vec![],
    )
    .node("Mul", &["bn", "bn"], "s", vec![])
    .node("Add", &["s", "bn"], "a", vec![])
    .node(
        "AveragePool",
        &["a"],
        "p",
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    )
    .scalar("four", 4.0)
    .node("Mul", &["p", "four"], "p4", vec![])
    .view_flat("p4", "f")
    .node("Gemm", &["f", "F", "Fb"], "logits", vec![ai("transB", 1)])
    .node("Softmax", &["logits"], "out", vec![ai("axis", 1)]);
    let bytes = g.bytes("out");
    let m = import_bytes(&bytes, None, &ImportOptions::default())
        .unwrap()
        .model;
    assert_eq!(m.layers.len(), 5);
    bytes
}

fn no_panic(bytes: &[u8]) {
    match import_bytes(bytes, None, &ImportOptions::default()) {
        Ok(imp) => {
            imp.model.validate().unwrap();
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
}

#[test]
fn every_truncation_and_byte_flip_is_handled() {
    let bytes = rich_model();
    for len in 0..bytes.len() {
        no_panic(&bytes[..len]);
    }
    for i in 0..bytes.len() {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= v;
            no_panic(&b);
            b[i] = v;
            no_panic(&b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        no_panic(&bytes);
    }

    #[test]
    fn mutated_models_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..12)) {
        let mut b = rich_model();
        for (pos, val, op) in edits {
            if b.is_empty() {
                break;
            }
            let i = pos % b.len();
            match op {
                0 => b[i] = val,
                1 => b.insert(i, val),
                _ => {
                    b.remove(i);
                }
            }
        }
        no_panic(&b);
    }
}

#[test]
fn special_files_are_refused_and_sizes_capped_while_reading() {
    let dir = temp_dir("special");
    let fifo = dir.join("model.onnx.data");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    // Opening a FIFO blocks until a writer comes: run the import on a thread so that a hang
    // fails the test (the guard is reached only if the importer opens the FIFO).
    let (tx, rx) = std::sync::mpsc::channel();
    let (d, f) = (dir.clone(), fifo.clone());
    std::thread::spawn(move || {
        let model = gemm_external("model.onnx.data", 8).bytes("out");
        let ext = import_bytes(&model, Some(&d), &ImportOptions::default()).map(|_| ());
        let whole = import_file(&f, &ImportOptions::default()).map(|_| ());
        let _ = tx.send((
            ext.map_err(|e| e.to_string()),
            whole.map_err(|e| e.to_string()),
        ));
    });
    let (ext, whole) = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the importer hung on a FIFO");
    let ext = ext.unwrap_err();
    assert!(ext.contains("not a regular file"), "{ext}");
    let whole = whole.unwrap_err();
    assert!(whole.contains("not a regular file"), "{whole}");
    // Devices are refused by kind, before a byte is read.
    let e = verinfer_onnx::read_regular(Path::new("/dev/zero"), 10).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    // The cap: at most limit bytes.
    let small = dir.join("ten");
    std::fs::write(&small, [7u8; 10]).unwrap();
    assert_eq!(verinfer_onnx::read_regular(&small, 10).unwrap().len(), 10);
    let e = verinfer_onnx::read_regular(&small, 9).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge, "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
