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
//! - [`demo`]: the embedded digits model and its held-out test set (feature `prove`);
//! - [`outln!`] / [`out!`]: command output that ends quietly on a closed stdout.
#![forbid(unsafe_code)]

pub mod args;
pub mod calibrate;
#[cfg(feature = "prove")]
pub mod demo;
pub mod engine;
pub mod files;
pub mod report;
pub mod shaped;

/// An error and its chain of causes on one line, outermost first (`a: b: c`), as every front
/// end prints it: the command line after `error: `, the Python package in its exceptions.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string().replace('\n', " ");
        // Errors that print their source themselves would otherwise repeat it.
        if !parts.last().is_some_and(|prev| prev.ends_with(&text)) {
            parts.push(text);
        }
        cause = e.source();
    }
    parts.join(": ")
}

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
