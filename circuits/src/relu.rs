//! How a model's ReLU layers are proved (`--relu`): the rewrite of the model that replaces them
//! by an approximation of [`crate::approx`] (one polynomial, or Lee et al.'s composite with its
//! checkpoints and product) before quantization, or leaves them to the compiler's exact
//! checkpoints.

use crate::approx::{preset, rescale, sign_composite, ApproxError, SignComposite};

/// How a model's ReLU layers are proved (`--relu`, the settings file's `"relu"` key): exactly at
/// a requantization checkpoint (the default), replaced by a polynomial preset fitted on
/// `[−bound, bound]`, or by Lee et al.'s composite minimax ReLU `x·(1 + p_α(x/B))/2` with a
/// checkpoint between its parts (no retraining; the circuit digest covers what it compiles to).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ReluChoice {
    /// An exact function of a checkpoint.
    #[default]
    Exact,
    /// The preset [`preset`] `name`, rescaled to `[−bound, bound]` ([`rescale`]).
    Poly {
        /// The preset's name.
        name: String,
        /// The input bound it is fitted for.
        bound: f64,
    },
    /// The composite minimax sign approximation of precision `alpha` ([`sign_composite`]) on
    /// inputs scaled by `2^⌈log2 bound⌉`, its parts separated by checkpoints, times the input.
    Minimax {
        /// Lee et al.'s precision α.
        alpha: u32,
        /// The input bound (rounded up to a power of two).
        bound: f64,
    },
}

impl std::str::FromStr for ReluChoice {
    type Err = ApproxError;

    /// `exact`, `poly:NAME[@BOUND]` or `minimax:ALPHA[@BOUND]`; the preset must resolve.
    fn from_str(s: &str) -> Result<Self, ApproxError> {
        if s == "exact" {
            return Ok(ReluChoice::Exact);
        }
        let bad = || ApproxError::Choice(s.to_string());
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let (name, bound) = match rest.rsplit_once('@') {
            Some((n, b)) => (n, b.parse::<f64>().map_err(|_| bad())?),
            None => (rest, 1.0),
        };
        if !(bound.is_finite() && bound > 0.0) {
            return Err(ApproxError::Bound(bound));
        }
        let choice = match kind {
            "poly" => ReluChoice::Poly {
                name: name.to_string(),
                bound,
            },
            "minimax" => ReluChoice::Minimax {
                alpha: name.parse().map_err(|_| bad())?,
                bound,
            },
            _ => return Err(bad()),
        };
        match &choice {
            ReluChoice::Minimax { alpha, .. } => {
                sign_composite(*alpha)?;
            }
            _ => {
                choice.coefficients()?;
            }
        }
        Ok(choice)
    }
}

impl std::fmt::Display for ReluChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |b: &f64| {
            if *b == 1.0 {
                String::new()
            } else {
                format!("@{b}")
            }
        };
        match self {
            ReluChoice::Exact => write!(f, "exact"),
            ReluChoice::Poly { name, bound } => write!(f, "poly:{name}{}", at(bound)),
            ReluChoice::Minimax { alpha, bound } => write!(f, "minimax:{alpha}{}", at(bound)),
        }
    }
}

/// Bits a checkpoint's input may use (it reads `i128`), less one of margin.
const CHECKPOINT_READ_BITS: u32 = crate::ops::MAX_REQUANT_INPUT_BITS - 1;

impl ReluChoice {
    /// The replacing polynomial's coefficients (constant first); `None` for exact and for the
    /// composite, which is not one polynomial.
    pub fn coefficients(&self) -> Result<Option<Vec<f64>>, ApproxError> {
        match self {
            ReluChoice::Exact | ReluChoice::Minimax { .. } => Ok(None),
            ReluChoice::Poly { name, bound } => rescale(&preset(name)?, *bound).map(Some),
        }
    }

    /// Replaces every ReLU layer of `model` as chosen (quantized with `params`, which the
    /// composite's checkpoints depend on). Returns, for each layer of the new model, the layer
    /// of the old one it stands for (a composite's layers all stand for its ReLU), so names of
    /// the old model's tensors can be carried over. A LeakyReLU with slope `a` becomes
    /// `(1 − a)·q(x) + a·x` for the ReLU approximation `q` (exact in form).
    pub fn apply(
        &self,
        model: &mut crate::model::Model,
        params: &crate::circuit::QuantParams,
    ) -> Result<Vec<usize>, ApproxError> {
        use crate::model::{Activation, Layer};
        if let ReluChoice::Minimax { alpha, bound } = self {
            return minimax_relus(model, params, &sign_composite(*alpha)?, *bound);
        }
        let origin = (0..model.layers.len()).collect();
        let Some(q) = self.coefficients()? else {
            return Ok(origin);
        };
        for layer in &mut model.layers {
            let Layer::Relu(r) = layer else { continue };
            let a = slope(r);
            let mut c: Vec<f64> = q.iter().map(|v| v * (1.0 - a)).collect();
            if c.len() < 2 {
                c.resize(2, 0.0);
            }
            c[1] += a;
            *layer = Layer::Activation(Activation::Polynomial { coefficients: c });
        }
        Ok(origin)
    }
}

/// A ReLU's negative slope (0 for ReLU itself).
fn slope(r: &crate::model::Relu) -> f64 {
    r.slope_shift
        .map_or(0.0, |k| 2f64.powi(-(k.min(1000) as i32)))
}

/// Bits of `Σ|c_k|`, rounded up: how far past 1 a part's value can go on `|u| ≤ 1`.
fn coefficient_bits(c: &[f64]) -> u32 {
    c.iter()
        .map(|v| v.abs())
        .sum::<f64>()
        .max(1.0)
        .log2()
        .ceil() as u32
}

/// The fractional bits a part of degree `d` may read on inputs `|u| < 2` so that its output
/// stays within what the checkpoint after it reads, at most `alpha + 4`.
fn part_input_bits(d: u32, c: &[f64], coef_bits: u32, alpha: u32) -> Option<u32> {
    let room = CHECKPOINT_READ_BITS.checked_sub(coef_bits + coefficient_bits(c))?;
    (room / d.max(1)).checked_sub(1).map(|g| g.min(alpha + 4))
}

/// Replaces each ReLU at model layer `i` by Lee et al.'s composite `x·q(p_{k−1}(…p_1(x/B)))`,
/// `q = (1 + p_k)/2` (LeakyReLU: `a + (1 − a)·q`): `requant` (x at `f₀` fractional bits) →
/// `scale` by `B = 2^b` → part 1 → `requant` → … → part k folded with `q` → `requant` → `mul`
/// by the first checkpoint's output. Each checkpoint keeps as many fractional bits as the next
/// part can read within the 126 bits a checkpoint reads (at most α + 4).
fn minimax_relus(
    model: &mut crate::model::Model,
    params: &crate::circuit::QuantParams,
    sign: &SignComposite,
    bound: f64,
) -> Result<Vec<usize>, ApproxError> {
    use crate::model::{Activation, Layer, Mul, Requant};
    use crate::ops::MAX_REQUANT_BITS;
    let fail = ApproxError::Composite;
    let b = bound.log2().ceil().max(0.0) as u32;
    let cb = params.coef_bits;
    let mut origin: Vec<usize> = (0..model.layers.len()).collect();
    while let Some(i) = model
        .layers
        .iter()
        .position(|l| matches!(l, Layer::Relu(_)))
    {
        let Layer::Relu(r) = model.layers[i] else {
            break;
        };
        let a = slope(&r);
        let s_t = match i.checked_sub(1) {
            None => params.input_bits,
            Some(prev) => crate::compile::lower(model, params)
                .map_err(|e| fail(e.to_string()))?
                .scale_after(prev),
        };
        let mut parts = sign.parts.clone();
        if let Some(last) = parts.last_mut() {
            // q(y) = a + (1 − a)·(1 + y)/2.
            let h = (1.0 - a) / 2.0;
            last.iter_mut().for_each(|c| *c *= h);
            last[0] += h + a;
        }
        let input_bits = |j: usize| {
            let d = sign.degrees[j];
            part_input_bits(d, &parts[j], cb, sign.alpha).ok_or_else(|| {
                fail(format!(
                    "part {} (degree {d}) cannot fit the 126 bits a checkpoint reads at \
                     --coef-bits {cb}",
                    j + 1
                ))
            })
        };
        // The input at g fractional bits of x/B, i.e. f0 = g − b of x.
        let g = input_bits(0)?.min(s_t + b);
        let f0 = g.checked_sub(b).ok_or_else(|| {
            fail(format!(
                "an input bound of {bound} leaves x no fractional bit"
            ))
        })?;
        let mut new = vec![
            Layer::Requant(Requant {
                shift: s_t - f0,
                bits: (g + 2).min(MAX_REQUANT_BITS),
            }),
            Layer::Scale { shift: b },
        ];
        let mut g_in = g;
        for (j, part) in parts.iter().enumerate() {
            let act = Activation::Polynomial {
                coefficients: part.clone(),
            };
            let out = crate::quant::quantize_activation(&act, g_in, cb)
                .map_err(|e| fail(e.to_string()))?
                .scale_bits;
            // The next part's input, or the final factor in [0, 1 + δ].
            let g_next = if j + 1 < parts.len() {
                input_bits(j + 1)?
            } else {
                sign.alpha + 4
            }
            .min(out);
            new.push(Layer::Activation(act));
            new.push(Layer::Requant(Requant {
                shift: out - g_next,
                bits: (g_next + 2).min(MAX_REQUANT_BITS),
            }));
            g_in = g_next;
        }
        new.push(Layer::Mul(Mul { with: i }));
        let was = origin[i];
        origin.splice(i..=i, std::iter::repeat_n(was, new.len()));
        let mut new = new.into_iter();
        if let Some(first) = new.next() {
            model.layers[i] = first;
        }
        for (k, layer) in new.enumerate() {
            model.insert_after(i + k, layer);
        }
    }
    Ok(origin)
}
