//! Load test of a running `verinfer serve` on the digits model (loopback; bounded in requests
//! and time): requests per second and p50 / p99 latency at several concurrency levels.
//!
//! ```text
//! verinfer serve --model models/digits/digits_square_plus_x.onnx --addr 127.0.0.1:8080 &
//! cargo run --release -p verinfer-serve --example loadtest -- --server http://127.0.0.1:8080 \
//!     --requests 400 --concurrency 1,4,16
//! ```
//! or `tools/loadtest/run.sh`, which starts and stops the server itself.
//!
//! Each request is one held-out digit image (`{"input": [1][8][8]}`), answered with the output
//! and its proof. With `--verify`, every answer is also verified here (on the same machine, so
//! the verifier competes with the prover for the cores).

use clap::Parser;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use verinfer_cli_core::demo::TestSet;
use verinfer_serve::api::InferResponse;

/// Load-test a verinfer server.
#[derive(Parser, Debug)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Requests per concurrency level (at most 100000).
    #[arg(long, default_value_t = 400)]
    requests: usize,
    /// Concurrency levels, comma-separated (each at most 256).
    #[arg(long, default_value = "1,4,16", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Images per request.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Stop a level after this many seconds even if requests remain.
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// Verify every proof locally with the embedded model.
    #[arg(long)]
    verify: bool,
}

/// One level's measurements.
#[derive(Default)]
struct Level {
    latencies_ms: Vec<f64>,
    server_prove_ms: Vec<f64>,
    errors: usize,
    busy: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    if args.requests == 0 || args.requests > 100_000 {
        return Err("--requests must be between 1 and 100000".into());
    }
    if args.concurrency.iter().any(|&c| c == 0 || c > 256) {
        return Err("each concurrency level must be between 1 and 256".into());
    }
    let test = TestSet::embedded()?;
    let bodies: Vec<String> = (0..test.images.len())
        .map(|i| {
            let imgs: Vec<_> = (0..args.batch)
                .map(|k| &test.images[(i + k) % test.images.len()])
                .collect();
            serde_json::json!({ "input": imgs }).to_string()
        })
        .collect();
    let circuit = if args.verify {
        Some(verinfer_cli_core::demo::circuit()?)
    } else {
        None
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_idle_connections_per_host(256)
        .build()
        .into();
    let url = format!("{}/v1/infer", args.server.trim_end_matches('/'));

    let one = |i: usize, level: &Mutex<Level>| {
        let body = &bodies[i % bodies.len()];
        let t = Instant::now();
        let resp = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.as_bytes());
        let result = resp.map_err(|e| e.to_string()).and_then(|mut r| {
            let status = r.status().as_u16();
            let bytes = r.body_mut().read_to_vec().map_err(|e| e.to_string())?;
            Ok((status, bytes))
        });
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let mut l = level.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok((200, bytes)) => {
                let Ok(answer) = serde_json::from_slice::<InferResponse>(&bytes) else {
                    l.errors += 1;
                    return;
                };
                drop(l);
                let valid = circuit
                    .as_ref()
                    .is_none_or(|c| verify(c, &test, i, &args, &answer));
                let mut l = level.lock().unwrap_or_else(|e| e.into_inner());
                if valid {
                    l.latencies_ms.push(ms);
                    l.server_prove_ms
                        .push(answer.timings_ms.witness + answer.timings_ms.prove);
                } else {
                    l.errors += 1;
                }
            }
            Ok((503, _)) => l.busy += 1,
            _ => l.errors += 1,
        }
    };

    // Warm-up: connections and caches.
    let warm = Mutex::new(Level::default());
    for i in 0..8 {
        one(i, &warm);
    }
    if warm
        .lock()
        .map(|l| l.latencies_ms.is_empty())
        .unwrap_or(true)
    {
        return Err(format!("no answer from {url}"));
    }

    println!(
        "| concurrency | requests | ok | 503 | errors | req/s | p50 ms | p99 ms | server prove p50 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &c in &args.concurrency {
        let next = AtomicUsize::new(0);
        let level = Mutex::new(Level::default());
        // `None`: a limit too far away to represent, i.e. none.
        let deadline = Instant::now().checked_add(Duration::from_secs(args.max_secs));
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..c {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.requests || deadline.is_some_and(|d| Instant::now() > d) {
                        break;
                    }
                    one(i, &level);
                });
            }
        });
        let wall = start.elapsed().as_secs_f64();
        let mut l = level.into_inner().unwrap_or_else(|e| e.into_inner());
        l.latencies_ms.sort_by(f64::total_cmp);
        l.server_prove_ms.sort_by(f64::total_cmp);
        let ok = l.latencies_ms.len();
        println!(
            "| {c} | {} | {ok} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            ok + l.busy + l.errors,
            l.busy,
            l.errors,
            ok as f64 / wall,
            percentile(&l.latencies_ms, 50.0),
            percentile(&l.latencies_ms, 99.0),
            percentile(&l.server_prove_ms, 50.0),
        );
    }
    Ok(())
}

/// Whether `answer` verifies against request `i`'s input.
fn verify(
    circuit: &verinfer_circuits::circuit::LayeredCircuit,
    test: &TestSet,
    i: usize,
    args: &Args,
    answer: &InferResponse,
) -> bool {
    use base64::Engine as _;
    let n = test.images.len();
    let values: Vec<f64> = (0..args.batch)
        .flat_map(|k| test.image((i % n + k) % n))
        .collect();
    let Ok(input) = verinfer_circuits::quant::quantize_input(circuit, &values) else {
        return false;
    };
    let Ok(proof) = base64::engine::general_purpose::STANDARD.decode(&answer.proof) else {
        return false;
    };
    verinfer_cli_core::engine::verify_any(circuit, &input, &proof)
        .is_ok_and(|v| answer.output.integers().ok() == Some(v.output))
}
