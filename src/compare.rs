//! `verinfer compare`: prover cost and accuracy across activations (stub; see issue 6).

use thiserror::Error;

/// Flags of `verinfer compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {}

/// Why a comparison could not run.
#[derive(Debug, Error)]
pub enum CompareError {
    /// Not implemented yet.
    #[error("compare is not implemented yet")]
    NotYet,
}

/// Runs the comparison, prints the table and writes the requested files.
pub fn run(_args: &CompareArgs) -> Result<(), CompareError> {
    Err(CompareError::NotYet)
}
