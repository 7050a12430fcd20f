//! Proving one inference of a compiled model: the witness, then a layer proof per stage, output
//! first. Mirrors `verinfer_verifier::inference`.

use crate::layers::prover;
use crate::ProveError;
use std::borrow::Cow;
use std::time::Instant;
use verinfer_circuits::circuit::LayeredCircuit;
use verinfer_circuits::field::{from_i128, ProofField};
use verinfer_circuits::mle;
use verinfer_circuits::witness::{witness_tables, Witness};
use verinfer_verifier::layers::{rule, Claim};
use verinfer_verifier::proof::Proof;
use verinfer_verifier::transcript::label;
use verinfer_verifier::Transcript;

/// Where the prover's time went, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProveReport {
    /// Integer inference plus conversion of every stage to field elements.
    pub witness_ms: f64,
    /// Per layer, in circuit order (layer 0 first).
    pub layers_ms: Vec<f64>,
    /// Everything, witness included.
    pub total_ms: f64,
}

/// Runs the model on `input` (integers at the input scale, batch-major) and proves the result.
/// Returns the output integers, the proof (which carries the output) and the timings.
pub fn prove<F: ProofField>(
    circuit: &LayeredCircuit,
    input: &[i128],
) -> Result<(Vec<i128>, Proof<F>, ProveReport), ProveError> {
    prove_with_progress(circuit, input, &mut |_| {})
}

/// How far a proof has got: `done` of `total` steps (the witness, then one step per layer,
/// output layer first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Steps finished.
    pub done: usize,
    /// Steps in all (`layers + 1`).
    pub total: usize,
}

/// [`prove`], calling `on_step` after the witness and after every layer proof, so that a
/// command line or a server can show progress on long proofs.
pub fn prove_with_progress<F: ProofField>(
    circuit: &LayeredCircuit,
    input: &[i128],
    on_step: &mut dyn FnMut(Progress),
) -> Result<(Vec<i128>, Proof<F>, ProveReport), ProveError> {
    let start = Instant::now();
    check_field::<F>(circuit)?;
    circuit.check().map_err(ProveError::Layer)?;
    let per = circuit.input.item_len();
    if input.is_empty() || input.len() % per != 0 {
        return Err(ProveError::Input(format!(
            "{} input values is not a whole number of items of {per}",
            input.len()
        )));
    }
    let batch = input.len() / per;
    // A stage's table is needed unless every layer reading it only relabels it (the output's
    // is always needed).
    let mut needed_stages = vec![false; circuit.layers.len() + 1];
    needed_stages[circuit.layers.len()] = true;
    for (k, l) in circuit.layers.iter().enumerate() {
        let relabels = rule::<F>(&l.op).relabels(l);
        for (j, t) in l.op.reads(k).into_iter().enumerate() {
            if !(j == 0 && relabels) {
                if let Some(n) = needed_stages.get_mut(t) {
                    *n = true;
                }
            }
        }
    }
    let needed = |stage: usize| needed_stages.get(stage).copied().unwrap_or(true);
    let w: Witness<F> = witness_tables(circuit, batch, input, &needed)
        .map_err(|e| ProveError::Input(e.to_string()))?;
    let witness_ms = start.elapsed().as_secs_f64() * 1e3;
    let total = circuit.layers.len() + 1;
    on_step(Progress { done: 1, total });
    let Witness {
        batch,
        layers,
        output,
    } = w;
    // The prover owns the tables here, so each layer folds its input table in place.
    let tables = layers.into_iter().map(Cow::Owned).collect();
    let (proof, layers_ms) = prove_tables(circuit, input, batch, &output, tables, &mut |k| {
        on_step(Progress { done: 1 + k, total })
    })?;
    Ok((
        output,
        proof,
        ProveReport {
            witness_ms,
            layers_ms,
            total_ms: start.elapsed().as_secs_f64() * 1e3,
        },
    ))
}

fn check_field<F: ProofField>(circuit: &LayeredCircuit) -> Result<(), ProveError> {
    if F::ID != circuit.field {
        return Err(ProveError::Input(format!(
            "the circuit is compiled for {}, not {}",
            circuit.field,
            F::ID
        )));
    }
    Ok(())
}

fn to_field<F: ProofField>(v: &[i128]) -> Result<Vec<F>, ProveError> {
    v.iter()
        .map(|x| from_i128(*x).map_err(|e| ProveError::Input(e.to_string())))
        .collect()
}

/// Proves a computed witness (full, or from `witness_tables` with the input tables of aligned
/// sum-pools left empty). Returns the proof and the per-layer proving times (ms).
pub fn prove_witness<F: ProofField>(
    circuit: &LayeredCircuit,
    input: &[i128],
    w: &Witness<F>,
) -> Result<(Proof<F>, Vec<f64>), ProveError> {
    let tables = w
        .layers
        .iter()
        .map(|t| Cow::Borrowed(t.as_slice()))
        .collect();
    prove_tables(circuit, input, w.batch, &w.output, tables, &mut |_| {})
}

/// Proves the stage tables `tables` (stage 0 = input) whose real output is `output`, calling
/// `layers_done(k)` after the k-th layer proof. Owned tables are folded in place, borrowed ones
/// copied first.
fn prove_tables<F: ProofField>(
    circuit: &LayeredCircuit,
    input: &[i128],
    batch: usize,
    output: &[i128],
    mut tables: Vec<Cow<'_, [F]>>,
    layers_done: &mut dyn FnMut(usize),
) -> Result<(Proof<F>, Vec<f64>), ProveError> {
    check_field::<F>(circuit)?;
    if tables.len() != circuit.layers.len() + 1 {
        return Err(ProveError::Layer(
            "witness does not match the circuit".into(),
        ));
    }
    let digest = circuit.digest();
    let input_f: Vec<F> = to_field(input)?;
    let output_f: Vec<F> = to_field(output)?;
    let mut transcript = Transcript::new(&digest, &input_f, &output_f);
    // Every checkpoint's opening is bound before the first challenge (top layer first).
    for (i, layer) in circuit.layers.iter().enumerate().rev() {
        prover::<F>(&layer.op).absorb_opening(layer, batch, &tables[i], &mut transcript);
    }
    let out_layout = circuit.output();
    let r: Vec<F> = transcript.challenges(label::OUTPUT_POINT, out_layout.vars(batch));
    let top: &[F] = tables.last().map(|t| &t[..]).unwrap_or(&[]);
    let value = mle::evaluate(top, &r);
    // The claims handed down to each stage, as the verifier collects them.
    let mut pending: Vec<Vec<Claim<F>>> = vec![Vec::new(); circuit.layers.len() + 1];
    pending[circuit.layers.len()].push(Claim { point: r, value });
    let mut layers = Vec::with_capacity(circuit.layers.len());
    let mut times = vec![0.0; circuit.layers.len()];
    for (i, layer) in circuit.layers.iter().enumerate().rev() {
        let t = Instant::now();
        let claims = std::mem::take(&mut pending[i + 1]);
        let (lp, down) = prover::<F>(&layer.op).reduce(
            layer,
            batch,
            i,
            &mut tables,
            &claims,
            &mut transcript,
        )?;
        for (s, c) in layer.op.reads(i).into_iter().zip(down) {
            pending[s].push(c);
        }
        layers.push(lp);
        times[i] = t.elapsed().as_secs_f64() * 1e3;
        layers_done(layers.len());
    }
    Ok((
        Proof {
            digest,
            output: output_f,
            layers,
        },
        times,
    ))
}
