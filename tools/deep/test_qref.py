#!/usr/bin/env python3
"""Tests of the requantization reference (tools/deep/qref_deep.py). Plain python3, no pytest:

    python3 tools/deep/test_qref.py      # prints "N passed, M failed", exit 1 on a failure

Needs numpy and onnx (not torch). The model tests use the committed models/deep/lenet5.onnx
and models/digits/digits_square_plus_x.onnx when they exist.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import traceback
from fractions import Fraction

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import qref_deep as QD  # noqa: E402
from qref_deep import qref, requant  # noqa: E402

TESTS = []


def test(f):
    TESTS.append(f)
    return f


def reference(y, k, b):
    """The contract with exact rationals: clamp(floor((y + 2^(k-1)) / 2^k)), k = 0: clamp."""
    v = y if k == 0 else (Fraction(y) + Fraction(1 << (k - 1))) / (1 << k)
    v = v.numerator // v.denominator if isinstance(v, Fraction) else v
    return max(-(1 << (b - 1)), min((1 << (b - 1)) - 1, v))


def raises(exc, f, *a, contains=None):
    try:
        f(*a)
    except exc as e:
        if contains is not None and contains not in str(e):
            raise AssertionError(f"message {str(e)!r} lacks {contains!r}")
        return
    raise AssertionError(f"{f.__name__}{a} did not raise {exc.__name__}")


# --------------------------------------------------------------------------
# requant(y, k, b)


@test
def exact_halves_round_up():
    assert requant(2, 2, 8) == 1  # 0.5 -> 1
    assert requant(6, 2, 8) == 2  # 1.5 -> 2
    assert requant(10, 2, 8) == 3  # 2.5 -> 3
    assert requant(1, 1, 8) == 1  # 0.5 -> 1
    assert requant(3, 1, 8) == 2  # 1.5 -> 2


@test
def negative_halves_round_up_toward_plus_infinity():
    assert requant(-2, 2, 8) == 0  # -0.5 -> 0
    assert requant(-6, 2, 8) == -1  # -1.5 -> -1
    assert requant(-10, 2, 8) == -2  # -2.5 -> -2
    assert requant(-1, 1, 8) == 0  # -0.5 -> 0
    assert requant(-3, 1, 8) == -1  # -1.5 -> -1


@test
def negative_non_halves_use_floor():
    assert requant(-7, 2, 8) == -2  # -1.75 -> -2
    assert requant(-5, 2, 8) == -1  # -1.25 -> -1
    assert requant(-1, 2, 8) == 0  # -0.25 -> 0
    assert requant(-3, 2, 8) == -1  # -0.75 -> -1
    assert requant(5, 2, 8) == 1 and requant(7, 2, 8) == 2 and requant(1, 2, 8) == 0


@test
def clamp_at_both_ends():
    assert requant(127, 0, 8) == 127 and requant(128, 0, 8) == 127 and requant(10 ** 30, 0, 8) == 127
    assert requant(-128, 0, 8) == -128 and requant(-129, 0, 8) == -128 and requant(-10 ** 30, 0, 8) == -128
    # after the shift: 127.5 rounds to 128, then clamps to 127; -128.5 rounds to -128 (kept)
    assert requant(255, 1, 8) == 127 and requant(-257, 1, 8) == -128 and requant(-259, 1, 8) == -128
    assert requant(253, 1, 8) == 127 and requant(-256, 1, 8) == -128
    # the smallest width the checkpoints allow: 2 bits, [-2, 1]
    assert [requant(v, 0, 2) for v in (-3, -2, -1, 0, 1, 2)] == [-2, -2, -1, 0, 1, 1]
    # 62 bits (the largest)
    assert requant(1 << 70, 0, 62) == (1 << 61) - 1 and requant(-(1 << 70), 0, 62) == -(1 << 61)


@test
def shift_zero_is_the_clamp_only():
    for y in (-5, -1, 0, 1, 5, 1000):
        assert requant(y, 0, 16) == y
    assert requant(40000, 0, 16) == 32767


@test
def shifts_of_64_and_more():
    assert requant(1 << 63, 64, 8) == 1  # 0.5 -> 1
    assert requant(-(1 << 63), 64, 8) == 0  # -0.5 -> 0
    assert requant((1 << 63) - 1, 64, 8) == 0
    assert requant(-(1 << 63) - 1, 64, 8) == -1
    assert requant(1 << 100, 64, 62) == 1 << 36
    assert requant(3 << 199, 200, 8) == 2  # 1.5 -> 2
    assert requant(-(3 << 199), 200, 8) == -1  # -1.5 -> -1
    assert requant((1 << 126) - 1, 255, 62) == 0 and requant(-(1 << 126), 255, 62) == 0
    assert requant(-(1 << 254), 255, 62) == 0 and requant(1 << 254, 255, 62) == 1


@test
def matches_exact_rationals_and_the_shift_formula():
    rng = random.Random(7)
    for _ in range(20000):
        k = rng.choice([0, 1, 2, 3, 7, 8, 15, 16, 31, 63, 64, 65, 100, 127, 128, 200])
        b = rng.choice([2, 3, 8, 16, 32, 62])
        y = rng.randint(-(1 << rng.randint(0, 200)), 1 << rng.randint(0, 200))
        r = requant(y, k, b)
        assert r == reference(y, k, b), (y, k, b)
        # docs/protocol.md §5 computes it as (Y >> k) + bit_{k-1}(Y)
        alt = y if k == 0 else (y >> k) + ((y >> (k - 1)) & 1)
        assert r == max(-(1 << (b - 1)), min((1 << (b - 1)) - 1, alt))


@test
def array_version_is_elementwise():
    X = np.array([[-7, -6, -2, 2, 6, 1 << 80], [-(1 << 80), 0, 1, 3, 5, 255]], dtype=object)
    Y = QD.requant_array(X, 2, 8)
    assert Y.dtype == object
    assert Y.tolist() == [[requant(v, 2, 8) for v in row] for row in X.tolist()]


@test
def bad_arguments_refused():
    raises(ValueError, requant, 5, -1, 8)
    raises(ValueError, requant, 5, 1, 0)


@test
def per_layer_weight_scale():
    p = {"weight_bits": 8, "weight_scale": "per-layer"}
    # round(0.01·2^13) = 82 <= 127 < round(0.01·2^14) = 164
    assert QD.weight_scale_bits(np.array([0.01, -0.002]), p) == 13
    assert QD.weight_scale_bits(np.array([-0.01, 0.002]), p) == 13
    # 127.4 rounds to 127 (fits at 0), 127.5 rounds to 128 (does not fit anywhere)
    assert QD.weight_scale_bits(np.array([127.4]), p) == 0
    raises(qref.Unsupported, QD.weight_scale_bits, np.array([127.5]), p)
    assert QD.weight_scale_bits(np.zeros(3), p) == 40  # all zero: the largest allowed
    assert QD.weight_scale_bits(np.array([0.75]), {"weight_bits": 2, "weight_scale": "per-layer"}) == 0
    assert QD.weight_scale_bits(np.array([0.5]), {"weight_bits": 2, "weight_scale": "per-layer"}) == 1
    assert QD.weight_scale_bits(np.array([9.0]), {"weight_bits": 5, "weight_scale": "uniform"}) == 5


# --------------------------------------------------------------------------
# settings


@test
def settings_defaults_and_strictness():
    st = QD.parse_settings({"format": "verinfer-settings/1"})
    assert (st["input_bits"], st["weight_bits"], st["coef_bits"], st["weight_scale"]) == (8, 8, 8, "uniform")
    assert st["requant"] == []
    bad = [
        ({}, "format"),
        ({"format": "verinfer-settings/2"}, "format"),
        ({"format": "verinfer-settings/1", "inputbits": 8}, "inputbits"),
        ({"format": "verinfer-settings/1", "input_bits": 65}, "input_bits"),
        ({"format": "verinfer-settings/1", "weight_bits": True}, "weight_bits"),
        ({"format": "verinfer-settings/1", "field": "goldilocks"}, "field"),
        ({"format": "verinfer-settings/1", "input_range": [1, 0]}, "input_range"),
        ({"format": "verinfer-settings/1", "requant": {}}, "requant"),
        ({"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 1}]}, "requant[0].bits"),
        ({"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 1, "bits": 1}]}, "requant[0].bits"),
        ({"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 1, "bits": 63}]}, "requant[0].bits"),
        ({"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 256, "bits": 8}]}, "requant[0].shift"),
        ({"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": -1, "bits": 8}]}, "requant[0].shift"),
        ({"format": "verinfer-settings/1", "requant": [{"tensor": 3, "shift": 1, "bits": 8}]}, "requant[0].tensor"),
        ({"format": "verinfer-settings/1", "requant": [{"tensor": "layer:0", "shift": 1, "bits": 8, "x": 1}]}, "requant[0].x"),
    ]
    for obj, key in bad:
        raises(QD.SettingsError, QD.parse_settings, obj, contains=key)


# --------------------------------------------------------------------------
# a hand-checked network: Gemm -> x*x + x -> requant -> Gemm


def tiny_model(path):
    """input[1] -> Gemm(W=1.5, b=0.25) -> BatchNormalization(identity) -> Mul(x,x) -> Add(.,x)
    -> Gemm(W=0.75, b=0.5) -> out."""
    f = np.float32
    inits = [
        numpy_helper.from_array(np.array([[1.5]], f), "W1"), numpy_helper.from_array(np.array([0.25], f), "B1"),
        numpy_helper.from_array(np.array([[0.75]], f), "W2"), numpy_helper.from_array(np.array([0.5], f), "B2"),
        numpy_helper.from_array(np.array([1.0], f), "g"), numpy_helper.from_array(np.array([0.0], f), "be"),
        numpy_helper.from_array(np.array([0.0], f), "mu"), numpy_helper.from_array(np.array([1.0], f), "var"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["fc1"], transB=1),
        helper.make_node("BatchNormalization", ["fc1", "g", "be", "mu", "var"], ["bn1"], epsilon=0.0),
        helper.make_node("Mul", ["bn1", "bn1"], ["sq"]),
        helper.make_node("Add", ["sq", "bn1"], ["act"]),
        helper.make_node("Identity", ["act"], ["act_alias"]),
        helper.make_node("Gemm", ["act_alias", "W2", "B2"], ["out"], transB=1),
    ]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, path)


@test
def tiny_network_by_hand():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "tiny.onnx")
        tiny_model(p)
        low = qref.lower_onnx(p)
        assert [L.kind for L in low.layers] == ["dense", "act", "dense"]
        # names: the pre-fold Gemm output is refused, the x*x output is refused, the alias is kept
        assert low.names["bn1"] == 0 and low.names["act"] == 1 and low.names["act_alias"] == 1
        assert low.names["out"] == 2
        assert isinstance(low.names["fc1"], str) and "bn1" in low.names["fc1"]
        assert isinstance(low.names["sq"], str) and isinstance(low.names["x"], str)
        params = dict(qref.DEFAULT_PARAMS)
        x = np.array([[0.5]])
        # X = 128 at s 8; dense: 384*128 + q(0.25, 16) = 65536 at s 16 (1.0);
        # act: 65536^2 + 2^16*65536 = 2^33 at s 32 (2.0); requant >>24: 2^9 at s 8 (2.0);
        # dense: 192*512 + q(0.5, 16) = 131072 at s 16 (2.0)
        for tensor in ("act", "act_alias", "layer:1"):
            cps = QD.place_checkpoints(low, [{"tensor": tensor, "shift": 24, "bits": 16}])
            tr = []
            Y, s = QD.eval_int(low, x, params, cps, trace=tr)
            assert (Y.tolist(), s) == ([[131072]], 16), (Y, s)
            assert [t[1] for t in tr] == [16, 32, 8, 16]
        # clamp: 8 bits keep at most 127 -> 192*127 + 32768 = 57152
        cps = QD.place_checkpoints(low, [{"tensor": "act", "shift": 24, "bits": 8}])
        assert QD.eval_int(low, x, params, cps)[0].tolist() == [[57152]]
        # k = 0 on the first dense (clamp only, 18 bits: 65536 kept), scale unchanged
        cps = QD.place_checkpoints(low, [{"tensor": "bn1", "shift": 0, "bits": 18}])
        Y, s = QD.eval_int(low, x, params, cps)
        assert s == 40 and Y.tolist() == [[192 * (2 ** 33) + qref.q(0.5, 40)]]
        # checkpoint on the output: scale 16 - 4
        cps = QD.place_checkpoints(low, [{"tensor": "out", "shift": 4, "bits": 16}])
        Y, s = QD.eval_int(low, x, params, cps)
        assert (Y.tolist(), s) == ([[requant(192 * (2 ** 33) + qref.q(0.5, 40), 4, 16)]], 36)
        # refusals
        for tensor, msg in (("fc1", "before a fold"), ("sq", "intermediate"), ("x", "graph input"),
                            ("nope", "names no value"), ("layer:3", "3 layers"), ("layer:x", "layer:N")):
            raises(QD.SettingsError, QD.place_checkpoints, low, [{"tensor": tensor, "shift": 1, "bits": 8}], contains=msg)
        raises(QD.SettingsError, QD.place_checkpoints, low,
               [{"tensor": "layer:1", "shift": 1, "bits": 8}, {"tensor": "act", "shift": 2, "bits": 8}],
               contains="already has a checkpoint")
        # a shift above the tensor's scale is refused (scale 16 after the first dense)
        cps = QD.place_checkpoints(low, [{"tensor": "bn1", "shift": 17, "bits": 8}])
        raises(qref.Unsupported, QD.eval_int, low, x, params, cps)
        # worst case from [0, 1]: segment restarts at the clamp range
        cps = QD.place_checkpoints(low, [{"tensor": "act", "shift": 24, "bits": 16}])
        segs, per = QD.worst_case(low, [0.0, 1.0], params, cps)
        assert len(segs) == 2 and per[2][0].startswith("requant")


# --------------------------------------------------------------------------
# real models


def _test_images(n, up):
    t = json.load(open(os.path.join(ROOT, "models", "digits", "test_set.json")))
    x = np.asarray(t["images"][:n], dtype=np.float64)
    return np.repeat(np.repeat(x, up, axis=2), up, axis=3)


@test
def digits_model_without_checkpoints_equals_qref():
    p = os.path.join(ROOT, "models", "digits", "digits_square_plus_x.onnx")
    low = qref.lower_onnx(p)
    x = _test_images(6, 1)
    Y0, s0 = qref.eval_int(low, x)
    Y1, s1 = QD.eval_int(low, x, dict(qref.DEFAULT_PARAMS))
    assert s0 == s1 and Y0.tolist() == Y1.tolist()
    wc, _ = qref.worst_case_bits(low, [0.0, 1.0])
    assert QD.worst_case(low, [0.0, 1.0], dict(qref.DEFAULT_PARAMS))[0] == [wc]


@test
def deep_models_fast_path_equals_python_ints():
    for name, up in (("lenet5", 4), ("vgg7", 2)):
        p = os.path.join(ROOT, "models", "deep", f"{name}.onnx")
        sp = os.path.join(ROOT, "models", "deep", f"{name}.settings.json")
        if not (os.path.exists(p) and os.path.exists(sp)):
            print(f"  (skipping {name}: not trained yet)")
            continue
        low = qref.lower_onnx(p)
        st = QD.parse_settings(json.load(open(sp)))
        cps = QD.place_checkpoints(low, st["requant"])
        params = {k: st[k] for k in ("input_bits", "weight_bits", "coef_bits", "weight_scale")}
        x = _test_images(2, up)
        Yf, sf = QD.eval_int(low, x, params, cps)
        Ys, ss = QD.eval_int(low, x, params, cps, slow=True)
        assert sf == ss and Yf.tolist() == Ys.tolist(), name
        # every activation output name resolves to an activation layer
        for t in st["requant"]:
            assert low.layers[qref.resolve_name(low, t["tensor"])].kind == "act", t


def main():
    passed = failed = 0
    for f in TESTS:
        try:
            f()
            passed += 1
            print(f"ok   {f.__name__}")
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL {f.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
