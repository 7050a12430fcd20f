//! The `gates` lowering against an independent i128 reference inference, and the generic GKR
//! proof of lowered circuits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{
    ActivationOp, Conv2dOp, DenseOp, GatesOp, PolynomialOp, SumPoolOp,
};
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Layout, Op, QuantParams};
use verinfer_circuits::field::{from_i128, to_i128, Bn254, FieldId, ProofField, M127};
use verinfer_circuits::gates::{Gate, GateCircuit, GateLayer};
use verinfer_circuits::lower::{
    lower_to_gates, lower_to_gates_with_limits, lowered_stats, GateLimits, LowerError,
};
use verinfer_prover::gkr;
use verinfer_verifier::gkr as vgkr;

// ---------------------------------------------------------------------------------------------
// Hand-built circuits

fn stage(op: Op, input: Vec<usize>, output: Vec<usize>) -> CircuitLayer {
    CircuitLayer {
        label: op.name().to_string(),
        op,
        input: Layout::new(input),
        output: Layout::new(output),
        scale_bits: 0,
        bound_bits: 0,
    }
}

fn circuit(input: Vec<usize>, layers: Vec<CircuitLayer>) -> LayeredCircuit {
    LayeredCircuit {
        name: "test".into(),
        field: FieldId::M127,
        field_reason: String::new(),
        params: QuantParams::default(),
        input: Layout::new(input),
        input_scale: 0,
        input_min: -100,
        input_max: 100,
        layers,
    }
}

/// A small weight, zero about a quarter of the time.
fn weight(rng: &mut ChaCha8Rng) -> i64 {
    if rng.gen_bool(0.25) {
        0
    } else {
        rng.gen_range(-6..=6)
    }
}

fn bias(rng: &mut ChaCha8Rng) -> i128 {
    if rng.gen_bool(0.3) {
        0
    } else {
        rng.gen_range(-1000..=1000)
    }
}

fn conv(
    rng: &mut ChaCha8Rng,
    input: [usize; 3],
    out_channels: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> CircuitLayer {
    let [c, h, w] = input;
    let ho = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
    let wo = (w + 2 * padding[1] - kernel[1]) / stride[1] + 1;
    let n = out_channels * c * kernel[0] * kernel[1];
    stage(
        Op::Conv2d(Conv2dOp {
            in_channels: c,
            out_channels,
            kernel,
            stride,
            padding,
            weight: (0..n).map(|_| weight(rng)).collect(),
            bias: (0..out_channels).map(|_| bias(rng)).collect(),
        }),
        input.to_vec(),
        vec![out_channels, ho, wo],
    )
}

/// Dense from `input` (any dims) to `out` outputs; row 1 is all zero when `out > 1`.
fn dense(rng: &mut ChaCha8Rng, input: Vec<usize>, out: usize) -> CircuitLayer {
    let k: usize = input.iter().product();
    let mut w: Vec<i64> = (0..out * k).map(|_| weight(rng)).collect();
    if out > 1 {
        w[k..2 * k].iter_mut().for_each(|x| *x = 0);
    }
    stage(
        Op::Dense(DenseOp {
            in_features: k,
            out_features: out,
            weight: w,
            bias: (0..out).map(|_| bias(rng)).collect(),
        }),
        input,
        vec![out],
    )
}

fn pool(input: [usize; 3], window: [usize; 2], stride: [usize; 2]) -> CircuitLayer {
    let [c, h, w] = input;
    let ho = (h - window[0]) / stride[0] + 1;
    let wo = (w - window[1]) / stride[1] + 1;
    stage(
        Op::SumPool(SumPoolOp { window, stride }),
        input.to_vec(),
        vec![c, ho, wo],
    )
}

fn act(dims: Vec<usize>, a: i128, b: i128, c: i128) -> CircuitLayer {
    stage(Op::Activation(ActivationOp { a, b, c }), dims.clone(), dims)
}

/// `[r, c] → [c, r]` transpose on padded offsets, with extra random gates at the positions
/// `Y[0, *]` replaced by gates reading any padded input offset (padding reads zero).
fn relabel(rng: &mut ChaCha8Rng, r: usize, c: usize) -> CircuitLayer {
    let inl = Layout::new(vec![r, c]);
    let outl = Layout::new(vec![c, r]);
    let mut gates = vec![Gate::Const(0); outl.item_len_padded()];
    for i in 0..c {
        for j in 0..r {
            let src = inl.padded_offset(j * c + i) as u32;
            gates[outl.padded_offset(i * r + j)] = Gate::Relay(src);
        }
    }
    let np = inl.item_len_padded() as u32;
    for j in 0..r {
        let x = rng.gen_range(0..np);
        let y = rng.gen_range(0..np);
        let k = rng.gen_range(-4i128..=4);
        gates[outl.padded_offset(j)] = match rng.gen_range(0..7) {
            0 => Gate::Add(x, y),
            1 => Gate::Sub(x, y),
            2 => Gate::Mul(x, y),
            3 => Gate::Scale(x, k),
            4 => Gate::AddConst(x, k),
            5 => Gate::Relay(x),
            _ => Gate::Const(k),
        };
    }
    // The last real position has no gate when the list is cut short: it reads zero.
    let last = outl.padded_offset(c * r - 1);
    gates.truncate(last);
    stage(
        Op::Gates(GatesOp {
            layer: GateLayer { gates },
        }),
        vec![r, c],
        vec![c, r],
    )
}

// ---------------------------------------------------------------------------------------------
// Independent reference inference (per item, exact i128, straight from the formulas)

fn reference_item(layer: &CircuitLayer, x: &[i128]) -> Vec<i128> {
    match &layer.op {
        Op::Conv2d(Conv2dOp {
            in_channels: cin,
            out_channels: cout,
            kernel: [kh, kw],
            stride: [sh, sw],
            padding: [ph, pw],
            weight,
            bias,
        }) => {
            let (h, w) = (layer.input.dims[1] as isize, layer.input.dims[2] as isize);
            let (ho, wo) = (layer.output.dims[1], layer.output.dims[2]);
            let mut y = Vec::new();
            for (o, &bo) in bias.iter().enumerate().take(*cout) {
                for i in 0..ho {
                    for j in 0..wo {
                        let mut acc = bo;
                        for c in 0..*cin {
                            for u in 0..*kh {
                                for v in 0..*kw {
                                    let r = (sh * i + u) as isize - *ph as isize;
                                    let q = (sw * j + v) as isize - *pw as isize;
                                    if r < 0 || q < 0 || r >= h || q >= w {
                                        continue;
                                    }
                                    let xi = (c as isize * h + r) * w + q;
                                    let wi = ((o * cin + c) * kh + u) * kw + v;
                                    acc += i128::from(weight[wi]) * x[xi as usize];
                                }
                            }
                        }
                        y.push(acc);
                    }
                }
            }
            y
        }
        Op::Dense(DenseOp {
            in_features,
            out_features,
            weight,
            bias,
        }) => (0..*out_features)
            .map(|o| {
                bias[o]
                    + (0..*in_features)
                        .map(|k| i128::from(weight[o * in_features + k]) * x[k])
                        .sum::<i128>()
            })
            .collect(),
        Op::SumPool(SumPoolOp {
            window: [kh, kw],
            stride: [sh, sw],
        }) => {
            let (c, h, w) = (
                layer.input.dims[0],
                layer.input.dims[1],
                layer.input.dims[2],
            );
            let (ho, wo) = (layer.output.dims[1], layer.output.dims[2]);
            let mut y = Vec::new();
            for ch in 0..c {
                for i in 0..ho {
                    for j in 0..wo {
                        let mut acc = 0;
                        for u in 0..*kh {
                            for v in 0..*kw {
                                let (r, q) = (sh * i + u, sw * j + v);
                                if r < h && q < w {
                                    acc += x[(ch * h + r) * w + q];
                                }
                            }
                        }
                        y.push(acc);
                    }
                }
            }
            y
        }
        Op::Activation(ActivationOp { a, b, c }) => {
            x.iter().map(|&v| a * v * v + b * v + c).collect()
        }
        // Power by power, not Horner: independent of the kernel.
        Op::Polynomial(PolynomialOp { coefficients }) => x
            .iter()
            .map(|&v| {
                coefficients
                    .iter()
                    .zip(0u32..)
                    .map(|(c, k)| c * v.pow(k))
                    .sum()
            })
            .collect(),
        // The gates lowering refuses checkpoints; no circuit here holds one.
        Op::Requant(_) => unreachable!("checkpoints have no gates lowering"),
        Op::Add(_) | Op::Mul(_) | Op::Branch(_) | Op::Fork(_) => {
            unreachable!("residual connections have no gates lowering")
        }
        Op::Gates(GatesOp { layer: gl }) => {
            let mut padded = vec![0i128; layer.input.item_len_padded()];
            for (r, &v) in x.iter().enumerate() {
                padded[layer.input.padded_offset(r)] = v;
            }
            let p = |w: u32| padded[w as usize];
            (0..layer.output.item_len())
                .map(|r| match gl.gates.get(layer.output.padded_offset(r)) {
                    None => 0,
                    Some(&g) => match g {
                        Gate::Add(a, b) => p(a) + p(b),
                        Gate::Sub(a, b) => p(a) - p(b),
                        Gate::Mul(a, b) => p(a) * p(b),
                        Gate::Scale(a, c) => c * p(a),
                        Gate::AddConst(a, c) => p(a) + c,
                        Gate::Relay(a) => p(a),
                        Gate::Const(c) => c,
                    },
                })
                .collect()
        }
    }
}

fn reference(c: &LayeredCircuit, batch: usize, input: &[i128]) -> Vec<i128> {
    let n = c.input.item_len();
    let mut out = Vec::new();
    for b in 0..batch {
        let mut x = input[b * n..(b + 1) * n].to_vec();
        for layer in &c.layers {
            x = reference_item(layer, &x);
        }
        out.extend(x);
    }
    out
}

fn random_input(rng: &mut ChaCha8Rng, c: &LayeredCircuit, batch: usize) -> Vec<i128> {
    (0..batch * c.input.item_len())
        .map(|_| rng.gen_range(-100..=100))
        .collect()
}

fn embed<F: ProofField>(v: &[i128]) -> Vec<F> {
    v.iter().map(|&x| from_i128::<F>(x).unwrap()).collect()
}

/// Lowers, checks the stats and the wiring, evaluates over `F` and compares with the reference.
fn check_over<F: ProofField>(c: &LayeredCircuit, batch: usize, input: &[i128]) -> GateCircuit {
    let g = lower_to_gates(c, batch).unwrap();
    g.validate().unwrap();
    let stats = lowered_stats(c, batch).unwrap();
    let sizes: Vec<usize> = g.layers.iter().map(|l| l.gates.len()).collect();
    assert_eq!(stats.layer_sizes, sizes);
    assert_eq!(stats.gate_count(), g.gate_count());
    assert_eq!(stats.depth(), g.layers.len());
    assert_eq!(stats.input_size, input.len());
    assert_eq!(
        stats.stages.iter().map(|s| s.layers).sum::<usize>(),
        if c.layers.is_empty() {
            0
        } else {
            g.layers.len()
        }
    );
    let values = g.evaluate::<F>(&embed::<F>(input)).unwrap();
    let got: Vec<i128> = values
        .last()
        .unwrap()
        .iter()
        .map(|&v| to_i128(v).unwrap())
        .collect();
    assert_eq!(got, reference(c, batch, input), "circuit {:?}", c.layers);
    g
}

fn check(c: &LayeredCircuit, batch: usize, rng: &mut ChaCha8Rng) -> GateCircuit {
    let input = random_input(rng, c, batch);
    check_over::<Bn254>(c, batch, &input);
    check_over::<M127>(c, batch, &input)
}

fn depth(c: &LayeredCircuit) -> usize {
    lowered_stats(c, 1).unwrap().depth()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn conv_layers_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for stride in [[1, 1], [2, 2], [1, 2]] {
        for padding in [[0, 0], [1, 1], [1, 0]] {
            let l = conv(&mut rng, [3, 5, 7], 4, [3, 2], stride, padding);
            let c = circuit(vec![3, 5, 7], vec![l]);
            for batch in [1, 3] {
                check(&c, batch, &mut rng);
            }
        }
    }
    // 27 taps + bias: a leaf layer and ⌈log2 28⌉ = 5 tree levels; without bias still 5.
    let mut l = conv(&mut rng, [3, 5, 7], 2, [3, 3], [1, 1], [1, 1]);
    if let Op::Conv2d(Conv2dOp { weight, bias, .. }) = &mut l.op {
        weight.iter_mut().for_each(|w| *w = 2);
        bias[0] = 0;
        bias[1] = 9;
    }
    let c = circuit(vec![3, 5, 7], vec![l.clone()]);
    check(&c, 2, &mut rng);
    assert_eq!(depth(&c), 6);
    // 0/1 weights skip the leaf layer.
    if let Op::Conv2d(Conv2dOp { weight, .. }) = &mut l.op {
        weight
            .iter_mut()
            .enumerate()
            .for_each(|(i, w)| *w = (i % 3 != 0) as i64);
    }
    let c = circuit(vec![3, 5, 7], vec![l]);
    check(&c, 2, &mut rng);
    assert_eq!(depth(&c), 5);
}

#[test]
fn dense_layers_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for input in [vec![3, 5, 7], vec![17], vec![16]] {
        let c = circuit(input.clone(), vec![dense(&mut rng, input, 10)]);
        for batch in [1, 3] {
            check(&c, batch, &mut rng);
        }
    }
    // 16 terms and a bias: 1 + 5 layers; 16 terms without bias: 1 + 4.
    let mut l = dense(&mut rng, vec![16], 1);
    if let Op::Dense(DenseOp { weight, bias, .. }) = &mut l.op {
        weight.iter_mut().for_each(|w| *w = 3);
        bias[0] = 5;
    }
    let c = circuit(vec![16], vec![l.clone()]);
    check(&c, 1, &mut rng);
    assert_eq!(depth(&c), 6);
    if let Op::Dense(DenseOp { bias, .. }) = &mut l.op {
        bias[0] = 0;
    }
    let c = circuit(vec![16], vec![l]);
    check(&c, 1, &mut rng);
    assert_eq!(depth(&c), 5);
    // An all-zero layer is constants.
    let l = stage(
        Op::Dense(DenseOp {
            in_features: 4,
            out_features: 2,
            weight: vec![0; 8],
            bias: vec![0, -7],
        }),
        vec![4],
        vec![2],
    );
    let c = circuit(vec![4], vec![l]);
    let g = check(&c, 3, &mut rng);
    assert_eq!(g.layers.len(), 1);
}

#[test]
fn sum_pools_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (dims, window, stride) in [
        ([3, 6, 8], [2, 2], [2, 2]),
        ([3, 5, 7], [2, 2], [2, 2]),
        ([2, 9, 7], [3, 3], [3, 3]),
        ([3, 5, 7], [2, 2], [1, 1]),
        ([2, 5, 6], [1, 1], [2, 1]),
    ] {
        let c = circuit(dims.to_vec(), vec![pool(dims, window, stride)]);
        for batch in [1, 3] {
            check(&c, batch, &mut rng);
        }
    }
    // A window running past the input edge reads zeros there.
    let l = stage(
        Op::SumPool(SumPoolOp {
            window: [2, 2],
            stride: [2, 2],
        }),
        vec![1, 5, 5],
        vec![1, 3, 3],
    );
    check(&circuit(vec![1, 5, 5], vec![l]), 2, &mut rng);
    // 2×2 windows: no leaf layer, two add levels.
    assert_eq!(
        depth(&circuit(
            vec![3, 6, 8],
            vec![pool([3, 6, 8], [2, 2], [2, 2])]
        )),
        2
    );
}

#[test]
fn activations_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let cases: [(i128, i128, i128, usize); 13] = [
        (1, 0, 0, 1),   // square
        (1, 256, 0, 2), // x² + x at 8 fractional bits
        (1, 1, 0, 2),   // x² + x
        (-3, 5, -7, 3), // general
        (2, -9, 0, 3),  // a ≠ 1, c = 0
        (1, 4, 11, 3),  // a = 1, b, c
        (1, 1, -5, 2),  // b = 1 absorbs c
        (5, 0, 0, 2),   // a·x²
        (1, 0, -8, 2),  // x² + c
        (-2, 0, 3, 3),  // a·x² + c
        (0, 3, -4, 2),  // linear
        (0, 1, 0, 1),   // identity
        (0, 0, 6, 1),   // constant
    ];
    for (a, b, c, layers) in cases {
        let circ = circuit(vec![3, 5, 7], vec![act(vec![3, 5, 7], a, b, c)]);
        for batch in [1, 3] {
            check(&circ, batch, &mut rng);
        }
        assert_eq!(depth(&circ), layers, "a={a} b={b} c={c}");
    }
}

#[test]
fn gates_relabel_matches_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..10 {
        let c = circuit(vec![3, 5], vec![relabel(&mut rng, 3, 5)]);
        for batch in [1, 3] {
            check(&c, batch, &mut rng);
        }
    }
}

fn chain_a(rng: &mut ChaCha8Rng) -> LayeredCircuit {
    // conv(3→4, 3×2, stride 1, pad 1) on 5×7 → [4,5,8]; x² + x; pool 2/2 → [4,2,4]; dense → 10;
    // general activation.
    let l1 = conv(rng, [3, 5, 7], 4, [3, 2], [1, 1], [1, 1]);
    let l2 = act(vec![4, 5, 8], 1, 16, 0);
    let l3 = pool([4, 5, 8], [2, 2], [2, 2]);
    let l4 = dense(rng, vec![4, 2, 4], 10);
    let l5 = act(vec![10], -3, 5, -7);
    circuit(vec![3, 5, 7], vec![l1, l2, l3, l4, l5])
}

fn chain_b(rng: &mut ChaCha8Rng) -> LayeredCircuit {
    // conv stride 2 → [3, 2, 4]; square; relabel [3, 8] → [8, 3]; pool 3/3 on [1, 8, 3] →
    // [1, 2, 1]; dense → 3.
    let l1 = conv(rng, [3, 5, 7], 3, [3, 2], [2, 2], [0, 1]);
    assert_eq!(l1.output.dims, vec![3, 2, 4]);
    let l2 = act(vec![3, 2, 4], 1, 0, 0);
    let l3 = relabel(rng, 3, 8);
    let l4 = pool([1, 8, 3], [3, 3], [3, 3]);
    let l5 = dense(rng, vec![1, 2, 1], 3);
    circuit(vec![3, 5, 7], vec![l1, l2, l3, l4, l5])
}

#[test]
fn chains_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for _ in 0..3 {
        let a = chain_a(&mut rng);
        let b = chain_b(&mut rng);
        for batch in [1, 3] {
            check(&a, batch, &mut rng);
            check(&b, batch, &mut rng);
        }
    }
    // Every stage ends on one layer of batch·out values in order: stage boundaries line up.
    let a = chain_a(&mut rng);
    let s = lowered_stats(&a, 3).unwrap();
    let mut at = 0;
    for (st, l) in s.stages.iter().zip(&a.layers) {
        at += st.layers;
        assert_eq!(s.layer_sizes[at - 1], 3 * l.output.item_len());
    }
    // An empty circuit is one relay layer.
    check(&circuit(vec![2, 3], vec![]), 2, &mut rng);
}

fn prove_and_verify<F: ProofField>(g: &GateCircuit, input: &[i128]) {
    let x = embed::<F>(input);
    let (out, proof) = gkr::prove(g, &x).unwrap();
    assert_eq!(&out, g.evaluate(&x).unwrap().last().unwrap());
    vgkr::verify(g, &x, &out, &proof).unwrap();
    // A tampered output element: refused by the statement check, and, with the proof's own
    // output tampered too, by the protocol.
    let mut bad = out.clone();
    bad[out.len() / 2] += F::from(1u64);
    assert!(vgkr::verify(g, &x, &bad, &proof).is_err());
    let mut forged = proof.clone();
    forged.output = bad.clone();
    assert!(vgkr::verify(g, &x, &bad, &forged).is_err());
    // A tampered input is refused as well.
    let mut bad_in = x.clone();
    bad_in[0] += F::from(1u64);
    assert!(vgkr::verify(g, &bad_in, &out, &proof).is_err());
}

#[test]
fn lowered_circuits_prove_and_verify() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let a = chain_a(&mut rng);
    let input = random_input(&mut rng, &a, 2);
    let g = check_over::<M127>(&a, 2, &input);
    prove_and_verify::<M127>(&g, &input);
    prove_and_verify::<Bn254>(&g, &input);

    let b = chain_b(&mut rng);
    let input = random_input(&mut rng, &b, 1);
    let g = check_over::<M127>(&b, 1, &input);
    prove_and_verify::<M127>(&g, &input);

    let p = circuit(vec![2, 4, 6], vec![pool([2, 4, 6], [2, 2], [1, 1])]);
    let input = random_input(&mut rng, &p, 3);
    let g = check_over::<M127>(&p, 3, &input);
    prove_and_verify::<M127>(&g, &input);
}

#[test]
fn oversized_circuits_are_refused() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    // 64 × 1022² outputs × 9 taps: about 2^29 leaf gates, refused before anything is built.
    let big = circuit(
        vec![1, 1024, 1024],
        vec![conv(&mut rng, [1, 1024, 1024], 64, [3, 3], [1, 1], [0, 0])],
    );
    let err = lower_to_gates(&big, 1).unwrap_err();
    assert!(
        matches!(err, LowerError::TooLarge { limit, .. } if limit == 1 << 26),
        "{err}"
    );
    assert!(err.to_string().contains("67108864"), "{err}");
    assert!(lowered_stats(&big, 1).is_err());
    // A huge batch, and dims whose product overflows.
    let small = circuit(vec![4], vec![dense(&mut rng, vec![4], 2)]);
    assert!(matches!(
        lower_to_gates(&small, 1 << 40),
        Err(LowerError::TooLarge { .. })
    ));
    let mut huge = circuit(vec![1 << 40, 1 << 40], vec![]);
    assert!(matches!(
        lower_to_gates(&huge, 1),
        Err(LowerError::TooLarge { .. })
    ));
    huge.input = Layout::new(vec![usize::MAX, 3]);
    assert!(lower_to_gates(&huge, 1).is_err());
    // Explicit limits: per layer and in total.
    let c = chain_a(&mut rng);
    let s = lowered_stats(&c, 2).unwrap();
    let tight = GateLimits {
        max_layer_gates: s.max_layer() - 1,
        max_total_gates: usize::MAX,
    };
    assert!(matches!(
        lower_to_gates_with_limits(&c, 2, &tight),
        Err(LowerError::TooLarge { .. })
    ));
    let tight = GateLimits {
        max_layer_gates: s.max_layer(),
        max_total_gates: s.gate_count() - 1,
    };
    let err = lower_to_gates_with_limits(&c, 2, &tight).unwrap_err();
    assert!(err.to_string().contains("in total"), "{err}");
    let exact = GateLimits {
        max_layer_gates: s.max_layer(),
        max_total_gates: s.gate_count(),
    };
    assert!(lower_to_gates_with_limits(&c, 2, &exact).is_ok());
}

#[test]
fn malformed_circuits_are_refused() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let good = chain_a(&mut rng);
    assert_eq!(lower_to_gates(&good, 0), Err(LowerError::EmptyBatch));
    let shape = |c: &LayeredCircuit| matches!(lower_to_gates(c, 1), Err(LowerError::Shape { .. }));

    let mut c = good.clone();
    if let Op::Conv2d(Conv2dOp { weight, .. }) = &mut c.layers[0].op {
        weight.pop();
    }
    assert!(shape(&c));
    let mut c = good.clone();
    if let Op::Conv2d(Conv2dOp { bias, .. }) = &mut c.layers[0].op {
        bias.push(1);
    }
    assert!(shape(&c));
    let mut c = good.clone();
    c.layers[0].output = Layout::new(vec![4, 5, 7]);
    assert!(shape(&c));
    let mut c = good.clone();
    if let Op::Conv2d(Conv2dOp { stride, .. }) = &mut c.layers[0].op {
        *stride = [0, 1];
    }
    assert!(shape(&c));
    let mut c = good.clone();
    if let Op::Dense(DenseOp { in_features, .. }) = &mut c.layers[3].op {
        *in_features += 1;
    }
    assert!(shape(&c));
    let mut c = good.clone();
    c.layers[1].output = Layout::new(vec![4, 5, 7]);
    assert!(shape(&c));
    let mut c = good.clone();
    c.input = Layout::new(vec![3, 5, 6]);
    assert!(shape(&c));
    let mut c = good.clone();
    c.layers[2].output = Layout::new(vec![4, 4, 4]);
    assert!(shape(&c));
    let mut c = good.clone();
    c.layers[4].input = Layout::new(vec![0]);
    assert!(shape(&c));

    let mut g = circuit(vec![3, 5], vec![relabel(&mut rng, 3, 5)]);
    if let Op::Gates(GatesOp { layer }) = &mut g.layers[0].op {
        layer.gates[0] = Gate::Relay(32);
    }
    assert!(shape(&g));
    if let Op::Gates(GatesOp { layer }) = &mut g.layers[0].op {
        layer.gates = vec![Gate::Const(1); 33];
    }
    assert!(shape(&g));
}

/// The CIFAR-like figures quoted in the report (3×32×32; conv 3→16 3×3 pad 1, x² + x, pool 2,
/// conv 16→32 3×3 pad 1, x² + x, pool 2, dense 2048 → 10), from the stats alone.
#[test]
fn cifar_like_stats() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let dense_all = |rng: &mut ChaCha8Rng, input: Vec<usize>, out: usize| {
        let mut l = dense(rng, input, out);
        if let Op::Dense(DenseOp { weight, .. }) = &mut l.op {
            weight.iter_mut().for_each(|w| *w = rng.gen_range(1..=9));
        }
        l
    };
    let conv_all = |rng: &mut ChaCha8Rng, input: [usize; 3], out: usize| {
        let mut l = conv(rng, input, out, [3, 3], [1, 1], [1, 1]);
        if let Op::Conv2d(Conv2dOp { weight, bias, .. }) = &mut l.op {
            weight.iter_mut().for_each(|w| *w = rng.gen_range(1..=9));
            bias.iter_mut().for_each(|b| *b = rng.gen_range(1..=9));
        }
        l
    };
    let c = circuit(
        vec![3, 32, 32],
        vec![
            conv_all(&mut rng, [3, 32, 32], 16),
            act(vec![16, 32, 32], 1, 256, 0),
            pool([16, 32, 32], [2, 2], [2, 2]),
            conv_all(&mut rng, [16, 16, 16], 32),
            act(vec![32, 16, 16], 1, 256, 0),
            pool([32, 16, 16], [2, 2], [2, 2]),
            dense_all(&mut rng, vec![32, 8, 8], 10),
        ],
    );
    for batch in [1, 8] {
        let s = lowered_stats(&c, batch).unwrap();
        println!(
            "cifar-like batch {batch}: {} gates, depth {}, largest layer {}, input {}",
            s.gate_count(),
            s.depth(),
            s.max_layer(),
            s.input_size
        );
        for st in &s.stages {
            println!(
                "  {:<10} {:>2} layers {:>9} gates (largest {})",
                st.op, st.layers, st.gates, st.max_layer
            );
        }
    }
    let s = lowered_stats(&c, 1).unwrap();
    assert_eq!(
        s.stages.iter().map(|s| s.layers).collect::<Vec<_>>(),
        vec![6, 2, 2, 9, 2, 2, 13]
    );
    let t = std::time::Instant::now();
    let g = lower_to_gates(&c, 1).unwrap();
    println!("built in {:?}", t.elapsed());
    assert_eq!(g.gate_count(), s.gate_count());
}
