//! The wire format of the HTTP API, shared by the server and the client.
//!
//! - `GET /v1/model` answers a [`ModelInfo`];
//! - `POST /v1/infer` takes `{"input": <nested arrays>}` and answers an [`InferResponse`], or,
//!   when the request's `Accept` is [`OCTET_STREAM`], the raw proof file as the body with the
//!   output report and the digest in the [`OUTPUT_HEADER`] and [`DIGEST_HEADER`] headers;
//! - every error is an [`ErrorBody`] with a 4xx or 5xx status.

use serde::{Deserialize, Serialize};
use verinfer_circuits::circuit::LayeredCircuit;
use verinfer_cli_core::report::OutputReport;
pub use verinfer_cli_core::report::{hex, CircuitInfo, LayerInfo};

/// Route of the model description.
pub const MODEL_ROUTE: &str = "/v1/model";
/// Route of proved inference.
pub const INFER_ROUTE: &str = "/v1/infer";
/// Route of the liveness check.
pub const HEALTH_ROUTE: &str = "/healthz";
/// Route of the Prometheus metrics.
pub const METRICS_ROUTE: &str = "/metrics";

/// Media type of a raw proof file.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// Response header (binary answers): the output report as compact JSON.
pub const OUTPUT_HEADER: &str = "x-verinfer-output";
/// Response header (binary answers): the circuit digest, hex.
pub const DIGEST_HEADER: &str = "x-verinfer-digest";
/// Response header (binary answers): the timings as compact JSON ([`Timings`]).
pub const TIMINGS_HEADER: &str = "x-verinfer-timings-ms";

/// What `GET /v1/model` answers: everything a client needs to check it runs the same circuit and
/// to shape its input, and the server's limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The circuit: name, digest, field, shapes, quantization, layers.
    #[serde(flatten)]
    pub circuit: CircuitInfo,
    /// The server's request limits.
    pub limits: Limits,
}

/// Limits a server enforces on requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest batch per request.
    pub max_batch: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Proving threads.
    pub workers: usize,
    /// Requests that may wait for a worker.
    pub queue: usize,
}

impl ModelInfo {
    /// The description of `circuit` (per-item input shape `input_shape`, declared input range
    /// `input_range`) served with `limits`.
    pub fn new(
        circuit: &LayeredCircuit,
        input_shape: &[usize],
        input_range: [f64; 2],
        limits: Limits,
    ) -> Self {
        ModelInfo {
            circuit: CircuitInfo::new(circuit, input_shape, input_range),
            limits,
        }
    }
}

/// The body of `POST /v1/infer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferRequest {
    /// Nested arrays: one item in the model's input shape, or a batch of them.
    pub input: serde_json::Value,
}

/// What `POST /v1/infer` answers (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InferResponse {
    /// The claimed output (the CLI's output report).
    pub output: OutputReport,
    /// The proof file, base64 (standard alphabet, padded).
    pub proof: String,
    /// The circuit digest (hex) the proof is for.
    pub digest: String,
    /// Where the server's time went.
    pub timings_ms: Timings,
}

/// Server-side timings of one request, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Waiting for a proving worker.
    pub queue: f64,
    /// Integer inference and the witness.
    pub witness: f64,
    /// The layer proofs (witness excluded).
    pub prove: f64,
    /// The whole request, from its arrival to the answer (body reading and parsing included).
    pub total: f64,
}

/// Every error answer: `{"error": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, one line.
    pub error: String,
}
