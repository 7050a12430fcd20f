//! Arbitrary bytes through the proof decoders: `read_header`, `Proof<M127>::decode` and
//! `Proof<Bn254>::decode` must never panic, and whatever they accept must re-encode to exactly the
//! bytes they were given (the format is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use verinfer_circuits::field::{Bn254, ProofField, M127};
use verinfer_verifier::proof::{read_header, HEADER_BYTES};
use verinfer_verifier::Proof;

fn check<F: ProofField>(data: &[u8]) -> bool {
    match Proof::<F>::decode(data) {
        Ok(p) => {
            assert_eq!(
                p.encode(),
                data,
                "accepted bytes do not re-encode identically"
            );
            assert_eq!(p.encoded_len(), data.len());
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let header = read_header(data);
    let m = check::<M127>(data);
    let b = check::<Bn254>(data);
    if m || b {
        let h = header.expect("a proof decoded without a valid header");
        assert_eq!(h.field, if m { M127::ID } else { Bn254::ID });
        assert_eq!(&data[7..HEADER_BYTES], &h.digest);
        assert!(!(m && b));
    }
});
