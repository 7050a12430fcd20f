//! The activations compared: the presets from the literature and `quadratic:a,b,c`, and the
//! `--activations` parser.

use crate::CompareError;
use std::f64::consts::PI;
use verinfer_circuits::model::Activation;
use verinfer_circuits::relu::ReluChoice;

/// A quadratic activation from the literature, selectable by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// Name on the command line and in reports.
    pub name: &'static str,
    /// The polynomial, as written in the table.
    pub formula: &'static str,
    /// Coefficient of x².
    pub a: f64,
    /// Coefficient of x.
    pub b: f64,
    /// Constant term.
    pub c: f64,
    /// Where it comes from.
    pub source: &'static str,
}

/// The built-in activations, in table order.
///
/// - `square`, x²: CryptoNets (Gilad-Bachrach et al., ICML 2016) and SafetyNets (Ghodsi, Gu and
///   Garg, NeurIPS 2017), the square activation of encrypted and verifiable inference.
/// - `square_plus_x`, x² + x: Ali, So and Avestimehr, "On Polynomial Approximations for
///   Privacy-Preserving and Verifiable ReLU Networks" (2020), proposed as a better quadratic
///   stand-in for ReLU than x².
/// - `relu_fourier`, 4/(3π)·x² + x/2 + 1/(3π): ReLU = (x + |x|)/2 with |x| replaced by the
///   degree-2 truncation of its Chebyshev series on [−1, 1] (the Fourier cosine series in θ,
///   x = cos θ): |x| ≈ 2/π + 4/(3π)·T₂(x).
/// - `relu_lsq`, 15/32·x² + x/2 + 3/32: the least-squares quadratic fit of ReLU on [−1, 1]
///   (Legendre truncation: |x| ≈ 1/2 + 5/8·P₂(x)).
/// - `relu_minimax`, x²/2 + x/2 + 1/16: the minimax (best uniform) quadratic approximation of
///   ReLU on [−1, 1] (|x| ≈ x² + 1/8, error 1/8 equioscillating at 0, ±1/√2, ±1).
/// - `faster_cryptonets`, 2⁻³x² + 2⁻¹x + 2⁻²: Faster CryptoNets (Chou et al., 2018), a quadratic
///   ReLU approximation with power-of-two coefficients.
pub const PRESETS: [Preset; 6] = [
    Preset {
        name: "square",
        formula: "x²",
        a: 1.0,
        b: 0.0,
        c: 0.0,
        source: "CryptoNets (Gilad-Bachrach et al. 2016), SafetyNets (Ghodsi et al. 2017)",
    },
    Preset {
        name: "square_plus_x",
        formula: "x² + x",
        a: 1.0,
        b: 1.0,
        c: 0.0,
        source: "Ali, So, Avestimehr 2020, polynomial approximations of ReLU networks",
    },
    Preset {
        name: "relu_fourier",
        formula: "4/(3π)·x² + x/2 + 1/(3π)",
        a: 4.0 / (3.0 * PI),
        b: 0.5,
        c: 1.0 / (3.0 * PI),
        source: "degree-2 Chebyshev (Fourier-cosine) truncation of ReLU on [-1,1]",
    },
    Preset {
        name: "relu_lsq",
        formula: "15/32·x² + x/2 + 3/32",
        a: 15.0 / 32.0,
        b: 0.5,
        c: 3.0 / 32.0,
        source: "least-squares quadratic fit of ReLU on [-1,1]",
    },
    Preset {
        name: "relu_minimax",
        formula: "x²/2 + x/2 + 1/16",
        a: 0.5,
        b: 0.5,
        c: 1.0 / 16.0,
        source: "minimax quadratic approximation of ReLU on [-1,1]",
    },
    Preset {
        name: "faster_cryptonets",
        formula: "2⁻³x² + 2⁻¹x + 2⁻²",
        a: 0.125,
        b: 0.5,
        c: 0.25,
        source: "Faster CryptoNets (Chou et al. 2018)",
    },
];

/// The activation of a preset name, or `None`.
pub fn preset(name: &str) -> Option<Activation> {
    let p = PRESETS.iter().find(|p| p.name == name)?;
    Some(match p.name {
        "square" => Activation::Square,
        "square_plus_x" => Activation::SquarePlusX,
        _ => Activation::Quadratic {
            a: p.a,
            b: p.b,
            c: p.c,
        },
    })
}

fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One activation to compare: its name in the report and the polynomial, or how the model's
/// ReLU layers are proved (`relu:…`, the `--relu` choices).
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// A `--relu` choice: the model keeps its activations and its ReLUs are proved this way.
    pub relu: Option<ReluChoice>,
    /// Preset name or `quadratic:a,b,c`.
    pub name: String,
    /// The activation.
    pub activation: Activation,
}

/// Parses `--activations`: preset names and `quadratic:a,b,c` items, comma-separated (the three
/// numbers of a quadratic take the two commas after it; `p/q` fractions are accepted).
pub fn parse_activations(s: &str) -> Result<Vec<Choice>, CompareError> {
    let mut tokens = s.split(',').map(str::trim);
    let mut out: Vec<Choice> = Vec::new();
    while let Some(tok) = tokens.next() {
        if tok.is_empty() {
            continue;
        }
        let choice = if let Some(first) = tok.strip_prefix("quadratic:") {
            let rest: Vec<&str> = tokens.by_ref().take(2).collect();
            let texts = [Some(first), rest.first().copied(), rest.get(1).copied()];
            let mut coef = [0.0; 3];
            for (slot, text) in coef.iter_mut().zip(texts) {
                let text = text.ok_or_else(|| {
                    CompareError::Usage(format!(
                        "'{}': a quadratic needs three coefficients, quadratic:a,b,c",
                        clip(tok)
                    ))
                })?;
                *slot = parse_number(text)?;
            }
            let [a, b, c] = coef;
            Choice {
                name: format!("quadratic:{a},{b},{c}"),
                activation: Activation::Quadratic { a, b, c },
                relu: None,
            }
        } else if let Some(rest) = tok.strip_prefix("relu:") {
            let relu: ReluChoice = rest
                .parse()
                .map_err(|e| CompareError::Usage(format!("'{}': {e}", clip(tok))))?;
            Choice {
                name: format!("relu:{relu}"),
                // No polynomial replaces the model's own activations.
                activation: Activation::Polynomial {
                    coefficients: vec![0.0],
                },
                relu: Some(relu),
            }
        } else {
            match preset(tok) {
                Some(activation) => Choice {
                    name: tok.to_string(),
                    activation,
                    relu: None,
                },
                None => {
                    return Err(CompareError::Usage(format!(
                        "unknown activation '{}'; presets: {}, quadratic:a,b,c, or a ReLU \
                         choice relu:exact, relu:poly:NAME[@B], relu:minimax:ALPHA[@B]",
                        clip(tok),
                        preset_names()
                    )))
                }
            }
        };
        if out.iter().any(|c| c.name == choice.name) {
            return Err(CompareError::Usage(format!(
                "activation '{}' is listed twice",
                choice.name
            )));
        }
        out.push(choice);
    }
    if out.is_empty() {
        return Err(CompareError::Usage(
            "--activations lists no activation".into(),
        ));
    }
    Ok(out)
}

/// Cuts untrusted text for a one-line message.
fn clip(s: &str) -> String {
    let mut t: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        t.push('…');
    }
    t
}

fn parse_number(t: &str) -> Result<f64, CompareError> {
    let bad = || CompareError::Usage(format!("'{}' is not a finite number", clip(t)));
    let v = match t.split_once('/') {
        Some((p, q)) => {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            let q: f64 = q.trim().parse().map_err(|_| bad())?;
            p / q
        }
        None => t.trim().parse().map_err(|_| bad())?,
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(bad())
    }
}
