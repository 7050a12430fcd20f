//! The `verinfer` command line.
use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Prove and verify neural-network inference with GKR.
///
/// A server proves that it ran a model on an input; a client checks the proof in a fraction of
/// the time the inference takes.
#[derive(Parser, Debug)]
#[command(name = "verinfer", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prove and verify the embedded default statement end to end, and show the result.
    Demo {
        /// Number of rayon threads for the prover (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo { threads } => {
            if let Some(n) = threads {
                if n == 0 {
                    bail!("--threads must be at least 1");
                }
                rayon_threads(n)?;
            }
            demo()
        }
    }
}

fn rayon_threads(n: usize) -> Result<()> {
    verinfer::prover::set_global_threads(n).map_err(|e| anyhow::anyhow!("{e}"))
}

fn demo() -> Result<ExitCode> {
    let r = verinfer::demo::run().map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = &r.circuit;
    println!(
        "verinfer demo: {} ({} MACs per image), batch of {}, field {} ({})",
        c.name,
        c.macs_per_item(),
        verinfer::demo::DEMO_BATCH,
        c.field,
        c.field_reason
    );
    println!();
    println!("  {:<28} {:>12} {:>12}", "layer", "prove ms", "verify ms");
    for (i, l) in c.layers.iter().enumerate() {
        println!(
            "  {:<28} {:>12.2} {:>12.3}",
            l.label,
            r.prove.layers_ms.get(i).copied().unwrap_or(0.0),
            r.verify.layers.get(i).map(|m| m.0).unwrap_or(0.0)
        );
    }
    println!();
    println!("  predicted classes  {:?}", r.argmax);
    println!(
        "  prover             {:.1} ms (witness {:.1} ms)",
        r.prove.total_ms, r.prove.witness_ms
    );
    println!("  verifier           {:.1} ms", r.verify_ms);
    println!("  proof size         {} bytes", r.proof_bytes);
    println!("  soundness          {:.1} bits", r.verify.soundness_bits);
    match &r.tampered {
        Some(e) => println!("  tampered proof     rejected ({e})"),
        None => {
            println!("  tampered proof     ACCEPTED: this is a soundness bug");
            return Ok(ExitCode::from(1));
        }
    }
    println!("  result             VALID");
    Ok(ExitCode::SUCCESS)
}
