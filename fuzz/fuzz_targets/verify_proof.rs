//! Mutated honest proofs through decode and verify.
//!
//! A fixed small circuit, input and honest proof are built once per field. The fuzzer input
//! selects the field and a list of edits (XOR, overwrite, insert, delete) applied to the encoded
//! proof. Whatever decodes must verify if and only if it is the honest proof: any other proof is
//! rejected with an error (never a panic, never `Ok`), both against the honest output and against
//! the output the mutated proof carries.
#![no_main]

mod edits;

use edits::check_edited;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use verinfer_circuits::field::{from_i64, Bn254, ProofField, M127};
use verinfer_circuits::gates::{Gate, GateCircuit, GateLayer};
use verinfer_prover::gkr;
use verinfer_verifier::gkr as vgkr;
use verinfer_verifier::Proof;

struct Fixture<F> {
    circuit: GateCircuit,
    input: Vec<F>,
    output: Vec<F>,
    proof: Proof<F>,
    bytes: Vec<u8>,
}

/// Widths 6, 6, 6, 3, 2, 1: product and linear layers, every gate kind, sumchecks of 3, 3, 3, 2
/// and 1 rounds and a zero-variable output point.
fn circuit() -> GateCircuit {
    use Gate::*;
    GateCircuit {
        input_size: 6,
        layers: vec![
            GateLayer {
                gates: vec![
                    Mul(0, 1),
                    Add(2, 3),
                    Sub(4, 5),
                    Scale(1, 3),
                    AddConst(2, -2),
                    Relay(5),
                ],
            },
            GateLayer {
                gates: vec![
                    Add(0, 1),
                    Relay(2),
                    Const(7),
                    Scale(3, -1),
                    Sub(4, 0),
                    Add(5, 5),
                ],
            },
            GateLayer {
                gates: vec![Mul(0, 4), AddConst(1, 5), Mul(2, 5)],
            },
            GateLayer {
                gates: vec![Add(0, 1), Mul(1, 2)],
            },
            GateLayer {
                gates: vec![Sub(0, 1)],
            },
        ],
    }
}

fn fixture<F: ProofField>() -> Fixture<F> {
    let circuit = circuit();
    let input: Vec<F> = [3i64, -5, 11, 2, -7, 1]
        .iter()
        .map(|&v| from_i64(v))
        .collect();
    let (output, proof) = gkr::prove(&circuit, &input).expect("honest proof");
    vgkr::verify(&circuit, &input, &output, &proof).expect("honest proof verifies");
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
    let verify = |y: &[F], p: &Proof<F>| vgkr::verify(&fx.circuit, &fx.input, y, p).is_ok();
    check_edited(
        &fx.bytes,
        &fx.proof,
        edits,
        |b| Proof::<F>::decode(b).ok(),
        &[
            ("against the honest output", &|p| {
                Some(verify(&fx.output, p))
            }),
            ("against its own output", &|p| {
                (p.output.len() == fx.output.len()).then(|| verify(&p.output, p))
            }),
        ],
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, edits)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        run(M127_FIXTURE.get_or_init(fixture::<M127>), edits);
    } else {
        run(BN254_FIXTURE.get_or_init(fixture::<Bn254>), edits);
    }
});
