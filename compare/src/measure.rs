//! The driver: every row (activation × lowering) proved and verified once for its static
//! figures, then `--repeat` times round-robin for the timings, whose medians are reported.

use crate::accuracy::accuracy;
use crate::activations::{parse_activations, preset, Choice, PRESETS};
use crate::args::{Arch, CompareArgs, Lowerings};
use crate::variants::{params_for, variant, Source, Variant};
use crate::{CompareError, Comparison, Row};
use std::sync::Arc;
use std::time::Instant;
use verinfer_circuits::circuit::{LayeredCircuit, Op};
use verinfer_circuits::field::{from_i128, to_i128, Bn254, FieldId, ProofField, M127};
use verinfer_circuits::gates::GateCircuit;
use verinfer_circuits::lower::{lower_to_gates_with_limits, lowered_stats_with_limits, GateLimits};
use verinfer_circuits::model::{Activation, Layer};
use verinfer_cli_core::demo::TestSet;
use verinfer_cli_core::engine::{proof_shapes, prove_any, verify_any};
use verinfer_cli_core::files::load_model;
use verinfer_verifier::Proof;

/// Largest `--batch`.
pub const MAX_BATCH: usize = 1 << 16;

/// Gate circuits kept in memory between runs up to this many gates in all (32 bytes each);
/// larger lowerings are rebuilt, untimed, before each run.
const GATE_CACHE: usize = 1 << 25;

/// A row being measured.
struct Bench {
    row: Row,
    kind: Kind,
    samples: Vec<[f64; 3]>,
}

enum Kind {
    Skipped,
    Structured {
        circuit: Arc<LayeredCircuit>,
        input: Arc<Vec<i128>>,
    },
    Gates {
        circuit: Arc<LayeredCircuit>,
        input: Arc<Vec<i128>>,
        cached: Option<GateCircuit>,
        limits: GateLimits,
    },
}

/// One proof and verification of a row.
struct Run {
    witness_ms: f64,
    prove_ms: f64,
    verify_ms: f64,
    proof_bytes: usize,
    rounds: usize,
    soundness_bits: f64,
    output: Vec<i128>,
}

/// Measures every row and returns the report (nothing printed but progress on stderr).
pub fn compare(args: &CompareArgs) -> Result<Comparison, CompareError> {
    if args.batch == 0 || args.batch > MAX_BATCH {
        return Err(CompareError::Usage(format!(
            "--batch must be between 1 and {MAX_BATCH}"
        )));
    }
    if args.repeat == 0 || args.repeat > 1000 {
        return Err(CompareError::Usage(
            "--repeat must be between 1 and 1000".into(),
        ));
    }
    verinfer_cli_core::args::set_threads(args.threads).map_err(CompareError::Usage)?;
    let choices = match &args.activations {
        Some(list) => parse_activations(list)?,
        None => PRESETS
            .iter()
            .map(|p| Choice {
                name: p.name.to_string(),
                activation: preset(p.name).unwrap_or(Activation::Square),
                relu: None,
            })
            .collect(),
    };
    let settings = args
        .quant
        .read_settings()
        .map_err(|e| CompareError::Usage(e.to_string()))?;
    let (source, arch_name) = match (&args.model, args.arch) {
        (Some(path), _) => {
            let loaded = load_model(path, args.quant.input_range(&settings))?;
            if !loaded
                .model
                .layers
                .iter()
                .any(|l| matches!(l, Layer::Activation(_)))
            {
                return Err(CompareError::NoActivation(path.display().to_string()));
            }
            for note in &loaded.notes {
                eprintln!("note: {note}");
            }
            let name = path.display().to_string();
            (Source::File(name.clone(), loaded.model, loaded.names), name)
        }
        (None, None) | (None, Some(Arch::Digits)) => (
            Source::Digits(TestSet::embedded().map_err(CompareError::Embedded)?),
            "digits".to_string(),
        ),
        (None, Some(arch)) => (Source::Zoo(arch), arch.name().to_string()),
    };
    let params = params_for(&source, args, &settings);
    let loadavg_start = loadavg();

    // Compile once per activation.
    let mut variants = Vec::with_capacity(choices.len());
    for choice in choices {
        variants.push(variant(&source, choice, &params, args, &settings)?);
    }

    // Rows: every activation under each requested lowering; first run gives the static figures.
    let lowerings: &[&'static str] = match args.lowering {
        Lowerings::Structured => &["structured"],
        Lowerings::Gates => &["gates"],
        Lowerings::Both => &["structured", "gates"],
    };
    let mut benches: Vec<Bench> = Vec::new();
    let mut cached_gates = 0usize;
    for v in &variants {
        let mut structured_output: Option<Vec<i128>> = None;
        let input = Arc::new(v.input.clone());
        for &lowering in lowerings {
            let mut row = empty_row(v, lowering);
            let kind = match &v.compiled {
                Err(reason) => {
                    row.skipped = Some(reason.clone());
                    Kind::Skipped
                }
                Ok(circuit) if lowering == "structured" => Kind::Structured {
                    circuit: circuit.clone(),
                    input: input.clone(),
                },
                Ok(circuit) => {
                    let limits = GateLimits {
                        max_total_gates: args.max_gates,
                        ..GateLimits::default()
                    };
                    match lowered_stats_with_limits(circuit, args.batch, &limits) {
                        Err(e) => {
                            row.skipped = Some(format!("gates lowering refused: {e}"));
                            Kind::Skipped
                        }
                        Ok(stats) => {
                            let gates = stats.gate_count();
                            row.gates = Some(gates);
                            row.layers = Some(stats.depth());
                            let cached = if cached_gates + gates <= GATE_CACHE {
                                cached_gates += gates;
                                Some(lower(circuit, args.batch, &limits, &v.choice.name)?)
                            } else {
                                None
                            };
                            Kind::Gates {
                                circuit: circuit.clone(),
                                input: input.clone(),
                                cached,
                                limits,
                            }
                        }
                    }
                }
            };
            let mut bench = Bench {
                row,
                kind,
                samples: Vec::new(),
            };
            eprintln!(
                "compare: {} ({lowering}): first proof",
                bench.row.activation
            );
            if let Some(first) = measure(&bench, args.batch)? {
                bench.row.sumcheck_rounds = Some(first.rounds);
                bench.row.proof_bytes = Some(first.proof_bytes);
                bench.row.soundness_bits = Some(first.soundness_bits);
                // Both lowerings must compute the same output.
                match &structured_output {
                    None => structured_output = Some(first.output),
                    Some(out) if *out != first.output => {
                        return Err(CompareError::Proof {
                            activation: bench.row.activation.clone(),
                            lowering,
                            reason: "the lowerings' verified outputs differ".into(),
                        })
                    }
                    Some(_) => {}
                }
            }
            benches.push(bench);
        }
    }

    // Accuracy of trained models: once, outside the timed runs.
    for v in &variants {
        let acc = accuracy(&source, v, &params, args)?;
        for b in benches
            .iter_mut()
            .filter(|b| b.row.activation == v.choice.name)
        {
            b.row.accuracy = acc.clone();
        }
    }

    // Timed runs, round-robin over the rows.
    for r in 0..args.repeat {
        eprintln!("compare: run {} of {}", r + 1, args.repeat);
        for bench in &mut benches {
            if let Some(run) = measure(bench, args.batch)? {
                bench
                    .samples
                    .push([run.witness_ms, run.prove_ms, run.verify_ms]);
            }
        }
    }
    let rows = benches
        .into_iter()
        .map(|mut b| {
            if !b.samples.is_empty() {
                let med = |k: usize| median(b.samples.iter().map(|s| s[k]).collect());
                let (w, p, v) = (med(0), med(1), med(2));
                b.row.witness_ms = Some(w);
                b.row.prove_ms = Some(p);
                b.row.verify_ms = Some(v);
                b.row.prove_over_witness = (w > 0.0).then(|| p / w);
            }
            b.row
        })
        .collect();
    Ok(Comparison {
        arch: arch_name,
        batch: args.batch,
        machine: machine(),
        repeat: args.repeat,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        threads: args.threads.unwrap_or_else(verinfer_cli_core::args::cores),
        params,
        loadavg: [loadavg_start, loadavg()],
        rows,
    })
}

fn empty_row(v: &Variant, lowering: &'static str) -> Row {
    // Quadratic terms only (`[a, b, c]`, highest first), as the table has always shown them.
    let k = v.choice.activation.coefficients();
    let (a, b, c) = (
        k.get(2).copied().unwrap_or(0.0),
        k.get(1).copied().unwrap_or(0.0),
        k[0],
    );
    let c_ok = v.compiled.as_ref().ok();
    Row {
        activation: v.choice.name.clone(),
        coefficients: [a, b, c],
        lowering,
        weights: v.weights.clone(),
        field: c_ok.map(|c| c.field.name().to_string()),
        field_reason: c_ok.map(|c| c.field_reason.to_string()),
        max_bits: c_ok.map(|c| c.max_bits()),
        degree: c_ok.map(|c| {
            c.layers
                .iter()
                .map(|l| match &l.op {
                    Op::Polynomial(p) => p.degree(),
                    Op::Activation(a) if a.a != 0 => 2,
                    Op::Activation(_) => 1,
                    _ => 0,
                })
                .max()
                .unwrap_or(0)
        }),
        checkpoints: c_ok.map(|c| {
            c.layers
                .iter()
                .filter(|l| matches!(l.op, Op::Requant(_)))
                .count()
        }),
        layers: c_ok.map(|c| c.layers.len()),
        gates: None,
        sumcheck_rounds: None,
        witness_ms: None,
        prove_ms: None,
        verify_ms: None,
        prove_over_witness: None,
        proof_bytes: None,
        soundness_bits: None,
        accuracy: None,
        skipped: None,
    }
}

fn lower(
    circuit: &LayeredCircuit,
    batch: usize,
    limits: &GateLimits,
    name: &str,
) -> Result<GateCircuit, CompareError> {
    lower_to_gates_with_limits(circuit, batch, limits).map_err(|e| CompareError::Proof {
        activation: name.to_string(),
        lowering: "gates",
        reason: e.to_string(),
    })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Proves and verifies a row once; `None` for a skipped row.
fn measure(bench: &Bench, batch: usize) -> Result<Option<Run>, CompareError> {
    let fail = |reason: String| CompareError::Proof {
        activation: bench.row.activation.clone(),
        lowering: bench.row.lowering,
        reason,
    };
    match &bench.kind {
        Kind::Skipped => Ok(None),
        Kind::Structured { circuit, input } => {
            let proved = prove_any(circuit, input, &mut |_| {})
                .map_err(|e| fail(format!("proving failed: {e}")))?;
            let t = Instant::now();
            let verified = verify_any(circuit, input, &proved.proof)
                .map_err(|e| fail(format!("the honest proof was rejected: {e}")))?;
            let verify_ms = ms(t);
            let rounds = proof_shapes(&proved.proof)
                .map_err(|e| fail(e.to_string()))?
                .iter()
                .flat_map(|l| l.sumchecks.iter().map(|(_, r)| *r))
                .sum();
            if verified.output != proved.output {
                return Err(fail("verified output differs from the proved one".into()));
            }
            Ok(Some(Run {
                witness_ms: proved.report.witness_ms,
                prove_ms: proved.report.total_ms,
                verify_ms,
                proof_bytes: proved.proof.len(),
                rounds,
                soundness_bits: verified.report.soundness_bits,
                output: verified.output,
            }))
        }
        Kind::Gates {
            circuit,
            input,
            cached,
            limits,
        } => {
            let built;
            let g = match cached {
                Some(g) => g,
                None => {
                    built = lower(circuit, batch, limits, &bench.row.activation)?;
                    &built
                }
            };
            match circuit.field {
                FieldId::M127 => gates_run::<M127>(g, input).map_err(fail),
                FieldId::Bn254 => gates_run::<Bn254>(g, input).map_err(fail),
            }
            .map(Some)
        }
    }
}

/// Generic GKR on the gate-level circuit: evaluation (the witness), proof, verification.
fn gates_run<F: ProofField>(g: &GateCircuit, input: &[i128]) -> Result<Run, String> {
    let to_field = |v: &[i128]| -> Result<Vec<F>, String> {
        v.iter()
            .map(|x| from_i128::<F>(*x).map_err(|e| e.to_string()))
            .collect()
    };
    let t = Instant::now();
    let gin = to_field(input)?;
    let values = g.evaluate(&gin).map_err(|e| e.to_string())?;
    let witness_ms = ms(t);
    drop(values);

    let t = Instant::now();
    let gin = to_field(input)?;
    let (out, proof) =
        verinfer_prover::gkr::prove(g, &gin).map_err(|e| format!("proving failed: {e}"))?;
    let prove_ms = ms(t);
    let bytes = proof.encode();

    let t = Instant::now();
    let gin = to_field(input)?;
    let decoded = Proof::<F>::decode(&bytes).map_err(|e| e.to_string())?;
    let report = verinfer_verifier::gkr::verify(g, &gin, &decoded.output, &decoded)
        .map_err(|e| format!("the honest proof was rejected: {e}"))?;
    let verify_ms = ms(t);
    let output = out
        .iter()
        .map(|v| to_i128(*v).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let rounds = proof
        .layers
        .iter()
        .flat_map(|l| l.sumchecks.iter().map(|s| s.rounds.len()))
        .sum();
    Ok(Run {
        witness_ms,
        prove_ms,
        verify_ms,
        proof_bytes: bytes.len(),
        rounds,
        soundness_bits: report.soundness_bits,
        output,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// "CPU model, N cores, OS".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = verinfer_cli_core::args::cores();
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    let os = match (pretty, kernel) {
        (Some(p), Some(k)) => format!("{p}, {} {k}", std::env::consts::OS),
        (Some(p), None) => p,
        (None, Some(k)) => format!("{} {k}", std::env::consts::OS),
        (None, None) => std::env::consts::OS.to_string(),
    };
    format!("{cpu}, {cores} cores, {os}")
}

fn loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
