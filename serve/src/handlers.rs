//! Routes and request handling. Everything a client sends is untrusted: each failure is an
//! [`ApiError`] answered as `{"error": "..."}` with its status; proving runs on the dedicated
//! rayon pool, never on the async executor.

use super::api::{
    ErrorBody, InferResponse, Timings, DIGEST_HEADER, HEALTH_ROUTE, INFER_ROUTE, METRICS_ROUTE,
    MODEL_ROUTE, OCTET_STREAM, OUTPUT_HEADER, TIMINGS_HEADER,
};
use super::metrics::{Metrics, QueueGauges};
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};
use verinfer_circuits::circuit::LayeredCircuit;
use verinfer_circuits::quant::quantize_input;
use verinfer_cli_core::engine::{prove_any, Proved};
use verinfer_cli_core::report::OutputReport;
use verinfer_cli_core::shaped::{self, ShapedError, Wrapper};
use verinfer_prover::ProveError;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    /// The compiled model.
    pub circuit: Arc<LayeredCircuit>,
    /// Per-item input shape.
    pub input_shape: Vec<usize>,
    /// The declared input range.
    pub input_range: [f64; 2],
    /// The `/v1/model` answer, serialized once.
    pub info_json: String,
    /// The circuit digest, hex.
    pub digest: String,
    /// The proving threads.
    pub pool: Arc<rayon::ThreadPool>,
    /// One permit per proving job accepted (being proved or waiting).
    pub permits: Arc<Semaphore>,
    /// Permits in all.
    pub capacity: usize,
    /// Proving threads.
    pub workers: usize,
    /// Largest batch per request.
    pub max_batch: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time a client gets to send its body.
    pub body_timeout: Duration,
    /// Seconds suggested in `Retry-After` when the queue is full.
    pub retry_after_secs: u64,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    fn gauges(&self) -> QueueGauges {
        QueueGauges {
            depth: self
                .capacity
                .saturating_sub(self.permits.available_permits()),
            capacity: self.capacity,
            workers: self.workers,
        }
    }
}

/// The service: routes, JSON 404 / 405, and request counting.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(HEALTH_ROUTE, get(health))
        .route(MODEL_ROUTE, get(model))
        .route(METRICS_ROUTE, get(metrics))
        .route(INFER_ROUTE, post(infer))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// A refused or failed request.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    /// Label of the `verinfer_rejected_requests_total` counter.
    reason: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&ErrorBody {
            error: self.message,
        })
        .unwrap_or_default();
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Counts every answer by route and status.
async fn track(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = match req.uri().path() {
        HEALTH_ROUTE => HEALTH_ROUTE,
        MODEL_ROUTE => MODEL_ROUTE,
        METRICS_ROUTE => METRICS_ROUTE,
        INFER_ROUTE => INFER_ROUTE,
        _ => "other",
    };
    let resp = next.run(req).await;
    s.metrics.request(route, resp.status().as_u16());
    resp
}

async fn health() -> Response {
    json_response(StatusCode::OK, "{\"status\":\"ok\"}".into())
}

async fn model(State(s): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, s.info_json.clone())
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(s.gauges()),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        "method not allowed on this route",
    )
}

async fn infer(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    match infer_inner(&s, &headers, body, start).await {
        Ok(resp) => resp,
        Err(e) => {
            s.metrics.reject(e.reason);
            e.into_response()
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn infer_inner(
    s: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    start: Instant,
) -> Result<Response, ApiError> {
    check_content_type(headers)?;
    let binary = wants_binary(headers);
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {} bytes", s.max_body_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body_bytes as u64) {
        return Err(too_large());
    }
    // Admission comes first: a request holds its proving permit from before its body is read
    // until its proof is done, so at most workers + queue bodies are in memory and being
    // parsed at once, and the rest are refused before a byte of their bodies is read.
    let permit = s
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError {
            retry_after: Some(s.retry_after_secs),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                "the proving queue is full; retry later",
            )
        })?;
    let capacity = declared.map_or(0, |n| n.min(s.max_body_bytes as u64) as usize);
    let bytes = tokio::time::timeout(s.body_timeout, read_body(body, capacity, s.max_body_bytes))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body took over {} s to arrive",
                    s.body_timeout.as_secs()
                ),
            )
        })?
        .map_err(|e| match e {
            BodyError::TooLarge => too_large(),
            BodyError::Read(msg) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_read",
                format!("cannot read the request body: {msg}"),
            ),
        })?;

    // Parsing and quantizing are CPU work proportional to the body: off the executor.
    let (circuit, shape, max_batch) = (s.circuit.clone(), s.input_shape.clone(), s.max_batch);
    let range = s.input_range;
    let ints = tokio::task::spawn_blocking(move || {
        parse_request(&bytes, &shape, range, &circuit, max_batch)
    })
    .await
    .map_err(|_| internal("the request parser failed"))??;
    let batch = ints.len() / s.circuit.input.item_len().max(1);
    let (tx, rx) = oneshot::channel::<(f64, JobResult)>();
    let circuit = s.circuit.clone();
    let metrics = s.metrics.clone();
    let enqueued = Instant::now();
    s.pool.spawn(move || {
        let queue_ms = ms(enqueued.elapsed());
        let result =
            std::panic::catch_unwind(AssertUnwindSafe(|| prove_any(&circuit, &ints, &mut |_| {})));
        let result = match result {
            Ok(Ok(proved)) => {
                metrics.proved(batch, proved.report.total_ms / 1e3);
                JobResult::Proved(proved)
            }
            Ok(Err(e)) => {
                metrics.failed();
                JobResult::Failed(e)
            }
            Err(_) => {
                metrics.failed();
                JobResult::Panicked
            }
        };
        // The client may have gone away: the proof is then dropped.
        let _ = tx.send((queue_ms, result));
        drop(permit);
    });
    let (queue_ms, result) = rx.await.map_err(|_| internal("the proving job was lost"))?;
    let proved = match result {
        JobResult::Proved(p) => p,
        JobResult::Failed(ProveError::Input(msg)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "prove_input",
                format!("the input cannot be proved: {msg}"),
            ))
        }
        JobResult::Failed(e) => return Err(internal(&format!("proving failed: {e}"))),
        JobResult::Panicked => return Err(internal("the prover failed unexpectedly")),
    };

    let report = OutputReport::new(&s.circuit, &proved.output);
    let timings = Timings {
        queue: queue_ms,
        witness: proved.report.witness_ms,
        prove: (proved.report.total_ms - proved.report.witness_ms).max(0.0),
        total: ms(start.elapsed()),
    };
    if binary {
        let output = compact_header(&report)?;
        let timings = compact_header(&timings)?;
        let digest = header_value(&s.digest)?;
        let mut resp = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))],
            proved.proof,
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(HeaderName::from_static(OUTPUT_HEADER), output);
        h.insert(HeaderName::from_static(DIGEST_HEADER), digest);
        h.insert(HeaderName::from_static(TIMINGS_HEADER), timings);
        return Ok(resp);
    }
    let answer = InferResponse {
        output: report,
        proof: base64::engine::general_purpose::STANDARD.encode(&proved.proof),
        digest: s.digest.clone(),
        timings_ms: timings,
    };
    let body = serde_json::to_string(&answer).map_err(|_| internal("cannot encode the answer"))?;
    Ok(json_response(StatusCode::OK, body))
}

/// `value` as compact JSON in a header.
fn compact_header<T: serde::Serialize>(value: &T) -> Result<HeaderValue, ApiError> {
    let json = serde_json::to_string(value).map_err(|_| internal("cannot encode a header"))?;
    header_value(&json)
}

fn header_value(s: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(s).map_err(|_| internal("a header value is not visible ASCII"))
}

enum JobResult {
    Proved(Proved),
    Failed(ProveError),
    Panicked,
}

fn internal(msg: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg)
}

/// Refuses bodies not declared as JSON, including bodies that declare no `Content-Type` at
/// all (README: 415).
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|ct| ct.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type",
            "the request body must be application/json: {\"input\": [...]}",
        )),
    }
}

/// Whether the client asked for the raw proof file (`Accept: application/octet-stream`).
fn wants_binary(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(OCTET_STREAM))
        })
}

enum BodyError {
    TooLarge,
    Read(String),
}

/// Reads the whole body into a buffer of `capacity` bytes (the declared length, so that it is
/// not grown and copied along the way), refusing it as soon as it passes `limit` bytes.
async fn read_body(mut body: Body, capacity: usize, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(capacity);
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The quantized input of a request body `{"input": [...]}`: 400 for malformed JSON or another
/// structure, 422 for a wrong shape or values out of range, 413 for a batch over `max_batch`.
/// The body is parsed against the input shape as it is read ([`verinfer_cli_core::shaped`]):
/// only the numbers are stored, and a wrong body is refused at its first mistake.
fn parse_request(
    bytes: &[u8],
    shape: &[usize],
    range: [f64; 2],
    circuit: &LayeredCircuit,
    max_batch: usize,
) -> Result<Vec<i128>, ApiError> {
    let batch = shaped::parse(bytes, shape, Wrapper::Object, max_batch).map_err(|e| match e {
        ShapedError::Syntax(msg) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {msg}"),
        ),
        ShapedError::NotInput(msg) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", msg),
        ShapedError::Shape(msg) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "shape",
            format!("input: {msg}"),
        ),
        ShapedError::BatchTooLarge { max } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch of more than {max} items is over this server's limit of {max}"),
        ),
    })?;
    let out_of_range = |msg: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "range",
            format!("input: {msg}"),
        )
    };
    batch.check_range(range).map_err(out_of_range)?;
    quantize_input(circuit, &batch.values).map_err(|e| out_of_range(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accept_and_content_type() {
        let mut h = HeaderMap::new();
        assert!(!wants_binary(&h));
        assert_eq!(
            check_content_type(&h).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, application/octet-stream;q=0.9"),
        );
        assert!(wants_binary(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            check_content_type(&h).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn request_classes() {
        let c = verinfer_cli_core::demo::circuit().unwrap();
        let shape = [1, 8, 8];
        let one = serde_json::json!({ "input": vec![vec![vec![0.5; 8]; 8]; 1] }).to_string();
        assert_eq!(
            parse_request(one.as_bytes(), &shape, [0.0, 1.0], &c, 4)
                .unwrap()
                .len(),
            64
        );
        let status = |body: &str, max: usize| {
            parse_request(body.as_bytes(), &shape, [0.0, 1.0], &c, max)
                .unwrap_err()
                .status
        };
        assert_eq!(status("{\"input\": [", 4), StatusCode::BAD_REQUEST);
        assert_eq!(status("[1, 2]", 4), StatusCode::BAD_REQUEST);
        assert_eq!(
            status("{\"input\": [[1, 2]]}", 4),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let far = serde_json::json!({ "input": vec![vec![vec![99.0; 8]; 8]; 1] }).to_string();
        assert_eq!(status(&far, 4), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status(&one, 0), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
