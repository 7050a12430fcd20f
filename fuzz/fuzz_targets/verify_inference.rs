//! Mutated honest structured proofs through decode and the whole-inference verifier.
//!
//! A small model with every structured layer kind (convolution with stride and padding, an
//! activation with a constant, a requantization checkpoint (so the proof opens a tensor, format
//! version 2), residual adds (one lifted and subtracted), a branch and the forks they need, a
//! general and an aligned sum-pool, a reshape lowered to gates, a dense layer) is compiled once
//! per field and proved honestly on a fixed batch of two. The
//! first input byte picks the field, the rest is a list of edits (see `edits.rs`) applied to the
//! encoded proof. Whatever decodes must verify if and only if it is the honest proof, against
//! the honest output and against the output the mutated proof carries; never a panic.
#![no_main]

mod edits;

use edits::check_edited;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use verinfer_circuits::circuit::{FieldChoice, LayeredCircuit, QuantParams};
use verinfer_circuits::compile::compile;
use verinfer_circuits::field::{to_i128, Bn254, ProofField, M127};
use verinfer_circuits::model::Model;
use verinfer_prover::inference::prove;
use verinfer_verifier::inference::verify;
use verinfer_verifier::Proof;

const MODEL: &str = r#"{
  "name": "fuzz", "input_shape": [1, 5, 5], "input_range": [-1, 1],
  "layers": [
    {"op": "conv2d", "in_channels": 1, "out_channels": 2, "kernel": [3, 2], "stride": [2, 1],
     "padding": [1, 1], "weight": [0.5, -0.25, 0.75, 0.125, -0.5, 0.25, 0.5, 0.5, -0.75, 0.25,
     0.125, -0.125], "bias": [0.25, -0.5]},
    {"op": "activation", "kind": "quadratic", "a": 1, "b": 1, "c": 0.5},
    {"op": "requant", "shift": 30, "bits": 6},
    {"op": "add", "with": 2},
    {"op": "branch", "from": 1},
    {"op": "add", "with": 3, "subtract": true},
    {"op": "sum_pool", "window": [2, 3], "stride": [1, 1]},
    {"op": "reshape", "shape": [4, 2, 2]},
    {"op": "sum_pool", "window": [2, 2]},
    {"op": "flatten"},
    {"op": "dense", "in_features": 4, "out_features": 2,
     "weight": [0.5, -0.5, 0.25, 1.0, -0.25, 0.75, 0.5, -1.0], "bias": [0.125, -0.25]}
  ]
}"#;

struct Fixture<F> {
    circuit: LayeredCircuit,
    input: Vec<i128>,
    output: Vec<i128>,
    proof: Proof<F>,
    bytes: Vec<u8>,
}

fn fixture<F: ProofField>(field: FieldChoice) -> Fixture<F> {
    let model = Model::from_json(MODEL).expect("fuzz model parses");
    let circuit = compile(&model, &QuantParams::default(), field).expect("fuzz model compiles");
    let (lo, hi) = (circuit.input_min, circuit.input_max);
    let n = 2 * circuit.input.item_len() as i128;
    let input: Vec<i128> = (0..n).map(|k| lo + (k * 37) % (hi - lo + 1)).collect();
    let (output, proof, _) = prove::<F>(&circuit, &input).expect("honest proof");
    verify(&circuit, &input, &output, &proof).expect("honest proof verifies");
    let bytes = proof.encode();
    Fixture {
        circuit,
        input,
        output,
        proof,
        bytes,
    }
}

static M127_FIXTURE: OnceLock<Fixture<M127>> = OnceLock::new();
static BN254_FIXTURE: OnceLock<Fixture<Bn254>> = OnceLock::new();

fn run<F: ProofField>(fx: &Fixture<F>, edits: &[u8]) {
    let verify = |y: &[i128], p: &Proof<F>| verify(&fx.circuit, &fx.input, y, p).is_ok();
    check_edited(
        &fx.bytes,
        &fx.proof,
        edits,
        |b| Proof::<F>::decode(b).ok(),
        &[
            ("against the honest output", &|p| {
                Some(verify(&fx.output, p))
            }),
            // The client that believes the output carried by the mutated proof.
            ("against its own output", &|p| {
                let carried: Option<Vec<i128>> =
                    p.output.iter().map(|v| to_i128(*v).ok()).collect();
                carried.map(|y| verify(&y, p))
            }),
        ],
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, edits)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        run(
            M127_FIXTURE.get_or_init(|| fixture::<M127>(FieldChoice::M127)),
            edits,
        );
    } else {
        run(
            BN254_FIXTURE.get_or_init(|| fixture::<Bn254>(FieldChoice::Bn254)),
            edits,
        );
    }
});
