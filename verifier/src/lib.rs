//! verinfer verifier: the proof format, the Fiat–Shamir transcript, and the checks of sumcheck
//! and GKR proofs.
//!
//! This crate has no threads and no filesystem access so that it builds for wasm32. Every check
//! returns a typed [`VerifyError`]; no input, however malformed, makes it panic.
//!
//! - [`transcript`]: the merlin transcript of docs/protocol.md §7.
//! - [`proof`]: proof types and the strict binary format of docs/protocol.md §8.
//! - [`sumcheck`]: sumcheck verification, ending in a [`sumcheck::SumcheckClaim`].
//! - [`gkr`]: the generic GKR verifier for layered gate circuits.
//! - [`layers`]: the structured layer reductions (activation, sum-pool, dense, conv2d, gates).
//! - [`inference`]: verification of a whole compiled model's inference.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod gkr;
pub mod inference;
pub mod layers;
pub mod opening;
pub mod proof;
pub mod sumcheck;
pub mod transcript;

pub use proof::{LayerKind, LayerProof, Proof, ProofError, SumcheckProof};
pub use transcript::Transcript;

use thiserror::Error;
use verinfer_circuits::gates::CircuitError;

/// Why a proof was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The proof is for another circuit (or another field).
    #[error("proof is for another circuit (digest mismatch)")]
    DigestMismatch,
    /// The output carried by the proof is not the output being checked.
    #[error("the proof's output differs from the claimed output")]
    OutputMismatch,
    /// The input or output has the wrong size for the circuit.
    #[error("statement shape: {0}")]
    Shape(String),
    /// The proof's structure does not match the circuit.
    #[error("proof shape: {0}")]
    ProofShape(String),
    /// A layer's final sumcheck evaluation does not match the verifier's own computation.
    #[error("layer {layer}: {what} does not match")]
    LayerCheck {
        /// The layer (1-based from the input).
        layer: usize,
        /// Which check failed.
        what: &'static str,
    },
    /// The claim that reached the input does not match the input.
    #[error("the claim on the input does not match the input")]
    InputCheck,
    /// The circuit itself is malformed.
    #[error("invalid circuit: {0}")]
    Circuit(#[from] CircuitError),
    /// A compiled circuit is inconsistent (layouts, weights and ops disagree).
    #[error("invalid circuit: {0}")]
    BadCircuit(String),
    /// The proof is over another field than the circuit.
    #[error("the proof is over {proof}, the circuit is compiled for {circuit}")]
    FieldMismatch {
        /// Field of the proof.
        proof: verinfer_circuits::FieldId,
        /// Field of the circuit.
        circuit: verinfer_circuits::FieldId,
    },
    /// The input is not a valid input of the circuit (length, range).
    #[error("invalid input: {0}")]
    Input(String),
    /// The proof bytes are malformed.
    #[error("malformed proof: {0}")]
    Decode(#[from] ProofError),
}
