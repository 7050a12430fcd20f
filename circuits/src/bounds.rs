//! The exact worst-case bound analysis that picks the field (docs/protocol.md §6).
//!
//! Every real input element starts with the interval `[input_min, input_max]`; each layer maps per-element intervals with the actual integer
//! weights: a linear output gets `Σ_k [min(W·lo_k, W·hi_k), max(W·lo_k, W·hi_k)] + B` (zero
//! padding contributes exactly 0), an activation the exact min/max of its quadratic over the
//! integers of the interval (endpoints and the integers around the vertex), a pooling output the
//! sum of its window. The first layer's intervals are attained; later ones are per-element worst
//! cases. A layer's `bound_bits` also covers the intermediate magnitudes an integer evaluation
//! passes through ([`LayerBound`]). Arithmetic is checked `i128`; a layer that overflows it is
//! analysed from then on with `f64` magnitude bounds, rounded up with a relative margin of
//! 2^-20 per layer (such values need more than 126 bits, i.e. BN254 or no field at all).
//!
//! **Files.** This module holds the driver and the two domains ([`Domain`]: exact `i128`
//! intervals, `f64` magnitudes); each layer kind's bound rule ([`BoundRule`]) sits next to its
//! integer kernel in `witness/<kind>.rs`, reached through the one dispatch [`Op::kind`].

use crate::circuit::{bits_of, CircuitLayer, LayeredCircuit};
use crate::compile::CompileError;
use crate::ops::RequantOp;
use std::borrow::Cow;

/// The `bound_bits` reported for a magnitude beyond the `f64` range: "more than 1024 bits".
pub const UNBOUNDED_BITS: u32 = 1025;

/// Relative safety margin applied to `f64` magnitude bounds after each layer.
const F64_MARGIN: f64 = 1.0 + 1.0 / (1u64 << 20) as f64;

/// The result of the bound analysis for one layer. Bits mean `|v| < 2^bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerBound {
    /// Bits of the largest |output value|.
    pub output_bits: u32,
    /// Bits of the largest intermediate magnitude: `Σ|W|·max|X| + |B|` for linear layers,
    /// `Σ max|X|` over a pooling window, `|a|·M² + |b|·M + |c|` for an activation on `|X| ≤ M`.
    pub intermediate_bits: u32,
    /// Whether the intervals were computed exactly in `i128` (else `f64` upper bounds).
    pub exact: bool,
}

impl LayerBound {
    /// The layer's `bound_bits`: the larger of the output and intermediate bits.
    pub fn bits(&self) -> u32 {
        self.output_bits.max(self.intermediate_bits)
    }
}

/// Runs the worst-case bound analysis (see the module docs) on a circuit's integer ops, from its
/// declared input range: one [`LayerBound`] per layer. [`crate::compile::compile`] stores `bits()` of each as the
/// layer's `bound_bits`; running it on a circuit file checks that its bounds are honest.
pub fn bound_analysis(circuit: &LayeredCircuit) -> Result<Vec<LayerBound>, CompileError> {
    analyse(circuit, false).map(|(bounds, _)| bounds)
}

/// The per-element bounds of every stage found by the bound analysis: `[0]` is the input,
/// `[i + 1]` the output of layer `i` (for diagnostics and tests; it keeps every stage in memory).
pub fn stage_bounds(circuit: &LayeredCircuit) -> Result<Vec<StageBounds>, CompileError> {
    analyse(circuit, true).map(|(_, stages)| stages)
}

/// The bound analysis; keeps every stage's bounds when `keep`.
fn analyse(
    circuit: &LayeredCircuit,
    keep: bool,
) -> Result<(Vec<LayerBound>, Vec<StageBounds>), CompileError> {
    circuit.check().map_err(CompileError::Invalid)?;
    if circuit.input_min > circuit.input_max {
        return Err(CompileError::Invalid(format!(
            "empty input range [{}, {}]",
            circuit.input_min, circuit.input_max
        )));
    }
    let mut stages: Vec<Option<StageBounds>> = vec![None; circuit.layers.len() + 1];
    stages[0] = Some(StageBounds::Exact(vec![
        (
            circuit.input_min,
            circuit.input_max
        );
        circuit.input.item_len()
    ]));
    let last_reads = circuit.last_reads();
    let mut out = Vec::with_capacity(circuit.layers.len());
    for (i, layer) in circuit.layers.iter().enumerate() {
        let missing = || CompileError::Invalid(format!("layer {i}: reads a dropped stage"));
        let reads = layer.op.reads(i);
        let inputs: Vec<&StageBounds> = reads
            .iter()
            .map(|&t| stages.get(t).and_then(Option::as_ref).ok_or_else(missing))
            .collect::<Result<_, _>>()?;
        // Several operands are handed over concatenated, in one domain.
        let state = match inputs.as_slice() {
            [one] => Cow::Borrowed(*one),
            many => {
                let exact: Option<Vec<&[(i128, i128)]>> = many
                    .iter()
                    .map(|s| match s {
                        StageBounds::Exact(v) => Some(v.as_slice()),
                        StageBounds::Magnitude(_) => None,
                    })
                    .collect();
                Cow::Owned(match exact {
                    Some(parts) => StageBounds::Exact(parts.concat()),
                    None => {
                        StageBounds::Magnitude(many.iter().flat_map(|s| s.magnitudes()).collect())
                    }
                })
            }
        };
        let exact = match state.as_ref() {
            StageBounds::Exact(v) => step::<Exact>(layer, v),
            StageBounds::Magnitude(_) => None,
        };
        let (next, bound) = match exact {
            Some((vals, output_bits, intermediate_bits)) => (
                StageBounds::Exact(vals),
                LayerBound {
                    output_bits,
                    intermediate_bits,
                    exact: true,
                },
            ),
            None => {
                let mags = state.magnitudes();
                let (vals, output_bits, intermediate_bits) = step::<Approx>(layer, &mags)
                    .ok_or_else(|| {
                        CompileError::Invalid(format!("layer {i}: bound analysis failed"))
                    })?;
                // A clamp bounds its outputs whatever came in: back to exact intervals.
                let next = match layer.op.spec().restart() {
                    Some(range) => StageBounds::Exact(vec![range; vals.len()]),
                    None => StageBounds::Magnitude(vals),
                };
                (
                    next,
                    LayerBound {
                        output_bits,
                        intermediate_bits,
                        exact: false,
                    },
                )
            }
        };
        drop(state);
        out.push(bound);
        stages[i + 1] = Some(next);
        if !keep {
            for t in reads {
                if last_reads.get(t).is_some_and(|&l| l <= i) {
                    stages[t] = None;
                }
            }
        }
    }
    let kept = if keep {
        stages.into_iter().map(Option::unwrap_or_default).collect()
    } else {
        Vec::new()
    };
    Ok((out, kept))
}

/// Per-element bounds of the real values of one stage (one item), in real row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum StageBounds {
    /// Exact intervals `[lo, hi]`.
    Exact(Vec<(i128, i128)>),
    /// Upper bounds on `|v|` (after an `i128` overflow).
    Magnitude(Vec<f64>),
}

impl Default for StageBounds {
    fn default() -> Self {
        StageBounds::Exact(Vec::new())
    }
}

impl StageBounds {
    /// Whether `v` is within the bound of element `index` (false for an index out of range).
    pub fn contains(&self, index: usize, v: i128) -> bool {
        match self {
            StageBounds::Exact(iv) => iv.get(index).is_some_and(|&(lo, hi)| lo <= v && v <= hi),
            StageBounds::Magnitude(m) => {
                m.get(index).is_some_and(|&m| v.unsigned_abs() as f64 <= m)
            }
        }
    }

    /// Upper bounds on `|v|` per element.
    fn magnitudes(&self) -> Vec<f64> {
        match self {
            StageBounds::Exact(v) => v
                .iter()
                .map(|&(lo, hi)| lo.unsigned_abs().max(hi.unsigned_abs()) as f64 * F64_MARGIN)
                .collect(),
            StageBounds::Magnitude(m) => m.clone(),
        }
    }
}

/// An abstract domain of per-element bounds. Operations return `None` when they cannot be
/// represented (overflow of the exact domain).
pub(crate) trait Domain {
    /// Bound of one value.
    type Val: Copy + PartialEq;
    /// Accumulator of a sum of weighted terms.
    type Acc;
    /// The bound of an exact zero.
    fn zero() -> Self::Val;
    /// The bound of a constant.
    fn constant(c: i128) -> Self::Val;
    /// A sum starting at `bias`.
    fn acc(bias: i128) -> Self::Acc;
    /// Adds `w·x`.
    fn mac(acc: &mut Self::Acc, w: i128, x: Self::Val) -> Option<()>;
    /// The sum's bound and the bits of its intermediate magnitudes.
    fn finish(acc: Self::Acc) -> (Self::Val, u32);
    /// Bits of the largest |value|.
    fn bits(v: Self::Val) -> u32;
    /// `a·x² + b·x + c` and the bits of its intermediate magnitudes.
    fn quadratic(a: i128, b: i128, c: i128, x: Self::Val) -> Option<(Self::Val, u32)>;
    /// `Σ_k c_k·x^k` element-wise (degree ≥ 1), raising `inter` to the output bits: the kernel
    /// evaluates it by Horner in a ring, exact whatever its partial values do.
    fn polynomial(c: &[i128], x: &[Self::Val], inter: &mut u32) -> Option<Vec<Self::Val>>;
    /// `x + y`.
    fn add(x: Self::Val, y: Self::Val) -> Option<Self::Val>;
    /// `x − y`.
    fn sub(x: Self::Val, y: Self::Val) -> Option<Self::Val>;
    /// `x · y`.
    fn mul(x: Self::Val, y: Self::Val) -> Option<Self::Val>;
    /// The bound of `max(x, y)`.
    fn max(x: Self::Val, y: Self::Val) -> Self::Val;
    /// A requantization checkpoint of `x` and the bits of its input.
    fn requant(op: &RequantOp, x: Self::Val) -> Option<(Self::Val, u32)>;
    /// The kind's bound rule in this domain.
    fn through(
        kind: &dyn Bounds,
        layer: &CircuitLayer,
        x: &[Self::Val],
        inter: &mut u32,
    ) -> Option<Vec<Self::Val>>;
}

/// Exact `i128` intervals.
pub(crate) struct Exact;

/// Checked sum of weighted intervals: its interval and `Σ|w|·max|x|` (+|bias|).
pub(crate) struct ExactAcc {
    lo: i128,
    hi: i128,
    abs: u128,
}

impl Domain for Exact {
    type Val = (i128, i128);
    type Acc = ExactAcc;

    fn through(
        kind: &dyn Bounds,
        layer: &CircuitLayer,
        x: &[Self::Val],
        inter: &mut u32,
    ) -> Option<Vec<Self::Val>> {
        kind.exact(layer, x, inter)
    }

    fn zero() -> Self::Val {
        (0, 0)
    }

    fn constant(c: i128) -> Self::Val {
        (c, c)
    }

    fn acc(bias: i128) -> ExactAcc {
        ExactAcc {
            lo: bias,
            hi: bias,
            abs: bias.unsigned_abs(),
        }
    }

    fn mac(acc: &mut ExactAcc, w: i128, (lo, hi): Self::Val) -> Option<()> {
        if w == 0 {
            return Some(());
        }
        let p = w.checked_mul(lo)?;
        let q = w.checked_mul(hi)?;
        acc.lo = acc.lo.checked_add(p.min(q))?;
        acc.hi = acc.hi.checked_add(p.max(q))?;
        acc.abs = acc
            .abs
            .checked_add(p.unsigned_abs().max(q.unsigned_abs()))?;
        Some(())
    }

    fn finish(acc: ExactAcc) -> (Self::Val, u32) {
        ((acc.lo, acc.hi), bits_of(acc.abs))
    }

    fn bits(v: Self::Val) -> u32 {
        bits_of(v.0.unsigned_abs().max(v.1.unsigned_abs()))
    }

    fn quadratic(a: i128, b: i128, c: i128, (lo, hi): Self::Val) -> Option<(Self::Val, u32)> {
        // f(x) for integer x, checked. |a·x| ≤ |a·x²| for x ≠ 0, so a·x overflowing means the
        // true a·x² does too.
        let f = |x: i128| -> Option<i128> {
            a.checked_mul(x)?
                .checked_mul(x)?
                .checked_add(b.checked_mul(x)?)?
                .checked_add(c)
        };
        let mut cands = [lo, hi, lo, lo];
        if a != 0 {
            // Vertex x* = −b / (2a); over the integers the extremum is at ⌊x*⌋ or ⌊x*⌋ + 1.
            let num = b.checked_neg()?;
            let den = a.checked_mul(2)?;
            let fl = div_floor(num, den)?;
            cands[2] = fl.max(lo).min(hi);
            cands[3] = fl.saturating_add(1).max(lo).min(hi);
        }
        let mut min = i128::MAX;
        let mut max = i128::MIN;
        for x in cands {
            let y = f(x)?;
            min = min.min(y);
            max = max.max(y);
        }
        // Intermediates: |a|·M² + |b|·M + |c|.
        let m = lo.unsigned_abs().max(hi.unsigned_abs());
        let inter = a
            .unsigned_abs()
            .checked_mul(m)?
            .checked_mul(m)?
            .checked_add(b.unsigned_abs().checked_mul(m)?)?
            .checked_add(c.unsigned_abs())?;
        Some(((min, max), bits_of(inter)))
    }

    fn polynomial(c: &[i128], x: &[Self::Val], inter: &mut u32) -> Option<Vec<Self::Val>> {
        let cf: Vec<f64> = c.iter().map(|&v| v as f64).collect();
        // Outward-rounded f64 enclosure of an integer interval, made into integers again.
        let enclose = |(lo, hi): Self::Val| -> Option<Self::Val> {
            let widen = |v: i128| (v as f64).abs() * f64::EPSILON + 1.0;
            let (a, b) = (lo as f64 - widen(lo), hi as f64 + widen(hi));
            let (min, max) = poly_enclosure(&cf, a, b);
            let limit = 2f64.powi(126);
            if !(min.abs() < limit && max.abs() < limit) {
                return None;
            }
            Some((min.floor() as i128 - 1, max.ceil() as i128 + 1))
        };
        let exact = |(lo, hi): Self::Val| -> Option<Self::Val> {
            // Few integers: every value, checked, so the interval is attained.
            let eval = |v: i128| {
                c.iter()
                    .rev()
                    .try_fold(0i128, |acc, &k| acc.checked_mul(v)?.checked_add(k))
            };
            let (mut min, mut max) = (i128::MAX, i128::MIN);
            for v in lo..=hi {
                let y = eval(v)?;
                (min, max) = (min.min(y), max.max(y));
            }
            Some((min, max))
        };
        let out = per_distinct(x, enclose, |v| {
            if v.1.checked_sub(v.0).is_some_and(|w| w <= POLY_ENUMERATE) {
                exact(v)
            } else {
                enclose(v)
            }
        })?;
        *inter = out.iter().map(|&v| Self::bits(v)).fold(*inter, u32::max);
        Some(out)
    }

    fn add(x: Self::Val, y: Self::Val) -> Option<Self::Val> {
        Some((x.0.checked_add(y.0)?, x.1.checked_add(y.1)?))
    }

    fn sub(x: Self::Val, y: Self::Val) -> Option<Self::Val> {
        Some((x.0.checked_sub(y.1)?, x.1.checked_sub(y.0)?))
    }

    fn requant(op: &RequantOp, (lo, hi): Self::Val) -> Option<(Self::Val, u32)> {
        // Rounding and clamping are monotone: the interval maps through its ends.
        let inter = bits_of(lo.unsigned_abs().max(hi.unsigned_abs()));
        Some(((op.apply(lo), op.apply(hi)), inter))
    }

    fn max(x: Self::Val, y: Self::Val) -> Self::Val {
        (x.0.max(y.0), x.1.max(y.1))
    }

    fn mul(x: Self::Val, y: Self::Val) -> Option<Self::Val> {
        let c = [
            x.0.checked_mul(y.0)?,
            x.0.checked_mul(y.1)?,
            x.1.checked_mul(y.0)?,
            x.1.checked_mul(y.1)?,
        ];
        Some((c.iter().copied().min()?, c.iter().copied().max()?))
    }
}

/// `⌊num / den⌋` for `den ≠ 0`, checked.
fn div_floor(num: i128, den: i128) -> Option<i128> {
    let q = num.checked_div(den)?;
    let r = num.checked_rem(den)?;
    if r != 0 && ((r < 0) != (den < 0)) {
        q.checked_sub(1)
    } else {
        Some(q)
    }
}

/// `f64` upper bounds on magnitudes.
pub(crate) struct Approx;

/// `x·y` with `0·∞ = 0`.
fn mul_mag(x: f64, y: f64) -> f64 {
    if x == 0.0 || y == 0.0 {
        0.0
    } else {
        x * y
    }
}

/// Bits of an integer whose magnitude is at most `m`.
fn bits_f64(m: f64) -> u32 {
    if m.is_nan() || m.is_infinite() {
        return UNBOUNDED_BITS;
    }
    if m < 1.0 {
        // An integer of magnitude below 1 is 0.
        return 0;
    }
    // m = f·2^e with 1 ≤ f < 2, so |v| ≤ m < 2^(e+1).
    let e = ((m.to_bits() >> 52) & 0x7ff) as u32;
    e.saturating_sub(1023) + 1
}

impl Domain for Approx {
    type Val = f64;
    type Acc = f64;

    fn through(
        kind: &dyn Bounds,
        layer: &CircuitLayer,
        x: &[f64],
        inter: &mut u32,
    ) -> Option<Vec<f64>> {
        kind.magnitude(layer, x, inter)
    }

    fn zero() -> f64 {
        0.0
    }

    fn constant(c: i128) -> f64 {
        c.unsigned_abs() as f64 * F64_MARGIN
    }

    fn acc(bias: i128) -> f64 {
        bias.unsigned_abs() as f64
    }

    fn mac(acc: &mut f64, w: i128, x: f64) -> Option<()> {
        *acc += mul_mag(w.unsigned_abs() as f64, x);
        Some(())
    }

    fn finish(acc: f64) -> (f64, u32) {
        let m = acc * F64_MARGIN;
        (m, bits_f64(m))
    }

    fn bits(v: f64) -> u32 {
        bits_f64(v)
    }

    fn quadratic(a: i128, b: i128, c: i128, x: f64) -> Option<(f64, u32)> {
        let m = (mul_mag(a.unsigned_abs() as f64, mul_mag(x, x))
            + mul_mag(b.unsigned_abs() as f64, x)
            + c.unsigned_abs() as f64)
            * F64_MARGIN;
        Some((m, bits_f64(m)))
    }

    fn polynomial(c: &[i128], x: &[f64], inter: &mut u32) -> Option<Vec<f64>> {
        let cf: Vec<f64> = c.iter().map(|&v| v as f64).collect();
        let mag = |m: f64| {
            let (lo, hi) = poly_enclosure(&cf, -m, m);
            Some(lo.abs().max(hi.abs()) * F64_MARGIN)
        };
        let out = per_distinct(x, mag, mag)?;
        *inter = out.iter().map(|&v| bits_f64(v)).fold(*inter, u32::max);
        Some(out)
    }

    fn add(x: f64, y: f64) -> Option<f64> {
        Some((x + y) * F64_MARGIN)
    }

    fn sub(x: f64, y: f64) -> Option<f64> {
        Some((x + y) * F64_MARGIN)
    }

    fn mul(x: f64, y: f64) -> Option<f64> {
        Some(mul_mag(x, y) * F64_MARGIN)
    }

    fn max(x: f64, y: f64) -> f64 {
        x.max(y)
    }

    fn requant(op: &RequantOp, x: f64) -> Option<(f64, u32)> {
        // |⌊(y + 2^(k−1)) / 2^k⌋| ≤ |y| / 2^k + 1, and the clamp caps it at 2^(bits−1).
        let scaled = x / 2f64.powi(op.shift.min(1100) as i32) + 1.0;
        let (lo, hi) = op.range();
        let cap = lo.unsigned_abs().max(hi.unsigned_abs()) as f64;
        Some((scaled.min(cap), bits_f64(x)))
    }
}

/// Widest exact interval whose polynomial image is found by evaluating every integer in it.
const POLY_ENUMERATE: i128 = 256;
/// Distinct input bounds a polynomial rule treats one by one; the others get the enclosure of
/// the hull of all inputs (an enclosure of a larger set, so still sound).
const POLY_DISTINCT: usize = 256;
/// Pieces of the centred-form enclosure.
const POLY_PIECES: usize = 64;

/// `rule` on each distinct bound of `x` (a tensor after a clamp shares one bound), switching to
/// `hull_rule` on the hull of every bound once more than [`POLY_DISTINCT`] are distinct.
fn per_distinct<V: Copy + PartialEq + HullOf>(
    x: &[V],
    hull_rule: impl Fn(V) -> Option<V>,
    rule: impl Fn(V) -> Option<V>,
) -> Option<Vec<V>> {
    let mut seen: Vec<(V, V)> = Vec::new();
    let mut hull: Option<V> = None;
    let mut out = Vec::with_capacity(x.len());
    for &v in x {
        if let Some(&(_, y)) = seen.iter().rev().find(|(k, _)| *k == v) {
            out.push(y);
            continue;
        }
        if seen.len() < POLY_DISTINCT {
            let y = rule(v)?;
            seen.push((v, y));
            out.push(y);
            continue;
        }
        if hull.is_none() {
            hull = Some(hull_rule(V::hull(x)?)?);
        }
        out.push(hull?);
    }
    Some(out)
}

/// The smallest bound covering every bound of a slice.
trait HullOf: Sized {
    fn hull(x: &[Self]) -> Option<Self>;
}

impl HullOf for (i128, i128) {
    fn hull(x: &[Self]) -> Option<Self> {
        let lo = x.iter().map(|v| v.0).min()?;
        let hi = x.iter().map(|v| v.1).max()?;
        Some((lo, hi))
    }
}

impl HullOf for f64 {
    fn hull(x: &[Self]) -> Option<Self> {
        x.iter().copied().reduce(f64::max)
    }
}

/// An enclosure of `{p(v) : lo ≤ v ≤ hi}` for `p = Σ c_k·v^k`, in `f64`: the interval cut into
/// [`POLY_PIECES`] pieces, on each the centred form `p(m) ± Σ_{j≥1} |p^(j)(m)/j!|·h^j`, widened
/// by a bound on the rounding error. Alternating coefficients (minimax fits) cancel in `p`, so
/// this is far tighter than `Σ|c_k|·max|v|^k`, which can cost a larger field. Infinite or NaN
/// when the values overflow `f64` (the caller then reports an unbounded layer).
pub(crate) fn poly_enclosure(c: &[f64], lo: f64, hi: f64) -> (f64, f64) {
    let d = c.len().saturating_sub(1);
    let big = lo.abs().max(hi.abs());
    // Every quantity below is a sum of terms bounded by Σ|c_k|·big^k; each passes through at
    // most (d + 1)² roundings of relative size ε.
    let mag: f64 = c
        .iter()
        .zip(0..)
        .map(|(ck, k)| ck.abs() * big.powi(k))
        .sum();
    let sq = ((d + 1) * (d + 1)) as f64;
    let err = mag * 4.0 * sq * f64::EPSILON;
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let width = (hi - lo) / POLY_PIECES as f64;
    let mut t = c.to_vec();
    for i in 0..POLY_PIECES {
        let a = lo + width * i as f64;
        let b = if i + 1 == POLY_PIECES {
            hi
        } else {
            lo + width * (i + 1) as f64
        };
        let (m, h) = ((a + b) / 2.0, (b - a) / 2.0 * (1.0 + 4.0 * f64::EPSILON));
        // Taylor coefficients at m by repeated synthetic division.
        t.copy_from_slice(c);
        for j in 0..d {
            for k in (j..d).rev() {
                t[k] += m * t[k + 1];
            }
        }
        let mut spread = 0.0;
        let mut hp = 1.0;
        for tj in &t[1..] {
            hp *= h;
            spread += tj.abs() * hp;
        }
        min = min.min(t[0] - spread);
        max = max.max(t[0] + spread);
        if lo == hi {
            break;
        }
    }
    (min - err, max + err)
}

/// A layer kind's bound rule: its output bounds in any [`Domain`], raising `inter` to the bits of
/// the intermediate magnitudes an integer evaluation passes through. Assumes a checked circuit
/// (layouts fit the op); `None` when the domain cannot represent a value.
pub(crate) trait BoundRule {
    /// The per-element output bounds of `layer` (this op) on input bounds `x`.
    fn bound<D: Domain>(
        &self,
        layer: &CircuitLayer,
        x: &[D::Val],
        inter: &mut u32,
    ) -> Option<Vec<D::Val>>;

    /// An interval every output lies in whatever the input (a checkpoint's clamp): the analysis
    /// restarts from it in exact intervals after an `f64` stretch.
    fn clamp_range(&self) -> Option<(i128, i128)> {
        None
    }
}

/// The bound rule of an element-wise kind: `f` maps one input bound to its output bound and the
/// bits of its intermediate magnitudes.
pub(crate) fn elementwise<D: Domain>(
    x: &[D::Val],
    inter: &mut u32,
    f: impl Fn(D::Val) -> Option<(D::Val, u32)>,
) -> Option<Vec<D::Val>> {
    let mut out = Vec::with_capacity(x.len());
    for &xv in x {
        let (v, bits) = f(xv)?;
        *inter = (*inter).max(bits);
        out.push(v);
    }
    Some(out)
}

/// [`BoundRule`] in each domain, callable on the dispatched kind.
pub(crate) trait Bounds {
    /// The rule in exact intervals.
    fn exact(
        &self,
        layer: &CircuitLayer,
        x: &[(i128, i128)],
        inter: &mut u32,
    ) -> Option<Vec<(i128, i128)>>;
    /// The rule in `f64` magnitudes.
    fn magnitude(&self, layer: &CircuitLayer, x: &[f64], inter: &mut u32) -> Option<Vec<f64>>;
    /// [`BoundRule::clamp_range`].
    fn restart(&self) -> Option<(i128, i128)>;
}

impl<K: BoundRule> Bounds for K {
    fn exact(
        &self,
        layer: &CircuitLayer,
        x: &[(i128, i128)],
        inter: &mut u32,
    ) -> Option<Vec<(i128, i128)>> {
        self.bound::<Exact>(layer, x, inter)
    }

    fn magnitude(&self, layer: &CircuitLayer, x: &[f64], inter: &mut u32) -> Option<Vec<f64>> {
        self.bound::<Approx>(layer, x, inter)
    }

    fn restart(&self) -> Option<(i128, i128)> {
        self.clamp_range()
    }
}

/// One layer in domain `D`: the output bounds (real row-major), the output bits and the
/// intermediate bits. Assumes a checked circuit (layouts fit the op).
fn step<D: Domain>(layer: &CircuitLayer, x: &[D::Val]) -> Option<(Vec<D::Val>, u32, u32)> {
    let mut inter = 0u32;
    let vals = D::through(layer.op.spec(), layer, x, &mut inter)?;
    let out_bits = vals.iter().map(|&v| D::bits(v)).max().unwrap_or(0);
    Some((vals, out_bits, inter))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::circuit::{FieldChoice, GatesOp, Layout, Op, QuantParams, WeightScale};
    use crate::compile::{compile, show_bits};
    use crate::gates::{Gate, GateLayer};
    use crate::model::{Activation, Conv2d, Dense, Layer, Model, SumPool};

    #[test]
    fn div_floor_rounds_down() {
        assert_eq!(div_floor(7, 2), Some(3));
        assert_eq!(div_floor(-7, 2), Some(-4));
        assert_eq!(div_floor(7, -2), Some(-4));
        assert_eq!(div_floor(-7, -2), Some(3));
        assert_eq!(div_floor(-6, 3), Some(-2));
        assert_eq!(div_floor(0, -3), Some(0));
        assert_eq!(div_floor(i128::MIN, -1), None);
        assert_eq!(div_floor(1, 0), None);
    }

    #[test]
    fn bits_f64_bounds_integers() {
        assert_eq!(bits_f64(0.0), 0);
        assert_eq!(bits_f64(0.99), 0);
        assert_eq!(bits_f64(1.0), 1);
        assert_eq!(bits_f64(1.99), 1);
        assert_eq!(bits_f64(2.0), 2);
        assert_eq!(bits_f64(255.0), 8);
        assert_eq!(bits_f64(256.0), 9);
        assert_eq!(bits_f64(2f64.powi(136)), 137);
        assert_eq!(bits_f64(f64::INFINITY), UNBOUNDED_BITS);
        assert_eq!(bits_f64(f64::NAN), UNBOUNDED_BITS);
        assert_eq!(show_bits(UNBOUNDED_BITS), "more than 1024");
    }

    /// The f64 magnitude domain (used after an i128 overflow) bounds the exact intervals of
    /// every element of every layer, and its bits are never below the exact ones.
    #[test]
    fn magnitude_domain_dominates_exact() {
        let model = Model {
            name: String::new(),
            input_shape: vec![2, 5, 4],
            input_range: [-1.0, 1.0],
            layers: vec![
                Layer::Conv2d(Conv2d {
                    in_channels: 2,
                    out_channels: 2,
                    kernel: [3, 3],
                    stride: [1, 2],
                    padding: [1, 1],
                    weight: (0..36).map(|i| (i as f64 - 17.0) / 20.0).collect(),
                    bias: Some(vec![0.3, -0.7]),
                }),
                Layer::Activation(Activation::Quadratic {
                    a: -0.5,
                    b: 2.0,
                    c: -0.25,
                }),
                Layer::SumPool(SumPool {
                    window: [2, 1],
                    stride: None,
                }),
                Layer::Reshape {
                    shape: vec![1, 4, 2],
                },
                Layer::Dense(Dense {
                    in_features: 8,
                    out_features: 3,
                    weight: (0..24).map(|i| (i as f64 - 11.0) / 7.0).collect(),
                    bias: Some(vec![1.0, 0.0, -2.0]),
                }),
            ],
        };
        let params = QuantParams {
            input_bits: 5,
            weight_bits: 6,
            coef_bits: 3,
            weight_scale: WeightScale::Uniform,
        };
        let c = compile(&model, &params, FieldChoice::Auto).unwrap();
        assert_eq!(c.layers.len(), 5);
        let n = c.input.item_len();
        let mut ex = vec![(c.input_min, c.input_max); n];
        let mut ap = vec![c.input_min.unsigned_abs().max(c.input_max.unsigned_abs()) as f64; n];
        for layer in &c.layers {
            let (e, eo, ei) = step::<Exact>(layer, &ex).unwrap();
            let (a, ao, ai) = step::<Approx>(layer, &ap).unwrap();
            assert_eq!(e.len(), a.len());
            for (&(lo, hi), &m) in e.iter().zip(&a) {
                assert!(lo <= hi);
                assert!(
                    lo.unsigned_abs().max(hi.unsigned_abs()) as f64 <= m,
                    "{}",
                    layer.label
                );
            }
            assert!(ao >= eo && ai >= ei, "{}", layer.label);
            ex = e;
            ap = a;
        }
    }

    #[test]
    fn hand_built_circuits_are_checked() {
        let model = Model {
            name: String::new(),
            input_shape: vec![3],
            input_range: [-1.0, 1.0],
            layers: vec![Layer::Activation(Activation::Square)],
        };
        let c = compile(&model, &QuantParams::default(), FieldChoice::Auto).unwrap();
        let mut bad = c.clone();
        bad.layers[0].output = Layout::new(vec![4]);
        assert!(matches!(
            bound_analysis(&bad),
            Err(CompileError::Invalid(_))
        ));
        let mut bad = c.clone();
        (bad.input_min, bad.input_max) = (1, 0);
        assert!(matches!(
            bound_analysis(&bad),
            Err(CompileError::Invalid(_))
        ));
        // Generic gates: Mul squares the interval, Sub widens it.
        let mut g = c;
        g.layers[0].op = Op::Gates(GatesOp {
            layer: GateLayer {
                gates: vec![
                    Gate::Mul(0, 1),
                    Gate::Sub(1, 2),
                    Gate::Scale(2, -3),
                    Gate::Const(0),
                ],
            },
        });
        let s = stage_bounds(&g).unwrap();
        assert_eq!(
            s[1],
            StageBounds::Exact(vec![(-65536, 65536), (-512, 512), (-768, 768)])
        );
    }
}
