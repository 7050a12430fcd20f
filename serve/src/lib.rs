//! verinfer-serve: verinfer over HTTP — the server that proves every inference (`verinfer
//! serve`, [`run`]) and the client that verifies its answers ([`client`],
//! `verinfer client`), with the wire format both speak ([`api`]).
//!
//! The server compiles the model once, then answers `POST /v1/infer` with the output and its
//! proof (see [`api`] for the wire format). Requests are parsed and checked on the async executor
//! (tokio) and its blocking pool; proofs run on a dedicated rayon pool of `--workers` threads.
//! At most `--workers + --queue` requests are accepted at once, counted from before their bodies
//! are read until their proofs are done; past that, requests get 503 with `Retry-After`. On SIGINT or SIGTERM the server stops accepting connections, answers the
//! requests in flight (their proofs finish) and exits.
//!
//! The server keeps no state between requests, so any number of instances can run behind an
//! HTTP load balancer.
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
mod handlers;
pub mod metrics;

use api::{Limits, ModelInfo};
use handlers::{router, AppState};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics::Metrics;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Semaphore;
use verinfer_cli_core::args::{check_threads, cores, ArgsError, ModelArgs};

/// Flags of `verinfer serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    /// The model and its quantization; clients must compile it with the same flags.
    pub model: ModelArgs,
    /// Address to listen on. With port 0 the OS picks a free port; the address is printed as
    /// "listening on http://HOST:PORT".
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: String,
    /// Largest batch a request may carry (413 past it).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_batch: usize,
    /// Proving threads: a dedicated pool (default: all cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Requests that may wait for a proving thread besides those being proved; more get 503.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub queue: usize,
    /// Largest request body in bytes (413 past it).
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Memory budget of one proof (e.g. 8G, 512M): --max-batch is lowered to the largest batch
    /// whose estimated proving memory fits it (default: half the physical memory).
    #[arg(long, value_name = "SIZE", value_parser = verinfer_cli_core::args::parse_bytes)]
    pub max_memory: Option<u64>,
    /// Seconds a connection may wait before its request head (line and headers) has arrived,
    /// counted from when it opens and again after each answer: it closes half-sent heads and
    /// idle keep-alive connections alike.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub header_timeout_secs: u64,
    /// Seconds a client gets to send its request body (408 past it).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub body_timeout_secs: u64,
    /// After SIGINT / SIGTERM, seconds the requests in flight get to finish before the
    /// remaining connections are closed (accepted proofs still finish before exit).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub shutdown_grace_secs: u64,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The model could not be loaded or compiled.
    #[error(transparent)]
    Model(#[from] ArgsError),
    /// A flag is out of range.
    #[error("{0}")]
    Usage(String),
    /// The proving pool could not be created.
    #[error("cannot start the proving threads: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    /// The async runtime could not be created.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address given.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model description could not be encoded.
    #[error("cannot describe the model: {0}")]
    Describe(serde_json::Error),
}

/// Largest `--workers + --queue` (the semaphore counts permits in `u32`).
const MAX_CAPACITY: usize = 1 << 20;

/// Runs the server until SIGINT / SIGTERM, finishing in-flight proofs.
pub fn run(args: &ServeArgs) -> Result<(), ServeError> {
    let workers = match args.workers {
        Some(n) => check_threads("--workers", n).map_err(ServeError::Usage)?,
        None => cores(),
    };
    if args.max_batch == 0 {
        return Err(ServeError::Usage("--max-batch must be at least 1".into()));
    }
    let capacity = workers.saturating_add(args.queue);
    if capacity > MAX_CAPACITY {
        return Err(ServeError::Usage(format!(
            "--workers plus --queue must be at most {MAX_CAPACITY}"
        )));
    }
    let compiled = args.model.compile()?;
    for note in &compiled.loaded.notes {
        eprintln!("note: {note}");
    }
    let circuit = compiled.circuit;
    // Requests are refused past --max-batch as they are parsed, so lowering it to what the
    // memory budget allows applies the budget to every request, before its proof allocates.
    let budget = args
        .max_memory
        .unwrap_or_else(verinfer_cli_core::args::default_memory_budget);
    let fits = verinfer_circuits::memory::largest_batch(&circuit, budget);
    if fits == 0 {
        return Err(ServeError::Usage(
            verinfer_cli_core::args::check_batch_memory(&circuit, 1, budget)
                .err()
                .unwrap_or_default(),
        ));
    }
    let max_batch = if fits < args.max_batch {
        eprintln!(
            "note: --max-batch lowered from {} to {fits}: the largest batch whose proof fits the \
             memory budget of {}",
            args.max_batch,
            verinfer_cli_core::args::show_bytes(budget)
        );
        fits
    } else {
        args.max_batch
    };
    let input_shape = compiled.loaded.model.input_shape.clone();
    let input_range = compiled.loaded.model.input_range;
    let info = ModelInfo::new(
        &circuit,
        &input_shape,
        input_range,
        Limits {
            max_batch,
            max_body_bytes: args.max_body_bytes,
            workers,
            queue: args.queue,
        },
    );
    let info_json = serde_json::to_string(&info).map_err(ServeError::Describe)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("verinfer-prove-{i}"))
        .panic_handler(|_| eprintln!("error: a proving thread panicked"))
        .build()?;
    let state = Arc::new(AppState {
        circuit: Arc::new(circuit),
        input_shape,
        input_range,
        info_json,
        digest: info.circuit.digest.clone(),
        pool: Arc::new(pool),
        permits: Arc::new(Semaphore::new(capacity)),
        capacity,
        workers,
        max_batch,
        max_body_bytes: args.max_body_bytes,
        body_timeout: Duration::from_secs(args.body_timeout_secs),
        retry_after_secs: 1,
        metrics: Arc::new(Metrics::default()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_name("verinfer-http")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    eprintln!(
        "serving {} (digest {}, field {}) with {workers} proving threads, queue {}, max batch {}",
        info.circuit.name, info.circuit.digest, info.circuit.field, args.queue, max_batch
    );
    runtime.block_on(serve(state, args))
}

async fn serve(state: Arc<AppState>, args: &ServeArgs) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: args.addr.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: args.addr.clone(),
        source,
    })?;
    verinfer_cli_core::outln!("listening on http://{local}");
    let _ = std::io::stdout().flush();

    let app = router(state.clone());
    // hyper's header-read timeout runs whenever a connection waits for a request head: from
    // the moment it opens, and again after each answer. So it bounds a half-sent head and an
    // idle keep-alive connection alike, and neither holds a file descriptor, nor a stopping
    // server, for longer.
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(args.header_timeout_secs.max(1)));
    let graceful = GracefulShutdown::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, a connection reset before it was accepted:
                        // keep serving the connections already open and try again shortly.
                        eprintln!("warning: cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    // A connection that fails (reset, timed out) concerns that client only.
                    let _ = conn.await;
                });
            }
            () = &mut signal => break,
        }
    }
    eprintln!("shutting down: answering the requests in flight");
    drop(listener);
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            eprintln!("shutdown grace of {} s expired: closing the remaining connections", grace.as_secs());
        }
    }
    // Every accepted proof finishes, even one whose client has gone away.
    let all = u32::try_from(state.capacity).unwrap_or(u32::MAX);
    let _ = state.permits.acquire_many(all).await;
    eprintln!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
