//! `verinfer client`: ask a server for a proved inference and verify it locally (stub; see
//! issue 5).

use thiserror::Error;

/// Flags of `verinfer client`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {}

/// The client's verdict on the server's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientOutcome {
    /// The proof verified against the client's own model and input (exit 0).
    Valid,
    /// The answer was rejected (exit 1): the reason.
    Rejected(String),
}

/// Usage, file and network errors (exit 2).
#[derive(Debug, Error)]
pub enum ClientError {
    /// Not implemented yet.
    #[error("client is not implemented yet")]
    NotYet,
}

/// Fetches, checks and verifies; prints the verified output.
pub fn run(_args: &ClientArgs) -> Result<ClientOutcome, ClientError> {
    Err(ClientError::NotYet)
}
