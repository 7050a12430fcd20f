//! verinfer: prove and verify quantized neural-network inference with GKR.
//!
//! This crate is the command-line tool and a thin facade over the protocol crates:
//! - [`circuits`]: fields, multilinear toolkit, model IR, compiler, witness;
//! - [`verifier`]: proof format, Fiat–Shamir transcript, sumcheck and GKR verification;
//! - [`prover`]: parallel sumcheck and GKR provers;
//! - [`onnx`]: import of PyTorch-exported ONNX models.
//!
//! and the pieces the command line is made of: [`files`] (model and input files),
//! [`report`] (the output report), [`engine`] (prove / verify over the circuit's field) and
//! [`demo`] (the embedded digits model).
#![forbid(unsafe_code)]

pub use verinfer_circuits as circuits;
pub use verinfer_onnx as onnx;
pub use verinfer_prover as prover;
pub use verinfer_verifier as verifier;

pub mod args;
pub mod client;
pub mod compare;
pub mod demo;
pub mod engine;
pub mod files;
pub mod report;
pub mod serve;
pub mod shaped;

/// `println!` for command output: a closed stdout (e.g. `verinfer verify ... | head -1`) ends
/// the output quietly instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` counterpart of [`outln!`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
