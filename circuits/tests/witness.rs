//! Integer inference and field witnesses against an independent reference.
//!
//! The reference below is written directly from the formulas of each op (straight nested loops,
//! checked `i128` or field arithmetic, its own padded-index computation) and shares no code with
//! `witness.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verinfer_circuits::circuit::{
    ActivationOp, Conv2dOp, DenseOp, GatesOp, PolynomialOp, SumPoolOp,
};
use verinfer_circuits::circuit::{CircuitLayer, LayeredCircuit, Layout, Op, QuantParams};
use verinfer_circuits::field::{to_i128, Bn254, FieldId, ProofField, M127};
use verinfer_circuits::gates::{Gate, GateLayer};
use verinfer_circuits::witness::{arithmetic, infer, witness, Arith, WitnessError};

// ---------------------------------------------------------------------------------------------
// Reference
// ---------------------------------------------------------------------------------------------

/// The ring the reference computes in: checked `i128` (overflow fails the test) or a field.
trait Ring: Copy + PartialEq + std::fmt::Debug {
    fn int(v: i128) -> Self;
    fn plus(self, o: Self) -> Self;
    fn minus(self, o: Self) -> Self;
    fn times(self, o: Self) -> Self;
}

impl Ring for i128 {
    fn int(v: i128) -> Self {
        v
    }
    fn plus(self, o: Self) -> Self {
        self.checked_add(o).expect("reference overflow")
    }
    fn minus(self, o: Self) -> Self {
        self.checked_sub(o).expect("reference overflow")
    }
    fn times(self, o: Self) -> Self {
        self.checked_mul(o).expect("reference overflow")
    }
}

impl Ring for Bn254 {
    fn int(v: i128) -> Self {
        let m = Bn254::from(v.unsigned_abs());
        if v < 0 {
            -m
        } else {
            m
        }
    }
    fn plus(self, o: Self) -> Self {
        self + o
    }
    fn minus(self, o: Self) -> Self {
        self - o
    }
    fn times(self, o: Self) -> Self {
        self * o
    }
}

fn prod(d: &[usize]) -> usize {
    d.iter().product()
}

fn pow2(n: usize) -> usize {
    let mut p = 1;
    while p < n {
        p *= 2;
    }
    p
}

/// Padded per-item offset of a multi-index (row-major over power-of-two-rounded dims).
fn padded_index(dims: &[usize], idx: &[usize]) -> usize {
    dims.iter()
        .zip(idx)
        .fold(0, |acc, (&d, &i)| acc * pow2(d) + i)
}

/// Multi-index of a row-major real index.
fn unravel(dims: &[usize], mut r: usize) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for (k, &d) in dims.iter().enumerate().rev() {
        idx[k] = r % d;
        r /= d;
    }
    idx
}

/// One layer on one item.
fn ref_layer<R: Ring>(op: &Op, ind: &[usize], outd: &[usize], x: &[R]) -> Vec<R> {
    assert_eq!(x.len(), prod(ind));
    let mut y = vec![R::int(0); prod(outd)];
    match op {
        Op::Conv2d(Conv2dOp {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            weight,
            bias,
        }) => {
            let (c_n, h, w) = (ind[0], ind[1] as i64, ind[2] as i64);
            assert_eq!(c_n, *in_channels);
            let ho = (ind[1] + 2 * padding[0] - kernel[0]) / stride[0] + 1;
            let wo = (ind[2] + 2 * padding[1] - kernel[1]) / stride[1] + 1;
            assert_eq!(outd, [*out_channels, ho, wo]);
            for o in 0..*out_channels {
                for i in 0..ho {
                    for j in 0..wo {
                        let mut acc = R::int(bias[o]);
                        for c in 0..c_n {
                            for u in 0..kernel[0] {
                                for v in 0..kernel[1] {
                                    let r = (stride[0] * i + u) as i64 - padding[0] as i64;
                                    let s = (stride[1] * j + v) as i64 - padding[1] as i64;
                                    if r < 0 || r >= h || s < 0 || s >= w {
                                        continue;
                                    }
                                    let wi = ((o * c_n + c) * kernel[0] + u) * kernel[1] + v;
                                    let xi = (c as i64 * h + r) * w + s;
                                    acc =
                                        acc.plus(R::int(weight[wi] as i128).times(x[xi as usize]));
                                }
                            }
                        }
                        y[(o * ho + i) * wo + j] = acc;
                    }
                }
            }
        }
        Op::Dense(DenseOp {
            in_features,
            out_features,
            weight,
            bias,
        }) => {
            for o in 0..*out_features {
                let mut acc = R::int(bias[o]);
                for k in 0..*in_features {
                    acc = acc.plus(R::int(weight[o * in_features + k] as i128).times(x[k]));
                }
                y[o] = acc;
            }
        }
        Op::SumPool(SumPoolOp { window, stride }) => {
            let (c_n, h, w) = (ind[0], ind[1], ind[2]);
            let ho = (h - window[0]) / stride[0] + 1;
            let wo = (w - window[1]) / stride[1] + 1;
            assert_eq!(outd, [c_n, ho, wo]);
            for c in 0..c_n {
                for i in 0..ho {
                    for j in 0..wo {
                        let mut acc = R::int(0);
                        for u in 0..window[0] {
                            for v in 0..window[1] {
                                acc = acc
                                    .plus(x[(c * h + stride[0] * i + u) * w + stride[1] * j + v]);
                            }
                        }
                        y[(c * ho + i) * wo + j] = acc;
                    }
                }
            }
        }
        // The random circuits here hold no checkpoint (tests/compile.rs checks their kernel).
        Op::Requant(_) => unreachable!("no checkpoints in these circuits"),
        Op::Add(_) | Op::Mul(_) | Op::Branch(_) | Op::Fork(_) => {
            unreachable!("these circuits are chains")
        }
        // Σ c_k·x^k with every power built by repeated products, not Horner.
        Op::Polynomial(PolynomialOp { coefficients }) => {
            for (yi, &xi) in y.iter_mut().zip(x) {
                let mut power = R::int(1);
                let mut sum = R::int(0);
                for (k, &c) in coefficients.iter().enumerate() {
                    if k > 0 {
                        power = power.times(xi);
                    }
                    sum = sum.plus(R::int(c).times(power));
                }
                *yi = sum;
            }
        }
        Op::Activation(ActivationOp { a, b, c }) => {
            for (yi, &xi) in y.iter_mut().zip(x) {
                *yi = R::int(*a)
                    .times(xi)
                    .times(xi)
                    .plus(R::int(*b).times(xi))
                    .plus(R::int(*c));
            }
        }
        Op::Gates(GatesOp { layer }) => {
            let mut wires = vec![R::int(0); ind.iter().map(|&d| pow2(d)).product()];
            for (r, &v) in x.iter().enumerate() {
                wires[padded_index(ind, &unravel(ind, r))] = v;
            }
            let val = |g: &Gate| -> R {
                let v = |w: u32| wires[w as usize];
                match *g {
                    Gate::Add(a, b) => v(a).plus(v(b)),
                    Gate::Sub(a, b) => v(a).minus(v(b)),
                    Gate::Mul(a, b) => v(a).times(v(b)),
                    Gate::Scale(a, c) => v(a).times(R::int(c)),
                    Gate::AddConst(a, c) => v(a).plus(R::int(c)),
                    Gate::Relay(a) => v(a),
                    Gate::Const(c) => R::int(c),
                }
            };
            for (r, yr) in y.iter_mut().enumerate() {
                let g = padded_index(outd, &unravel(outd, r));
                *yr = layer.gates.get(g).map(val).unwrap_or(R::int(0));
            }
        }
    }
    y
}

/// Every stage, compact and batch-major.
fn ref_run<R: Ring>(c: &LayeredCircuit, batch: usize, input: &[i128]) -> Vec<Vec<R>> {
    let mut stages = vec![input.iter().map(|&v| R::int(v)).collect::<Vec<R>>()];
    for l in &c.layers {
        let x = stages.last().unwrap();
        let (ni, _no) = (prod(&l.input.dims), prod(&l.output.dims));
        let mut y = Vec::new();
        for b in 0..batch {
            y.extend(ref_layer(
                &l.op,
                &l.input.dims,
                &l.output.dims,
                &x[b * ni..(b + 1) * ni],
            ));
        }
        stages.push(y);
    }
    stages
}

/// Checks a padded field table against compact reference values (real positions) and zero
/// (every padding position, padded batch items included).
fn check_table<F: ProofField>(table: &[F], dims: &[usize], batch: usize, want: &[F], what: &str) {
    let per: usize = dims.iter().map(|&d| pow2(d)).product();
    assert_eq!(table.len(), per * pow2(batch), "{what}: table length");
    let item = prod(dims);
    for (t, &v) in table.iter().enumerate() {
        let (b, mut rem) = (t / per, t % per);
        let mut idx = vec![0; dims.len()];
        for (k, &d) in dims.iter().enumerate().rev() {
            idx[k] = rem % pow2(d);
            rem /= pow2(d);
        }
        let real = b < batch && idx.iter().zip(dims).all(|(i, d)| i < d);
        if real {
            let r = idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i);
            assert_eq!(v, want[b * item + r], "{what}: item {b}, index {idx:?}");
        } else {
            assert_eq!(
                v,
                F::zero(),
                "{what}: padding position {t} (item {b}, {idx:?})"
            );
        }
    }
}

fn to_f<F: ProofField>(v: &[i128]) -> Vec<F> {
    v.iter()
        .map(|&x| verinfer_circuits::field::from_i128(x).unwrap())
        .collect()
}

/// `infer` and both fields' witnesses against the i128 reference.
fn check_all(c: &LayeredCircuit, batch: usize, input: &[i128]) {
    let stages = ref_run::<i128>(c, batch, input);
    let out = infer(c, batch, input).unwrap();
    assert_eq!(&out, stages.last().unwrap(), "infer vs reference");
    check_witness::<M127>(c, batch, input, &stages);
    check_witness::<Bn254>(c, batch, input, &stages);
}

fn check_witness<F: ProofField>(
    c: &LayeredCircuit,
    batch: usize,
    input: &[i128],
    stages: &[Vec<i128>],
) {
    let w = witness::<F>(c, batch, input).unwrap();
    assert_eq!(w.batch, batch);
    assert_eq!(&w.output, stages.last().unwrap(), "witness output");
    assert_eq!(w.layers.len(), c.layers.len() + 1);
    let layouts = std::iter::once(&c.input).chain(c.layers.iter().map(|l| &l.output));
    for (s, ((table, want), l)) in w.layers.iter().zip(stages).zip(layouts).enumerate() {
        check_table(
            table,
            &l.dims,
            batch,
            &to_f::<F>(want),
            &format!("{} stage {s}", F::ID),
        );
        // Decoding back gives the same integers.
        let per: usize = l.dims.iter().map(|&d| pow2(d)).product();
        for b in 0..batch {
            let r = unravel(&l.dims, want.len() / batch - 1);
            let t = table[b * per + padded_index(&l.dims, &r)];
            assert_eq!(
                to_i128(t).unwrap(),
                want[(b + 1) * (want.len() / batch) - 1]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Circuit builders
// ---------------------------------------------------------------------------------------------

fn circuit(input: Vec<usize>, range: (i128, i128), layers: Vec<CircuitLayer>) -> LayeredCircuit {
    LayeredCircuit {
        name: "witness-test".into(),
        field: FieldId::M127,
        field_reason: String::new(),
        params: QuantParams::default(),
        input: Layout::new(input),
        input_scale: 0,
        input_min: range.0,
        input_max: range.1,
        layers,
    }
}

fn layer(op: Op, input: &[usize], output: Vec<usize>) -> CircuitLayer {
    CircuitLayer {
        op,
        input: Layout::new(input.to_vec()),
        output: Layout::new(output),
        scale_bits: 0,
        bound_bits: 0,
        label: String::new(),
    }
}

fn weights(rng: &mut ChaCha8Rng, n: usize, lo: i64, hi: i64) -> Vec<i64> {
    (0..n).map(|_| rng.gen_range(lo..=hi)).collect()
}

fn biases(rng: &mut ChaCha8Rng, n: usize) -> Vec<i128> {
    (0..n).map(|_| rng.gen_range(-1000..=1000)).collect()
}

#[allow(clippy::too_many_arguments)]
fn conv(
    rng: &mut ChaCha8Rng,
    ind: &[usize],
    o: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> CircuitLayer {
    let (c, h, w) = (ind[0], ind[1], ind[2]);
    let ho = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
    let wo = (w + 2 * padding[1] - kernel[1]) / stride[1] + 1;
    let op = Op::Conv2d(Conv2dOp {
        in_channels: c,
        out_channels: o,
        kernel,
        stride,
        padding,
        weight: weights(rng, o * c * kernel[0] * kernel[1], -8, 7),
        bias: biases(rng, o),
    });
    layer(op, ind, vec![o, ho, wo])
}

fn dense(rng: &mut ChaCha8Rng, ind: &[usize], o: usize) -> CircuitLayer {
    let k = prod(ind);
    let op = Op::Dense(DenseOp {
        in_features: k,
        out_features: o,
        weight: weights(rng, o * k, -8, 7),
        bias: biases(rng, o),
    });
    layer(op, ind, vec![o])
}

fn pool(ind: &[usize], window: [usize; 2], stride: [usize; 2]) -> CircuitLayer {
    let out = vec![
        ind[0],
        (ind[1] - window[0]) / stride[0] + 1,
        (ind[2] - window[1]) / stride[1] + 1,
    ];
    layer(Op::SumPool(SumPoolOp { window, stride }), ind, out)
}

fn act(ind: &[usize], a: i128, b: i128, c: i128) -> CircuitLayer {
    layer(Op::Activation(ActivationOp { a, b, c }), ind, ind.to_vec())
}

fn random_input(rng: &mut ChaCha8Rng, c: &LayeredCircuit, batch: usize) -> Vec<i128> {
    (0..batch * c.input.item_len())
        .map(|_| rng.gen_range(c.input_min..=c.input_max))
        .collect()
}

/// Sets every layer's `bound_bits` to the bits of the worst case over sign patterns: the
/// reference run on all-min and all-max inputs bounds nothing in general, so this uses interval
/// arithmetic directly from the formulas (|Σ w·x| ≤ Σ|w|·max|x| etc.).
fn honest_bounds(c: &mut LayeredCircuit) {
    let mut m: u128 = c.input_min.unsigned_abs().max(c.input_max.unsigned_abs());
    for l in &mut c.layers {
        m = match &l.op {
            Op::Conv2d(Conv2dOp {
                weight,
                bias,
                out_channels,
                ..
            }) => {
                let per = weight.len() / out_channels;
                (0..*out_channels)
                    .map(|o| {
                        weight[o * per..(o + 1) * per]
                            .iter()
                            .map(|w| w.unsigned_abs() as u128 * m)
                            .sum::<u128>()
                            + bias[o].unsigned_abs()
                    })
                    .max()
                    .unwrap()
            }
            Op::Dense(DenseOp {
                weight,
                bias,
                in_features,
                out_features,
            }) => (0..*out_features)
                .map(|o| {
                    weight[o * in_features..(o + 1) * in_features]
                        .iter()
                        .map(|w| w.unsigned_abs() as u128 * m)
                        .sum::<u128>()
                        + bias[o].unsigned_abs()
                })
                .max()
                .unwrap(),
            Op::SumPool(SumPoolOp { window, .. }) => m * (window[0] * window[1]) as u128,
            Op::Activation(ActivationOp { a, b, c }) => {
                a.unsigned_abs() * m * m + b.unsigned_abs() * m + c.unsigned_abs()
            }
            Op::Polynomial(PolynomialOp { coefficients }) => coefficients
                .iter()
                .zip(0u32..)
                .map(|(c, k)| c.unsigned_abs().saturating_mul(m.saturating_pow(k)))
                .fold(0u128, u128::saturating_add),
            Op::Gates(GatesOp { .. }) => 1 << 40,
            Op::Requant(op) => 1 << (op.bits - 1),
            Op::Add(_) | Op::Mul(_) | Op::Branch(_) | Op::Fork(_) => {
                unreachable!("these circuits are chains")
            }
        };
        l.bound_bits = 128 - m.leading_zeros();
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

type ConvCase = ([usize; 3], usize, [usize; 2], [usize; 2], [usize; 2]);

#[test]
fn conv_odd_shapes_strides_and_padding() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // (input dims, output channels, kernel, stride, padding)
    let cases: &[ConvCase] = &[
        ([3, 5, 7], 4, [3, 2], [1, 1], [0, 0]),
        ([3, 5, 7], 4, [3, 2], [1, 1], [1, 1]),
        ([3, 5, 7], 4, [3, 2], [2, 2], [0, 0]),
        ([3, 5, 7], 4, [3, 2], [2, 2], [1, 1]),
        ([3, 5, 7], 5, [3, 2], [1, 2], [0, 1]),
        ([3, 5, 7], 3, [2, 3], [2, 1], [1, 0]),
        ([1, 4, 4], 1, [1, 1], [1, 1], [0, 0]),
        ([2, 3, 3], 7, [3, 3], [1, 1], [2, 2]),
        // Large enough for the parallel paths and several position blocks.
        ([8, 13, 17], 10, [3, 3], [1, 1], [1, 1]),
        ([20, 9, 11], 6, [5, 4], [2, 1], [2, 1]),
    ];
    for &(ind, o, k, s, p) in cases {
        for batch in [1, 3] {
            let mut c = circuit(
                ind.to_vec(),
                (-16, 15),
                vec![conv(&mut rng, &ind, o, k, s, p)],
            );
            honest_bounds(&mut c);
            let input = random_input(&mut rng, &c, batch);
            check_all(&c, batch, &input);
        }
    }
}

#[test]
fn dense_flattened_input_to_ten_outputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for ind in [vec![3, 5, 7], vec![10], vec![2, 3], vec![600], vec![7, 90]] {
        for (batch, o) in [(1, 10), (3, 10), (1, 13), (5, 1), (70, 10), (3, 183)] {
            let mut c = circuit(ind.clone(), (-16, 15), vec![dense(&mut rng, &ind, o)]);
            honest_bounds(&mut c);
            let input = random_input(&mut rng, &c, batch);
            check_all(&c, batch, &input);
        }
    }
}

#[test]
fn sum_pools() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for ind in [[3, 6, 7], [2, 9, 9], [1, 2, 2], [4, 33, 17]] {
        for (w, s) in [
            ([2, 2], [2, 2]),
            ([3, 3], [3, 3]),
            ([2, 2], [1, 1]),
            ([1, 2], [1, 2]),
        ] {
            if ind[1] < w[0] || ind[2] < w[1] {
                continue;
            }
            for batch in [1, 3] {
                let mut c = circuit(ind.to_vec(), (-1000, 1000), vec![pool(&ind, w, s)]);
                honest_bounds(&mut c);
                let input = random_input(&mut rng, &c, batch);
                check_all(&c, batch, &input);
            }
        }
    }
}

#[test]
fn activations() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for ind in [vec![2, 3, 5], vec![7], vec![3, 100, 100]] {
        for (a, b, c) in [(3, -5, 7), (1, 256, 0), (-2, 0, 65536), (0, 9, -1)] {
            for batch in [1, 3] {
                let mut circ = circuit(ind.clone(), (-300, 300), vec![act(&ind, a, b, c)]);
                honest_bounds(&mut circ);
                let input = random_input(&mut rng, &circ, batch);
                check_all(&circ, batch, &input);
            }
        }
    }
}

/// Every polynomial degree the proof format allows, on every arithmetic the bounds pick (i64,
/// i128, then the BN254 field past 126 bits), against the power-by-power reference.
#[test]
fn polynomials_of_every_degree() {
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    let ind = vec![2, 3, 5];
    for d in 3..=31usize {
        // Mixed signs and zeros, a constant, a non-unit leading coefficient.
        let coefficients: Vec<i128> = (0..=d)
            .map(|k| match (k * 7 + d) % 5 {
                0 => 0,
                1 => 1,
                2 => -3,
                3 => 2,
                _ => -1,
            })
            .chain([if d % 2 == 0 { -2 } else { 1 }])
            .skip(1)
            .collect();
        let op = Op::Polynomial(PolynomialOp { coefficients });
        for range in [(-3, 3), (-40, 40), (-700, 700)] {
            let mut circ = circuit(
                ind.clone(),
                range,
                vec![layer(op.clone(), &ind, ind.clone())],
            );
            honest_bounds(&mut circ);
            let bits = circ.layers[0].bound_bits;
            if bits > 250 {
                continue;
            }
            for batch in [1, 2] {
                let mut input = random_input(&mut rng, &circ, batch);
                input[0] = range.0;
                input[1] = range.1;
                if bits <= 126 {
                    check_all(&circ, batch, &input);
                    continue;
                }
                // Past 126 bits the stage lives in the BN254 field; a difference of equal
                // values brings the output back to a machine integer.
                let pair = [2usize];
                let diff = layer(
                    Op::Dense(DenseOp {
                        in_features: 2,
                        out_features: 1,
                        weight: vec![1, -1],
                        bias: vec![3],
                    }),
                    &pair,
                    vec![1],
                );
                let mut wide = circuit(
                    pair.to_vec(),
                    range,
                    vec![layer(op.clone(), &pair, pair.to_vec()), diff],
                );
                // Declared, not derived: the dense rule's sum would overflow u128 here.
                wide.layers[0].bound_bits = bits;
                wide.layers[1].bound_bits = bits;
                let input: Vec<i128> = input[..batch].iter().flat_map(|&v| [v, v]).collect();
                let stages = ref_run::<Bn254>(&wide, batch, &input);
                let w = witness::<Bn254>(&wide, batch, &input).unwrap();
                check_table(
                    &w.layers[1],
                    &pair,
                    batch,
                    &stages[1],
                    &format!("degree {d} range {range:?}"),
                );
                assert_eq!(w.output, vec![3; batch]);
            }
        }
    }
}

/// A transpose `[3, 5] → [5, 3]` as relay gates, then arithmetic gates on fewer gates than the
/// padded output (missing gates are zero).
#[test]
fn gate_layers() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let ind = [3usize, 5];
    let outd = [5usize, 3];
    let mut relabel = vec![Gate::Const(0); 8 * 4];
    for i in 0..5 {
        for j in 0..3 {
            relabel[padded_index(&outd, &[i, j])] = Gate::Relay(padded_index(&ind, &[j, i]) as u32);
        }
    }
    // Trim trailing padding gates: gates.len() shorter than the padded item.
    relabel.truncate(padded_index(&outd, &[4, 2]) + 1);
    let t = layer(
        Op::Gates(GatesOp {
            layer: GateLayer { gates: relabel },
        }),
        &ind,
        outd.to_vec(),
    );
    let w = |i: usize, j: usize| padded_index(&outd, &[i, j]) as u32;
    let arith = vec![
        Gate::Add(w(0, 0), w(1, 1)),
        Gate::Sub(w(2, 2), w(4, 0)),
        Gate::Mul(w(3, 1), w(0, 2)),
        Gate::Scale(w(4, 2), -3),
        Gate::AddConst(w(1, 0), 11),
        Gate::Const(-7),
    ];
    let g = layer(
        Op::Gates(GatesOp {
            layer: GateLayer { gates: arith },
        }),
        &outd,
        vec![7],
    );
    for batch in [1, 3, 5] {
        let mut c = circuit(ind.to_vec(), (-50, 50), vec![t.clone(), g.clone()]);
        honest_bounds(&mut c);
        let input = random_input(&mut rng, &c, batch);
        check_all(&c, batch, &input);
    }
}

fn chain(rng: &mut ChaCha8Rng) -> LayeredCircuit {
    let l0 = conv(rng, &[3, 9, 11], 6, [3, 2], [1, 1], [1, 1]);
    let d0 = l0.output.dims.clone();
    let l1 = act(&d0, 1, 256, 0);
    let l2 = pool(&d0, [2, 2], [2, 2]);
    let d2 = l2.output.dims.clone();
    let l3 = act(&d2, 3, -5, 7);
    let l4 = dense(rng, &d2, 10);
    let mut c = circuit(vec![3, 9, 11], (-128, 127), vec![l0, l1, l2, l3, l4]);
    honest_bounds(&mut c);
    c
}

#[test]
fn chain_conv_act_pool_dense() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let c = chain(&mut rng);
    for batch in [3, 1, 4] {
        let input = random_input(&mut rng, &c, batch);
        check_all(&c, batch, &input);
    }
}

#[test]
fn i128_path_selected_by_bounds_agrees() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut c = chain(&mut rng);
    assert_eq!(arithmetic(&c)[0], Arith::I64);
    for l in &mut c.layers {
        l.bound_bits = 100;
    }
    assert!(arithmetic(&c).iter().all(|&a| a == Arith::I128));
    let input = random_input(&mut rng, &c, 3);
    check_all(&c, 3, &input);

    // Genuinely wide values: x² twice from 20-bit inputs (up to 2^80), then a dense layer.
    let ind = [2usize, 3, 4];
    let l0 = act(&ind, 1, 0, 0);
    let l1 = act(&ind, 1, -3, 5);
    let l2 = dense(&mut rng, &ind, 10);
    let mut c = circuit(ind.to_vec(), (-(1 << 20), 1 << 20), vec![l0, l1, l2]);
    honest_bounds(&mut c);
    assert_eq!(arithmetic(&c), vec![Arith::I64, Arith::I128, Arith::I128]);
    let mut input = random_input(&mut rng, &c, 3);
    input[0] = -(1 << 20);
    input[1] = 1 << 20;
    let stages = ref_run::<i128>(&c, 3, &input);
    assert!(stages[2].iter().any(|v| v.unsigned_abs() > 1 << 70));
    check_all(&c, 3, &input);
}

/// Beyond 126 bits the field itself is used: BN254 tables agree with a BN254 reference, M127
/// refuses, and `infer` still returns an output that fits 128 bits.
#[test]
fn field_path_beyond_126_bits() {
    let ind = [2usize];
    let sq = |d: &[usize]| act(d, 1, 0, 0);
    let diff = layer(
        Op::Dense(DenseOp {
            in_features: 2,
            out_features: 1,
            weight: vec![1, -1],
            bias: vec![3],
        }),
        &ind,
        vec![1],
    );
    let mut c = circuit(
        ind.to_vec(),
        (-(1 << 40), 1 << 40),
        vec![sq(&ind), sq(&ind), diff],
    );
    c.layers[0].bound_bits = 81;
    c.layers[1].bound_bits = 161;
    c.layers[2].bound_bits = 124;
    assert_eq!(
        arithmetic(&c),
        vec![Arith::I128, Arith::Field, Arith::Field]
    );
    let v: i128 = 1 << 40;
    let input = vec![v, v - 1, -v, 1 - v, 17, -17];
    let batch = 3;
    let stages = ref_run::<Bn254>(&c, batch, &input);
    let w = witness::<Bn254>(&c, batch, &input).unwrap();
    let layouts = std::iter::once(&c.input).chain(c.layers.iter().map(|l| &l.output));
    for (s, ((table, want), l)) in w.layers.iter().zip(&stages).zip(layouts).enumerate() {
        check_table(
            table,
            &l.dims,
            batch,
            want,
            &format!("bn254 wide stage {s}"),
        );
    }
    let expect = |a: i128, b: i128| {
        let f = |x: i128| {
            let x = Bn254::int(x);
            x * x * x * x
        };
        to_i128(f(a) - f(b) + Bn254::from(3u64)).unwrap()
    };
    let out = vec![expect(v, v - 1), expect(-v, 1 - v), expect(17, -17)];
    assert_eq!(w.output, out);
    assert_eq!(infer(&c, batch, &input).unwrap(), out);
    assert!(matches!(
        witness::<M127>(&c, batch, &input),
        Err(WitnessError::FieldTooSmall {
            layer: 1,
            bits: 161,
            capacity: 126
        })
    ));
    // An output that does not fit 128 bits is an error of `infer`, not a wrapped value.
    let mut c2 = c.clone();
    c2.layers.truncate(2);
    assert!(matches!(
        infer(&c2, batch, &input),
        Err(WitnessError::ValueTooWide { stage: 2, .. })
    ));
}

#[test]
fn input_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let c = chain(&mut rng);
    let n = c.input.item_len();
    let input = random_input(&mut rng, &c, 2);
    assert_eq!(
        infer(&c, 2, &input[..2 * n - 1]),
        Err(WitnessError::InputLength {
            expected: 2 * n,
            got: 2 * n - 1,
            batch: 2,
            per_item: n
        })
    );
    assert!(matches!(
        witness::<M127>(&c, 3, &input),
        Err(WitnessError::InputLength { .. })
    ));
    assert_eq!(infer(&c, 0, &[]), Err(WitnessError::EmptyBatch));
    for (index, value) in [
        (n + 5, 128),
        (0, -129),
        (2 * n - 1, i128::MAX),
        (7, i128::MIN),
    ] {
        let mut bad = input.clone();
        bad[index] = value;
        let want = Err(WitnessError::InputOutOfRange {
            index,
            value,
            min: -128,
            max: 127,
        });
        assert_eq!(infer(&c, 2, &bad), want);
        assert_eq!(witness::<Bn254>(&c, 2, &bad).map(|w| w.output), want);
    }
    // The boundary values themselves are accepted.
    let mut edge = input.clone();
    edge[0] = -128;
    edge[1] = 127;
    check_all(&c, 2, &edge);
}

#[test]
fn shape_mismatches_are_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let good = chain(&mut rng);
    let input = random_input(&mut rng, &good, 1);
    let shape_err = |c: &LayeredCircuit, layer: usize| {
        let e = infer(c, 1, &input).unwrap_err();
        assert!(
            matches!(e, WitnessError::Shape { layer: l, .. } if l == layer),
            "{e:?}"
        );
        assert!(witness::<M127>(c, 1, &input).is_err());
    };
    // Wrong conv output dims.
    let mut c = good.clone();
    c.layers[0].output.dims[1] += 1;
    shape_err(&c, 0);
    // Wrong weight count.
    let mut c = good.clone();
    if let Op::Conv2d(Conv2dOp { weight, .. }) = &mut c.layers[0].op {
        weight.pop();
    }
    shape_err(&c, 0);
    // A layer whose input is not the previous output.
    let mut c = good.clone();
    c.layers[2].input.dims[0] += 1;
    shape_err(&c, 2);
    // Dense with the wrong number of inputs.
    let mut c = good.clone();
    if let Op::Dense(DenseOp { in_features, .. }) = &mut c.layers[4].op {
        *in_features += 1;
    }
    shape_err(&c, 4);
    // A pooling window larger than the image, zero strides, absurd padding.
    let mut c = good.clone();
    c.layers[2].op = Op::SumPool(SumPoolOp {
        window: [100, 2],
        stride: [2, 2],
    });
    shape_err(&c, 2);
    let mut c = good.clone();
    if let Op::Conv2d(Conv2dOp { stride, .. }) = &mut c.layers[0].op {
        *stride = [0, 1];
    }
    shape_err(&c, 0);
    let mut c = good.clone();
    if let Op::Conv2d(Conv2dOp { padding, .. }) = &mut c.layers[0].op {
        *padding = [usize::MAX, 1];
    }
    shape_err(&c, 0);
    // An activation that changes the shape; a gate reading past the input.
    let mut c = good.clone();
    c.layers[1].output.dims = vec![c.layers[1].input.item_len()];
    shape_err(&c, 1);
    let mut c = good.clone();
    c.layers.push(layer(
        Op::Gates(GatesOp {
            layer: GateLayer {
                gates: vec![Gate::Relay(16)],
            },
        }),
        &[10],
        vec![1],
    ));
    shape_err(&c, 5);
    // A huge declared layout is refused before anything is allocated.
    let mut c = good.clone();
    c.layers[4].output.dims = vec![1 << 40];
    assert!(infer(&c, 1, &input).is_err());
}

/// Understated bounds are trusted but never make inference panic.
#[test]
fn understated_bounds_do_not_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let mut c = chain(&mut rng);
    for l in &mut c.layers {
        l.bound_bits = 3;
    }
    let input = random_input(&mut rng, &c, 2);
    let _ = infer(&c, 2, &input);
    let _ = witness::<M127>(&c, 2, &input);
}

fn wide_dense(rng: &mut ChaCha8Rng, ind: &[usize], o: usize, wmax: i64) -> CircuitLayer {
    let k = prod(ind);
    let op = Op::Dense(DenseOp {
        in_features: k,
        out_features: o,
        weight: weights(rng, o * k, -wmax, wmax),
        bias: (0..o)
            .map(|_| rng.gen_range(-(1i128 << 100)..=1 << 100))
            .collect(),
    });
    layer(op, ind, vec![o])
}

/// Dense and conv layers in `i128` whose weights are too large for a split into 64-bit limbs:
/// the 128-bit multiply-accumulate kernel itself.
#[test]
fn i128_kernel_with_large_weights() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let ind = [3usize, 5, 7];
    let big = 1i64 << 50;
    for batch in [1, 2, 5] {
        let d = wide_dense(&mut rng, &ind, 10, big);
        let mut cv = conv(&mut rng, &ind, 4, [3, 2], [1, 1], [1, 1]);
        if let Op::Conv2d(Conv2dOp { weight, .. }) = &mut cv.op {
            *weight = weights(&mut rng, weight.len(), -big, big);
        }
        for l in [d, cv] {
            let mut c = circuit(ind.to_vec(), (-(1 << 40), 1 << 40), vec![l]);
            honest_bounds(&mut c);
            assert_eq!(arithmetic(&c), vec![Arith::I128]);
            let mut input = random_input(&mut rng, &c, batch);
            input[0] = -(1 << 40);
            check_all(&c, batch, &input);
        }
    }
}

/// `i128` dense and conv layers on inputs of 60, 100 and 110 bits: one, two and three 64-bit
/// limbs (and the 128-bit kernel at batch 1, where only one limb is tried).
#[test]
fn i128_layers_split_into_limbs() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let ind = [3usize, 5, 7];
    for xb in [60u32, 100, 110] {
        let r = (1i128 << (xb - 1)) - 1;
        for batch in [1, 4, 7] {
            let d = dense(&mut rng, &ind, 10);
            let cv = conv(&mut rng, &ind, 5, [3, 2], [1, 2], [1, 0]);
            for l in [d, cv] {
                let mut c = circuit(ind.to_vec(), (-r - 1, r), vec![l]);
                honest_bounds(&mut c);
                assert_eq!(arithmetic(&c), vec![Arith::I128]);
                let mut input = random_input(&mut rng, &c, batch);
                input[1] = -r - 1;
                input[2] = r;
                check_all(&c, batch, &input);
            }
        }
    }
}

/// Dense and conv layers at the edges of exactness of 16-bit operands with 32-bit sums:
/// |w| = 2^15 − 1 vs 2^15, |x| = 2^15 − 1 vs 2^15, Σ|w|·max|x| just below vs above 2^31.
#[test]
fn narrow_kernel_boundaries() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let e = (1i64 << 15) - 1;
    // (weight choices, fan-in, input range)
    let cases: Vec<(Vec<i64>, usize, i128)> = vec![
        (vec![-e, e], 2, e as i128),
        (vec![-e, e], 4, e as i128),
        (vec![-e - 1, e + 1], 1, (1 << 14) - 1),
        (vec![-1, 1], 1, 1 << 15),
        (vec![-1, 1], 3, (1 << 15) - 1),
    ];
    for (choices, k, r) in cases {
        let pick = |rng: &mut ChaCha8Rng, n: usize| -> Vec<i64> {
            (0..n)
                .map(|_| choices[rng.gen_range(0..choices.len())])
                .collect()
        };
        // Dense: fan-in k, 6 outputs, batch 5 (the 16-bit kernel needs ≥ 4 columns).
        let d = layer(
            Op::Dense(DenseOp {
                in_features: k,
                out_features: 6,
                weight: pick(&mut rng, 6 * k),
                bias: biases(&mut rng, 6),
            }),
            &[k],
            vec![6],
        );
        let mut c = circuit(vec![k], (-r, r), vec![d]);
        honest_bounds(&mut c);
        let mut input = random_input(&mut rng, &c, 5);
        for (i, v) in input.iter_mut().enumerate() {
            if i % 3 != 2 {
                *v = if i % 2 == 0 { r } else { -r };
            }
        }
        check_all(&c, 5, &input);
        // Conv: k channels, 1×1 kernel, on a 3×3 image (9 positions).
        let mut cv = conv(&mut rng, &[k, 3, 3], 3, [1, 1], [1, 1], [0, 0]);
        if let Op::Conv2d(Conv2dOp { weight, .. }) = &mut cv.op {
            *weight = pick(&mut rng, weight.len());
        }
        let mut c = circuit(vec![k, 3, 3], (-r, r), vec![cv]);
        honest_bounds(&mut c);
        let mut input = random_input(&mut rng, &c, 2);
        for (i, v) in input.iter_mut().enumerate() {
            if i % 4 != 3 {
                *v = if (i / 9) % 2 == 0 { r } else { -r };
            }
        }
        check_all(&c, 2, &input);
    }
}

/// Convolutions over several im2col blocks of output positions, on each product kernel:
/// 16-bit, 64-bit and 128-bit (by the declared bounds and the data), batch 1 (channel groups
/// in parallel) and 3 (items in parallel).
#[test]
fn conv_many_position_blocks() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for (ind, range, wmax) in [
        ([2usize, 64, 45], 100i128, 7i64),
        ([4, 40, 40], 1 << 20, 7),
        ([3, 33, 30], 1 << 40, 1 << 40),
    ] {
        for batch in [1, 3] {
            let mut cv = conv(&mut rng, &ind, 9, [3, 3], [1, 1], [1, 1]);
            if let Op::Conv2d(Conv2dOp { weight, .. }) = &mut cv.op {
                *weight = weights(&mut rng, weight.len(), -wmax, wmax);
            }
            let mut c = circuit(ind.to_vec(), (-range, range), vec![cv]);
            honest_bounds(&mut c);
            let input = random_input(&mut rng, &c, batch);
            check_all(&c, batch, &input);
        }
    }
}
