//! verinfer's arithmetic: the prime fields the proofs run over and the multilinear toolkit the
//! sumchecks are built from. Nothing here knows about models or circuits.
//!
//! - [`field`]: Mersenne-127 (shift-and-add reduction) and BN254, the signed-integer embedding
//!   and canonical encodings (docs/protocol.md §2).
//! - [`mle`]: eq tables, multilinear evaluation, in-place folding, `index < n` predicates; rayon
//!   above a size threshold with the `parallel` feature.
//! - [`ring`]: the rings exact integer inference runs in (wrapping `i64`, `i128`, fields).
//! - `counting` (feature `op-count`): Mersenne-127 with counted multiplications, for cost tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "op-count")]
pub mod counting;
pub mod field;
pub mod mle;
pub mod ring;

pub use field::{Bn254, FieldId, ProofField, M127};
