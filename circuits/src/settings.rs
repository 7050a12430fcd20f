//! The settings file (README "Settings"): the quantization parameters, field, input range and
//! requantization checkpoints of one model, in JSON:
//!
//! ```json
//! {"format": "verinfer-settings/1", "input_bits": 8, "weight_bits": 8, "coef_bits": 8,
//!  "weight_scale": "uniform", "field": "auto", "input_range": [-1, 1],
//!  "requant": [{"tensor": "layer:1", "shift": 16, "bits": 16}]}
//! ```
//!
//! Every key but `format` is optional (absent: the command line's flag, else its default).
//! Parsing is strict and total: an unknown key, a wrong type or a value out of range is a
//! [`SettingsError`] whose one-line message names the key, never a panic. Everything a settings
//! file changes ends up in the compiled circuit (its parameters, field, input range and
//! checkpoint layers), so it is bound by the circuit digest: a proof made under one settings
//! file does not verify under another that changes anything.

use std::collections::BTreeMap;

use crate::circuit::{FieldChoice, WeightScale};
use crate::model::{Layer, Model, Requant};
use crate::ops::{MAX_REQUANT_BITS, MIN_REQUANT_BITS};
use serde_json::{Map, Value};
use thiserror::Error;

/// The `format` string of this version of the settings file.
pub const SETTINGS_FORMAT: &str = "verinfer-settings/1";

/// Largest number of fractional bits a settings file may ask for (inputs, weights, coefficients).
pub const MAX_SETTINGS_BITS: u32 = 64;

/// A malformed settings file or a checkpoint that cannot be placed. One line each.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// Not JSON at all.
    #[error("settings: not JSON: {0}")]
    Json(String),
    /// A key whose value is wrong (type, range, unknown key, missing key).
    #[error("settings: {key}: {reason}")]
    Key {
        /// The key, e.g. `input_bits` or `requant[2].bits`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint names a tensor the model does not have, or one already checkpointed.
    #[error("settings: {key}: {reason}")]
    Placement {
        /// The key, e.g. `requant[0].tensor`.
        key: String,
        /// Why it cannot be placed.
        reason: String,
    },
}

/// One requantization checkpoint of a settings file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequantAt {
    /// The tensor it applies to: `layer:N`, the output of model layer `N` (0-based), or a name
    /// the model's [`TensorNames`] know (an ONNX value name).
    pub tensor: String,
    /// Fractional bits dropped.
    pub shift: u32,
    /// Signed bits kept.
    pub bits: u32,
}

/// What a tensor name of a settings file other than `layer:N` stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorName {
    /// The output of model layer `N` (0-based, before any checkpoint is placed).
    Layer(usize),
    /// A value no checkpoint can go on (e.g. the middle of `x*x + x`, which becomes one layer),
    /// and why, as the end of a sentence that starts with the name.
    Refused(String),
}

/// The names (besides `layer:N`) a model's tensors go by, e.g. the ONNX value names the
/// importer saw. Empty for a model read from the JSON IR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TensorNames(BTreeMap<String, TensorName>);

impl TensorNames {
    /// Records what `name` stands for; a later record of the same name replaces an earlier one.
    pub fn insert(&mut self, name: impl Into<String>, what: TensorName) {
        self.0.insert(name.into(), what);
    }

    /// What `name` stands for, if the model knows it.
    pub fn get(&self, name: &str) -> Option<&TensorName> {
        self.0.get(name)
    }

    /// The names of the output of layer `n`, in sorted order.
    pub fn of_layer(&self, n: usize) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(_, t)| **t == TensorName::Layer(n))
            .map(|(k, _)| k.as_str())
    }

    /// Every name with what it stands for, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TensorName)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether no name is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed settings file; `None` means "not set here".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// The name of the model the file was written for (`calibrate` records it); a model of
    /// another name is refused ([`Settings::check_model`]).
    pub model: Option<String>,
    /// Fractional bits of the input.
    pub input_bits: Option<u32>,
    /// Fractional bits (or signed width, per-layer) of weights.
    pub weight_bits: Option<u32>,
    /// Fractional bits of non-integer activation coefficients.
    pub coef_bits: Option<u32>,
    /// How linear layers choose their weight scale.
    pub weight_scale: Option<WeightScale>,
    /// The field to compile for.
    pub field: Option<FieldChoice>,
    /// The declared input range.
    pub input_range: Option<[f64; 2]>,
    /// How ReLU layers are proved (`exact`, `poly:NAME[@BOUND]`).
    pub relu: Option<crate::relu::ReluChoice>,
    /// Checkpoints, in file order.
    pub requant: Vec<RequantAt>,
}

const KEYS: [&str; 10] = [
    "format",
    "model",
    "input_bits",
    "weight_bits",
    "coef_bits",
    "weight_scale",
    "field",
    "input_range",
    "relu",
    "requant",
];

fn key_err(key: impl Into<String>, reason: impl Into<String>) -> SettingsError {
    SettingsError::Key {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A short rendering of a JSON value for messages (long values cut).
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn uint(v: &Value, key: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, SettingsError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            key_err(
                key,
                format!(
                    "expected an integer in {}..={}, got {}",
                    range.start(),
                    range.end(),
                    show(v)
                ),
            )
        })
}

fn string<'a>(v: &'a Value, key: &str) -> Result<&'a str, SettingsError> {
    v.as_str()
        .ok_or_else(|| key_err(key, format!("expected a string, got {}", show(v))))
}

impl Settings {
    /// Parses a settings file (see the module docs).
    pub fn from_json(text: &str) -> Result<Self, SettingsError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| SettingsError::Json(e.to_string()))?;
        let Value::Object(obj) = v else {
            return Err(key_err("(top level)", "expected a JSON object"));
        };
        Self::from_object(&obj)
    }

    fn from_object(obj: &Map<String, Value>) -> Result<Self, SettingsError> {
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(key_err(
                k.as_str(),
                format!("unknown key (expected one of {})", KEYS.join(", ")),
            ));
        }
        match obj.get("format") {
            None => {
                return Err(key_err(
                    "format",
                    format!("missing (\"{SETTINGS_FORMAT}\")"),
                ))
            }
            Some(Value::String(f)) if f == SETTINGS_FORMAT => {}
            Some(other) => {
                return Err(key_err(
                    "format",
                    format!("expected \"{SETTINGS_FORMAT}\", got {}", show(other)),
                ))
            }
        }
        let bits = |key: &str| -> Result<Option<u32>, SettingsError> {
            obj.get(key)
                .map(|v| uint(v, key, 0..=MAX_SETTINGS_BITS))
                .transpose()
        };
        let mut s = Settings {
            model: obj
                .get("model")
                .map(|v| string(v, "model").map(str::to_string))
                .transpose()?,
            input_bits: bits("input_bits")?,
            weight_bits: bits("weight_bits")?,
            coef_bits: bits("coef_bits")?,
            ..Settings::default()
        };
        if let Some(v) = obj.get("weight_scale") {
            s.weight_scale = Some(
                string(v, "weight_scale")?
                    .parse()
                    .map_err(|e: String| key_err("weight_scale", e))?,
            );
        }
        if let Some(v) = obj.get("relu") {
            s.relu = Some(
                string(v, "relu")?
                    .parse()
                    .map_err(|e: crate::approx::ApproxError| key_err("relu", e.to_string()))?,
            );
        }
        if let Some(v) = obj.get("field") {
            s.field = Some(
                string(v, "field")?
                    .parse()
                    .map_err(|e: String| key_err("field", e))?,
            );
        }
        if let Some(v) = obj.get("input_range") {
            let bad = || {
                key_err(
                    "input_range",
                    format!("expected [lo, hi] with finite lo ≤ hi, got {}", show(v)),
                )
            };
            let arr = v.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
            let (lo, hi) = (
                arr[0].as_f64().ok_or_else(bad)?,
                arr[1].as_f64().ok_or_else(bad)?,
            );
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(bad());
            }
            s.input_range = Some([lo, hi]);
        }
        if let Some(v) = obj.get("requant") {
            let list = v
                .as_array()
                .ok_or_else(|| key_err("requant", format!("expected a list, got {}", show(v))))?;
            for (i, entry) in list.iter().enumerate() {
                s.requant.push(requant_entry(entry, i)?);
            }
        }
        Ok(s)
    }

    /// The settings file of these settings: `format` first, then every key that is set, one
    /// checkpoint a line (what `verinfer calibrate` writes; [`Settings::from_json`] reads it
    /// back to the same value).
    pub fn to_json(&self) -> String {
        let mut keys = vec![format!("\"format\": {}", text(SETTINGS_FORMAT))];
        let mut key = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                keys.push(format!("\"{name}\": {v}"));
            }
        };
        key("model", self.model.as_ref().map(text));
        key("input_bits", self.input_bits.map(|v| v.to_string()));
        key("weight_bits", self.weight_bits.map(|v| v.to_string()));
        key("coef_bits", self.coef_bits.map(|v| v.to_string()));
        key("weight_scale", self.weight_scale.map(|v| text(&v)));
        key("field", self.field.map(|v| text(&v)));
        key("relu", self.relu.as_ref().map(|v| text(&v.to_string())));
        key(
            "input_range",
            self.input_range
                .map(|[lo, hi]| format!("[{}, {}]", text(&lo), text(&hi))),
        );
        if !self.requant.is_empty() {
            let list: Vec<String> = self
                .requant
                .iter()
                .map(|r| {
                    format!(
                        "{{\"tensor\": {}, \"shift\": {}, \"bits\": {}}}",
                        text(&r.tensor),
                        r.shift,
                        r.bits
                    )
                })
                .collect();
            keys.push(format!("\"requant\": [\n  {}\n]", list.join(",\n  ")));
        }
        format!("{{{}}}\n", keys.join(",\n "))
    }

    /// Refuses a file written for another model (its `model` key names another one).
    pub fn check_model(&self, name: &str) -> Result<(), SettingsError> {
        match &self.model {
            Some(m) if m != name => Err(key_err(
                "model",
                format!("the file was written for the model {m:?}, not {name:?}"),
            )),
            _ => Ok(()),
        }
    }

    /// Inserts the checkpoints into `model`: a `requant` layer right after the layer that
    /// produces each named tensor (`layer:N`, or a name `names` knows). Refuses a tensor the
    /// model does not have, one `names` refuses, and a tensor named twice (under any names).
    pub fn place_checkpoints(
        &self,
        model: &mut Model,
        names: &TensorNames,
    ) -> Result<(), SettingsError> {
        self.place_checkpoints_in(model, names, None)
    }

    /// [`Self::place_checkpoints`] on a model whose layers were rewritten after `names` were
    /// recorded (the `--relu` replacements): `origin[k]` is the layer of the model as read that
    /// layer `k` stands for, and a tensor named for old layer `n` is the output of the last layer
    /// standing for `n`.
    pub fn place_checkpoints_in(
        &self,
        model: &mut Model,
        names: &TensorNames,
        origin: Option<&[usize]>,
    ) -> Result<(), SettingsError> {
        let mut at: Vec<(usize, Requant, usize)> = Vec::with_capacity(self.requant.len());
        for (i, r) in self.requant.iter().enumerate() {
            let key = format!("requant[{i}].tensor");
            let placement = |reason: String| SettingsError::Placement {
                key: key.clone(),
                reason,
            };
            let layer = match (tensor_layer(&r.tensor), names.get(&r.tensor)) {
                (Some(n), _) => n,
                (None, Some(TensorName::Layer(n))) => *n,
                (None, Some(TensorName::Refused(why))) => {
                    return Err(placement(format!("{:?} {why}", r.tensor)))
                }
                (None, None) if names.is_empty() => {
                    return Err(placement(format!(
                        "{:?} names no tensor: name the output of model layer N as \"layer:N\" \
                         (`verinfer inspect` lists them)",
                        r.tensor
                    )))
                }
                (None, None) => {
                    return Err(placement(format!(
                        "{:?} names no tensor of the model: use an ONNX value name or \
                         \"layer:N\" (`verinfer inspect` lists them)",
                        r.tensor
                    )))
                }
            };
            // Layers of the model as read (before any rewrite).
            let n = origin.map_or(model.layers.len(), |o| o.last().map_or(0, |&l| l + 1));
            if layer >= n {
                return Err(SettingsError::Placement {
                    key,
                    reason: format!(
                        "{:?} names no tensor: the model has {n} layers (layer:0..layer:{})",
                        r.tensor,
                        n.saturating_sub(1)
                    ),
                });
            }
            let layer = origin
                .and_then(|o| o.iter().rposition(|&l| l == layer))
                .unwrap_or(layer);
            if let Some((_, _, j)) = at.iter().find(|(l, _, _)| *l == layer) {
                let also = if self.requant[*j].tensor == r.tensor {
                    String::new()
                } else {
                    format!(" as {:?}", self.requant[*j].tensor)
                };
                return Err(SettingsError::Placement {
                    key,
                    reason: format!(
                        "{:?} already has a checkpoint (requant[{j}]{also})",
                        r.tensor
                    ),
                });
            }
            if matches!(model.layers[layer], Layer::Requant(_)) {
                return Err(SettingsError::Placement {
                    key,
                    reason: format!("{:?} is itself a checkpoint", r.tensor),
                });
            }
            at.push((
                layer,
                Requant {
                    shift: r.shift,
                    bits: r.bits,
                },
                i,
            ));
        }
        // Later layers first, so earlier indices stay valid.
        at.sort_by_key(|a| std::cmp::Reverse(a.0));
        for (layer, r, _) in at {
            model.insert_after(layer, Layer::Requant(r));
        }
        Ok(())
    }
}

/// `v` as JSON text (strings quoted and escaped, enums by their file spelling).
fn text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn requant_entry(entry: &Value, i: usize) -> Result<RequantAt, SettingsError> {
    let key = |k: &str| format!("requant[{i}].{k}");
    let Value::Object(obj) = entry else {
        return Err(key_err(
            format!("requant[{i}]"),
            format!(
                "expected {{\"tensor\", \"shift\", \"bits\"}}, got {}",
                show(entry)
            ),
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["tensor", "shift", "bits"].contains(&k.as_str()))
    {
        return Err(key_err(
            key(k),
            "unknown key (expected tensor, shift, bits)",
        ));
    }
    let get = |k: &str| obj.get(k).ok_or_else(|| key_err(key(k), "missing"));
    Ok(RequantAt {
        tensor: string(get("tensor")?, &key("tensor"))?.to_string(),
        shift: uint(get("shift")?, &key("shift"), 0..=255)?,
        bits: uint(
            get("bits")?,
            &key("bits"),
            MIN_REQUANT_BITS..=MAX_REQUANT_BITS,
        )?,
    })
}

/// `layer:N` → `N`.
fn tensor_layer(name: &str) -> Option<usize> {
    let n = name.strip_prefix("layer:")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Activation;

    fn model(n: usize) -> Model {
        Model {
            name: String::new(),
            input_shape: vec![2],
            input_range: [-1.0, 1.0],
            layers: (0..n)
                .map(|_| Layer::Activation(Activation::Square))
                .collect(),
        }
    }

    #[test]
    fn parses_every_key() {
        let s = Settings::from_json(
            r#"{"format": "verinfer-settings/1", "input_bits": 6, "weight_bits": 7,
                "coef_bits": 5, "weight_scale": "per-layer", "field": "bn254",
                "input_range": [0, 1], "requant": [{"tensor": "layer:1", "shift": 3, "bits": 9}]}"#,
        )
        .unwrap();
        assert_eq!(s.input_bits, Some(6));
        assert_eq!(s.weight_bits, Some(7));
        assert_eq!(s.coef_bits, Some(5));
        assert_eq!(s.weight_scale, Some(WeightScale::PerLayer));
        assert_eq!(s.field, Some(FieldChoice::Bn254));
        assert_eq!(s.input_range, Some([0.0, 1.0]));
        assert_eq!(
            s.requant,
            vec![RequantAt {
                tensor: "layer:1".into(),
                shift: 3,
                bits: 9
            }]
        );
        let only = Settings::from_json(r#"{"format": "verinfer-settings/1"}"#).unwrap();
        assert_eq!(only, Settings::default());
        // A file written for one model refuses another; a file naming none takes any.
        let named =
            Settings::from_json(r#"{"format": "verinfer-settings/1", "model": "lenet5"}"#).unwrap();
        assert_eq!(named.model.as_deref(), Some("lenet5"));
        assert!(named.check_model("lenet5").is_ok());
        let e = named.check_model("resnet").unwrap_err().to_string();
        assert!(
            e.starts_with("settings: model: the file was written for"),
            "{e}"
        );
        assert!(only.check_model("resnet").is_ok());
        assert_eq!(Settings::from_json(&named.to_json()).unwrap(), named);
    }

    #[test]
    fn written_settings_read_back() {
        let s = Settings {
            model: Some("digits \"x\"".into()),
            input_bits: Some(8),
            weight_bits: Some(7),
            coef_bits: Some(6),
            weight_scale: Some(WeightScale::PerLayer),
            field: Some(FieldChoice::Auto),
            input_range: Some([-0.5, 1.0]),
            relu: Some("poly:chebyshev:8@2.5".parse().unwrap()),
            requant: vec![
                RequantAt {
                    tensor: "/Add_output_0".into(),
                    shift: 24,
                    bits: 16,
                },
                RequantAt {
                    tensor: "odd \"name\"\n".into(),
                    shift: 0,
                    bits: 2,
                },
            ],
        };
        let text = s.to_json();
        assert!(
            text.starts_with("{\"format\": \"verinfer-settings/1\",\n"),
            "{text}"
        );
        assert!(text.contains("\"weight_scale\": \"per-layer\""), "{text}");
        assert!(
            text.contains("{\"tensor\": \"/Add_output_0\", \"shift\": 24, \"bits\": 16}"),
            "{text}"
        );
        assert_eq!(Settings::from_json(&text).unwrap(), s);
        let empty = Settings::default().to_json();
        assert_eq!(empty, "{\"format\": \"verinfer-settings/1\"}\n");
        assert_eq!(Settings::from_json(&empty).unwrap(), Settings::default());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (r#"[1]"#, "(top level)"),
            (r#"{}"#, "settings: format: missing"),
            (r#"{"format": "v2"}"#, "settings: format: expected"),
            (
                r#"{"format": "verinfer-settings/1", "inputbits": 3}"#,
                "settings: inputbits: unknown key",
            ),
            (
                r#"{"format": "verinfer-settings/1", "input_bits": "8"}"#,
                "settings: input_bits: expected an integer",
            ),
            (
                r#"{"format": "verinfer-settings/1", "input_bits": -1}"#,
                "settings: input_bits:",
            ),
            (
                r#"{"format": "verinfer-settings/1", "coef_bits": 1e99}"#,
                "settings: coef_bits:",
            ),
            (
                r#"{"format": "verinfer-settings/1", "field": "m61"}"#,
                "settings: field:",
            ),
            (
                r#"{"format": "verinfer-settings/1", "weight_scale": 1}"#,
                "settings: weight_scale:",
            ),
            (
                r#"{"format": "verinfer-settings/1", "input_range": [1, 0]}"#,
                "settings: input_range:",
            ),
            (
                r#"{"format": "verinfer-settings/1", "input_range": [0]}"#,
                "settings: input_range:",
            ),
            (
                r#"{"format": "verinfer-settings/1", "requant": {}}"#,
                "settings: requant: expected a list",
            ),
            (
                r#"{"format": "verinfer-settings/1", "requant": [3]}"#,
                "settings: requant[0]:",
            ),
            (
                r#"{"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 1}]}"#,
                "settings: requant[0].bits: missing",
            ),
            (
                r#"{"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 1, "bits": 63}]}"#,
                "settings: requant[0].bits: expected an integer in 2..=62",
            ),
            (
                r#"{"format": "verinfer-settings/1", "requant": [{"tensor": 5, "shift": 1, "bits": 8}]}"#,
                "settings: requant[0].tensor: expected a string",
            ),
            (
                r#"{"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 1, "bits": 8, "x": 0}]}"#,
                "settings: requant[0].x: unknown key",
            ),
            ("{", "settings: not JSON"),
        ];
        for (text, want) in cases {
            let e = Settings::from_json(text).unwrap_err().to_string();
            assert!(e.starts_with(want) || e.contains(want), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn checkpoints_go_after_their_layer() {
        let s = |list: &str| {
            Settings::from_json(&format!(
                r#"{{"format": "verinfer-settings/1", "requant": [{list}]}}"#
            ))
            .unwrap()
        };
        let mut m = model(3);
        s(r#"{"tensor": "layer:0", "shift": 1, "bits": 8}, {"tensor": "layer:2", "shift": 2, "bits": 9}"#)
            .place_checkpoints(&mut m, &TensorNames::default())
            .unwrap();
        let kinds: Vec<&str> = m.layers.iter().map(Layer::op_name).collect();
        assert_eq!(
            kinds,
            [
                "activation",
                "requant",
                "activation",
                "activation",
                "requant"
            ]
        );
        assert_eq!(m.layers[4], Layer::Requant(Requant { shift: 2, bits: 9 }));
        for (list, want) in [
            (
                r#"{"tensor": "layer:3", "shift": 1, "bits": 8}"#,
                "the model has 3 layers",
            ),
            (
                r#"{"tensor": "relu1", "shift": 1, "bits": 8}"#,
                "names no tensor",
            ),
            (
                r#"{"tensor": "layer:-1", "shift": 1, "bits": 8}"#,
                "names no tensor",
            ),
            (
                r#"{"tensor": "layer:1", "shift": 1, "bits": 8}, {"tensor": "layer:1", "shift": 2, "bits": 8}"#,
                "already has a checkpoint (requant[0])",
            ),
        ] {
            let e = s(list)
                .place_checkpoints(&mut model(3), &TensorNames::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{list}: {e}");
            assert!(e.starts_with("settings: requant["), "{e}");
        }
    }

    #[test]
    fn names_stand_for_layers_or_say_why_not() {
        let mut names = TensorNames::default();
        names.insert("act1", TensorName::Layer(0));
        names.insert("act1_copy", TensorName::Layer(0));
        names.insert(
            "sq",
            TensorName::Refused("is inside layer 0's activation".into()),
        );
        let s = |list: &str| {
            Settings::from_json(&format!(
                r#"{{"format": "verinfer-settings/1", "requant": [{list}]}}"#
            ))
            .unwrap()
        };
        let mut m = model(3);
        s(r#"{"tensor": "act1", "shift": 1, "bits": 8}, {"tensor": "layer:2", "shift": 2, "bits": 9}"#)
            .place_checkpoints(&mut m, &names)
            .unwrap();
        assert_eq!(m.layers[1], Layer::Requant(Requant { shift: 1, bits: 8 }));
        assert_eq!(m.layers[4], Layer::Requant(Requant { shift: 2, bits: 9 }));
        for (list, want) in [
            (
                r#"{"tensor": "sq", "shift": 1, "bits": 8}"#,
                "\"sq\" is inside layer 0's activation",
            ),
            (
                r#"{"tensor": "nope", "shift": 1, "bits": 8}"#,
                "\"nope\" names no tensor of the model: use an ONNX value name",
            ),
            (
                r#"{"tensor": "act1", "shift": 1, "bits": 8}, {"tensor": "act1_copy", "shift": 2, "bits": 8}"#,
                "already has a checkpoint (requant[0] as \"act1\")",
            ),
            (
                r#"{"tensor": "layer:0", "shift": 1, "bits": 8}, {"tensor": "act1", "shift": 2, "bits": 8}"#,
                "already has a checkpoint (requant[0] as \"layer:0\")",
            ),
            (
                r#"{"tensor": "a\nb", "shift": 1, "bits": 8}"#,
                "\"a\\nb\" names no tensor",
            ),
        ] {
            let e = s(list)
                .place_checkpoints(&mut model(3), &names)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{list}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
