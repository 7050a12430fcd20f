//! Tests of the approximation presets (`verinfer_circuits::approx`): the composite minimax
//! sign approximations against Lee et al.'s bound, measured in f64 here; the ReLU fits
//! against their defining properties (closed forms, normal equations, alternation, the
//! ordering minimax ≤ every other fit).

use std::f64::consts::PI;
use verinfer_circuits::approx::{
    compose, eval, exp_taylor, preset, preset_names, relu_chebyshev, relu_chebyshev_series,
    relu_least_squares, relu_minimax, relu_minimax_error, relu_taylor, rescale, sign_alphas,
    sign_composite, ApproxError, SignComposite, MAX_DEGREE,
};

/// Table 1 of Lee et al. ("Precise Approximation of Convolutional Neural Networks for
/// Homomorphically Encrypted Data"): α, ζ, degrees.
const TABLE1: [(u32, f64, &[u32]); 11] = [
    (4, 5.0, &[5]),
    (5, 5.0, &[13]),
    (6, 10.0, &[3, 7]),
    (7, 11.0, &[7, 7]),
    (8, 12.0, &[7, 15]),
    (9, 13.0, &[15, 15]),
    (10, 13.0, &[7, 7, 13]),
    (11, 15.0, &[7, 7, 27]),
    (12, 15.0, &[7, 15, 27]),
    (13, 16.0, &[15, 15, 27]),
    (14, 17.0, &[15, 27, 29]),
];

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

/// Points of [lo, hi]: `n` uniform ones plus `n / 8` packed into the first percent (where the
/// first stage of a sign composite oscillates fastest).
fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    let dense = n / 8;
    let w = (hi - lo) / 100.0;
    (0..=n)
        .map(move |i| lo + (hi - lo) * i as f64 / n as f64)
        .chain((1..dense).map(move |i| lo + w * i as f64 / dense as f64))
}

/// max |p_α(x) − sgn(x)| over ε ≤ |x| ≤ 1 on a dense grid, in f64.
fn sign_error<P: AsRef<[f64]>>(parts: &[P], eps: f64, n: usize) -> f64 {
    grid(eps, 1.0, n)
        .flat_map(|x| [x, -x])
        .map(|x| (compose(parts, x) - x.signum()).abs())
        .fold(0.0, f64::max)
}

/// The check of every sign preset: within the paper's bound 2^−(α−1), not much tighter
/// (at least a quarter of it), and equal to the generator's high-precision measurement.
fn sign_preset_ok(s: &SignComposite, parts: &[Vec<f64>]) -> Result<f64, String> {
    let err = sign_error(parts, s.epsilon, 200_000);
    let bound = s.bound();
    if err > bound {
        return Err(format!(
            "alpha {}: error {err:e} above the bound {bound:e}",
            s.alpha
        ));
    }
    if err < bound / 4.0 {
        return Err(format!(
            "alpha {}: error {err:e} suspiciously far below {bound:e}",
            s.alpha
        ));
    }
    // The f64 grid may miss a peak by a little; f64 rounding through the stages adds up to
    // ~6e-9 (α = 14, coefficients up to 1e5), far below 1e-3 of the error.
    if err > s.max_error * (1.0 + 1e-3) || err < 0.99 * s.max_error {
        return Err(format!(
            "alpha {}: f64 error {err:e} vs generator's {:e}",
            s.alpha, s.max_error
        ));
    }
    Ok(err)
}

#[test]
fn sign_presets_meet_the_paper_bound_and_no_tighter_one() {
    let alphas = sign_alphas().unwrap();
    assert_eq!(alphas, (4..=14).collect::<Vec<_>>());
    for alpha in alphas {
        let s = sign_composite(alpha).unwrap();
        let err = sign_preset_ok(&s, &s.parts).unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "alpha {alpha:2}: degrees {:?} eps {:.6} error {err:.6e} bound {:.6e} ratio {:.3}",
            s.degrees,
            s.epsilon,
            s.bound(),
            err / s.bound()
        );
        // Near 0 the approximation is not close to sgn (it is a polynomial through 0).
        assert_eq!(s.eval(0.0), 0.0);
        assert!((s.eval(s.epsilon / 4.0) - 1.0).abs() > s.bound());
    }
}

#[test]
fn mutated_sign_coefficients_are_caught() {
    for alpha in [7, 9, 14] {
        let s = sign_composite(alpha).unwrap();
        assert!(sign_preset_ok(&s, &s.parts).is_ok());
        let last = s.parts.len() - 1;
        let mut mutants: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
        // Drop the leading coefficient of each part.
        for i in 0..s.parts.len() {
            let mut p = s.parts.clone();
            let n = p[i].len();
            p[i][n - 1] = 0.0;
            mutants.push((format!("part {i} truncated"), p));
        }
        // Round every coefficient to 4 significant digits.
        let rounded = s
            .parts
            .iter()
            .map(|p| {
                p.iter()
                    .map(|&c| format!("{c:.3e}").parse().unwrap())
                    .collect()
            })
            .collect();
        mutants.push(("4 digits".to_string(), rounded));
        // Perturb the largest coefficient of the first part by one part in 10^5.
        let mut p = s.parts.clone();
        let (k, _) = p[0]
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        p[0][k] *= 1.0 + 1e-5;
        mutants.push(("1e-5 relative".to_string(), p));
        // The last stage only (no composition).
        mutants.push(("last stage only".to_string(), vec![s.parts[last].clone()]));
        for (what, parts) in mutants {
            assert!(
                sign_preset_ok(&s, &parts).is_err(),
                "alpha {alpha}: mutant `{what}` passes the check"
            );
        }
    }
}

#[test]
fn sign_parts_are_odd_with_table1_degrees() {
    for (alpha, zeta, degrees) in TABLE1 {
        let s = sign_composite(alpha).unwrap();
        assert_eq!(s.alpha, alpha);
        assert_eq!(s.zeta, zeta);
        assert_eq!(s.epsilon, zeta * 0.5f64.powi(alpha as i32));
        assert_eq!(s.degrees, degrees);
        assert_eq!(s.parts.len(), degrees.len());
        for (part, &d) in s.parts.iter().zip(degrees) {
            assert_eq!(part.len(), d as usize + 1, "alpha {alpha}");
            assert_ne!(part[d as usize], 0.0, "alpha {alpha}: degree below {d}");
            for (k, &c) in part.iter().enumerate() {
                assert!(c.is_finite());
                if k % 2 == 0 {
                    assert_eq!(c, 0.0, "alpha {alpha}: even coefficient {k}");
                }
            }
        }
        assert_eq!(s.bound(), 2f64.powi(-(alpha as i32 - 1)));
    }
    for alpha in [0, 3, 15, 100] {
        let e = sign_composite(alpha).unwrap_err();
        assert!(matches!(e, ApproxError::UnknownAlpha { .. }));
        assert!(
            e.to_string()
                .contains("4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14"),
            "{e}"
        );
    }
}

/// Chebyshev's alternation theorem: each part p_i, the best odd approximation of 1 on its
/// domain [1 − δ_{i−1}, 1 + δ_{i−1}] (the first on [ε, 1]), has an error that reaches ±δ_i
/// with alternating signs at (d_i + 1)/2 + 1 points. Measured in f64, from the coefficients only.
#[test]
fn sign_parts_equioscillate_on_their_domains() {
    for alpha in sign_alphas().unwrap() {
        let s = sign_composite(alpha).unwrap();
        let (mut lo, mut hi) = (s.epsilon, 1.0);
        for (part, &d) in s.parts.iter().zip(&s.degrees) {
            let errs: Vec<f64> = grid(lo, hi, 100_000).map(|y| eval(part, y) - 1.0).collect();
            let xs: Vec<f64> = grid(lo, hi, 100_000).collect();
            let delta = errs.iter().fold(0.0f64, |m, e| m.max(e.abs()));
            let mut order: Vec<usize> = (0..xs.len()).collect();
            order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
            let mut alternations = 0;
            let mut last_sign = 0.0;
            for &i in &order {
                if errs[i].abs() >= delta * (1.0 - 1e-3) && errs[i].signum() != last_sign {
                    alternations += 1;
                    last_sign = errs[i].signum();
                }
            }
            let needed = (d as usize).div_ceil(2) + 1;
            assert!(
                alternations >= needed,
                "alpha {alpha} degree {d}: {alternations} alternations, need {needed}"
            );
            (lo, hi) = (1.0 - delta, 1.0 + delta);
        }
        // The last δ is the composite's error.
        assert!(
            (hi - 1.0 - s.max_error).abs() < 1e-3 * s.max_error,
            "alpha {alpha}"
        );
    }
}

#[test]
fn embedded_decimal_strings_match_the_f64_fields() {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../presets/sign_minimax.json")).unwrap();
    assert!(json["source"]
        .as_str()
        .unwrap()
        .contains("Minimax approximation of sign function"));
    for entry in json["presets"].as_array().unwrap() {
        let alpha = entry["alpha"].as_u64().unwrap() as u32;
        let s = sign_composite(alpha).unwrap();
        assert_eq!(entry["within_bound"], serde_json::Value::Bool(true));
        for (i, part) in entry["parts"].as_array().unwrap().iter().enumerate() {
            let strings = part["coefficients"].as_array().unwrap();
            let floats = part["coefficients_f64"].as_array().unwrap();
            assert_eq!(strings.len(), floats.len());
            for (k, (st, fl)) in strings.iter().zip(floats).enumerate() {
                let st = st.as_str().unwrap();
                // ≥ 20 significant digits (zeros are exact "0").
                let digits = st
                    .split(['e', 'E'])
                    .next()
                    .unwrap()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .skip_while(|&c| c == '0')
                    .count();
                assert!(st == "0" || digits >= 20, "{st}");
                let parsed: f64 = st.parse().unwrap();
                assert_eq!(parsed, s.parts[i][k]);
                let fl = fl.as_f64().unwrap();
                // serde_json's default float parsing is within an ulp.
                assert!(
                    (parsed - fl).abs() <= 2.0 * f64::EPSILON * fl.abs(),
                    "{st} vs {fl}"
                );
            }
        }
    }
}

/// Lee et al.'s Theorem 1 (ReLU within 2^−α on [−1, 1]) and their max function
/// (within 2^−α on [0, 1]², eq. (1)), both measured.
#[test]
fn relu_and_max_from_the_sign_composites() {
    for alpha in sign_alphas().unwrap() {
        let s = sign_composite(alpha).unwrap();
        let bound = 0.5f64.powi(alpha as i32);
        let relu_err = grid(-1.0, 1.0, 200_000)
            .chain(grid(-s.epsilon, s.epsilon, 20_000))
            .map(|x| (s.relu(x) - relu(x)).abs())
            .fold(0.0, f64::max);
        assert!(
            relu_err <= bound,
            "alpha {alpha}: relu {relu_err:e} > {bound:e}"
        );
        assert!(relu_err > bound / 4.0, "alpha {alpha}: relu {relu_err:e}");
        let n = 300;
        let mut max_err = 0.0f64;
        for i in 0..=n {
            for j in 0..=n {
                let (a, b) = (i as f64 / n as f64, j as f64 / n as f64 * 0.999_7);
                max_err = max_err.max((s.max(a, b) - a.max(b)).abs());
            }
        }
        assert!(
            max_err <= bound,
            "alpha {alpha}: max {max_err:e} > {bound:e}"
        );
        // Four values: two levels of the recursion, error ≤ 2·2^−α on the shrunken range.
        let vals = [0.3, 0.31, 0.7, 0.6999];
        let m = s.max_of(&vals).unwrap();
        assert!((m - 0.7).abs() <= 2.0 * bound, "alpha {alpha}: {m}");
        assert_eq!(s.max_of(&[]), None);
        assert_eq!(s.max_of(&[0.25]), Some(0.25));
    }
}

#[test]
fn lee_relu_presets_expand_the_composite() {
    for alpha in [4, 5, 6] {
        let s = sign_composite(alpha).unwrap();
        let p = preset(&format!("lee_relu:{alpha}")).unwrap();
        assert_eq!(p.len() as u64, s.relu_degree() + 1);
        assert!(p.len() <= MAX_DEGREE as usize + 1);
        // f64 rounding of the expansion and of Horner on it: a few ulps of Σ|c|.
        let size: f64 = p.iter().map(|c| c.abs()).sum();
        for x in grid(-1.0, 1.0, 20_000) {
            let diff = (eval(&p, x) - s.relu(x)).abs();
            assert!(
                diff < 8.0 * f64::EPSILON * size,
                "alpha {alpha} at {x}: {diff:e}, Σ|c| {size}"
            );
            assert!((eval(&p, x) - relu(x)).abs() <= 0.5f64.powi(alpha as i32));
        }
    }
    for alpha in 7..=14 {
        let s = sign_composite(alpha).unwrap();
        assert!(s.relu_degree() > MAX_DEGREE as u64);
        assert!(matches!(
            s.relu_polynomial(),
            Err(ApproxError::Degree { .. })
        ));
        assert!(preset(&format!("lee_relu:{alpha}")).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// ReLU fits

fn relu_error(p: &[f64], n: usize) -> f64 {
    (0..=n)
        .map(|i| -1.0 + 2.0 * i as f64 / n as f64)
        .map(|x| (eval(p, x) - relu(x)).abs())
        .fold(0.0, f64::max)
}

#[test]
fn fits_have_the_requested_length_and_degree_range() {
    for d in 1..=MAX_DEGREE {
        for p in [
            relu_chebyshev(d).unwrap(),
            relu_least_squares(d).unwrap(),
            relu_minimax(d).unwrap(),
            relu_taylor(d).unwrap(),
            exp_taylor(d).unwrap(),
        ] {
            assert_eq!(p.len(), d as usize + 1);
            assert!(p.iter().all(|c| c.is_finite()));
        }
    }
    type Fit = fn(u32) -> Result<Vec<f64>, ApproxError>;
    let fits: [Fit; 5] = [
        relu_chebyshev,
        relu_least_squares,
        relu_minimax,
        relu_taylor,
        exp_taylor,
    ];
    for fit in fits {
        for d in [0, 32, 40, u32::MAX] {
            assert!(
                matches!(fit(d), Err(ApproxError::Degree { .. })),
                "degree {d}"
            );
        }
    }
    let e = relu_chebyshev(40).unwrap_err().to_string();
    assert!(e.contains("1..=31"), "{e}");
}

/// The quadratics of Ali, So, Avestimehr (Fourier series / least squares / minimax).
#[test]
fn degree_two_fits_are_the_published_quadratics() {
    let close = |a: &[f64], b: &[f64]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-15 * y.abs())
    };
    let cheb = relu_chebyshev(2).unwrap();
    assert!(
        close(&cheb, &[1.0 / (3.0 * PI), 0.5, 4.0 / (3.0 * PI)]),
        "{cheb:?}"
    );
    assert_eq!(
        relu_least_squares(2).unwrap(),
        vec![3.0 / 32.0, 0.5, 15.0 / 32.0]
    );
    let mm = relu_minimax(2).unwrap();
    assert!(close(&mm, &[1.0 / 16.0, 0.5, 0.5]), "{mm:?}");
    assert_eq!(relu_minimax(1).unwrap(), vec![0.25, 0.5]);
    assert_eq!(preset("square").unwrap(), vec![0.0, 0.0, 1.0]);
    assert_eq!(preset("square_plus_x").unwrap(), vec![0.0, 1.0, 1.0]);
    assert_eq!(preset("faster_cryptonets").unwrap(), vec![0.25, 0.5, 0.125]);
}

#[test]
fn fit_errors_decrease_with_degree_and_minimax_is_best() {
    let mut prev = [f64::INFINITY; 3];
    eprintln!("degree  chebyshev    lsq          minimax");
    for d in 1..=MAX_DEGREE {
        let errs = [
            relu_error(&relu_chebyshev(d).unwrap(), 40_000),
            relu_error(&relu_least_squares(d).unwrap(), 40_000),
            relu_error(&relu_minimax(d).unwrap(), 40_000),
        ];
        eprintln!("{d:6}  {:.6e} {:.6e} {:.6e}", errs[0], errs[1], errs[2]);
        for (k, (&e, &p)) in errs.iter().zip(&prev).enumerate() {
            if d % 2 == 0 {
                assert!(e < p * 0.99, "fit {k}: degree {d} error {e} not below {p}");
            } else {
                // The non-linear part of relu is even: an odd degree adds nothing.
                assert!(
                    (e - p).abs() <= 1e-12 || p.is_infinite(),
                    "fit {k} degree {d}"
                );
            }
        }
        // Best uniform approximation: nothing of the same degree does better.
        assert!(
            errs[2] <= errs[0] + 1e-12 && errs[2] <= errs[1] + 1e-12,
            "degree {d}"
        );
        // The generator's Remez error agrees with the grid.
        let remez = relu_minimax_error(d).unwrap();
        assert!(
            (errs[2] - remez).abs() <= 1e-4 * remez,
            "degree {d}: {} vs {remez}",
            errs[2]
        );
        // Truncated Chebyshev series: the tail Σ_{k>m} (2/π)/(4k²−1) = 1/(π(2m+1)), at 0.
        let m = (d / 2) as f64;
        let tail = 1.0 / (PI * (2.0 * m + 1.0));
        assert!(
            (errs[0] - tail).abs() <= 1e-12,
            "degree {d}: {} vs {tail}",
            errs[0]
        );
        // O(1/d) for all three.
        if d >= 4 && d % 2 == 0 {
            for (k, &e) in errs.iter().enumerate() {
                let scaled = e * d as f64;
                assert!(
                    (0.1..0.7).contains(&scaled),
                    "fit {k} degree {d}: d·err {scaled}"
                );
            }
        }
        prev = errs;
    }
    // Bernstein's constant: d·E_d(|x|) → 0.2801694990…, and relu's error is half of |x|'s.
    let e30 = relu_minimax_error(30).unwrap() * 2.0 * 30.0;
    assert!((e30 - 0.280_169_499).abs() < 0.005 * 0.280_169_499, "{e30}");
}

/// The minimax fits equioscillate: relu − p is even and reaches ±E at ⌊d/2⌋ + 2 points of
/// [0, 1] with alternating signs.
#[test]
fn minimax_fits_equioscillate() {
    for d in 1..=MAX_DEGREE {
        let p = relu_minimax(d).unwrap();
        let n = 200_000;
        let errs: Vec<f64> = (0..=n)
            .map(|i| i as f64 / n as f64)
            .map(|x| x - eval(&p, x))
            .collect();
        let e = errs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut alternations = 0;
        let mut sign = 0.0;
        for &v in &errs {
            if v.abs() >= e * (1.0 - 1e-4) && v.signum() != sign {
                alternations += 1;
                sign = v.signum();
            }
        }
        assert!(alternations >= d / 2 + 2, "degree {d}: {alternations}");
    }
}

/// Least squares: the residual is orthogonal to every x^j, j ≤ d, on [−1, 1]
/// (∫ q x^j = Σ_k c_k·2/(k+j+1) over even k + j; ∫ relu x^j = 1/(j + 2)).
#[test]
fn least_squares_satisfies_the_normal_equations() {
    for d in 1..=MAX_DEGREE {
        let c = relu_least_squares(d).unwrap();
        for j in 0..=d as usize {
            let terms: Vec<f64> = c
                .iter()
                .enumerate()
                .filter(|(k, _)| (k + j) % 2 == 0)
                .map(|(k, &ck)| ck * 2.0 / (k + j + 1) as f64)
                .collect();
            let scale: f64 = terms.iter().map(|t| t.abs()).sum::<f64>().max(1.0);
            let r = terms.iter().sum::<f64>() - 1.0 / (j + 2) as f64;
            assert!(
                r.abs() <= 1e-14 * scale,
                "degree {d}, x^{j}: residual {r:e}"
            );
        }
    }
}

/// Monomial coefficients against an independent evaluation in the orthogonal basis:
/// Clenshaw on the Chebyshev series, and the Legendre three-term recurrence with the closed
/// form a_2k = (4k+1)/2 · (−1)^{k+1}(2k−2)!/(2^{2k}(k−1)!(k+1)!).
#[test]
fn monomial_conversions_are_accurate() {
    for d in 1..=MAX_DEGREE {
        let mono = relu_chebyshev(d).unwrap();
        let a = relu_chebyshev_series(d).unwrap();
        let size: f64 = mono.iter().map(|c| c.abs()).sum();
        let mut worst = 0.0f64;
        for i in 0..=2000 {
            let x = -1.0 + i as f64 / 1000.0;
            let (mut b1, mut b2) = (0.0, 0.0);
            for &ak in a.iter().skip(1).rev() {
                (b1, b2) = (2.0 * x * b1 - b2 + ak, b1);
            }
            let clenshaw = x * b1 - b2 + a[0];
            worst = worst.max((eval(&mono, x) - clenshaw).abs());
        }
        assert!(
            worst <= 4.0 * f64::EPSILON * size,
            "chebyshev {d}: {worst:e} (Σ|c| {size:e})"
        );

        let mono = relu_least_squares(d).unwrap();
        let size: f64 = mono.iter().map(|c| c.abs()).sum();
        // Legendre coefficients of relu = x/2 + |x|/2.
        let mut leg = vec![0.0f64; d as usize + 1];
        leg[0] = 0.25;
        leg[1] = 0.5;
        for k in 1..=(d as usize / 2) {
            let mut r = 1.0f64; // (2k−2)! / ((k−1)!(k+1)!) / 2^{2k}
            for i in 1..=(2 * k - 2) {
                r *= i as f64;
            }
            for i in 1..k {
                r /= i as f64;
            }
            for i in 1..=(k + 1) {
                r /= i as f64;
            }
            r /= 4f64.powi(k as i32);
            let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
            leg[2 * k] = (4 * k + 1) as f64 / 2.0 * sign * r;
        }
        let mut worst = 0.0f64;
        for i in 0..=2000 {
            let x = -1.0 + i as f64 / 1000.0;
            let (mut p0, mut p1) = (1.0, x);
            let mut s = leg[0] + leg[1] * x;
            for (n, &ln) in leg.iter().enumerate().skip(2) {
                let m = (n - 1) as f64;
                let p2 = ((2.0 * m + 1.0) * x * p1 - m * p0) / (m + 1.0);
                s += ln * p2;
                (p0, p1) = (p1, p2);
            }
            worst = worst.max((eval(&mono, x) - s).abs());
        }
        assert!(
            worst <= 4.0 * f64::EPSILON * size,
            "lsq {d}: {worst:e} (Σ|c| {size:e})"
        );
    }
}

#[test]
fn taylor_presets() {
    let t = relu_taylor(8).unwrap();
    let expect = [
        std::f64::consts::LN_2,
        0.5,
        1.0 / 8.0,
        0.0,
        -1.0 / 192.0,
        0.0,
        1.0 / 2880.0,
        0.0,
        -17.0 / 645_120.0,
    ];
    for (k, (&a, &b)) in t.iter().zip(&expect).enumerate() {
        assert!(
            (a - b).abs() <= 1e-16 + 1e-14 * b.abs(),
            "x^{k}: {a} vs {b}"
        );
    }
    // Softplus is within the series' radius (π) on [−1, 1]; remainder ~ π^−d.
    let t = relu_taylor(24).unwrap();
    for i in 0..=200 {
        let x = -1.0 + i as f64 / 100.0;
        let softplus = (1.0 + x.exp()).ln();
        assert!((eval(&t, x) - softplus).abs() < 1e-10, "{x}");
    }
    // It tracks softplus, not relu: ln 2 off at 0.
    assert!((relu_error(&relu_taylor(6).unwrap(), 2000) - std::f64::consts::LN_2).abs() < 1e-12);
    for d in [2u32, 4, 10] {
        let e = exp_taylor(d).unwrap();
        let fact: f64 = (1..=d + 1).map(f64::from).product();
        for i in 0..=200 {
            let x = -1.0 + i as f64 / 100.0;
            assert!((eval(&e, x) - x.exp()).abs() <= std::f64::consts::E / fact + 1e-15);
        }
    }
    assert_eq!(preset("taylor:6").unwrap(), relu_taylor(6).unwrap());
    assert_eq!(
        preset("exp_taylor:3").unwrap(),
        vec![1.0, 1.0, 0.5, 1.0 / 6.0]
    );
}

#[test]
fn rescale_uses_homogeneity() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -2.0] {
        assert!(matches!(
            rescale(&[0.0, 1.0], bad),
            Err(ApproxError::Bound(b)) if b.is_nan() == bad.is_nan()
        ));
    }
    let q = relu_minimax(8).unwrap();
    assert_eq!(rescale(&q, 1.0).unwrap(), q);
    let e1 = relu_error(&q, 20_000);
    for b in [0.5, 4.0, 37.5] {
        let r = rescale(&q, b).unwrap();
        let mut worst = 0.0f64;
        for i in 0..=20_000 {
            let x = b * (-1.0 + i as f64 / 10_000.0);
            assert!((eval(&r, x) - b * eval(&q, x / b)).abs() <= 1e-12 * b);
            worst = worst.max((eval(&r, x) - relu(x)).abs());
        }
        assert!(
            (worst - b * e1).abs() <= 1e-9 * b,
            "B = {b}: {worst} vs {}",
            b * e1
        );
    }
}

#[test]
fn every_preset_name_resolves() {
    let names = preset_names();
    assert!(names.len() >= 5 * MAX_DEGREE as usize + 3 + 3);
    for name in &names {
        let p = preset(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !p.is_empty() && p.len() <= MAX_DEGREE as usize + 1,
            "{name}"
        );
        assert!(p.iter().all(|c| c.is_finite()), "{name}");
    }
    assert_eq!(preset("chebyshev:8").unwrap(), relu_chebyshev(8).unwrap());
    assert_eq!(preset("lsq:4").unwrap(), relu_least_squares(4).unwrap());
    assert_eq!(preset("minimax:5").unwrap(), relu_minimax(5).unwrap());
    for bad in [
        "",
        "relu",
        "chebyshev:0",
        "lsq:40",
        "minimax:32",
        "taylor:1.5",
        "lee_relu:7",
        "foo:3",
    ] {
        let e = preset(bad).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, ApproxError::UnknownPreset { .. }),
            "{bad}: {msg}"
        );
        assert!(
            msg.contains("chebyshev:<d>") && msg.contains("lee_relu:<4|5|6>"),
            "{msg}"
        );
    }
}

/// `--relu` choices: parsing, their display round trip, and the replacement of ReLU and leaky
/// ReLU layers (the leaky one as `(1 − a)·q(x) + a·x`).
#[test]
fn relu_choices_parse_and_replace() {
    use verinfer_circuits::approx;
    use verinfer_circuits::model::{Activation, Layer, Model, Relu};
    use verinfer_circuits::relu::ReluChoice;
    for text in [
        "exact",
        "poly:square_plus_x",
        "poly:chebyshev:8@4",
        "poly:lsq:6@0.5",
    ] {
        let c: ReluChoice = text.parse().unwrap();
        assert_eq!(c.to_string(), text);
    }
    for bad in [
        "",
        "relu",
        "poly:",
        "poly:nope",
        "poly:lsq:40",
        "poly:lsq:4@0",
        "poly:lsq:4@nan",
    ] {
        assert!(bad.parse::<ReluChoice>().is_err(), "{bad}");
    }
    let mut m = Model {
        name: String::new(),
        input_shape: vec![2],
        input_range: [-1.0, 1.0],
        layers: vec![
            Layer::Relu(Relu::default()),
            Layer::Relu(Relu {
                slope_shift: Some(2),
            }),
        ],
    };
    let params = verinfer_circuits::circuit::QuantParams::default();
    assert_eq!(
        ReluChoice::Exact.apply(&mut m.clone(), &params).unwrap(),
        [0, 1]
    );
    let c: ReluChoice = "poly:lsq:4@2".parse().unwrap();
    assert_eq!(c.apply(&mut m, &params).unwrap(), [0, 1]);
    let q = approx::rescale(&approx::preset("lsq:4").unwrap(), 2.0).unwrap();
    let Layer::Activation(Activation::Polynomial {
        coefficients: plain,
    }) = &m.layers[0]
    else {
        panic!("{:?}", m.layers[0]);
    };
    assert_eq!(plain, &q);
    let Layer::Activation(leaky) = &m.layers[1] else {
        panic!("{:?}", m.layers[1]);
    };
    for x in [-2.0, -0.7, 0.0, 0.3, 1.9] {
        let want = 0.75 * approx::eval(&q, x) + 0.25 * x;
        assert!((leaky.eval(x) - want).abs() < 1e-12, "{x}");
    }
}
