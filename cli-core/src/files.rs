//! Reading the files a user hands the command line: models (`.onnx` or the JSON IR) and inputs
//! (JSON nested arrays or `.npy`).
//!
//! Everything here reads untrusted bytes: every failure is a [`FileError`] with a one-line
//! message that names the file, never a panic.

use crate::shaped::Wrapper;
use std::path::{Path, PathBuf};
use thiserror::Error;
use verinfer_circuits::model::Model;
use verinfer_circuits::settings::TensorNames;
use verinfer_onnx::{ImportOptions, OnnxError};

/// Largest input file accepted (the input of one proof is held in memory several times over).
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Why a model or input file could not be used.
#[derive(Debug, Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than the limit for its kind.
    #[error("{path}: file is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The model file is not a valid JSON model.
    #[error("{path}: {msg}")]
    Model {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The ONNX model could not be imported.
    #[error("{path}: {source}")]
    Onnx {
        /// The file.
        path: PathBuf,
        /// The importer's error.
        source: OnnxError,
    },
    /// An output path names an input file or another output: writing would destroy it.
    #[error("{first} and {second} name the same file {path}: refusing to overwrite it")]
    SamePath {
        /// The flag of the first file, e.g. `--input`.
        first: &'static str,
        /// The flag of the output that would overwrite it.
        second: &'static str,
        /// The path given to `second`.
        path: PathBuf,
    },
    /// The input file is malformed or does not fit the model.
    #[error("{path}: {msg}")]
    Input {
        /// The file (or `<request>` for inputs that came over the network).
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// A model read from a file, with the importer's notes (e.g. a dropped trailing Softmax).
#[derive(Clone, Debug)]
pub struct LoadedModel {
    /// The float model.
    pub model: Model,
    /// Things the user should know about the import.
    pub notes: Vec<String>,
    /// What a settings file's tensor names stand for (ONNX value names; empty for JSON).
    pub names: TensorNames,
}

/// Reads a model: ONNX if the name ends in `.onnx` (or the bytes do not look like JSON), else the
/// JSON IR. `input_range` overrides the range declared in the file.
pub fn load_model(path: &Path, input_range: Option<[f64; 2]>) -> Result<LoadedModel, FileError> {
    let bytes = read_limited(path, MAX_INPUT_BYTES)?;
    model_from_bytes(path, &bytes, input_range)
}

/// [`load_model`] of a model file's bytes: `path` names it in messages, gives an unnamed model
/// its name (the file stem), tells ONNX from JSON by its extension, and is where ONNX external
/// data files are looked for (beside it).
pub fn model_from_bytes(
    path: &Path,
    bytes: &[u8],
    input_range: Option<[f64; 2]>,
) -> Result<LoadedModel, FileError> {
    let is_onnx = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("onnx") => true,
        Some(ext) if ext.eq_ignore_ascii_case("json") => false,
        _ => bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|&b| b != b'{'),
    };
    if is_onnx {
        let dir = path.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        });
        let opts = ImportOptions { input_range };
        let imported =
            verinfer_onnx::import_bytes(bytes, dir, &opts).map_err(|source| FileError::Onnx {
                path: path.to_path_buf(),
                source,
            })?;
        let mut model = imported.model;
        if model.name.is_empty() {
            model.name = stem(path);
        }
        return Ok(LoadedModel {
            model,
            notes: imported.notes,
            names: imported.names,
        });
    }
    let model_err = |msg: String| FileError::Model {
        path: path.to_path_buf(),
        msg,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| model_err("not UTF-8 text".into()))?;
    let mut model = Model::from_json(text).map_err(|e| model_err(e.to_string()))?;
    if let Some(r) = input_range {
        model.input_range = r;
        model.validate().map_err(|e| model_err(e.to_string()))?;
    }
    if model.name.is_empty() {
        model.name = stem(path);
    }
    Ok(LoadedModel {
        model,
        notes: Vec::new(),
        names: TensorNames::default(),
    })
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads a whole regular file of at most `limit` bytes (devices, FIFOs, sockets and
/// directories are refused before they are opened; the limit holds while reading).
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    verinfer_onnx::read_regular(path, limit).map_err(|source| {
        if source.kind() == std::io::ErrorKind::FileTooLarge {
            FileError::TooLarge {
                path: path.to_path_buf(),
                limit,
            }
        } else {
            FileError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Refuses a path that exists and is not a regular file (a device such as `/dev/full`, a FIFO
/// that would block until a reader comes, a directory); a missing path is fine (it will be
/// created).
fn writable_target(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path`, creating or replacing a regular file; anything else at `path` is
/// refused before it is opened.
pub fn write_regular(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    writable_target(path)?;
    std::fs::write(path, bytes)
}

/// The identity of a path for [`check_outputs`]: the canonical path of an existing file, else
/// its canonical folder joined with its name (a file about to be created), else the path as
/// given.
fn file_identity(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Checks the outputs of a command before any work: each must be a regular file or not exist
/// yet, and none may overwrite one of the `inputs` or another output (paths compared after
/// resolving `.`, `..` and symbolic links). Entries are `(flag, path)`, e.g. `("--proof", p)`.
pub fn check_outputs(
    inputs: &[(&'static str, &Path)],
    outputs: &[(&'static str, &Path)],
) -> Result<(), FileError> {
    let mut seen: Vec<(&'static str, PathBuf)> = inputs
        .iter()
        .map(|&(flag, p)| (flag, file_identity(p)))
        .collect();
    for &(flag, path) in outputs {
        writable_target(path).map_err(|source| FileError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let id = file_identity(path);
        if let Some((first, _)) = seen.iter().find(|(_, other)| *other == id) {
            return Err(FileError::SamePath {
                first,
                second: flag,
                path: path.to_path_buf(),
            });
        }
        seen.push((flag, id));
    }
    Ok(())
}

/// An input batch: values batch-major, each item row-major in the model's input shape.
#[derive(Clone, Debug, PartialEq)]
pub struct InputBatch {
    /// Number of items.
    pub batch: usize,
    /// `batch × item` real values.
    pub values: Vec<f64>,
}

impl InputBatch {
    /// Refuses any value outside the declared input range `[lo, hi]` (or not a number). The
    /// check is on the values as given, before quantizing: a value just outside the range
    /// (say -0.001 for `[0, 1]`) would otherwise round into it and be proved as if it were
    /// inside, although the bound analysis only covers the declared range as the user stated
    /// it.
    pub fn check_range(&self, [lo, hi]: [f64; 2]) -> Result<(), String> {
        match self.values.iter().position(|x| !(lo <= *x && *x <= hi)) {
            None => Ok(()),
            Some(i) => Err(format!(
                "value {} at index {i} is outside the declared input range [{lo}, {hi}]",
                self.values[i]
            )),
        }
    }
}

/// Reads an input file for a model whose per-item input shape is `shape`: `.npy` if the file
/// starts with the NumPy magic, else JSON nested arrays (`[...]` or `{"input": [...]}`).
pub fn read_input(path: &Path, shape: &[usize]) -> Result<InputBatch, FileError> {
    let bytes = read_limited(path, MAX_INPUT_BYTES)?;
    input_from_bytes(path, &bytes, shape)
}

/// [`read_input`] of an input file's bytes; `path` names it in messages.
pub fn input_from_bytes(
    path: &Path,
    bytes: &[u8],
    shape: &[usize],
) -> Result<InputBatch, FileError> {
    parse_input(path, bytes, shape, Wrapper::Either)
}

/// Reads a file of sample inputs (`verinfer calibrate --data`): what [`read_input`] reads, or a
/// labelled sample set `{"images": [...], "labels": [...]}` such as
/// `models/digits/test_set.json`, whose labels are returned too.
pub fn read_samples(
    path: &Path,
    shape: &[usize],
) -> Result<(InputBatch, Option<Vec<usize>>), FileError> {
    let bytes = read_limited(path, MAX_INPUT_BYTES)?;
    let batch = parse_input(path, &bytes, shape, Wrapper::Samples)?;
    let labels = match first_byte(&bytes) {
        Some(b'{') => parse_labels(&bytes).map_err(|msg| FileError::Input {
            path: path.to_path_buf(),
            msg,
        })?,
        _ => None,
    };
    Ok((batch, labels))
}

/// Reads a labels file: a JSON list of class indices, or an object with a `labels` list (a
/// labelled sample set).
pub fn read_labels(path: &Path) -> Result<Vec<usize>, FileError> {
    let bytes = read_limited(path, MAX_INPUT_BYTES)?;
    let err = |msg: String| FileError::Input {
        path: path.to_path_buf(),
        msg,
    };
    let labels = match first_byte(&bytes) {
        Some(b'[') => parse_label_list(&bytes).map_err(err)?,
        Some(b'{') => parse_labels(&bytes).map_err(err)?.ok_or_else(|| {
            err("expected a list of class indices, or an object with a \"labels\" list".into())
        })?,
        _ => {
            return Err(err(
                "expected a JSON list of class indices, e.g. [3, 0, 7]".into()
            ))
        }
    };
    Ok(labels)
}

fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// The `labels` list of a JSON object, if it has one (other fields are skipped unread).
fn parse_labels(bytes: &[u8]) -> Result<Option<Vec<usize>>, String> {
    #[derive(serde::Deserialize)]
    struct Labelled {
        #[serde(default)]
        labels: Option<Vec<i64>>,
    }
    let l: Labelled = serde_json::from_slice(bytes).map_err(|e| format!("labels: {e}"))?;
    l.labels.map(class_indices).transpose()
}

fn parse_label_list(bytes: &[u8]) -> Result<Vec<usize>, String> {
    let list: Vec<i64> = serde_json::from_slice(bytes).map_err(|e| format!("labels: {e}"))?;
    class_indices(list)
}

fn class_indices(list: Vec<i64>) -> Result<Vec<usize>, String> {
    list.iter()
        .enumerate()
        .map(|(i, &v)| {
            usize::try_from(v)
                .map_err(|_| format!("label {v} at index {i} is not a class index (0, 1, ...)"))
        })
        .collect()
}

/// An input file's bytes, as `.npy` (by its magic) or JSON with the arrays where `wrapper`
/// allows them.
fn parse_input(
    path: &Path,
    bytes: &[u8],
    shape: &[usize],
    wrapper: Wrapper,
) -> Result<InputBatch, FileError> {
    let input_err = |msg: String| FileError::Input {
        path: path.to_path_buf(),
        msg,
    };
    if bytes.starts_with(NPY_MAGIC) {
        let (dims, values) = parse_npy(bytes).map_err(input_err)?;
        return fit_shape(&dims, values, shape).map_err(input_err);
    }
    crate::shaped::parse(bytes, shape, wrapper, usize::MAX).map_err(|e| input_err(e.to_string()))
}

/// Parses a JSON input (`[...]` nested arrays, or an object `{"input": [...]}`) for a model of
/// per-item shape `shape`; the batch dimension is optional. The shape is checked while
/// reading and only the numbers are stored ([`crate::shaped`]).
pub fn parse_input_json(bytes: &[u8], shape: &[usize]) -> Result<InputBatch, String> {
    crate::shaped::parse(bytes, shape, Wrapper::Either, usize::MAX).map_err(|e| e.to_string())
}

/// Accepts `dims == shape` (one item) or `dims == [batch] ++ shape`.
fn fit_shape(dims: &[usize], values: Vec<f64>, shape: &[usize]) -> Result<InputBatch, String> {
    let per: usize = shape.iter().product();
    let batch = if dims == shape {
        1
    } else if dims.len() == shape.len() + 1 && dims[1..] == *shape {
        dims[0]
    } else {
        return Err(format!(
            "input has shape {dims:?}, the model expects {shape:?} or [batch, {}]",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    if batch == 0 {
        return Err("the input batch is empty".into());
    }
    if values.len() != batch * per {
        return Err(format!("{} values for shape {dims:?}", values.len()));
    }
    Ok(InputBatch { batch, values })
}

/// The first bytes of every `.npy` file.
pub const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Parses a `.npy` file (format versions 1–3, C order, little- or big-endian float32/float64 or
/// 8–64-bit signed/unsigned integers). Returns the dims and the values as `f64` (integers must
/// be exactly representable).
pub fn parse_npy(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), String> {
    let rest = bytes
        .strip_prefix(NPY_MAGIC)
        .ok_or("not a .npy file (bad magic)")?;
    let (&major, rest) = rest.split_first().ok_or("truncated .npy header")?;
    let (_minor, rest) = rest.split_first().ok_or("truncated .npy header")?;
    let (header_len, rest) = match major {
        1 => {
            let (len, rest) = rest.split_at_checked(2).ok_or("truncated .npy header")?;
            (u16::from_le_bytes([len[0], len[1]]) as usize, rest)
        }
        2 | 3 => {
            let (len, rest) = rest.split_at_checked(4).ok_or("truncated .npy header")?;
            (
                u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize,
                rest,
            )
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let (header, data) = rest
        .split_at_checked(header_len)
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| ".npy header is not text")?;
    let descr = dict_value(header, "descr").ok_or(".npy header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran =
        dict_value(header, "fortran_order").ok_or(".npy header has no 'fortran_order'")?;
    if fortran.trim() != "False" {
        return Err("Fortran-order .npy arrays are not supported (save with C order)".into());
    }
    let shape_text = dict_value(header, "shape").ok_or(".npy header has no 'shape'")?;
    let dims = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad .npy shape {shape_text}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("the .npy shape is too large")?;
    let (order, kind, width) = parse_descr(descr)?;
    if data.len()
        != count
            .checked_mul(width)
            .ok_or("the .npy shape is too large")?
    {
        return Err(format!(
            ".npy data has {} bytes, expected {} for shape {dims:?} of {descr}",
            data.len(),
            count * width
        ));
    }
    let mut values = Vec::with_capacity(count);
    for chunk in data.chunks_exact(width) {
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(chunk);
        if order == Endian::Big {
            b[..width].reverse();
        }
        let raw = u64::from_le_bytes(b);
        let v = match (kind, width) {
            ('f', 4) => f32::from_bits(raw as u32) as f64,
            ('f', 8) => f64::from_bits(raw),
            ('i', w) => {
                let shift = 64 - 8 * w as u32;
                (((raw << shift) as i64) >> shift) as f64
            }
            ('u', _) => raw as f64,
            _ => return Err(format!("unsupported .npy dtype {descr}")),
        };
        values.push(v);
    }
    Ok((dims, values))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

/// `(byte order, kind, width)` of a NumPy dtype string such as `<f4`.
fn parse_descr(descr: &str) -> Result<(Endian, char, usize), String> {
    let unsupported =
        || format!("unsupported .npy dtype '{descr}' (use float32, float64 or an integer type)");
    let mut chars = descr.chars();
    let order = match chars.next() {
        Some('<') | Some('|') | Some('=') => Endian::Little,
        Some('>') => Endian::Big,
        _ => return Err(unsupported()),
    };
    let kind = chars.next().ok_or_else(unsupported)?;
    let width: usize = chars.as_str().parse().map_err(|_| unsupported())?;
    match (kind, width) {
        ('f', 4 | 8) | ('i' | 'u', 1 | 2 | 4 | 8) => Ok((order, kind, width)),
        _ => Err(unsupported()),
    }
}

/// The text of `key`'s value in a Python dict literal (up to the next top-level comma).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let after = &header[at + key.len() + 2..];
    let colon = after.find(':')?;
    let value = &after[colon + 1..];
    let mut depth = 0i32;
    for (i, c) in value.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(value[..i].trim()),
            _ => {}
        }
    }
    Some(value.trim())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = NPY_MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn npy_float_and_int() {
        let data: Vec<u8> = [0.5f32, -1.0, 2.0, 0.25]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let (dims, v) = parse_npy(&npy("<f4", "(2, 2)", &data)).unwrap();
        assert_eq!(dims, vec![2, 2]);
        assert_eq!(v, vec![0.5, -1.0, 2.0, 0.25]);
        let data: Vec<u8> = [-3i16, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        let (_, v) = parse_npy(&npy("<i2", "(2,)", &data)).unwrap();
        assert_eq!(v, vec![-3.0, 7.0]);
        let data: Vec<u8> = [1.5f64].iter().flat_map(|x| x.to_be_bytes()).collect();
        let (dims, v) = parse_npy(&npy(">f8", "(1,)", &data)).unwrap();
        assert_eq!((dims, v), (vec![1], vec![1.5]));
        let (dims, v) = parse_npy(&npy("|u1", "()", &[200])).unwrap();
        assert_eq!((dims, v), (vec![], vec![200.0]));
    }

    #[test]
    fn npy_errors() {
        let ok = npy("<f4", "(2,)", &[0; 8]);
        assert!(parse_npy(&ok[..ok.len() - 1]).is_err());
        assert!(parse_npy(&npy("<c8", "(1,)", &[0; 8])).is_err());
        assert!(parse_npy(&npy("<f4", "(99999999999, 99999999999, 9999999999)", &[])).is_err());
        let fortran = String::from_utf8_lossy(&ok).replace("False", "True ");
        assert!(parse_npy(fortran.as_bytes()).is_err());
    }

    #[test]
    fn json_shapes() {
        let one = parse_input_json(b"[[1, 2], [3, 4]]", &[1, 2, 2]).unwrap_err();
        assert!(one.contains("expects [1, 2, 2]"), "{one}");
        let b = parse_input_json(b"[[[1, 2], [3, 4]]]", &[1, 2, 2]).unwrap();
        assert_eq!((b.batch, b.values), (1, vec![1.0, 2.0, 3.0, 4.0]));
        let b = parse_input_json(b"{\"input\": [[1, 2], [3, 4]]}", &[2]).unwrap();
        assert_eq!((b.batch, b.values.len()), (2, 4));
        assert!(parse_input_json(b"[[1, 2], [3]]", &[2]).is_err());
        assert!(parse_input_json(b"[[1, \"x\"]]", &[2]).is_err());
        assert!(parse_input_json(b"[]", &[2]).is_err());
        assert!(parse_input_json(b"{\"input\": 3}", &[1]).is_err());
        assert!(parse_input_json(b"[1, 2", &[2]).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_npy(&bytes);
            let mut with_magic = NPY_MAGIC.to_vec();
            with_magic.extend(&bytes);
            let _ = parse_npy(&with_magic);
            let _ = parse_input_json(&bytes, &[2, 3]);
        }

        #[test]
        fn npy_truncations_never_panic(cut in 0usize..200) {
            let data: Vec<u8> = (0..24).map(|x| x as u8).collect();
            let file = npy("<f8", "(3,)", &data);
            let _ = parse_npy(&file[..cut.min(file.len())]);
        }
    }
}
