//! Prints the medians/minima of the last `cargo bench` run and the speed-up of verinfer over
//! ark-linear-sumcheck (time_ark / time_verinfer), read from criterion's JSON output.
//!
//! Usage: `cargo run --release --bin ratio [-- <criterion dir>]`
//! (default `$CARGO_TARGET_DIR/criterion`, else `target/criterion`).
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

const TARGET_SPEEDUP: f64 = 1.6;

#[derive(Clone, Copy, Debug)]
struct Stat {
    median_ns: f64,
    min_ns: f64,
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(p).ok()?).ok()
}

/// Every `<dir>/new/benchmark.json` below `root`, as (group, function, value) -> stats.
fn collect(root: &Path, out: &mut BTreeMap<(String, String, String), Stat>) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if p.file_name().is_some_and(|n| n == "new") {
            let (Some(b), Some(est), Some(sample)) = (
                read_json(&p.join("benchmark.json")),
                read_json(&p.join("estimates.json")),
                read_json(&p.join("sample.json")),
            ) else {
                continue;
            };
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            let key = (s(&b["group_id"]), s(&b["function_id"]), s(&b["value_str"]));
            let median_ns = est["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
            let (iters, times) = (&sample["iters"], &sample["times"]);
            let min_ns = iters
                .as_array()
                .into_iter()
                .flatten()
                .zip(times.as_array().into_iter().flatten())
                .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
                .fold(f64::INFINITY, f64::min);
            out.insert(key, Stat { median_ns, min_ns });
        } else {
            collect(&p, out);
        }
    }
}

fn ms(ns: f64) -> String {
    format!("{:9.2} ms", ns / 1e6)
}

fn main() {
    let root: PathBuf = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("target"))
            .join("criterion")
    });
    let mut all = BTreeMap::new();
    collect(&root, &mut all);
    if all.is_empty() {
        eprintln!("no criterion results under {}; run `cargo bench` first", root.display());
        std::process::exit(1);
    }

    println!("criterion results under {}\n", root.display());
    println!(
        "{:<34} {:<12} {:<28} {:>12} {:>12}",
        "group", "threads", "contender", "median", "min"
    );
    for ((g, f, v), s) in &all {
        println!("{g:<34} {v:<12} {f:<28} {} {}", ms(s.median_ns), ms(s.min_ns));
    }

    println!(
        "\nspeed-up = time(ark-linear-sumcheck) / time(verinfer); target >= {TARGET_SPEEDUP}\n"
    );
    println!(
        "{:<34} {:<12} {:>14} {:>14} {:>22}  {}",
        "group", "threads", "median ratio", "min ratio", "median ratio (noclone)", "target"
    );
    let groups: Vec<(String, String)> = all
        .keys()
        .filter(|(g, _, _)| g.starts_with("sumcheck_bn254"))
        .map(|(g, _, v)| (g.clone(), v.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for (g, v) in groups {
        let get = |f: &str| all.get(&(g.clone(), f.to_string(), v.clone())).copied();
        let (Some(vi), Some(ark)) = (get("verinfer"), get("ark_linear_sumcheck")) else {
            continue;
        };
        let med = ark.median_ns / vi.median_ns;
        let min = ark.min_ns / vi.min_ns;
        let nc = get("ark_linear_sumcheck_noclone")
            .map(|n| format!("{:.2}x", n.median_ns / vi.median_ns))
            .unwrap_or_else(|| "-".into());
        let ok = if med >= TARGET_SPEEDUP { "PASS" } else { "FAIL" };
        println!("{g:<34} {v:<12} {:>13.2}x {:>13.2}x {nc:>22}  {ok}", med, min);
    }
    if let (Some(a), Some(b)) = (
        all.get(&(
            "field_baseline/inner_product_2^16".into(),
            "ark_ff_0.4".into(),
            String::new(),
        )),
        all.get(&(
            "field_baseline/inner_product_2^16".into(),
            "ark_ff_0.5".into(),
            String::new(),
        )),
    ) {
        println!(
            "\nfield baseline (2^16 multiply-adds, 1 thread): ark-ff 0.4 / ark-ff 0.5 = {:.2}x (median)",
            a.median_ns / b.median_ns
        );
    }
}
