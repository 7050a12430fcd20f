//! verinfer-cli-core: the pieces every front end of verinfer shares — the command line, the
//! HTTP server and client (`verinfer-serve`) and the comparison harness (`verinfer-compare`).
//!
//! - [`args`]: the model and quantization flags, thread and memory flags, compiling a model
//!   with them;
//! - [`calibrate`]: `verinfer calibrate`, checkpoints chosen from sample data;
//! - [`files`]: model files (`.onnx` or the JSON IR) and input files (JSON or `.npy`);
//! - [`shaped`]: the streaming, shape-checked reader of JSON inputs;
//! - [`report`]: the output report (a contract of the command line);
//! - [`engine`]: prove / verify over the circuit's field;
//! - [`demo`]: the embedded digits model and its held-out test set;
//! - [`outln!`] / [`out!`]: command output that ends quietly on a closed stdout.
#![forbid(unsafe_code)]

pub mod args;
pub mod calibrate;
pub mod demo;
pub mod engine;
pub mod files;
pub mod report;
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
