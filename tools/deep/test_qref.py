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
# residual graphs: add / subtract of two layers, branches, checkpoints read by both paths
#
# Every graph starts x[N, 1] -> fc1 = Gemm(W 1.5, b 0.25) -> a1 = fc1*fc1 + fc1 (layers 0, 1)
# and ends with fc3 = Gemm(W 0.5, b 0) -> out. At x = 0.5 and 8/8/8 uniform bits:
#   X = 128 (s 8); fc1 = 384·128 + q(0.25, 16) = 65536 = 2^16 (s 16, 1.0);
#   a1 = 2^32 + 2^16·2^16 = 2^33 (s 32, 2.0);
#   fc2 = Gemm(a1, W 0.5, b 0.5) = 128·2^33 + q(0.5, 40) = 2^40 + 2^39 = 3·2^39 (s 40, 1.5).


def _gemm(name, src, w, b=None):
    f = np.float32
    inits = [numpy_helper.from_array(np.array([[w]], f), name + ".W")]
    ins = [src, name + ".W"]
    if b is not None:
        inits.append(numpy_helper.from_array(np.array([b], f), name + ".b"))
        ins.append(name + ".b")
    return helper.make_node("Gemm", ins, [name], transB=1), inits


def residual_model(path, tail):
    """fc1 -> a1 -> fc2, then `tail` (list of (op, inputs, output) or Gemm specs) -> out."""
    nodes, inits = [], []
    for spec in [("gemm", "x", "fc1", 1.5, 0.25), ("Mul", ["fc1", "fc1"], "sq1"), ("Add", ["sq1", "fc1"], "a1"),
                 ("gemm", "a1", "fc2", 0.5, 0.5)] + tail:
        if spec[0] == "gemm":
            n, i = _gemm(spec[2], spec[1], spec[3], spec[4] if len(spec) > 4 else None)
            nodes.append(n)
            inits += i
        elif spec[0] == "const":
            inits.append(numpy_helper.from_array(np.array(spec[2], np.float32), spec[1]))
        else:
            nodes.append(helper.make_node(spec[0], spec[1], [spec[2]]))
    g = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 1])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def _lower(tail):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "res.onnx")
        residual_model(p, tail)
        return qref.lower_onnx(p)


def _run(low, x, tensors=(), params=None):
    params = params or dict(qref.DEFAULT_PARAMS)
    cps = QD.place_checkpoints(low, [{"tensor": t, "shift": k, "bits": b} for t, k, b in tensors])
    Y, s = QD.eval_int(low, np.array(x, dtype=np.float64).reshape(-1, 1), params, cps)
    QD.worst_case(low, [-1.0, 1.0], params, cps)  # runs on graphs too
    return [int(v) for v in Y.reshape(-1)], s


@test
def residual_add_lifts_the_lower_scale():
    # res = fc2 + a1: fc2 (s 40) is on the latest layer, a1 (s 32) is the earlier operand
    low = _lower([("Add", ["fc2", "a1"], "res"), ("gemm", "res", "out", 0.5)])
    assert [L.kind for L in low.layers] == ["dense", "act", "dense", "add", "dense"]
    assert low.layers[3].ref == 1 and not low.layers[3].subtract
    assert low.names["res"] == 3 and low.names["a1"] == 1 and low.names["fc2"] == 2
    # x = 0.5: res = 3·2^39 + 2^33·2^(40−32) = 7·2^39 (s 40, 3.5); out = 128·7·2^39 (s 48, 1.75)
    assert _run(low, [0.5]) == ([7 << 46], 48)
    # x = −0.75: X = −192; fc1 = 384·(−192) + 16384 = −57344 (−0.875);
    # a1 = 57344² − 2^16·57344 = −469762048 (s 32, −0.109375); fc2 = 128·a1 + 2^39 (0.4453125);
    # res = fc2 + a1·2^8 (0.3359375); out = 128·res
    a1 = 57344 * 57344 - 65536 * 57344
    assert a1 == -469762048
    fc2 = 128 * a1 + (1 << 39)
    assert fc2 == 489626271744
    assert _run(low, [-0.75]) == ([128 * (fc2 + (a1 << 8))], 48)
    assert float(qref.eval_float(low, np.array([[0.5]]))[0, 0]) == 1.75
    # the scales are the contract's: lift of the lower one by the difference, none on the other
    tr = []
    QD.eval_int(low, np.array([[0.5]]), dict(qref.DEFAULT_PARAMS), {}, trace=tr)
    assert [t[1] for t in tr] == [16, 32, 40, 40, 48]
    assert "add[1]" in qref.describe(low)


@test
def residual_checkpoint_is_read_by_both_paths():
    low = _lower([("Add", ["fc2", "a1"], "res"), ("gemm", "res", "out", 0.5)])
    # a1 >> 24 in 8 bits: 2^33 -> 512 -> clamped to 127 (s 8), read by fc2 AND by the add:
    # fc2 = 128·127 + q(0.5, 16) = 49024 (s 16); res = 49024 + 127·2^8 = 81536 (s 16);
    # out = 128·81536 (s 24). (Had the add read a1 before the checkpoint: s 32, another value.)
    assert _run(low, [0.5], [("a1", 24, 8)]) == ([128 * 81536], 24)
    assert 128 * 81536 == 10436608
    # and a checkpoint on the add's output: 81536 >> 4 = 5096 (s 12); out = 128·5096 (s 20)
    assert _run(low, [0.5], [("a1", 24, 8), ("res", 4, 16)]) == ([128 * 5096], 20)
    assert _run(low, [0.5], [("layer:1", 24, 8), ("layer:3", 4, 16)]) == ([128 * 5096], 20)


@test
def residual_subtract_and_its_sign():
    # latest operand is the minuend: the layer computes fc2 − a1·2^8 = 3·2^39 − 2^41 = −2^39
    low = _lower([("Sub", ["fc2", "a1"], "res"), ("gemm", "res", "out", 0.5)])
    assert [L.kind for L in low.layers] == ["dense", "act", "dense", "add", "dense"]
    assert low.layers[3].subtract and low.layers[3].ref == 1
    assert float(low.layers[4].W[0, 0]) == 0.5
    assert _run(low, [0.5]) == ([-(1 << 46)], 48)  # 128·(−2^39): −0.25
    assert "sub[1]" in qref.describe(low)
    # latest operand is the subtrahend: a1 − fc2 = −(fc2 − a1): the same layer (fc2 − a1·2^8 =
    # −2^39) with a pending factor −1 that folds into fc3's weights (−0.5 -> q = −128)
    low = _lower([("Sub", ["a1", "fc2"], "res"), ("gemm", "res", "out", 0.5)])
    assert [L.kind for L in low.layers] == ["dense", "act", "dense", "add", "dense"]
    assert low.layers[3].subtract and low.layers[3].ref == 1
    assert float(low.layers[4].W[0, 0]) == -0.5
    assert low.names["res"] == 3  # −1 times the add's output: names the add
    assert _run(low, [0.5]) == ([1 << 46], 48)  # (−128)·(−2^39): +0.25
    assert float(qref.eval_float(low, np.array([[0.5]]))[0, 0]) == 0.25
    # the sign squared away: (−Z)² = Z², an x² activation; Z = −2^39 (s 40): Z² = 2^78 (s 80)
    low = _lower([("Sub", ["a1", "fc2"], "res"), ("Mul", ["res", "res"], "sq"), ("gemm", "sq", "out", 0.5)])
    assert [L.kind for L in low.layers] == ["dense", "act", "dense", "add", "act", "dense"]
    assert low.layers[4].coefs == (1.0, 0.0, 0.0) and float(low.layers[5].W[0, 0]) == 0.5
    assert _run(low, [0.5]) == ([128 << 78], 88)
    # (−Z)² + (−Z) = Z² − Z: activation (1, −1, 0): Z² − 2^40·Z = 2^78 + 2^79 (s 80, 0.75)
    low = _lower([("Sub", ["a1", "fc2"], "res"), ("Mul", ["res", "res"], "sq"), ("Add", ["sq", "res"], "act2"),
                  ("gemm", "act2", "out", 0.5)])
    assert low.layers[4].coefs == (1.0, -1.0, 0.0)
    assert _run(low, [0.5]) == ([128 * (3 << 78)], 88)
    assert low.names["act2"] == 4


@test
def residual_branch_reads_the_earlier_tensor():
    # shortcut: short = Gemm(a1, W 2.0) read after fc2 -> branch from a1's layer, then a dense
    tail = [("gemm", "a1", "short", 2.0), ("Add", ["fc2", "short"], "res"), ("gemm", "res", "out", 0.5)]
    low = _lower(tail)
    assert [L.kind for L in low.layers] == ["dense", "act", "dense", "branch", "dense", "add", "dense"]
    assert low.layers[3].ref == 1 and low.layers[5].ref == 2  # add: input = short, ref = fc2
    assert low.names["short"] == 4 and low.names["res"] == 5
    # uniform, no checkpoint: short = 512·2^33 = 2^42 (s 40, 4.0); res = 2^42 + 3·2^39 = 11·2^39
    assert _run(low, [0.5]) == ([128 * (11 << 39)], 48)
    # a checkpoint on a1 (>> 24, 8 bits: 127 at s 8) is what both fc2 and the branch read:
    # fc2 = 128·127 + 32768 = 49024, short = 512·127 = 65024 (both s 16); res = 114048
    assert _run(low, [0.5], [("a1", 24, 8)]) == ([128 * 114048], 24)
    # per-layer weights (8 signed bits): fc1 s_w 6 (96), fc2 s_w 7 (64), short s_w 5 (64),
    # fc3 s_w 7 (64). fc1 = 96·128 + q(0.25, 14) = 2^14 (s 14); a1 = 2^29 (s 28);
    # fc2 = 64·2^29 + q(0.5, 35) = 3·2^34 (s 35); short = 64·2^29 = 2^35 (s 33): the add's
    # input (the latest) is lifted by 2: res = 2^37 + 3·2^34 = 11·2^34 (s 35);
    # out = 64·11·2^34 (s 42, 2.75)
    pl = {"input_bits": 8, "weight_bits": 8, "coef_bits": 8, "weight_scale": "per-layer"}
    assert _run(low, [0.5], params=pl) == ([64 * (11 << 34)], 42)
    tr = []
    QD.eval_int(low, np.array([[0.5]]), pl, {}, trace=tr)
    assert [t[1] for t in tr] == [14, 28, 35, 28, 33, 35, 42]
    # the branch as the subtrahend's path: fc2 − short = 3·2^39 − 2^42 = −5·2^39 (uniform)
    low = _lower([("gemm", "a1", "short", 2.0), ("Sub", ["fc2", "short"], "res"), ("gemm", "res", "out", 0.5)])
    assert low.layers[5].subtract and float(low.layers[6].W[0, 0]) == -0.5
    assert _run(low, [0.5]) == ([(-128) * (2 ** 42 - 3 * 2 ** 39)], 48)


@test
def residual_refusals():
    def refused(tail, contains):
        raises(qref.Unsupported, _lower, tail, contains=contains)
    refused([("Mul", ["fc2", "a1"], "res"), ("gemm", "res", "out", 0.5)], "product")
    refused([("Add", ["fc2", "x"], "res"), ("gemm", "res", "out", 0.5)], "model input")
    refused([("gemm", "x", "again", 2.0), ("Add", ["fc2", "again"], "out")], "model input")
    # the shortcut scaled by a constant the importer cannot fold
    refused([("const", "two", 2.0), ("Mul", ["a1", "two"], "a1x2"), ("Add", ["fc2", "a1x2"], "res"),
             ("gemm", "res", "out", 0.5)], "2.0 times")
    # ... or an activation of an earlier output that no layer computes
    refused([("Mul", ["fc1", "fc1"], "sq_again"), ("Add", ["fc2", "sq_again"], "res"), ("gemm", "res", "out", 0.5)],
            "no layer computes")
    # the sum of two earlier values (fc2b came after both): continues from the later one through
    # a branch, then the add; then the sum plus fc2b
    low = _lower([("gemm", "fc2", "fc2b", 1.0), ("Add", ["a1", "fc2"], "res"), ("Add", ["res", "fc2b"], "res2"),
                  ("gemm", "res2", "out", 0.5)])
    assert [L.kind for L in low.layers] == ["dense", "act", "dense", "dense", "branch", "add", "add", "dense"]
    assert (low.layers[4].ref, low.layers[5].ref, low.layers[6].ref) == (2, 1, 3)
    # x = 0.5: fc2b = 256·3·2^39 + 0 (s 48); res = 3·2^39 + 2^33·2^8 = 7·2^39 (s 40);
    # res2 = 7·2^39·2^8 + 3·2^47 = 10·2^47 (s 48, 3.5 + 1.5 = 5.0); out = 128·10·2^47 (s 56)
    assert _run(low, [0.5]) == ([128 * (10 << 47)], 56)
    # a node the output does not depend on adds no layer
    low = _lower([("gemm", "fc2", "dead", 1.0), ("Add", ["fc2", "a1"], "res"), ("gemm", "res", "out", 0.5)])
    assert [L.kind for L in low.layers] == ["dense", "act", "dense", "add", "dense"]


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
    for name, up in (("lenet5", 4), ("vgg7", 2), ("resnet", 2)):
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


@test
def resnet_lowering_is_the_importers_graph():
    """models/deep/resnet.onnx lowers to the layer list `verinfer inspect` shows (model layers
    layer:0..layer:23): identity shortcut = add of the block input; projection shortcut = branch
    from the block input, 1×1 stride-2 conv, add of the main path's last conv."""
    p = os.path.join(ROOT, "models", "deep", "resnet.onnx")
    if not os.path.exists(p):
        print("  (skipping resnet: not trained yet)")
        return
    low = qref.lower_onnx(p)
    kinds = [L.kind for L in low.layers]
    assert kinds == ["conv", "act", "conv", "act", "conv", "add", "act",
                     "conv", "act", "conv", "branch", "conv", "add", "act",
                     "conv", "act", "conv", "branch", "conv", "add", "act",
                     "sumpool", "flatten", "dense"], kinds
    refs = {i: L.ref for i, L in enumerate(low.layers) if L.kind in ("add", "branch")}
    assert refs == {5: 1, 10: 6, 12: 9, 17: 13, 19: 16}, refs
    assert not any(L.subtract for L in low.layers)
    assert [low.layers[i].stride for i in (11, 18)] == [(2, 2), (2, 2)]
    assert low.names["/block1/Add_output_0"] == 5 and low.names["/block2/Add_output_0"] == 12
    assert low.names["/block2/short_conv/Conv_output_0"] == 11 and low.names["/block3/act2/Add_output_0"] == 20
    assert low.output_factor == 1.0  # avg_pool2d(x, 4)'s 1/16 is in the dense weights


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
