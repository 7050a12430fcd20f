//! `verinfer serve`: prove every inference as an HTTP service (stub; see issue 5).

use thiserror::Error;

/// Flags of `verinfer serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {}

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServeError {
    /// Not implemented yet.
    #[error("serve is not implemented yet")]
    NotYet,
}

/// Runs the server until SIGINT / SIGTERM, finishing in-flight proofs.
pub fn run(_args: &ServeArgs) -> Result<(), ServeError> {
    Err(ServeError::NotYet)
}
