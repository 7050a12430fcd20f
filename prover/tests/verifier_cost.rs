//! The verifier's cost never grows with the multiply-accumulates (compiler issue, item 8).
//!
//! The verifier runs over `CountedM127`, the same field as `M127` with counted multiplications
//! (feature `op-count`), on a convolution whose image side doubles (4× the MACs each time). Its
//! total work must stay below |weights| + |input| + |output| + 64·(log2 of the layer size)².
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::Conv2dOp;
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Layout, Op, QuantParams};
use verinfer_circuits::counting::{self, CountedM127};
use verinfer_circuits::field::{FieldId, M127};
use verinfer_prover::inference::prove;
use verinfer_verifier::inference::verify;
use verinfer_verifier::Proof;

fn conv_circuit(side: usize, seed: u64) -> LayeredCircuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (c, o) = (4, 4);
    LayeredCircuit {
        name: "conv".into(),
        field: FieldId::M127,
        field_reason: String::new(),
        params: QuantParams::default(),
        input: Layout::new(vec![c, side, side]),
        input_scale: 0,
        input_min: -128,
        input_max: 127,
        layers: vec![CircuitLayer {
            op: Op::Conv2d(Conv2dOp {
                in_channels: c,
                out_channels: o,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
                weight: (0..o * c * 9).map(|_| rng.gen_range(-127..=127)).collect(),
                bias: (0..o).map(|_| rng.gen_range(-1000..=1000)).collect(),
            }),
            input: Layout::new(vec![c, side, side]),
            output: Layout::new(vec![o, side, side]),
            scale_bits: 0,
            bound_bits: 40,
            label: "conv".into(),
        }],
    }
}

/// Field multiplications the verifier spends on one proof, and the bound for it.
fn count(side: usize) -> (u64, u64, u64) {
    let c = conv_circuit(side, side as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let input: Vec<i128> = (0..c.input.item_len())
        .map(|_| rng.gen_range(-128..=127))
        .collect();
    let (output, proof, _) = prove::<M127>(&c, &input).unwrap();
    let counted = Proof::<CountedM127>::decode(&proof.encode()).unwrap();
    counting::reset();
    verify(&c, &input, &output, &counted).unwrap();
    let muls = counting::muls();
    let weights = match &c.layers[0].op {
        Op::Conv2d(Conv2dOp { weight, bias, .. }) => (weight.len() + bias.len()) as u64,
        _ => unreachable!(),
    };
    let vars = c.layers[0].output.vars(1) as u64;
    let bound = weights + input.len() as u64 + output.len() as u64 + 64 * vars * vars;
    (muls, bound, c.macs_per_item())
}

#[test]
fn conv_verifier_cost_stays_below_the_bound() {
    let mut last = None;
    for side in [8, 16, 32] {
        let (muls, bound, macs) = count(side);
        eprintln!("side {side}: {macs} MACs, verifier {muls} multiplications, bound {bound}");
        assert!(muls < bound, "side {side}: {muls} ≥ {bound}");
        if let Some((m0, macs0)) = last {
            // 4× the MACs: the work outside input and output is what the bound allows, so the
            // total may grow with the input and output only (4× them), never with C·O·k².
            assert_eq!(macs, 4 * macs0);
            assert!(
                muls < 5 * m0,
                "side {side}: {muls} vs {m0} at half the side"
            );
        }
        last = Some((muls, macs));
    }
}

/// A counted verification also rejects a tampered proof: the counting field is the same field.
#[test]
fn counted_field_verifies_like_m127() {
    let c = conv_circuit(8, 3);
    let input: Vec<i128> = (0..c.input.item_len())
        .map(|i| (i % 200) as i128 - 100)
        .collect();
    let (output, proof, _) = prove::<M127>(&c, &input).unwrap();
    let mut counted = Proof::<CountedM127>::decode(&proof.encode()).unwrap();
    assert!(verify(&c, &input, &output, &counted).is_ok());
    counted.layers[0].evals[0] += CountedM127::from(1u64);
    assert!(verify(&c, &input, &output, &counted).is_err());
}
