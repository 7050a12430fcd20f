#!/usr/bin/env python3
"""Generate the committed approximation presets of circuits/presets/ with remez.py.

    python3 tools/activations/presets.py            # writes both files (~2 min, 1 core)
    python3 tools/activations/presets.py --check    # recompute, compare with the committed files

Outputs:

- circuits/presets/sign_minimax.json: for every precision alpha of Table 1 of Lee et al.
  ("Precise approximation of convolutional neural networks for homomorphically encrypted
  data"), the composite minimax approximation p_alpha = p_k o ... o p_1 of sgn on
  [-1, -eps] U [eps, 1], eps = zeta * 2^-alpha, built as in Lee, Lee, No, Kim ("Minimax
  approximation of sign function by composite polynomial for homomorphic comparison"):
  p_1 is the odd minimax approximation of sgn of degree d_1 on [-1, -eps] U [eps, 1]; it
  maps [eps, 1] onto [1 - delta_1, 1 + delta_1] (delta_1 its minimax error); p_i is the odd
  minimax approximation of sgn of degree d_i on [-1 - delta_{i-1}, -1 + delta_{i-1}] U
  [1 - delta_{i-1}, 1 + delta_{i-1}]; the composite's error is delta_k.
- circuits/presets/relu_minimax.json: the minimax polynomial of ReLU on [-1, 1] for every
  degree 1..31 (x/2 plus half the best even approximation of |x|).

Coefficients are monomial, ascending (index = power), as decimal strings with 30
significant digits ("coefficients") and as the nearest f64 ("coefficients_f64", JSON
numbers). The Rust side parses the strings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import mpmath as mp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from remez import abs_minimax, eval_monomials, odd_sign_minimax  # noqa: E402

SIGN_OUT = os.path.join(ROOT, "circuits", "presets", "sign_minimax.json")
RELU_OUT = os.path.join(ROOT, "circuits", "presets", "relu_minimax.json")

# Table 1 of Lee et al. (precise approximation of CNNs): alpha -> (zeta, degrees).
TABLE1 = {
    4: (5, [5]),
    5: (5, [13]),
    6: (10, [3, 7]),
    7: (11, [7, 7]),
    8: (12, [7, 15]),
    9: (13, [15, 15]),
    10: (13, [7, 7, 13]),
    11: (15, [7, 7, 27]),
    12: (15, [7, 15, 27]),
    13: (16, [15, 15, 27]),
    14: (17, [15, 27, 29]),
}

SIGN_SOURCE = (
    "Composite minimax approximation of the sign function. Degrees and zeta: Table 1 of "
    "Junghyun Lee, Eunsang Lee, Joon-Woo Lee, Yongjune Kim, Young-Sik Kim, Jong-Seon No, "
    "'Precise Approximation of Convolutional Neural Networks for Homomorphically Encrypted "
    "Data' (arXiv preprint, 2021). Construction: Eunsang Lee, Joon-Woo Lee, Jong-Seon No, "
    "Young-Sik Kim, 'Minimax approximation of sign function by composite polynomial for "
    "homomorphic comparison' (IACR Cryptology ePrint Archive, 2020; IEEE Transactions on "
    "Dependable and Secure Computing). Coefficients recomputed by verinfer's own Remez "
    "implementation (tools/activations/remez.py)."
)

RELU_SOURCE = (
    "Minimax (best uniform) polynomial approximation of ReLU on [-1, 1], computed by "
    "verinfer's Remez implementation (tools/activations/remez.py) as x/2 + q(x)/2, q the best "
    "even approximation of |x|. The degree-2 entry is x^2/2 + x/2 + 1/16, the minimax "
    "quadratic listed by Ramy E. Ali, Jinhyun So, A. Salman Avestimehr, 'On Polynomial "
    "Approximations for Privacy-Preserving and Verifiable ReLU Networks'."
)

SIG = 30  # significant digits of the decimal strings
WORK_DPS = 150  # Remez working precision (the odd basis near 1 is badly conditioned)
EVAL_DPS = 50  # precision of the error measurement


def dec(x) -> str:
    """x with SIG significant digits; exact zeros as "0"."""
    if x == 0:
        return "0"
    return mp.nstr(mp.mpf(x), SIG, min_fixed=-5, max_fixed=6, strip_zeros=False)


def monomial_odd(result, degree):
    """Ascending monomial coefficients (length degree + 1) of an odd-basis result."""
    out = [mp.mpf(0)] * (degree + 1)
    for e, c in zip(result.exps, result.coeffs):
        out[e] = c
    return out


def horner(coeffs, x):
    acc = mp.mpf(0)
    for c in reversed(coeffs):
        acc = acc * x + c
    return acc


def horner_d(coeffs, x):
    acc = mp.mpf(0)
    for k in range(len(coeffs) - 1, 0, -1):
        acc = acc * x + k * coeffs[k]
    return acc


def composite(parts, x):
    for p in parts:
        x = horner(p, x)
    return x


def composite_d(parts, x):
    d = mp.mpf(1)
    for p in parts:
        d *= horner_d(p, x)
        x = horner(p, x)
    return x, d


def measure_sign(parts, eps, points):
    """max |p(x) - 1| over x in [eps, 1] (the negative side is its mirror image: every part
    is odd): a dense grid, then every local maximum of the grid refined by bisection on the
    derivative of the composite."""
    with mp.workdps(EVAL_DPS):
        xs = [eps + (1 - eps) * mp.mpf(i) / points for i in range(points + 1)]
        # Extra points near eps, where the first stage oscillates fastest.
        xs += [eps + (1 - eps) * mp.mpf(i) / (points * 16) for i in range(1, 16 * 64)]
        xs = sorted(set(xs))
        errs = [abs(composite(parts, x) - 1) for x in xs]
        best = max(errs)
        refined = 0
        for i in range(1, len(xs) - 1):
            if errs[i] >= errs[i - 1] and errs[i] >= errs[i + 1] and errs[i] > best / 2:
                lo, hi = xs[i - 1], xs[i + 1]
                # e(x) = p(x) - 1; |e| has a local maximum where e' changes sign.
                _, dlo = composite_d(parts, lo)
                _, dhi = composite_d(parts, hi)
                if (dlo > 0) == (dhi > 0):
                    continue
                for _ in range(80):
                    mid = (lo + hi) / 2
                    _, dm = composite_d(parts, mid)
                    if (dm > 0) == (dlo > 0):
                        lo, dlo = mid, dm
                    else:
                        hi = mid
                e = abs(composite(parts, (lo + hi) / 2) - 1)
                refined += 1
                best = max(best, e)
        return best, len(xs), refined


def relu_composite_error(parts, points=20000):
    """max |r(x) - relu(x)| on [0, 1] for r(x) = (x + x p(x)) / 2 (the ReLU of Lee et al.'s
    Theorem 1); on [-1, 0] the error is the same by oddness of p. Grid only (informative)."""
    with mp.workdps(EVAL_DPS):
        best = mp.mpf(0)
        for i in range(points + 1):
            x = mp.mpf(i) / points
            r = (x + x * composite(parts, x)) / 2
            best = max(best, abs(r - x))
        return best


def sign_presets(alphas, points):
    out = []
    for alpha in alphas:
        zeta, degrees = TABLE1[alpha]
        t0 = time.time()
        with mp.workdps(WORK_DPS):
            eps = mp.mpf(zeta) / mp.mpf(2) ** alpha
            lo, hi = eps, mp.mpf(1)
            parts = []
            stages = []
            for d in degrees:
                res = odd_sign_minimax(d, lo, hi)
                coeffs = monomial_odd(res, d)
                parts.append(coeffs)
                stages.append(
                    {
                        "degree": d,
                        "domain": [dec(lo), dec(hi)],
                        "minimax_error": dec(res.error),
                        "remez_iterations": res.iterations,
                        "equioscillation_spread": mp.nstr(res.spread, 3),
                        "coefficients": [dec(c) for c in coeffs],
                        "coefficients_f64": [float(c) for c in coeffs],
                    }
                )
                lo, hi = 1 - res.error, 1 + res.error
            delta = res.error
        measured, npts, refined = measure_sign(parts, eps, points)
        bound = mp.mpf(2) ** -(alpha - 1)
        relu_err = relu_composite_error(parts)
        largest = max(abs(c) for p in parts for c in p)
        entry = {
            "alpha": alpha,
            "zeta": zeta,
            "epsilon": float(eps),
            "degrees": degrees,
            "bound": float(bound),
            "max_error": float(measured),
            "max_error_decimal": dec(measured),
            "final_minimax_error": dec(delta),
            "within_bound": bool(measured <= bound),
            "grid_points": npts,
            "refined_extrema": refined,
            "relu_max_error": float(relu_err),
            "relu_bound": float(mp.mpf(2) ** -alpha),
            "largest_abs_coefficient": float(largest),
            "parts": stages,
        }
        out.append(entry)
        print(
            f"alpha {alpha:2}: zeta {zeta:2} degrees {degrees}: max error {mp.nstr(measured, 6)}"
            f" (bound {mp.nstr(bound, 6)}, {'ok' if measured <= bound else 'EXCEEDS'}),"
            f" relu {mp.nstr(relu_err, 4)} vs {mp.nstr(bound / 2, 4)},"
            f" largest |c| {mp.nstr(largest, 6)}  [{time.time() - t0:.1f} s]",
            flush=True,
        )
    return out


def relu_presets(max_degree):
    out = []
    with mp.workdps(60):
        for d in range(1, max_degree + 1):
            res = abs_minimax(d)
            coeffs = [mp.mpf(0)] * (d + 1)
            coeffs[1] = mp.mpf(1) / 2
            for j, q in zip(res.exps, res.coeffs):
                coeffs[2 * j] += q / 2
            # Independent check of the error on a grid of [-1, 1].
            grid = max(
                abs(horner(coeffs, x) - max(x, 0))
                for x in (mp.mpf(i) / 4000 - 1 for i in range(8001))
            )
            out.append(
                {
                    "degree": d,
                    "max_error": float(res.error / 2),
                    "max_error_decimal": dec(res.error / 2),
                    "grid_max_error": float(grid),
                    "remez_iterations": res.iterations,
                    "coefficients": [dec(c) for c in coeffs],
                    "coefficients_f64": [float(c) for c in coeffs],
                }
            )
            print(f"relu minimax degree {d:2}: error {mp.nstr(res.error / 2, 8)}", flush=True)
    return out


FORMAT_NOTE = (
    "coefficients: monomial coefficients in ascending order of power (index k multiplies "
    "x^k), decimal strings rounded to 30 significant digits from a 150-digit Remez "
    "computation; coefficients_f64: the same values rounded to the nearest f64. All "
    "errors are absolute."
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files")
    ap.add_argument("--points", type=int, default=40000, help="grid points on [eps, 1]")
    ap.add_argument("--alphas", type=str, default="", help="comma-separated subset (no write)")
    args = ap.parse_args()
    alphas = sorted(TABLE1) if not args.alphas else [int(a) for a in args.alphas.split(",")]
    sign = {
        "description": (
            "Composite minimax approximations p_alpha = p_k o ... o p_1 of sgn(x) on "
            "[-1, -epsilon] U [epsilon, 1], epsilon = zeta * 2^-alpha, with "
            "|p_alpha(x) - sgn(x)| <= 2^-(alpha - 1) (bound). max_error: measured in "
            "50-digit arithmetic over a dense grid of [epsilon, 1] with every local maximum "
            "refined (the negative side mirrors it, every part is odd). final_minimax_error: "
            "the last stage's minimax error (the composite's exact supremum, since each "
            "stage maps its domain onto the next one). relu_max_error: max |(x + x p(x))/2 "
            "- relu(x)| on [-1, 1] on a grid (Lee et al.'s ReLU; relu_bound = 2^-alpha)."
        ),
        "source": SIGN_SOURCE,
        "format": FORMAT_NOTE,
        "presets": sign_presets(alphas, args.points),
    }
    relu = {
        "description": (
            "Minimax polynomial approximations of relu(x) = max(x, 0) on [-1, 1], degree "
            "1..31. max_error: the Remez minimax error; grid_max_error: an independent check "
            "on 8001 points."
        ),
        "source": RELU_SOURCE,
        "format": FORMAT_NOTE,
        "presets": relu_presets(31) if not args.alphas else [],
    }
    if args.alphas:
        return
    texts = {
        SIGN_OUT: json.dumps(sign, indent=1) + "\n",
        RELU_OUT: json.dumps(relu, indent=1) + "\n",
    }
    if args.check:
        bad = False
        for path, text in texts.items():
            with open(path) as f:
                same = f.read() == text
            print(f"{os.path.relpath(path, ROOT)}: {'identical' if same else 'DIFFERS'}")
            bad |= not same
        sys.exit(1 if bad else 0)
    os.makedirs(os.path.dirname(SIGN_OUT), exist_ok=True)
    for path, text in texts.items():
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
