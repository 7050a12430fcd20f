//! verinfer prover: parallel sumcheck kernels and the GKR prover.
//!
//! - [`sumcheck`]: the [`sumcheck::RoundProver`] trait (fold, then the round polynomial), the
//!   fused product kernel, a generic sum-of-products kernel and the transcript driver.
//! - [`eq_kernel`]: the activation sumcheck with the eq factor taken out of the round polynomial.
//! - [`gkr`]: the generic GKR prover for layered gate circuits (two-phase linear-time sumcheck).
//! - [`layers`]: provers of the structured layer reductions (activation, sum-pool, dense, conv2d).
//! - [`inference`]: witness plus layer proofs for one inference of a compiled model.
//!
//! Proofs verify with `verinfer-verifier`, which replays the same transcript.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod eq_kernel;
pub mod eq_poly;
pub mod gkr;
pub mod inference;
pub mod layers;
pub mod sumcheck;

use thiserror::Error;
use verinfer_circuits::gates::CircuitError;

/// Why a proof could not be produced.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProveError {
    /// The circuit or its input is malformed.
    #[error("invalid circuit or input: {0}")]
    Circuit(#[from] CircuitError),
    /// A compiled layer is inconsistent.
    #[error("invalid layer: {0}")]
    Layer(String),
    /// The input does not fit the circuit.
    #[error("invalid input: {0}")]
    Input(String),
}

/// Sizes the global rayon pool the provers run on. Call once, before any proving.
pub fn set_global_threads(n: usize) -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
}
