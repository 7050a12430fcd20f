//! The `verinfer` command line.
//!
//! Exit codes (contract): 0 success (for `verify`: the proof is valid), 1 the proof or the
//! expected output was rejected (a proof file that does not decode is a rejected proof), 2 usage
//! errors and unreadable or malformed files.
//!
//! This binary is the thin layer: its flags and the prove / verify / infer / inspect / demo
//! commands, over `verinfer-cli-core` (files, flags, reports, prove / verify, calibrate); `serve` and
//! `client` are `verinfer-serve`'s, `compare` is `verinfer-compare`'s.
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use verinfer_circuits::circuit::WeightScale;
use verinfer_circuits::witness::infer;
use verinfer_cli_core::args::{
    check_batch_memory, check_infer_memory, default_memory_budget, parse_bytes, Compiled, ModelArgs,
};
use verinfer_cli_core::calibrate::CalibrateArgs;
use verinfer_cli_core::demo::DemoModel;
use verinfer_cli_core::engine::{proof_shapes, prove_any, verify_any};
use verinfer_cli_core::files::{check_outputs, read_limited, write_regular, MAX_INPUT_BYTES};
use verinfer_cli_core::report::{dims, hex, OutputReport};
use verinfer_cli_core::{out, outln};
use verinfer_prover::inference::Progress;

/// Prove and verify neural-network inference with GKR.
///
/// A server runs a quantized CNN (convolutions, dense layers, sum-pooling, x² / x²+x / quadratic
/// activations) on an input and proves the result; a client that knows the model and the input
/// checks the proof in a fraction of the time the inference takes.
///
/// Exit codes: 0 success (verify: the proof is valid), 1 proof rejected, 2 usage error or
/// unreadable file.
#[derive(Parser, Debug)]
#[command(name = "verinfer", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the model on an input, prove the result, write the proof and print the output.
    ///
    /// The proof file also carries the claimed output. Example:
    /// verinfer prove --model net.onnx --input x.json --proof x.proof --output y.json
    Prove {
        #[command(flatten)]
        model: ModelArgs,
        /// Input file: JSON nested arrays in the model's input shape (batch dimension optional)
        /// or .npy (float32, float64 or integer).
        #[arg(long, short = 'i', value_name = "FILE")]
        input: PathBuf,
        /// Where to write the proof.
        #[arg(long, short = 'p', value_name = "FILE")]
        proof: PathBuf,
        /// Also write the output report (JSON) here.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Rayon threads for the prover (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Memory budget of the proof (e.g. 8G, 512M): a batch whose estimated proving memory
        /// exceeds it is refused before anything is allocated (default: half the physical
        /// memory).
        #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
        max_memory: Option<u64>,
    },
    /// Check a proof against the model and input; print the verified output.
    ///
    /// The model is compiled here with this command's own quantization and field flags
    /// (defaults equal prove's), so a proof made for other parameters, another model or another
    /// input is rejected. Exit 0: valid; 1: rejected (the reason is printed); 2: usage error or
    /// unreadable file.
    Verify {
        #[command(flatten)]
        model: ModelArgs,
        /// The input the proof is claimed for (JSON or .npy, as for prove).
        #[arg(long, short = 'i', value_name = "FILE")]
        input: PathBuf,
        /// The proof file written by prove.
        #[arg(long, short = 'p', value_name = "FILE")]
        proof: PathBuf,
        /// An output report (JSON) the verified output must also equal exactly.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Quantized inference only (no proof): print the output and optionally write the report.
    Infer {
        #[command(flatten)]
        model: ModelArgs,
        /// Input file (JSON or .npy, as for prove).
        #[arg(long, short = 'i', value_name = "FILE")]
        input: PathBuf,
        /// Also write the output report (JSON) here.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Memory budget of the inference (e.g. 8G, 512M): a batch whose estimated memory
        /// exceeds it is refused before anything is allocated (default: half the physical
        /// memory).
        #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
        max_memory: Option<u64>,
    },
    /// Show the compiled circuit: layers, shapes, padded sizes, sumchecks, worst-case bits,
    /// MACs, field and why, digest, proof size.
    Inspect {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Choose requantization checkpoints from sample data and write them as a settings file.
    ///
    /// Runs the float model on the samples (--data) and records every tensor's range. Puts a
    /// checkpoint requant(k, B) after every activation, and on the output of the last dense or
    /// conv layer of any segment that would still need more bits than a checkpoint reads (126)
    /// or the field holds.
    ///
    /// The rule, for each checkpoint in order from the input: with s the compiler's scale of the
    /// tensor (its fractional bits, after the checkpoints before it) and R its largest |x| over
    /// the samples, keep the most fractional bits f with R·2^f ≤ 2^(B−1−h); the shift is
    /// k = s − f, or 0 if that is negative (a clamp only).
    ///
    /// Writes the settings (quantization keys, field, input range, and the checkpoints named by
    /// ONNX value where the model has names, else layer:N), compiles the model with them exactly
    /// as infer --settings does, and prints a table per tensor (float range, scale, worst-case
    /// bits, shift, bits, fractional bits kept, values clamped on the samples, worst-case bits of
    /// the segment after each checkpoint), the float and quantized accuracy when labels are
    /// known, and how often their argmax agree.
    ///
    /// Example: verinfer calibrate --model models/digits/digits_square_plus_x.onnx
    /// --data models/digits/test_set.json --settings s.json
    Calibrate(CalibrateArgs),
    /// Compare prover cost and accuracy across activations (x², x²+x, quadratic presets).
    Compare(verinfer_compare::CompareArgs),
    /// Serve proved inferences over HTTP (a cloud server that proves every answer).
    Serve(verinfer_serve::ServeArgs),
    /// Ask a server for an inference and verify its proof locally against your own model.
    ///
    /// Exit 0: valid; 1: rejected (wrong proof, output or digest); 2: usage or network error.
    Client(verinfer_serve::client::ClientArgs),
    /// Prove and verify held-out handwritten digits with an embedded model, and show the result.
    Demo {
        /// Which embedded model: the digits CNN (8×8), or LeNet-5 with x²+x and a
        /// requantization checkpoint after each activation (32×32).
        #[arg(long, value_enum, default_value_t = DemoModel::Digits)]
        model: DemoModel,
        /// Number of held-out test images to prove (1 to 64).
        #[arg(long, default_value_t = 8, value_name = "N")]
        images: usize,
        /// Rayon threads for the prover (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
}

/// Compiles the model of `args`, printing the importer's notes on stderr.
fn compile_model(args: &ModelArgs) -> Result<Compiled> {
    let c = args.compile()?;
    for note in &c.loaded.notes {
        eprintln!("note: {note}");
    }
    Ok(c)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the chain of causes, outermost first.
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    verinfer_cli_core::one_line(e.as_ref())
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Prove {
            model,
            input,
            proof,
            output,
            threads,
            max_memory,
        } => {
            set_threads(threads)?;
            let budget = max_memory.unwrap_or_else(default_memory_budget);
            prove_cmd(&model, &input, &proof, output.as_deref(), budget)
        }
        Command::Verify {
            model,
            input,
            proof,
            output,
        } => verify_cmd(&model, &input, &proof, output.as_deref()),
        Command::Infer {
            model,
            input,
            output,
            max_memory,
        } => {
            let budget = max_memory.unwrap_or_else(default_memory_budget);
            infer_cmd(&model, &input, output.as_deref(), budget)
        }
        Command::Inspect { model } => inspect_cmd(&model),
        Command::Calibrate(args) => calibrate_cmd(&args),
        Command::Compare(args) => {
            verinfer_compare::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            verinfer_serve::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(args) => match verinfer_serve::client::run(&args)? {
            verinfer_serve::client::ClientOutcome::Valid => Ok(ExitCode::SUCCESS),
            verinfer_serve::client::ClientOutcome::Rejected(why) => {
                outln!("REJECTED: {why}");
                Ok(ExitCode::from(1))
            }
        },
        Command::Demo {
            model,
            images,
            threads,
        } => {
            set_threads(threads)?;
            demo_cmd(model, images)
        }
    }
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    verinfer_cli_core::args::set_threads(threads).map_err(|e| anyhow!(e))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_regular(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn prove_cmd(
    args: &ModelArgs,
    input: &Path,
    proof_path: &Path,
    output: Option<&Path>,
    budget: u64,
) -> Result<ExitCode> {
    let mut outputs = vec![("--proof", proof_path)];
    outputs.extend(output.map(|o| ("--output", o)));
    check_outputs(&[("--model", &args.model), ("--input", input)], &outputs)?;
    let c = compile_model(args)?;
    let ints = c.quantized_input(input)?;
    let batch = ints.len() / c.circuit.input.item_len().max(1);
    check_batch_memory(&c.circuit, batch, budget)
        .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    let progress = DelayedProgress::start("proving");
    let proved = prove_any(&c.circuit, &ints, &mut |p| progress.step(p))
        .map_err(|e| anyhow!("proving failed: {e}"))?;
    progress.finish();
    write_file(proof_path, &proved.proof)?;
    let report = OutputReport::new(&c.circuit, &proved.output);
    if let Some(path) = output {
        write_file(path, report.to_json().as_bytes())?;
    }
    outln!(
        "proved {} on a batch of {} in {:.1} ms (witness {:.1} ms); proof {} bytes -> {}",
        c.circuit.name,
        report.argmax.len(),
        proved.report.total_ms,
        proved.report.witness_ms,
        proved.proof.len(),
        proof_path.display()
    );
    out!("{}", report.summary(16));
    if let Some(path) = output {
        outln!("output report -> {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_cmd(
    args: &ModelArgs,
    input: &Path,
    proof_path: &Path,
    expected: Option<&Path>,
) -> Result<ExitCode> {
    let c = compile_model(args)?;
    let ints = c.quantized_input(input)?;
    let proof = read_limited(proof_path, MAX_INPUT_BYTES)?;
    let expected = match expected {
        Some(path) => {
            let bytes = read_limited(path, MAX_INPUT_BYTES)?;
            // A report that is not one (bad JSON, missing or unknown fields, values that are
            // not integers) is a malformed file (exit 2); a well-formed report whose fields
            // differ from the proof's is a rejection (exit 1), below.
            let report = OutputReport::from_json(&bytes)
                .and_then(|r| r.integers().map(|_| r))
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Some((path, report))
        }
        None => None,
    };
    let t = Instant::now();
    let verified = match verify_any(&c.circuit, &ints, &proof) {
        Ok(v) => v,
        Err(e) => {
            outln!("REJECTED: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let report = OutputReport::new(&c.circuit, &verified.output);
    if let Some((path, want)) = expected {
        if let Some(diff) = want.first_difference(&report) {
            outln!(
                "REJECTED: the proof is valid, but its output differs from {}: {diff}",
                path.display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    outln!(
        "VALID: {} on a batch of {}, verified in {:.1} ms, soundness {:.1} bits",
        c.circuit.name,
        verified.report.batch,
        ms,
        verified.report.soundness_bits
    );
    out!("{}", report.summary(16));
    Ok(ExitCode::SUCCESS)
}

fn infer_cmd(
    args: &ModelArgs,
    input: &Path,
    output: Option<&Path>,
    budget: u64,
) -> Result<ExitCode> {
    let outputs: Vec<_> = output.map(|o| ("--output", o)).into_iter().collect();
    check_outputs(&[("--model", &args.model), ("--input", input)], &outputs)?;
    let c = compile_model(args)?;
    let ints = c.quantized_input(input)?;
    let batch = ints.len() / c.circuit.input.item_len().max(1);
    check_infer_memory(&c.circuit, batch, budget)
        .map_err(|e| anyhow!("{}: {e}", input.display()))?;
    let t = Instant::now();
    let out = infer(&c.circuit, batch, &ints).map_err(|e| anyhow!("inference failed: {e}"))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let report = OutputReport::new(&c.circuit, &out);
    if let Some(path) = output {
        write_file(path, report.to_json().as_bytes())?;
    }
    outln!(
        "inferred {} on a batch of {batch} in {ms:.2} ms (quantized, no proof)",
        c.circuit.name
    );
    out!("{}", report.summary(16));
    Ok(ExitCode::SUCCESS)
}

fn inspect_cmd(args: &ModelArgs) -> Result<ExitCode> {
    let c = compile_model(args)?;
    let circuit = &c.circuit;
    let p = &circuit.params;
    outln!("model      {} ({})", circuit.name, args.model.display());
    outln!(
        "quantized  input {} bits, weights {} bits ({}), coefficients {} bits; input range [{}, {}]",
        p.input_bits,
        p.weight_bits,
        match p.weight_scale {
            WeightScale::Uniform => "uniform",
            WeightScale::PerLayer => "per-layer",
        },
        p.coef_bits,
        c.loaded.model.input_range[0],
        c.loaded.model.input_range[1],
    );
    // Sumcheck shapes and proof sizes are read off real proofs of the smallest allowed input,
    // so they are exact rather than estimated.
    let per = circuit.input.item_len();
    let dummy = |batch: usize| vec![circuit.input_min; per * batch];
    let one = prove_any(circuit, &dummy(1), &mut |_| {}).map_err(|e| anyhow!("{e}"))?;
    let sixteen = prove_any(circuit, &dummy(16), &mut |_| {}).map_err(|e| anyhow!("{e}"))?;
    let shapes = proof_shapes(&one.proof).map_err(|e| anyhow!("{e}"))?;
    outln!();
    outln!(
        "  {:>2}  {:<34} {:>14} {:>14} {:>9} {:>9}  {:<20} {:>5} {:>6}",
        "#",
        "layer",
        "input",
        "output",
        "in pad",
        "out pad",
        "sumchecks (deg×vars)",
        "bits",
        "scale"
    );
    let mut in_scale = circuit.input_scale;
    for (i, l) in circuit.layers.iter().enumerate() {
        // Output scale, and for linear layers the weights' own fractional bits (which
        // `--weight-scale per-layer` chooses per layer).
        let scale = if l.op.weights().0.is_empty() {
            l.scale_bits.to_string()
        } else {
            format!(
                "{} w{}",
                l.scale_bits,
                l.scale_bits.saturating_sub(in_scale)
            )
        };
        in_scale = l.scale_bits;
        let sc = shapes
            .get(i)
            .map(|s| {
                if s.sumchecks.is_empty() {
                    "none".to_string()
                } else {
                    s.sumchecks
                        .iter()
                        .map(|(d, r)| format!("{d}×{r}"))
                        .collect::<Vec<_>>()
                        .join(" + ")
                }
            })
            .unwrap_or_default();
        outln!(
            "  {:>2}  {:<34} {:>14} {:>14} {:>9} {:>9}  {:<20} {:>5} {:>6}",
            i,
            truncate(&l.label, 34),
            dims(&l.input.dims),
            dims(&l.output.dims),
            l.input.item_len_padded(),
            l.output.item_len_padded(),
            sc,
            l.bound_bits,
            scale
        );
    }
    outln!();
    outln!(
        "tensors    a settings file's \"requant\" names the output of model layer N as layer:N{}",
        if c.loaded.names.is_empty() {
            ""
        } else {
            " or by an ONNX value name"
        }
    );
    for (n, (op, shape)) in c.tensors.iter().enumerate() {
        let names: Vec<&str> = c.loaded.names.of_layer(n).collect();
        outln!(
            "  layer:{n:<4} {op:<10} {:<14} {}",
            dims(shape),
            names.join(", ")
        );
    }
    outln!();
    outln!(
        "MACs       {} per item ({} layers)",
        circuit.macs_per_item(),
        circuit.layers.len()
    );
    outln!(
        "field      {} ({}); worst case {} bits",
        circuit.field,
        circuit.field_reason,
        circuit.max_bits()
    );
    outln!("digest     {}", hex(&circuit.digest()));
    outln!(
        "proof      {} bytes for 1 item, {} bytes for 16 (sumcheck rounds grow with log2 batch)",
        one.proof.len(),
        sixteen.proof.len()
    );
    outln!(
        "output     {} at scale 2^-{}",
        dims(&circuit.output().dims),
        circuit.output_scale()
    );
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn calibrate_cmd(args: &CalibrateArgs) -> Result<ExitCode> {
    let t = Instant::now();
    let progress = DelayedProgress::start("calibrating");
    let done = verinfer_cli_core::calibrate::run(args, &mut |done, total, what| {
        progress.phase(done, total, what)
    });
    progress.finish();
    let c = done?;
    for note in &c.notes {
        eprintln!("note: {note}");
    }
    out!("{}", c.render());
    outln!("time        {:.2} s", t.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

fn demo_cmd(model: DemoModel, images: usize) -> Result<ExitCode> {
    if !(1..=64).contains(&images) {
        bail!("--images must be between 1 and 64");
    }
    let r = verinfer_cli_core::demo::run_model(model, images)
        .map_err(|e| anyhow!("demo failed: {e}"))?;
    out!("{}", r.render());
    Ok(if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A progress bar on stderr that appears only if the work takes more than a second and stderr
/// is a terminal.
struct DelayedProgress {
    bar: ProgressBar,
    done: Option<mpsc::Sender<()>>,
}

impl DelayedProgress {
    fn start(what: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} steps")
        {
            bar.set_style(style);
        }
        bar.set_message(what);
        let (tx, rx) = mpsc::channel::<()>();
        if std::io::stderr().is_terminal() {
            let shown = bar.clone();
            std::thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(Duration::from_secs(1))
                {
                    if shown.is_finished() {
                        return;
                    }
                    shown.set_draw_target(ProgressDrawTarget::stderr());
                    shown.enable_steady_tick(Duration::from_millis(200));
                }
            });
        }
        DelayedProgress {
            bar,
            done: Some(tx),
        }
    }

    fn step(&self, p: Progress) {
        self.bar.set_length(p.total as u64);
        self.bar.set_position(p.done as u64);
    }

    /// A step that says what it is doing.
    fn phase(&self, done: usize, total: usize, what: &str) {
        self.bar.set_message(what.to_string());
        self.step(Progress { done, total });
    }

    fn finish(mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
        self.bar.finish_and_clear();
    }
}
