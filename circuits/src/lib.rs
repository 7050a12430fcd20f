//! verinfer circuits: the model IR, the compiler and the layered circuits that the prover and
//! verifier agree on, and the integer witness.
//!
//! - [`field`], [`mle`] (and `counting`): re-exported from `verinfer-poly`, which holds the
//!   fields and the multilinear toolkit.
//! - [`gates`]: layered circuits of fan-in-2 gates, the input of the generic GKR protocol.
//! - [`model`]: the float model IR (JSON model files).
//! - [`float`]: the float reference of the model IR (every layer's output on a batch).
//! - [`ops`]: one file per layer kind: the op struct, its shape rules and digest encoding.
//! - [`circuit`]: the compiled, quantized [`circuit::LayeredCircuit`] and its tensor layout.
//! - [`predicates`]: wiring predicates (window tables) shared by prover and verifier.
//! - [`quant`]: the quantization rules of docs/protocol.md §3.
//! - [`settings`]: the settings file (quantization, field, input range, checkpoints).
//! - [`compile`]: model → layered circuit: quantization, layout, the field choice.
//! - [`bounds`]: the exact worst-case bound analysis (each kind's rule next to its kernel).
//! - [`calibrate`]: choosing requantization checkpoints and their shifts from sample ranges.
//! - [`witness`]: integer inference and the field witness of every stage.
//! - [`zoo`]: built-in architectures (CIFAR-sized CNN, TIMIT-shaped dense net) for benchmarks.
//! - [`lower`]: the `gates` lowering, a layered circuit as plain fan-in-2 gates.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod approx;
pub mod bounds;
pub mod calibrate;
pub mod circuit;
pub mod compile;
pub mod float;
pub mod gates;
pub mod lower;
pub mod memory;
pub mod model;
pub mod ops;
pub mod predicates;
pub mod quant;
pub mod relu;
pub mod settings;
pub mod witness;
pub mod zoo;

#[cfg(feature = "op-count")]
pub use verinfer_poly::counting;
pub use verinfer_poly::{field, mle};
pub use verinfer_poly::{Bn254, FieldId, ProofField, M127};
