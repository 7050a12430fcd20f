//! The server's counters, rendered in the Prometheus text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Upper bounds (seconds) of the proving-time histogram buckets.
pub const PROVE_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters of a running server. Every method is cheap and never panics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    rejects: Mutex<BTreeMap<&'static str, u64>>,
    proofs: AtomicU64,
    items: AtomicU64,
    failures: AtomicU64,
    prove: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; PROVE_BUCKETS.len()],
    count: u64,
    sum: f64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The state of the proving queue when the metrics are rendered.
#[derive(Clone, Copy, Debug)]
pub struct QueueGauges {
    /// Jobs accepted and not finished (being proved or waiting).
    pub depth: usize,
    /// Jobs that may be accepted at once (workers + queue).
    pub capacity: usize,
    /// Proving threads.
    pub workers: usize,
}

impl Metrics {
    /// Counts an answered request.
    pub fn request(&self, route: &'static str, status: u16) {
        *lock(&self.requests).entry((route, status)).or_default() += 1;
    }

    /// Counts a refused request by reason (bad JSON, shape, range, too large, queue full, ...).
    pub fn reject(&self, reason: &'static str) {
        *lock(&self.rejects).entry(reason).or_default() += 1;
    }

    /// Counts a finished proof of `items` batch items that took `seconds`.
    pub fn proved(&self, items: usize, seconds: f64) {
        self.proofs.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items as u64, Ordering::Relaxed);
        let mut h = lock(&self.prove);
        h.count += 1;
        h.sum += seconds;
        for (bound, count) in PROVE_BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
    }

    /// Counts a proof that failed (an internal error).
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, queue: QueueGauges) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP verinfer_http_requests_total HTTP requests answered, by route and status."
        );
        let _ = writeln!(s, "# TYPE verinfer_http_requests_total counter");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                s,
                "verinfer_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP verinfer_rejected_requests_total Inference requests refused, by reason."
        );
        let _ = writeln!(s, "# TYPE verinfer_rejected_requests_total counter");
        for (reason, n) in lock(&self.rejects).iter() {
            let _ = writeln!(
                s,
                "verinfer_rejected_requests_total{{reason=\"{reason}\"}} {n}"
            );
        }
        scalar(
            &mut s,
            "counter",
            "verinfer_proofs_total",
            "Proofs made.",
            self.proofs.load(Ordering::Relaxed),
        );
        scalar(
            &mut s,
            "counter",
            "verinfer_proved_items_total",
            "Batch items proved.",
            self.items.load(Ordering::Relaxed),
        );
        scalar(
            &mut s,
            "counter",
            "verinfer_proof_failures_total",
            "Proofs that failed with an internal error.",
            self.failures.load(Ordering::Relaxed),
        );
        {
            let h = lock(&self.prove);
            let name = "verinfer_prove_seconds";
            let _ = writeln!(
                s,
                "# HELP {name} Proving time per request (witness included, queue excluded)."
            );
            let _ = writeln!(s, "# TYPE {name} histogram");
            for (bound, count) in PROVE_BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(s, "{name}_bucket{{le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "{name}_sum {}", h.sum);
            let _ = writeln!(s, "{name}_count {}", h.count);
        }
        scalar(
            &mut s,
            "gauge",
            "verinfer_queue_depth",
            "Proving jobs accepted and not finished.",
            queue.depth as u64,
        );
        scalar(
            &mut s,
            "gauge",
            "verinfer_queue_capacity",
            "Proving jobs accepted at most at once (workers + queue).",
            queue.capacity as u64,
        );
        scalar(
            &mut s,
            "gauge",
            "verinfer_workers",
            "Proving threads.",
            queue.workers as u64,
        );
        s
    }
}

/// One counter or gauge without labels.
fn scalar(s: &mut String, kind: &str, name: &str, help: &str, value: u64) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
    let _ = writeln!(s, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/v1/infer", 200);
        m.request("/v1/infer", 200);
        m.request("/v1/infer", 400);
        m.reject("malformed_json");
        m.proved(3, 0.003);
        m.proved(1, 0.2);
        let text = m.render(QueueGauges {
            depth: 1,
            capacity: 4,
            workers: 2,
        });
        assert!(text.contains("verinfer_http_requests_total{route=\"/v1/infer\",status=\"200\"} 2"));
        assert!(text.contains("verinfer_rejected_requests_total{reason=\"malformed_json\"} 1"));
        assert!(text.contains("verinfer_proofs_total 2"));
        assert!(text.contains("verinfer_proved_items_total 4"));
        assert!(text.contains("verinfer_prove_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("verinfer_prove_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("verinfer_prove_seconds_bucket{le=\"0.25\"} 2"));
        assert!(text.contains("verinfer_prove_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("verinfer_queue_depth 1"));
    }
}
