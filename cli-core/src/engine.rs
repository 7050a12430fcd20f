//! Proving and verifying a compiled model whatever its field: the one place that turns the
//! circuit's runtime field choice into the generic prover and verifier.

use verinfer_circuits::circuit::LayeredCircuit;
use verinfer_circuits::field::{to_i128, Bn254, FieldId, ProofField, M127};
#[cfg(feature = "prove")]
use verinfer_prover::inference::{prove_with_progress, Progress, ProveReport};
#[cfg(feature = "prove")]
use verinfer_prover::ProveError;
use verinfer_verifier::inference::{verify, VerifiedReport};
use verinfer_verifier::{Proof, ProofError, VerifyError};

/// A proof and what it claims.
#[cfg(feature = "prove")]
#[derive(Clone, Debug)]
pub struct Proved {
    /// The output integers (batch-major), which the proof also carries.
    pub output: Vec<i128>,
    /// The encoded proof file.
    pub proof: Vec<u8>,
    /// Where the prover's time went.
    pub report: ProveReport,
}

/// What a valid proof established.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The verified output integers (batch-major), read from the proof.
    pub output: Vec<i128>,
    /// Batch size, soundness and verifier timings.
    pub report: VerifiedReport,
}

/// Runs and proves `circuit` on `input` (integers at the input scale), over the circuit's field.
#[cfg(feature = "prove")]
pub fn prove_any(
    circuit: &LayeredCircuit,
    input: &[i128],
    on_step: &mut dyn FnMut(Progress),
) -> Result<Proved, ProveError> {
    fn go<F: ProofField>(
        circuit: &LayeredCircuit,
        input: &[i128],
        on_step: &mut dyn FnMut(Progress),
    ) -> Result<Proved, ProveError> {
        let (output, proof, report) = prove_with_progress::<F>(circuit, input, on_step)?;
        Ok(Proved {
            output,
            proof: proof.encode(),
            report,
        })
    }
    match circuit.field {
        FieldId::M127 => go::<M127>(circuit, input, on_step),
        FieldId::Bn254 => go::<Bn254>(circuit, input, on_step),
    }
}

/// Decodes `proof` and checks that it shows `circuit` maps `input` to the output the proof
/// carries. Any malformed or wrong proof is an error; nothing here panics.
pub fn verify_any(
    circuit: &LayeredCircuit,
    input: &[i128],
    proof: &[u8],
) -> Result<Verified, VerifyError> {
    fn go<F: ProofField>(
        circuit: &LayeredCircuit,
        input: &[i128],
        bytes: &[u8],
    ) -> Result<Verified, VerifyError> {
        let proof = Proof::<F>::decode(bytes)?;
        let output = output_of(&proof)?;
        let report = verify(circuit, input, &output, &proof)?;
        Ok(Verified { output, report })
    }
    match field_for(circuit, proof)? {
        FieldId::M127 => go::<M127>(circuit, input, proof),
        FieldId::Bn254 => go::<Bn254>(circuit, input, proof),
    }
}

/// The output a proof for `circuit` claims, decoded but not verified (a proof that does not
/// decode, or is over another field, is an error as in [`verify_any`]).
pub fn claimed_output(circuit: &LayeredCircuit, proof: &[u8]) -> Result<Vec<i128>, VerifyError> {
    fn go<F: ProofField>(bytes: &[u8]) -> Result<Vec<i128>, VerifyError> {
        output_of(&Proof::<F>::decode(bytes)?)
    }
    match field_for(circuit, proof)? {
        FieldId::M127 => go::<M127>(proof),
        FieldId::Bn254 => go::<Bn254>(proof),
    }
}

/// The field of a proof file, which must be the circuit's.
fn field_for(circuit: &LayeredCircuit, proof: &[u8]) -> Result<FieldId, VerifyError> {
    let header = verinfer_verifier::proof::read_header(proof)?;
    if header.field != circuit.field {
        return Err(VerifyError::FieldMismatch {
            proof: header.field,
            circuit: circuit.field,
        });
    }
    Ok(header.field)
}

/// The output integers a decoded proof carries.
fn output_of<F: ProofField>(proof: &Proof<F>) -> Result<Vec<i128>, VerifyError> {
    proof
        .output
        .iter()
        .map(|&v| to_i128(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| VerifyError::Shape(format!("output value out of range: {e}")))
}

/// The field a proof file says it is over, or why its header is unreadable.
pub fn proof_field(proof: &[u8]) -> Result<FieldId, ProofError> {
    Ok(verinfer_verifier::proof::read_header(proof)?.field)
}

/// The shape of one layer proof: `(degree, rounds)` of each sumcheck and the number of
/// evaluations it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerShape {
    /// `(degree, rounds)` per sumcheck, in proof order.
    pub sumchecks: Vec<(usize, usize)>,
    /// Field elements sent besides the sumcheck rounds.
    pub evals: usize,
}

/// Per-layer shapes of an encoded proof, in circuit order (layer 0 first).
pub fn proof_shapes(proof: &[u8]) -> Result<Vec<LayerShape>, ProofError> {
    fn go<F: ProofField>(bytes: &[u8]) -> Result<Vec<LayerShape>, ProofError> {
        let p = Proof::<F>::decode(bytes)?;
        // Layer proofs are stored output layer first.
        Ok(p.layers
            .iter()
            .rev()
            .map(|l| LayerShape {
                sumchecks: l
                    .sumchecks
                    .iter()
                    .map(|s| (s.degree, s.rounds.len()))
                    .collect(),
                evals: l.evals.len(),
            })
            .collect())
    }
    match proof_field(proof)? {
        FieldId::M127 => go::<M127>(proof),
        FieldId::Bn254 => go::<Bn254>(proof),
    }
}
