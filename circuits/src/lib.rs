//! verinfer circuits: the fields, the multilinear toolkit and the layered circuits that the
//! prover and verifier agree on.
//!
//! - [`field`]: Mersenne-127 and BN254, the signed embedding and the canonical byte encoding.
//! - [`mle`]: eq tables, multilinear evaluation and in-place folding (rayon above a threshold).
//! - [`gates`]: layered circuits of fan-in-2 gates, the input of the generic GKR protocol.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod field;
pub mod gates;
pub mod mle;

pub use field::{Bn254, FieldId, ProofField, M127};
