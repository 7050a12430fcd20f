//! `verinfer client`: ask a server for a proved inference and verify it locally.
//!
//! The client trusts nothing the server says: it compiles the model itself, refuses a server
//! whose circuit digest differs from its own (or from `--expect-digest`), verifies the returned
//! proof against its own circuit and its own input, and checks that the output the server
//! reports is the output the proof establishes. What it prints and writes is the verified
//! output, never the server's claim.

use crate::api::{
    hex, ErrorBody, InferRequest, InferResponse, ModelInfo, Timings, DIGEST_HEADER, INFER_ROUTE,
    MODEL_ROUTE, OCTET_STREAM, OUTPUT_HEADER, TIMINGS_HEADER,
};
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;
use verinfer_cli_core::args::{ArgsError, ModelArgs};
use verinfer_cli_core::engine::verify_any;
use verinfer_cli_core::report::OutputReport;

/// Largest answer read from a server.
const MAX_ANSWER_BYTES: u64 = 1 << 28;

/// Flags of `verinfer client`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    #[command(flatten)]
    /// The model and its quantization, compiled here: the server must run the same circuit.
    pub model: ModelArgs,
    /// The server's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// Input file: JSON nested arrays in the model's input shape (batch dimension optional) or
    /// .npy.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// Write the verified output report (JSON) here.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the verified proof file here (it can be checked again with `verinfer verify`).
    #[arg(long, short = 'p', value_name = "FILE")]
    pub proof: Option<PathBuf>,
    /// The circuit digest (hex, as printed by `verinfer inspect`) the server must announce.
    #[arg(long, value_name = "HEX")]
    pub expect_digest: Option<String>,
    /// Ask for the raw proof file (application/octet-stream) instead of JSON with base64.
    #[arg(long)]
    pub binary: bool,
    /// Seconds to wait for each answer (proving included).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout_secs: u64,
}

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
    /// The model or the input could not be used.
    #[error(transparent)]
    Model(#[from] ArgsError),
    /// A flag is malformed.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached or the connection failed.
    #[error("cannot reach {url}: {msg}")]
    Network {
        /// The URL requested.
        url: String,
        /// What failed.
        msg: String,
    },
    /// The server answered with an error status.
    #[error("{url}: the server answered {status}: {msg}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's error message (and Retry-After, if any).
        msg: String,
    },
    /// The model description is not what a verinfer server sends.
    #[error("{url}: not a verinfer model description: {msg}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What is wrong.
        msg: String,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What the server answered to `POST /v1/infer`, decoded but unchecked.
struct Answer {
    /// The claimed output report.
    output: OutputReport,
    /// The proof file.
    proof: Vec<u8>,
    /// The digest the server says the proof is for.
    digest: String,
    /// The server's timings, if it sent readable ones.
    timings: Option<Timings>,
}

/// Fetches, checks and verifies; prints the verified output.
pub fn run(args: &ClientArgs) -> Result<ClientOutcome, ClientError> {
    let base = base_url(&args.server)?;
    let expected = args
        .expect_digest
        .as_deref()
        .map(normalize_digest)
        .transpose()?;
    let mut outputs = Vec::new();
    outputs.extend(args.proof.as_deref().map(|p| ("--proof", p)));
    outputs.extend(args.output.as_deref().map(|p| ("--output", p)));
    verinfer_cli_core::files::check_outputs(
        &[("--model", &args.model.model), ("--input", &args.input)],
        &outputs,
    )
    .map_err(|e| ClientError::Model(e.into()))?;
    let compiled = args.model.compile()?;
    for note in &compiled.loaded.notes {
        eprintln!("note: {note}");
    }
    let circuit = &compiled.circuit;
    let (input, ints) = compiled.input(&args.input)?;
    let own = hex(&circuit.digest());
    let per = circuit.input.item_len().max(1);
    let batch = ints.len() / per;

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A redirect could send the input (and the trust decision) to another host or port:
        // the 3xx answer is returned as is and refused below.
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(args.timeout_secs.max(1))))
        .max_response_header_size(1 << 20)
        .build()
        .into();

    // 1. The server must run our circuit.
    let model_url = format!("{base}{MODEL_ROUTE}");
    let (status, _, body) = fetch(&model_url, || {
        agent
            .get(&model_url)
            .header("accept", "application/json")
            .call()
    })?;
    check_status(&model_url, status, &body, None)?;
    let info: ModelInfo = serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
        url: model_url.clone(),
        msg: e.to_string(),
    })?;
    if let Some(want) = &expected {
        if info.circuit.digest != *want {
            return Ok(ClientOutcome::Rejected(format!(
                "the server runs circuit {}, not the expected {want}",
                info.circuit.digest
            )));
        }
    }
    if info.circuit.digest != own {
        return Ok(ClientOutcome::Rejected(format!(
            "the server runs circuit {}, but {} compiles to {own} with these flags",
            info.circuit.digest,
            args.model.model.display()
        )));
    }
    if batch > info.limits.max_batch {
        return Err(ClientError::Usage(format!(
            "the input is a batch of {batch}, over the server's limit of {} per request",
            info.limits.max_batch
        )));
    }

    // 2. Send the values as read (checked against the declared range here, as the server
    // checks them): the server quantizes them as we did, and if it proves anything else the
    // proof fails against our own quantized input below. Sending the quantized values back
    // as floats instead could step outside a range whose ends are not multiples of the
    // input scale, which the server would refuse.
    let mut dims = vec![batch];
    dims.extend(&compiled.loaded.model.input_shape);
    let request = InferRequest {
        input: nest(&input.values, &dims),
    };
    let request = serde_json::to_vec(&request).map_err(|e| ClientError::Usage(e.to_string()))?;
    let infer_url = format!("{base}{INFER_ROUTE}");
    let accept = if args.binary {
        OCTET_STREAM
    } else {
        "application/json"
    };
    let started = Instant::now();
    let (status, headers, body) = fetch(&infer_url, || {
        agent
            .post(&infer_url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .send(&request[..])
    })?;
    let round_trip_ms = started.elapsed().as_secs_f64() * 1e3;
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    check_status(&infer_url, status, &body, retry_after)?;
    let answer = match decode_answer(args.binary, &headers, body) {
        Ok(a) => a,
        Err(why) => return Ok(ClientOutcome::Rejected(why)),
    };

    // 3. Verify against our own circuit and input; the verified output is the answer.
    if answer.digest != own {
        return Ok(ClientOutcome::Rejected(format!(
            "the answer is for circuit {}, not {own}",
            answer.digest
        )));
    }
    let t = Instant::now();
    let verified = match verify_any(circuit, &ints, &answer.proof) {
        Ok(v) => v,
        Err(e) => return Ok(ClientOutcome::Rejected(format!("invalid proof: {e}"))),
    };
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    let report = OutputReport::new(circuit, &verified.output);
    if let Some(diff) = answer.output.first_difference(&report) {
        return Ok(ClientOutcome::Rejected(format!(
            "the proof is valid, but the output the server reports differs from the output it \
             proves: {diff}"
        )));
    }

    if let Some(path) = &args.proof {
        write_file(path, &answer.proof)?;
    }
    if let Some(path) = &args.output {
        write_file(path, report.to_json().as_bytes())?;
    }
    let server_ms = answer
        .timings
        .map(|t| format!(", proved in {:.1} ms", t.witness + t.prove))
        .unwrap_or_default();
    verinfer_cli_core::outln!(
        "VALID: {} on a batch of {} from {base}{server_ms} (round trip {round_trip_ms:.1} ms), \
         verified here in {verify_ms:.1} ms, soundness {:.1} bits",
        circuit.name,
        verified.report.batch,
        verified.report.soundness_bits
    );
    verinfer_cli_core::out!("{}", report.summary(16));
    if let Some(path) = &args.output {
        verinfer_cli_core::outln!("verified output report -> {}", path.display());
    }
    Ok(ClientOutcome::Valid)
}

/// `server` without a trailing slash, if it is an http(s) URL.
fn base_url(server: &str) -> Result<String, ClientError> {
    let base = server.trim().trim_end_matches('/');
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(base.to_string()),
        _ => Err(ClientError::Usage(format!(
            "--server '{server}': expected an http:// or https:// URL, e.g. http://127.0.0.1:8080"
        ))),
    }
}

/// A 64-digit hex digest, lower-cased.
fn normalize_digest(d: &str) -> Result<String, ClientError> {
    let d = d.trim().to_ascii_lowercase();
    if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(d)
    } else {
        Err(ClientError::Usage(format!(
            "--expect-digest '{d}': expected 64 hex digits (as printed by verinfer inspect)"
        )))
    }
}

type Fetched = (u16, ureq::http::HeaderMap, Vec<u8>);

/// Runs one request and reads its whole answer (bounded).
fn fetch(
    url: &str,
    send: impl FnOnce() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Fetched, ClientError> {
    let network = |e: ureq::Error| ClientError::Network {
        url: url.to_string(),
        msg: e.to_string(),
    };
    let mut resp = send().map_err(network)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(network)?;
    Ok((status, headers, body))
}

/// An error for any status but 200, with the server's `{"error": ...}` message if it sent one.
fn check_status(
    url: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<String>,
) -> Result<(), ClientError> {
    if status == 200 {
        return Ok(());
    }
    if (300..400).contains(&status) {
        return Err(ClientError::Status {
            url: url.to_string(),
            status,
            msg: "redirects are not followed: give the final URL with --server".into(),
        });
    }
    let mut msg = serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(body);
            let line = text.lines().next().unwrap_or("").trim();
            line.chars().take(200).collect()
        });
    if let Some(secs) = retry_after {
        msg.push_str(&format!(" (retry after {secs} s)"));
    }
    Err(ClientError::Status {
        url: url.to_string(),
        status,
        msg: msg.replace('\n', " "),
    })
}

/// Decodes a 200 answer (JSON, or the proof file with the report in headers). A malformed
/// answer is a rejection: the server did not deliver a proof.
fn decode_answer(
    binary: bool,
    headers: &ureq::http::HeaderMap,
    body: Vec<u8>,
) -> Result<Answer, String> {
    let is_binary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(OCTET_STREAM));
    if binary && is_binary {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("the answer has no {name} header"))
        };
        let output = OutputReport::from_json(header(OUTPUT_HEADER)?.as_bytes())
            .map_err(|e| format!("the answer's {OUTPUT_HEADER} header: {e}"))?;
        let digest = header(DIGEST_HEADER)?.to_string();
        let timings = header(TIMINGS_HEADER)
            .ok()
            .and_then(|t| serde_json::from_str(t).ok());
        return Ok(Answer {
            output,
            proof: body,
            digest,
            timings,
        });
    }
    let r: InferResponse =
        serde_json::from_slice(&body).map_err(|e| format!("malformed answer: {e}"))?;
    let proof = base64::engine::general_purpose::STANDARD
        .decode(r.proof.as_bytes())
        .map_err(|e| format!("the answer's proof is not base64: {e}"))?;
    Ok(Answer {
        output: r.output,
        proof,
        digest: r.digest,
        timings: Some(r.timings_ms),
    })
}

/// `values` (row-major) as nested JSON arrays of shape `dims`.
fn nest(values: &[f64], dims: &[usize]) -> serde_json::Value {
    match dims.split_first() {
        None => values
            .first()
            .map_or(serde_json::Value::Null, |&v| serde_json::json!(v)),
        Some((_, [])) => serde_json::json!(values),
        Some((&n, rest)) => {
            let per: usize = rest.iter().product();
            serde_json::Value::Array(
                (0..n)
                    .map(|i| nest(values.get(i * per..(i + 1) * per).unwrap_or(&[]), rest))
                    .collect(),
            )
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    verinfer_cli_core::files::write_regular(path, bytes).map_err(|source| ClientError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nests_row_major() {
        let v: Vec<f64> = (0..12).map(f64::from).collect();
        let n = nest(&v, &[2, 3, 2]);
        assert_eq!(n[1][2][0], serde_json::json!(10.0));
        assert_eq!(n[0][0], serde_json::json!([0.0, 1.0]));
        let shape = [3, 2];
        let back =
            verinfer_cli_core::files::parse_input_json(n.to_string().as_bytes(), &shape).unwrap();
        assert_eq!((back.batch, back.values), (2, v));
    }

    #[test]
    fn urls_and_digests() {
        assert_eq!(base_url("http://h:1/").unwrap(), "http://h:1");
        assert!(base_url("h:1").is_err());
        assert!(base_url("http://").is_err());
        assert!(normalize_digest(&"AB".repeat(32)).is_ok());
        assert!(normalize_digest("abc").is_err());
        assert!(normalize_digest(&"zz".repeat(32)).is_err());
    }
}
