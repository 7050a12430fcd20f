//! The command line's input decoders (JSON nested arrays, `.npy`) and the output-report parser
//! on arbitrary bytes: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
});
