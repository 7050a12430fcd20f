#!/usr/bin/env python3
"""Minimax polynomial approximation by the Remez exchange algorithm, in mpmath.

Plain python3 + mpmath (no numpy). The approximating space is spanned by monomials
x^e for a given list of exponents, which covers the two cases used here:

- the odd basis x, x^3, ..., x^d (the sign-function stages of a composite approximation:
  an odd polynomial approximating sgn on [-b, -a] U [a, b] is the same as the best odd
  polynomial approximating the constant 1 on [a, b]);
- the full basis 1, t, ..., t^m (for example sqrt(t) on [0, 1], i.e. |x| with t = x^2).

Both are Haar (Chebyshev) systems on the intervals used (for the odd basis: a > 0), so
the best approximation is unique and characterised by equioscillation at len(exps) + 1
points (Chebyshev's alternation theorem).

One iteration:
1. solve the linear system  sum_j c_j x_i^{e_j} + (-1)^i E = f(x_i)  on the reference
   x_0 < ... < x_n (n = number of basis functions);
2. find every local extremum of the error e(x) = p(x) - f(x) on [a, b]: sign changes of
   e'(x) on a grid that is dense overall and dense between reference points, refined by
   bisection, plus the two end points;
3. exchange: merge consecutive extrema of the same sign (keep the larger |e|), then drop
   the smallest ones (an end point alone, or an interior one merged with its neighbours)
   until n + 1 alternating points remain; the global maximum of |e| is never dropped.
Stop when the levelled error on the new reference is equal to the global maximum to a
relative tolerance (max |e| - min |e|) / max |e| <= tol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Sequence

import mpmath as mp

Number = mp.mpf


@dataclass
class MinimaxResult:
    """The best approximation sum_j coeffs[j] * x^exps[j] of f on [a, b]."""

    exps: List[int]
    coeffs: List[Number]
    a: Number
    b: Number
    # max |p - f| on [a, b] found by the final extremum search (the minimax error).
    error: Number
    # Levelled error |E| of the last linear solve.
    levelled: Number
    # The final equioscillation reference and the signed errors there.
    reference: List[Number]
    ref_errors: List[Number]
    iterations: int
    # (max |e| - min |e|) / max |e| over the final reference.
    spread: Number

    def __call__(self, x: Number) -> Number:
        return eval_monomials(self.exps, self.coeffs, x)


def eval_monomials(exps: Sequence[int], coeffs: Sequence[Number], x: Number) -> Number:
    """sum_j coeffs[j] * x^exps[j] (exps ascending)."""
    total = mp.mpf(0)
    power = mp.mpf(1)
    last = 0
    for e, c in zip(exps, coeffs):
        power *= x ** (e - last)
        last = e
        total += c * power
    return total


def deriv_monomials(exps: Sequence[int], coeffs: Sequence[Number], x: Number) -> Number:
    """d/dx of sum_j coeffs[j] * x^exps[j]."""
    total = mp.mpf(0)
    for e, c in zip(exps, coeffs):
        if e > 0:
            total += c * e * x ** (e - 1)
    return total


def _solve_reference(exps, f, ref):
    n = len(exps)
    rows = []
    rhs = []
    for i, x in enumerate(ref):
        rows.append([x**e for e in exps] + [mp.mpf(-1) ** i])
        rhs.append(f(x))
    sol = mp.lu_solve(mp.matrix(rows), mp.matrix(rhs))
    return [sol[j] for j in range(n)], sol[n]


def _bisect(g, lo, hi, glo, iters):
    """A root of g in [lo, hi] given that g(lo) = glo and g(hi) differ in sign."""
    for _ in range(iters):
        mid = (lo + hi) / 2
        gm = g(mid)
        if gm == 0:
            return mid
        if (gm > 0) == (glo > 0):
            lo, glo = mid, gm
        else:
            hi = mid
    return (lo + hi) / 2


def _grid(a, b, ref, dense, per_gap):
    """Sample points of [a, b]: Chebyshev-distributed overall, plus uniform in every gap of
    the current reference (the extrema move little between iterations)."""
    pts = set()
    for k in range(dense + 1):
        pts.add((a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * k / dense))
    knots = [a] + list(ref) + [b]
    for lo, hi in zip(knots, knots[1:]):
        for k in range(1, per_gap):
            pts.add(lo + (hi - lo) * k / per_gap)
    return sorted(p for p in pts if a <= p <= b)


def local_extrema(exps, coeffs, f, df, a, b, ref, dense=1500, per_gap=40, iters=None):
    """All local extrema of e = p - f on [a, b] as (x, e(x)), ascending in x, end points
    included."""
    if iters is None:
        iters = int(mp.mp.prec * 0.7) + 20

    def de(x):
        return deriv_monomials(exps, coeffs, x) - df(x)

    def err(x):
        return eval_monomials(exps, coeffs, x) - f(x)

    xs = _grid(a, b, ref, dense, per_gap)
    # The derivative may be singular at an end point (sqrt at 0): sample inside.
    inner = xs[1:-1]
    found = [a]
    prev_x, prev_d = inner[0], de(inner[0])
    for x in inner[1:]:
        d = de(x)
        if d == 0:
            found.append(x)
        elif (d > 0) != (prev_d > 0) and prev_d != 0:
            found.append(_bisect(de, prev_x, x, prev_d, iters))
        prev_x, prev_d = x, d
    found.append(b)
    return [(x, err(x)) for x in found]


def _alternating(points):
    """Merge runs of equal sign, keeping the largest |e| of each run."""
    out = []
    for x, e in points:
        if e == 0:
            continue
        if out and (out[-1][1] > 0) == (e > 0):
            if abs(e) > abs(out[-1][1]):
                out[-1] = (x, e)
        else:
            out.append((x, e))
    return out


def exchange(points, count):
    """count alternating points out of the extrema, keeping the global maximum of |e|."""
    pts = _alternating(points)
    if len(pts) < count:
        raise ValueError(f"only {len(pts)} alternating extrema, need {count}")
    while len(pts) > count:
        if len(pts) - count == 1:
            # Drop the smaller end (keeps the alternation).
            if abs(pts[0][1]) < abs(pts[-1][1]):
                pts = pts[1:]
            else:
                pts = pts[:-1]
            continue
        i = min(range(len(pts)), key=lambda k: abs(pts[k][1]))
        del pts[i]
        pts = _alternating(pts)
    return pts


def remez(
    exps: Sequence[int],
    f: Callable[[Number], Number],
    df: Callable[[Number], Number],
    a,
    b,
    tol=mp.mpf("1e-20"),
    max_iter=100,
    initial: Sequence[Number] | None = None,
) -> MinimaxResult:
    """Best uniform approximation of f on [a, b] by sum_j c_j x^exps[j].

    f and df are f and its derivative (df is used only at interior points). The working
    precision is mpmath's (mp.mp.dps); the odd basis on a narrow interval is badly
    conditioned in the monomial form, so use generous precision (>= 100 digits).
    """
    exps = list(exps)
    a = mp.mpf(a)
    b = mp.mpf(b)
    n = len(exps)
    if initial is None:
        # Chebyshev extrema mapped to [a, b].
        ref = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / n) for i in range(n + 1)]
    else:
        ref = [mp.mpf(x) for x in initial]
    for it in range(1, max_iter + 1):
        coeffs, lev = _solve_reference(exps, f, ref)
        ext = local_extrema(exps, coeffs, f, df, a, b, ref)
        new = exchange(ext, n + 1)
        errs = [abs(e) for _, e in new]
        top = max(abs(e) for _, e in ext)
        spread = (top - min(errs)) / top
        ref = [x for x, _ in new]
        if spread <= tol:
            return MinimaxResult(
                exps=exps,
                coeffs=coeffs,
                a=a,
                b=b,
                error=top,
                levelled=abs(lev),
                reference=ref,
                ref_errors=[e for _, e in new],
                iterations=it,
                spread=spread,
            )
    raise RuntimeError(f"Remez did not converge in {max_iter} iterations (spread {spread})")


def odd_sign_minimax(degree: int, lo, hi, **kw) -> MinimaxResult:
    """The odd polynomial of degree <= degree (odd) closest to sgn on [-hi, -lo] U [lo, hi],
    as the best approximation of 1 on [lo, hi] in the basis x, x^3, ..., x^degree."""
    if degree < 1 or degree % 2 == 0:
        raise ValueError("degree must be odd and >= 1")
    exps = list(range(1, degree + 1, 2))
    return remez(exps, lambda x: mp.mpf(1), lambda x: mp.mpf(0), lo, hi, **kw)


def abs_minimax(degree: int, **kw) -> MinimaxResult:
    """The polynomial of degree <= degree closest to |x| on [-1, 1]. |x| is even, so the best
    approximation is even (uniqueness): q(x^2) with q the best approximation of sqrt(t) on
    [0, 1] of degree degree // 2. The result is returned in t (exps 0..degree // 2)."""
    m = degree // 2
    return remez(
        list(range(m + 1)),
        mp.sqrt,
        lambda t: 1 / (2 * mp.sqrt(t)),
        0,
        1,
        **kw,
    )
