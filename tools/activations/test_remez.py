#!/usr/bin/env python3
"""Tests of remez.py against minimax approximations known in closed form. Plain python3 +
mpmath, no pytest:

    python3 tools/activations/test_remez.py      # prints "N passed, M failed", exit 1 on a failure
"""

from __future__ import annotations

import os
import sys
import traceback

import mpmath as mp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from remez import abs_minimax, exchange, odd_sign_minimax, remez  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def close(a, b, tol="1e-30"):
    return abs(mp.mpf(a) - mp.mpf(b)) <= mp.mpf(tol) * max(1, abs(mp.mpf(b)))


@test
def odd_degree_one_sign():
    # c·x against 1 on [a, 1]: errors c·a − 1 = −(c − 1) at the ends, c = 2/(1 + a),
    # minimax error (1 − a)/(1 + a).
    with mp.workdps(60):
        for a in ["0.1", "0.5", "0.01"]:
            a = mp.mpf(a)
            r = odd_sign_minimax(1, a, 1)
            assert close(r.coeffs[0], 2 / (1 + a)), r.coeffs
            assert close(r.error, (1 - a) / (1 + a)), r.error


@test
def quartic_by_cubic():
    # The best cubic approximation of x^4 on [-1, 1] is x^4 − T_4(x)/8 = x² − 1/8, error 1/8.
    with mp.workdps(60):
        r = remez([0, 1, 2, 3], lambda x: x**4, lambda x: 4 * x**3, -1, 1)
        for got, want in zip(r.coeffs, [mp.mpf(-1) / 8, 0, 1, 0]):
            assert close(got, want), r.coeffs
        assert close(r.error, mp.mpf(1) / 8)


@test
def exp_by_a_line():
    # Best line for e^x on [0, 1]: slope e − 1, error (2 − e + (e − 1) ln(e − 1))/2.
    with mp.workdps(60):
        r = remez([0, 1], mp.exp, mp.exp, 0, 1)
        e = mp.e
        assert close(r.coeffs[1], e - 1)
        assert close(r.error, (2 - e + (e - 1) * mp.log(e - 1)) / 2)
        assert close(r.coeffs[0], (e - (e - 1) * mp.log(e - 1)) / 2)


@test
def abs_by_a_quadratic():
    # |x| on [-1, 1] by degree 2: x² + 1/8 (sqrt(t) by t + 1/8 on [0, 1]), error 1/8.
    with mp.workdps(60):
        r = abs_minimax(2)
        assert close(r.coeffs[0], mp.mpf(1) / 8) and close(r.coeffs[1], 1)
        assert close(r.error, mp.mpf(1) / 8)


@test
def abs_bernstein_constant():
    # 2m · E_{2m}(|x|) increases to Bernstein's constant 0.2801694990...
    with mp.workdps(50):
        prev = 0
        for m in [2, 4, 8]:
            v = 2 * m * abs_minimax(2 * m).error
            assert prev < v < mp.mpf("0.2801694991"), (m, v)
            prev = v
        assert v > mp.mpf("0.279"), v


@test
def sign_stage_equioscillates():
    with mp.workdps(100):
        r = odd_sign_minimax(7, mp.mpf(11) / 128, 1)
        assert len(r.reference) == 5
        for i, e in enumerate(r.ref_errors):
            assert close(abs(e), r.error, "1e-18")
            assert (e > 0) == ((r.ref_errors[0] > 0) == (i % 2 == 0))
        assert r.reference[0] == mp.mpf(11) / 128 and r.reference[-1] == 1
        # The error is below the levelled one nowhere else: a dense check.
        worst = max(abs(r(mp.mpf(11) / 128 + (1 - mp.mpf(11) / 128) * i / 5000) - 1)
                    for i in range(5001))
        assert worst <= r.error * (1 + mp.mpf("1e-15"))


@test
def bad_initial_reference_converges():
    with mp.workdps(60):
        init = [mp.mpf(x) for x in ["-1", "-0.99", "-0.98", "0.97", "1"]]
        r = remez([0, 1, 2, 3], lambda x: x**4, lambda x: 4 * x**3, -1, 1, initial=init)
        # Stopped at a spread <= 1e-20: the error is exact to about that.
        assert close(r.error, mp.mpf(1) / 8, "1e-18"), r.error
        assert close(r.coeffs[2], 1, "1e-18") and close(r.coeffs[0], mp.mpf(-1) / 8, "1e-18")


@test
def exchange_keeps_the_global_maximum_and_alternation():
    pts = [(0, 0.5), (1, -0.4), (2, -0.9), (3, 0.3), (4, -0.2), (5, 0.6), (6, -0.1)]
    out = exchange(pts, 4)
    signs = [e > 0 for _, e in out]
    assert len(out) == 4
    assert all(a != b for a, b in zip(signs, signs[1:])), out
    assert (2, -0.9) in out and (5, 0.6) in out, out
    try:
        exchange([(0, 1.0), (1, 2.0)], 2)
    except ValueError:
        pass
    else:
        raise AssertionError("expected a ValueError")


@test
def degree_must_be_odd():
    for d in [0, 2, -1]:
        try:
            odd_sign_minimax(d, 0.1, 1)
        except ValueError:
            continue
        raise AssertionError(d)


def main():
    passed = failed = 0
    for fn in TESTS:
        try:
            fn()
            passed += 1
            print(f"ok    {fn.__name__}")
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL  {fn.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
