//! Supplementary, noise-robust estimate for a busy machine: runs the two contenders
//! back to back (alternating which goes first), `reps` times per size and thread count, and
//! reports the median and min of the per-pair ratios time(ark) / time(verinfer). A load spike
//! then hits both halves of a pair, instead of one contender's whole criterion run.
//! Same calls, same pools, same untimed setup as `benches/compare.rs`.
//!
//! For the 1-thread cells it also reports the ratio of *thread CPU time* (from
//! `/proc/thread-self/schedstat`, read on the pool's single worker thread around the call), which
//! ignores time the prover spent preempted by other processes (not cache/memory contention).
//!
//! Usage: `cargo run --profile bench --bin paired -- [sizes, default 18,20] [reps, default 15]`
use std::hint::black_box;
use std::time::{Duration, Instant};

use compare_ark_linear_sumcheck::{ark_prove, check, verinfer_prove, Instance};

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let out = black_box(f());
    (t.elapsed(), out)
}

/// CPU time consumed so far by the calling thread, ns (Linux `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` on the pool; returns (wall ms, CPU ms of the thread that ran `f`, output).
fn run_in<T: Send>(pool: &rayon::ThreadPool, f: impl FnOnce() -> T + Send) -> (f64, f64, T) {
    let (wall, (cpu, out)) = time(|| {
        pool.install(|| {
            let c0 = thread_cpu_ns();
            let out = f();
            let cpu = match (c0, thread_cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e6,
                _ => f64::NAN,
            };
            (cpu, out)
        })
    });
    (wall.as_secs_f64() * 1e3, cpu, out)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sizes: Vec<usize> = args
        .next()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![18, 20]);
    let reps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let all = rayon::ThreadPoolBuilder::new().build().expect("pool");
    println!(
        "paired runs: {reps} pairs per cell, all_threads = {} threads",
        all.current_num_threads()
    );
    println!(
        "{:<8} {:<12} {:>14} {:>14} {:>14} {:>14} {:>12} {:>12}",
        "size", "threads", "verinfer med", "verinfer min", "ark med", "ark min", "ratio med", "ratio min"
    );
    for log in sizes {
        let inst = Instance::random(log);
        check(&inst);
        for (label, pool) in [("1thread", &one), ("all_threads", &all)] {
            let run_v = || {
                let (a, b) = (inst.a05.clone(), inst.b05.clone());
                let (w, c, out) = run_in(pool, || verinfer_prove(a, b, inst.claim05));
                drop(out);
                (w, c)
            };
            let run_a = || {
                let (a, b) = inst.ark_mles();
                let (w, c, out) = run_in(pool, || ark_prove(a, b));
                drop(out);
                (w, c)
            };
            // warm-up
            run_v();
            run_a();
            let (mut tv, mut ta, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
            let (mut cv, mut ca, mut cratio) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..reps {
                let (v, a) = if i % 2 == 0 {
                    let v = run_v();
                    (v, run_a())
                } else {
                    let a = run_a();
                    (run_v(), a)
                };
                tv.push(v.0);
                ta.push(a.0);
                ratio.push(a.0 / v.0);
                cv.push(v.1);
                ca.push(a.1);
                cratio.push(a.1 / v.1);
            }
            let vmin = tv.iter().copied().fold(f64::INFINITY, f64::min);
            let amin = ta.iter().copied().fold(f64::INFINITY, f64::min);
            let rmin = ratio.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "2^{:<6} {:<12} {:>11.2} ms {:>11.2} ms {:>11.2} ms {:>11.2} ms {:>11.2}x {:>11.2}x",
                log,
                label,
                median(&mut tv),
                vmin,
                median(&mut ta),
                amin,
                median(&mut ratio),
                rmin
            );
            if pool.current_num_threads() == 1 {
                let cvmin = cv.iter().copied().fold(f64::INFINITY, f64::min);
                let camin = ca.iter().copied().fold(f64::INFINITY, f64::min);
                let crmin = cratio.iter().copied().fold(f64::INFINITY, f64::min);
                println!(
                    "2^{:<6} {:<12} {:>11.2} ms {:>11.2} ms {:>11.2} ms {:>11.2} ms {:>11.2}x {:>11.2}x",
                    log,
                    "1thread-cpu",
                    median(&mut cv),
                    cvmin,
                    median(&mut ca),
                    camin,
                    median(&mut cratio),
                    crmin
                );
            }
        }
    }
}
