//! verinfer circuits: the fields, the multilinear toolkit and the layered circuits that the
//! prover and verifier agree on.
//!
//! - [`field`]: Mersenne-127 and BN254, the signed embedding and the canonical byte encoding.
//! - [`mle`]: eq tables, multilinear evaluation and in-place folding (rayon above a threshold).
//! - [`gates`]: layered circuits of fan-in-2 gates, the input of the generic GKR protocol.
//! - [`model`]: the float model IR (JSON model files).
//! - [`circuit`]: the compiled, quantized [`circuit::LayeredCircuit`] and its tensor layout.
//! - [`predicates`]: wiring predicates (window tables) shared by prover and verifier.
//! - [`quant`]: the quantization rules of docs/protocol.md §3.
//! - [`compile`]: model → layered circuit, with the exact worst-case bound analysis.
//! - [`witness`]: integer inference and the field witness of every stage.
//! - `counting` (feature `op-count`): Mersenne-127 with counted multiplications, for cost tests.
//! - [`zoo`]: built-in architectures (CIFAR-sized CNN, TIMIT-shaped dense net) for benchmarks.
//! - [`lower`]: the `gates` lowering, a layered circuit as plain fan-in-2 gates.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod circuit;
pub mod compile;
#[cfg(feature = "op-count")]
pub mod counting;
pub mod field;
pub mod gates;
pub mod lower;
pub mod memory;
pub mod mle;
pub mod model;
pub mod predicates;
pub mod quant;
pub mod witness;
pub mod zoo;

pub use field::{Bn254, FieldId, ProofField, M127};
