//! The settings decoder on arbitrary input: never a panic, always a one-line error, and every
//! well-formed file parses to exactly what it says.

use proptest::prelude::*;
use serde_json::{json, Value};
use verinfer_circuits::model::{Activation, Layer, Model};
use verinfer_circuits::settings::{RequantAt, Settings, TensorNames, SETTINGS_FORMAT};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z_:0-9]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("format".to_string()),
                    Just("input_bits".to_string()),
                    Just("field".to_string()),
                    Just("input_range".to_string()),
                    Just("requant".to_string()),
                    Just("tensor".to_string()),
                    Just("shift".to_string()),
                    Just("bits".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn model() -> Model {
    Model {
        name: String::new(),
        input_shape: vec![4],
        input_range: [-1.0, 1.0],
        layers: vec![Layer::Activation(Activation::Square); 4],
    }
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics(v in any_json(), with_format in any::<bool>()) {
        let mut v = v;
        if let (true, Value::Object(m)) = (with_format, &mut v) {
            m.insert("format".into(), Value::from(SETTINGS_FORMAT));
        }
        match Settings::from_json(&v.to_string()) {
            Ok(s) => {
                let mut m = model();
                if let Err(e) = s.place_checkpoints(&mut m, &TensorNames::default()) {
                    prop_assert!(!e.to_string().contains('\n'));
                }
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        let _ = Settings::from_json(&text);
    }

    #[test]
    fn well_formed_files_say_what_they_mean(
        input_bits in proptest::option::of(0u32..=64),
        range in proptest::option::of((-100i32..100, 0i32..100)),
        checkpoints in prop::collection::btree_map(0usize..4, (0u32..=255, 2u32..=62), 0..4),
    ) {
        let mut obj = serde_json::Map::new();
        obj.insert("format".into(), json!(SETTINGS_FORMAT));
        if let Some(b) = input_bits {
            obj.insert("input_bits".into(), json!(b));
        }
        if let Some((lo, w)) = range {
            obj.insert("input_range".into(), json!([lo, lo + w]));
        }
        let list: Vec<Value> = checkpoints
            .iter()
            .map(|(l, (k, b))| json!({"tensor": format!("layer:{l}"), "shift": k, "bits": b}))
            .collect();
        obj.insert("requant".into(), Value::from(list));
        let s = Settings::from_json(&Value::Object(obj).to_string()).unwrap();
        prop_assert_eq!(s.input_bits, input_bits);
        prop_assert_eq!(
            s.input_range,
            range.map(|(lo, w)| [f64::from(lo), f64::from(lo + w)])
        );
        let want: Vec<RequantAt> = checkpoints
            .iter()
            .map(|(l, (k, b))| RequantAt { tensor: format!("layer:{l}"), shift: *k, bits: *b })
            .collect();
        prop_assert_eq!(&s.requant, &want);
        let mut m = model();
        s.place_checkpoints(&mut m, &TensorNames::default()).unwrap();
        prop_assert_eq!(m.layers.len(), 4 + checkpoints.len());
        let placed = m.layers.iter().filter(|l| matches!(l, Layer::Requant(_))).count();
        prop_assert_eq!(placed, checkpoints.len());
    }
}
