//! The command line's input decoders (JSON nested arrays, `.npy`), the output-report parser and
//! the settings file (parsed, then its checkpoints placed in a small model) on arbitrary bytes:
//! errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verinfer_circuits::model::{Activation, Layer, Model};
use verinfer_circuits::settings::{Settings, TensorNames};
use verinfer_cli_core::files::{parse_input_json, parse_npy, NPY_MAGIC};
use verinfer_cli_core::report::OutputReport;

fuzz_target!(|data: &[u8]| {
    let _ = parse_npy(data);
    let mut npy = NPY_MAGIC.to_vec();
    npy.extend_from_slice(data);
    let _ = parse_npy(&npy);
    let _ = parse_input_json(data, &[1, 8, 8]);
    let _ = parse_input_json(data, &[3]);
    if let Ok(r) = OutputReport::from_json(data) {
        let _ = r.integers();
        let _ = r.summary(4);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(settings) = Settings::from_json(text) {
            let mut model = Model {
                name: String::new(),
                input_shape: vec![4],
                input_range: [-1.0, 1.0],
                layers: vec![Layer::Activation(Activation::Square); 3],
            };
            let _ = settings.place_checkpoints(&mut model, &TensorNames::default());
        }
    }
});
