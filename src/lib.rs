//! verinfer: prove and verify quantized neural-network inference with GKR.
//!
//! This crate is the command-line tool and a thin facade over the protocol crates:
//! - [`circuits`]: fields, multilinear toolkit, model IR, compiler, witness;
//! - [`verifier`]: proof format, Fiat–Shamir transcript, sumcheck and GKR verification;
//! - [`prover`]: parallel sumcheck and GKR provers;
//! - [`onnx`]: import of PyTorch-exported ONNX models.
//!
//! and the comparison harness ([`compare`]); the HTTP server and client are
//! `verinfer-serve`'s ([`serve`], [`client`]). The pieces every front end shares are
//! `verinfer-cli-core`'s, re-exported here: [`files`], [`shaped`], [`report`], [`engine`],
//! [`demo`], [`args`], [`outln!`], [`out!`].
#![forbid(unsafe_code)]

pub use verinfer_circuits as circuits;
pub use verinfer_onnx as onnx;
pub use verinfer_prover as prover;
pub use verinfer_verifier as verifier;

pub use verinfer_cli_core::{args, demo, engine, files, out, outln, report, shaped};

pub use verinfer_serve::client;
pub mod compare;
pub use verinfer_serve as serve;
