//! An upper estimate of the memory proving a batch takes, read off the compiled circuit before
//! anything is allocated, so that a batch too large for the machine is refused with a message
//! instead of aborting the process halfway through its witness.
//!
//! Every table the prover builds is indexed by the padded batch (rounded up to a power of two)
//! times a tensor's padded item length, so the estimate is `fixed + padded_batch × per_item`
//! with, per item:
//! - every tensor the witness holds (the input and each layer's output), counted twice: once as
//!   the integer witness (`i128`) and once as field elements (the prover's tables);
//! - for explicit gate layers, four field elements per gate (the two-phase GKR prover's
//!   tables);
//! - the input as read (`f64`) and quantized (`i128`);
//!
//! and, fixed: the weights as field elements, twice, plus a base for the process itself. The
//! prover frees and folds tables in place as it goes, so this overestimates (about 2.7× for the
//! digits CNN, measured: 1.43 GB peak at batch 65,536 against an estimate of 3.9 GB); it is
//! meant as a bound to refuse by, not a prediction.

use crate::circuit::LayeredCircuit;
use crate::field::FieldId;

/// Bytes of the running process besides the batch: code, runtime, thread stacks.
pub const BASE_BYTES: u64 = 64 << 20;

/// Bytes of one field element in the prover's tables.
pub fn field_bytes(field: FieldId) -> u64 {
    match field {
        FieldId::M127 => 16,
        FieldId::Bn254 => 32,
    }
}

/// Estimated bytes per padded batch item.
pub fn per_item_bytes(circuit: &LayeredCircuit) -> u64 {
    let f = field_bytes(circuit.field);
    let witness = 16 + f;
    let tensors = std::iter::once(&circuit.input)
        .chain(circuit.layers.iter().map(|l| &l.output))
        .map(|t| t.item_len_padded() as u64)
        .fold(0u64, u64::saturating_add);
    let gates = circuit
        .layers
        .iter()
        .map(|l| (l.op.spec().gate_count() as u64).saturating_mul(4 * f))
        .fold(0u64, u64::saturating_add);
    let input = (circuit.input.item_len() as u64).saturating_mul(8 + 16);
    tensors
        .saturating_mul(witness)
        .saturating_add(gates)
        .saturating_add(input)
}

/// Estimated bytes that do not grow with the batch.
pub fn fixed_bytes(circuit: &LayeredCircuit) -> u64 {
    let f = field_bytes(circuit.field);
    let weights = circuit
        .layers
        .iter()
        .map(|l| match l.op.spec().weights() {
            // A weight table is padded to a power of two; weight-free kinds store nothing.
            (weight, bias) if !weight.is_empty() => {
                (weight.len().next_power_of_two() + bias.len()) as u64
            }
            _ => 0,
        })
        .fold(0u64, u64::saturating_add);
    BASE_BYTES.saturating_add(weights.saturating_mul(2 * f))
}

/// Estimated peak bytes of proving a batch of `batch` items.
pub fn estimate(circuit: &LayeredCircuit, batch: usize) -> u64 {
    let padded = batch
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX) as u64;
    fixed_bytes(circuit).saturating_add(padded.saturating_mul(per_item_bytes(circuit)))
}

/// The largest batch whose estimate fits `budget` bytes (a power of two, since memory grows
/// with the padded batch), or 0 if not even one item fits.
pub fn largest_batch(circuit: &LayeredCircuit, budget: u64) -> usize {
    let mut best = 0usize;
    let mut b = 1usize;
    while estimate(circuit, b) <= budget {
        best = b;
        match b.checked_mul(2) {
            Some(next) => b = next,
            None => break,
        }
    }
    best
}

/// Estimated bytes per item of plain integer inference (`witness::infer`, no proof).
/// Inference keeps stages compact (real positions only) and frees each once the next is
/// computed, so per item it holds the input as read and quantized and at most two consecutive
/// stages as 128-bit integers. No padding to a power of two.
pub fn infer_per_item_bytes(circuit: &LayeredCircuit) -> u64 {
    let stages: Vec<u64> = std::iter::once(&circuit.input)
        .chain(circuit.layers.iter().map(|l| &l.output))
        .map(|t| t.item_len() as u64)
        .collect();
    let widest_pair = stages
        .windows(2)
        .map(|w| w[0].saturating_add(w[1]))
        .max()
        .unwrap_or(0);
    let input = (circuit.input.item_len() as u64).saturating_mul(8 + 16);
    widest_pair.saturating_mul(16).saturating_add(input)
}

/// Estimated peak bytes of plain integer inference of `batch` items: [`fixed_bytes`] plus
/// `batch ×` [`infer_per_item_bytes`].
pub fn infer_estimate(circuit: &LayeredCircuit, batch: usize) -> u64 {
    fixed_bytes(circuit)
        .saturating_add((batch.max(1) as u64).saturating_mul(infer_per_item_bytes(circuit)))
}

/// The largest batch whose inference estimate ([`infer_estimate`]) fits `budget` bytes, or 0.
pub fn largest_infer_batch(circuit: &LayeredCircuit, budget: u64) -> usize {
    let per_item = infer_per_item_bytes(circuit).max(1);
    let items = budget.saturating_sub(fixed_bytes(circuit)) / per_item;
    usize::try_from(items).unwrap_or(usize::MAX)
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_the_padded_batch_and_inverts() {
        let (model, params) = crate::zoo::cifar_small(1, crate::model::Activation::Square);
        let Ok(c) = crate::compile::compile(&model, &params, crate::circuit::FieldChoice::Auto)
        else {
            panic!("the zoo model compiles");
        };
        assert_eq!(estimate(&c, 3), estimate(&c, 4));
        assert!(estimate(&c, 5) > estimate(&c, 4));
        let e = estimate(&c, 1024);
        assert_eq!(largest_batch(&c, e), 1024);
        assert_eq!(largest_batch(&c, e - 1), 512);
        assert_eq!(largest_batch(&c, 0), 0);
        assert_eq!(estimate(&c, usize::MAX), u64::MAX);
    }

    #[test]
    fn inference_estimate_is_linear_and_inverts() {
        let (model, params) = crate::zoo::cifar_small(1, crate::model::Activation::Square);
        let Ok(c) = crate::compile::compile(&model, &params, crate::circuit::FieldChoice::Auto)
        else {
            panic!("the zoo model compiles");
        };
        let step = infer_estimate(&c, 2) - infer_estimate(&c, 1);
        assert_eq!(infer_estimate(&c, 1001), infer_estimate(&c, 1000) + step);
        // Below the proof's estimate: no field tables, no padding.
        assert!(infer_estimate(&c, 1000) < estimate(&c, 1000));
        let e = infer_estimate(&c, 777);
        assert_eq!(largest_infer_batch(&c, e), 777);
        assert_eq!(largest_infer_batch(&c, e - 1), 776);
        assert_eq!(largest_infer_batch(&c, 0), 0);
        assert_eq!(infer_estimate(&c, usize::MAX), u64::MAX);
    }
}
