//! verinfer: prove and verify quantized neural-network inference with GKR.
//!
//! This crate is the command-line tool and a thin facade over the protocol crates:
//! - [`circuits`]: fields, multilinear toolkit, layered circuits;
//! - [`verifier`]: proof format, Fiat–Shamir transcript, sumcheck and GKR verification;
//! - [`prover`]: parallel sumcheck and GKR provers.
#![forbid(unsafe_code)]

pub use verinfer_circuits as circuits;
pub use verinfer_prover as prover;
pub use verinfer_verifier as verifier;

pub mod demo;
