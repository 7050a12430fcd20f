#!/usr/bin/env python3
"""Exact integer reference with requantization checkpoints (docs/protocol.md §3 and §5).

Extends tools/digits/qref.py (which it imports: same lowering, same quantization) with

* ``requant(y, k, b)``: ``clamp(floor((y + 2^(k-1)) / 2^k), -2^(b-1), 2^(b-1) - 1)`` on Python
  ints (``k = 0``: the clamp only), moving the scale from ``s`` to ``s - k``;
* the settings file (``"format": "verinfer-settings/1"``), whose ``requant`` list places a
  checkpoint right after the lowered layer that produces the named tensor (``layer:N`` or an
  ONNX value name, ``qref.resolve_name``);
* residual graphs (qref.py lowers Add/Sub of two layers to ``add``, a re-read tensor to
  ``branch``): an add of A (the previous output, scale sA) and B (an earlier layer's output,
  sB) is ``A·2^(s−sA) ± B·2^(s−sB)`` at ``s = max(sA, sB)``; a branch continues from the
  earlier output at its scale; a checkpoint applies before every reader of its tensor;
* exact inference with those checkpoints, the worst-case bits of each segment, and a CLI:

    python3 tools/deep/qref_deep.py --model models/deep/lenet5.onnx \\
        --settings models/deep/lenet5.settings.json \\
        --test models/digits/test_set.json --upsample 4 --out fixture.json [--float]

Linear layers are computed exactly with float64 BLAS when every partial sum provably stays
below 2^53 (the bound sum|W|·max|X| + |B| is checked per batch), else with int64 below 2^63,
else with Python ints; the result is the same integers in every case (``--slow`` forces
Python ints; tools/deep/test_qref.py compares both).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "digits"))
import qref  # noqa: E402

SETTINGS_FORMAT = "verinfer-settings/1"
SETTINGS_KEYS = ("format", "input_bits", "weight_bits", "coef_bits", "weight_scale", "field", "input_range", "requant")
MIN_REQUANT_BITS, MAX_REQUANT_BITS = 2, 62  # circuits/src/ops/requant.rs
MAX_SHIFT = 255
MAX_SETTINGS_BITS = 64
FIELD_CAPACITY = {"m127": 126, "bn254": 252}  # signed bits (docs/protocol.md §2)
MAX_REQUANT_INPUT_BITS = 126  # a checkpoint's input is opened as i128 (docs/protocol.md §5)
MAX_PER_LAYER_WEIGHT_BITS = 40  # circuits/src/quant.rs
MAX_LIFT = 120  # largest lift of an add operand (circuits/src/ops/add.rs)


def weight_scale_bits(W: np.ndarray, params: dict) -> int:
    """Fractional bits of a linear layer's weights: `weight_bits` (uniform), or (per-layer) the
    largest s_w in 0..=40 with max |q(W, s_w)| <= 2^(weight_bits-1) - 1 (docs/protocol.md §3)."""
    wb = params["weight_bits"]
    if params.get("weight_scale", "uniform") == "uniform":
        return wb
    if not 2 <= wb <= 64:
        raise qref.Unsupported(f"weight_bits {wb} with a per-layer weight scale must be between 2 and 64")
    largest = float(np.abs(np.asarray(W, dtype=np.float64)).max(initial=0.0))
    limit = (1 << (wb - 1)) - 1
    for sw in range(MAX_PER_LAYER_WEIGHT_BITS, -1, -1):
        if qref.q(largest, sw) <= limit:
            return sw
    raise qref.Unsupported(f"largest weight {largest} does not fit {wb} signed bits even at scale 2^0")


class SettingsError(ValueError):
    pass


# --------------------------------------------------------------------------
# The checkpoint


def requant(y: int, k: int, b: int) -> int:
    """clamp(floor((y + 2^(k-1)) / 2^k), -2^(b-1), 2^(b-1) - 1); k = 0: the clamp only.

    Python's >> on ints is floor division by 2^k for negative y too, so this is exact."""
    if k < 0 or b < 1:
        raise ValueError(f"requant: shift {k} must be >= 0 and bits {b} >= 1")
    y = int(y)
    if k > 0:
        y = (y + (1 << (k - 1))) >> k
    lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
    return lo if y < lo else hi if y > hi else y


def requant_array(X: np.ndarray, k: int, b: int) -> np.ndarray:
    """requant on every element of an object (Python int) array."""
    f = np.frompyfunc(lambda v: requant(v, k, b), 1, 1)
    return f(X).astype(object)


# --------------------------------------------------------------------------
# Settings


def _uint(v, key, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int) or not (lo <= v <= hi):
        raise SettingsError(f"settings: {key}: expected an integer in {lo}..={hi}, got {json.dumps(v)}")
    return v


def parse_settings(obj) -> dict:
    """Validates a settings object; returns it with defaults filled in (strict like the Rust
    parser: unknown keys and out-of-range values are errors naming the key)."""
    if not isinstance(obj, dict):
        raise SettingsError("settings: (top level): expected a JSON object")
    for k in obj:
        if k not in SETTINGS_KEYS:
            raise SettingsError(f"settings: {k}: unknown key")
    if obj.get("format") != SETTINGS_FORMAT:
        raise SettingsError(f"settings: format: expected {SETTINGS_FORMAT!r}, got {json.dumps(obj.get('format'))}")
    out = {"input_bits": 8, "weight_bits": 8, "coef_bits": 8, "weight_scale": "uniform",
           "field": "auto", "input_range": None, "requant": []}
    for k in ("input_bits", "weight_bits", "coef_bits"):
        if k in obj:
            out[k] = _uint(obj[k], k, 0, MAX_SETTINGS_BITS)
    if "weight_scale" in obj:
        if obj["weight_scale"] not in ("uniform", "per-layer"):
            raise SettingsError(f"settings: weight_scale: expected \"uniform\" or \"per-layer\", got {json.dumps(obj['weight_scale'])}")
        out["weight_scale"] = obj["weight_scale"]
    if "field" in obj:
        if obj["field"] not in ("auto", "m127", "bn254"):
            raise SettingsError(f"settings: field: expected auto, m127 or bn254, got {json.dumps(obj['field'])}")
        out["field"] = obj["field"]
    if "input_range" in obj:
        r = obj["input_range"]
        if (not isinstance(r, list) or len(r) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in r)
                or not all(math.isfinite(x) for x in r) or r[0] > r[1]):
            raise SettingsError(f"settings: input_range: expected [lo, hi] with lo <= hi, got {json.dumps(r)}")
        out["input_range"] = [float(r[0]), float(r[1])]
    if "requant" in obj:
        if not isinstance(obj["requant"], list):
            raise SettingsError("settings: requant: expected a list")
        for i, e in enumerate(obj["requant"]):
            if not isinstance(e, dict):
                raise SettingsError(f"settings: requant[{i}]: expected {{\"tensor\", \"shift\", \"bits\"}}")
            for k in e:
                if k not in ("tensor", "shift", "bits"):
                    raise SettingsError(f"settings: requant[{i}].{k}: unknown key (expected tensor, shift, bits)")
            for k in ("tensor", "shift", "bits"):
                if k not in e:
                    raise SettingsError(f"settings: requant[{i}].{k}: missing")
            if not isinstance(e["tensor"], str):
                raise SettingsError(f"settings: requant[{i}].tensor: expected a string")
            out["requant"].append({
                "tensor": e["tensor"],
                "shift": _uint(e["shift"], f"requant[{i}].shift", 0, MAX_SHIFT),
                "bits": _uint(e["bits"], f"requant[{i}].bits", MIN_REQUANT_BITS, MAX_REQUANT_BITS),
            })
    return out


def place_checkpoints(low: qref.Lowered, requants: list) -> dict:
    """layer index (lowered list without checkpoints) -> (shift, bits, index in the file)."""
    at = {}
    for i, r in enumerate(requants):
        try:
            layer = qref.resolve_name(low, r["tensor"])
        except ValueError as e:
            raise SettingsError(f"settings: requant[{i}].tensor: {e}") from None
        if layer in at:
            raise SettingsError(f"settings: requant[{i}].tensor: {r['tensor']!r} (layer {layer}) already has a checkpoint (requant[{at[layer][2]}])")
        at[layer] = (r["shift"], r["bits"], i)
    return at


def model_input_range(path: str):
    m = onnx.load(path, load_external_data=False)
    for p in m.metadata_props:
        if p.key == "verinfer.input_range":
            lo, hi = (float(t) for t in p.value.split(","))
            return [lo, hi]
    return [-1.0, 1.0]


# --------------------------------------------------------------------------
# Exact evaluation


def _maxabs(X) -> int:
    return max((abs(int(v)) for v in X.reshape(-1)), default=0)


def _linear_exact(L, X, Wq, Bq, slow: bool):
    """Y = Wq ⊛ X + Bq exactly (object array out). Chooses float64 / int64 / Python ints from
    the bound max_o (Σ|Wq[o]|·max|X| + |Bq[o]|), which bounds every partial sum."""
    absW = np.abs(Wq).reshape(Wq.shape[0], -1)
    row = max(sum(int(v) for v in r) for r in absW)
    bound = row * _maxabs(X) + _maxabs(Bq)
    if slow or bound >= 1 << 63:
        dt = object
    elif bound < 1 << 53:
        dt = np.float64
    else:
        dt = np.int64
    Xd, Wd, Bd = X.astype(dt), Wq.astype(dt), Bq.astype(dt)
    if L.kind == "conv":
        Y = qref._conv(Xd, Wd, Bd, L.stride, L.pads, dt)
    else:
        Y = np.matmul(Xd, Wd.T) + Bd.reshape(1, -1)
    if dt is np.float64:
        Y = Y.astype(np.int64)  # exact: integers below 2^53
    return Y.astype(object) if dt is not object else Y


def last_readers(low: qref.Lowered) -> dict:
    """Tensor t (0: the input, i + 1: the output of layer i, after its checkpoint) -> the last
    layer that reads it. Layer i reads tensor i, except a branch; an add and a branch read
    tensor ref + 1 (their earlier layer's output)."""
    last = {}
    for i, L in enumerate(low.layers):
        if L.kind != "branch":
            last[i] = i
        if L.kind in ("add", "branch"):
            last[L.ref + 1] = max(last.get(L.ref + 1, -1), i)
    return last


def _lifts(i, sA, sB, limit=True):
    """Scale and lifts of an add of A at scale sA (the previous output) and B at sB; a lift
    above MAX_LIFT is refused (as the compiler does) unless `limit` is false."""
    s = max(sA, sB)
    lifts = (s - sA, s - sB)
    if limit and max(lifts) > MAX_LIFT:
        raise qref.Unsupported(f"add at layer {i}: its operands' scales 2^{sA} and 2^{sB} differ by more than {MAX_LIFT} bits")
    return s, lifts


def eval_int(low: qref.Lowered, x: np.ndarray, params: dict, checkpoints: dict | None = None,
             trace: list | None = None, slow: bool = False):
    """Exact integer inference with checkpoints (docs/protocol.md §3, §5). Returns (Y, s_out).

    `checkpoints`: layer index -> (shift, bits, ...); the checkpoint runs right after that layer,
    so every reader of that layer's output (the next layer, an add, a branch) reads the
    requantized tensor. An add of A (the previous output, scale sA) and B (layer ref's output,
    scale sB) is A·2^(s−sA) ± B·2^(s−sB) at s = max(sA, sB); a branch continues from layer ref's
    output at its scale.
    `trace` (list) gets one (label, scale, max |value| bits) per layer and per checkpoint."""
    checkpoints = checkpoints or {}
    s_in, s_c = params["input_bits"], params["coef_bits"]
    X = qref.q_array(x, s_in)
    s = s_in
    T, S = {0: X}, {0: s}  # tensor t: the input (0) or the output of layer t - 1, and its scale
    last = last_readers(low)
    wcache = {}
    for i, L in enumerate(low.layers):
        X, s = T.get(i), S.get(i)
        if L.kind in ("conv", "dense"):
            s_w = weight_scale_bits(L.W, params)
            key = (i, s)
            if key not in wcache:
                wcache[key] = (qref.q_array(L.W, s_w), qref.q_array(L.b, s + s_w))
            Wq, Bq = wcache[key]
            X = _linear_exact(L, X, Wq, Bq, slow)
            s = s + s_w
        elif L.kind == "act":
            qa, B_, C_, s_new = qref.quantize_act(L.coefs, s, s_c)
            X = qa * X * X + B_ * X + C_
            s = s_new
        elif L.kind == "sumpool":
            X = qref._sumpool(X, L.window, L.stride)
        elif L.kind == "flatten":
            X = X.reshape(X.shape[0], -1)
        elif L.kind == "add":
            B, sB = T[L.ref + 1], S[L.ref + 1]
            if B.shape != X.shape:
                raise qref.Unsupported(f"add at layer {i}: operands of shapes {X.shape} and {B.shape}")
            s, (lA, lB) = _lifts(i, s, sB)
            A = X * (1 << lA) if lA else X
            B = B * (1 << lB) if lB else B
            X = A - B if L.subtract else A + B
        elif L.kind == "branch":
            X, s = T[L.ref + 1], S[L.ref + 1]
        if trace is not None:
            trace.append((f"{i}:{L.kind}", s, _maxabs(X).bit_length()))
        if i in checkpoints:
            k, bits = checkpoints[i][0], checkpoints[i][1]
            if k > s:
                raise qref.Unsupported(f"checkpoint after layer {i}: shift {k} exceeds the tensor's {s} fractional bits")
            X = requant_array(X, k, bits)
            s = s - k
            if trace is not None:
                trace.append((f"requant>>{k},{bits}", s, _maxabs(X).bit_length()))
        T[i + 1], S[i + 1] = X, s
        for t in [t for t in T if t <= i and last.get(t, -1) <= i]:
            del T[t]
    return X, s + qref.output_scale_adjust(low.output_factor)


def eval_int_batched(low, x, params, checkpoints=None, batch=40, slow=False):
    outs, trace_all, s_out = [], None, None
    for i in range(0, len(x), batch):
        tr = []
        Y, s_out = eval_int(low, x[i:i + batch], params, checkpoints, trace=tr, slow=slow)
        outs.append(Y)
        trace_all = tr if trace_all is None else [(a, s, max(m, t[2])) for (a, s, m), t in zip(trace_all, tr)]
    return np.concatenate(outs, axis=0), s_out, trace_all


def worst_case(low: qref.Lowered, input_range, params: dict, checkpoints: dict | None = None,
               lift_limit: bool = True):
    """Per-channel interval bound of every layer's integers, restarting from the clamp range
    after each checkpoint (a branch restarts from the intervals of the tensor it continues
    from). Segments are counted in layer order, a new one after each checkpoint. Returns
    (per-segment max bits, per-layer list (label, scale, bits))."""
    checkpoints = checkpoints or {}
    s_in, s_c = params["input_bits"], params["coef_bits"]
    lo, hi = qref.q(input_range[0], s_in), qref.q(input_range[1], s_in)
    iv = [(lo, hi)] * (low.input_shape[0] if low.input_shape else 1)
    s = s_in
    shapes = qref.tensor_shapes(low)
    IV, S = {0: iv}, {0: s}
    per, segments, seg = [], [], 0
    for i, L in enumerate(low.layers):
        iv, s = IV[i], S[i]
        if L.kind in ("conv", "dense"):
            s_w = weight_scale_bits(L.W, params)
            Wq = qref.q_array(L.W, s_w)
            Bq = qref.q_array(L.b, s + s_w)
            if L.kind == "conv":
                # zero padding: every input interval contains 0
                lows = [min(l, 0) for l, _ in iv]
                highs = [max(h, 0) for _, h in iv]
                Wm = Wq.reshape(Wq.shape[0], Wq.shape[1], -1)
            else:
                lows = [l for l, _ in iv]
                highs = [h for _, h in iv]
                Wm = Wq.reshape(Wq.shape[0], Wq.shape[1], 1)
            new = []
            for o in range(Wm.shape[0]):
                mn = mx = int(Bq[o])
                for c in range(Wm.shape[1]):
                    l, h = lows[c], highs[c]
                    for w in Wm[o, c]:
                        w = int(w)
                        mn += min(w * l, w * h)
                        mx += max(w * l, w * h)
                new.append((mn, mx))
            iv = new
            s += s_w
        elif L.kind == "act":
            qa, B_, C_, s_new = qref.quantize_act(L.coefs, s, s_c)
            iv = [qref.act_interval(qa, B_, C_, l, h) for l, h in iv]
            s = s_new
        elif L.kind == "sumpool":
            n = L.window[0] * L.window[1]
            iv = [(l * n, h * n) for l, h in iv]
        elif L.kind == "flatten":
            hw = 1
            for d in shapes[i][1:]:
                hw *= d
            iv = [t for t in iv for _ in range(hw)]
        elif L.kind == "add":
            ivB, sB = IV[L.ref + 1], S[L.ref + 1]
            s, (lA, lB) = _lifts(i, s, sB, lift_limit)
            if L.subtract:
                iv = [((la << lA) - (hb << lB), (ha << lA) - (lb << lB)) for (la, ha), (lb, hb) in zip(iv, ivB)]
            else:
                iv = [((la << lA) + (lb << lB), (ha << lA) + (hb << lB)) for (la, ha), (lb, hb) in zip(iv, ivB)]
        elif L.kind == "branch":
            iv, s = IV[L.ref + 1], S[L.ref + 1]
        m = max(max(abs(l), abs(h)) for l, h in iv).bit_length()
        per.append((f"{i}:{L.kind}", s, m))
        seg = max(seg, m)
        if i in checkpoints:
            k, bits = checkpoints[i][0], checkpoints[i][1]
            segments.append(seg)
            iv = [(requant(l, k, bits), requant(h, k, bits)) for l, h in iv]  # monotone
            s -= k
            seg = max(max(abs(l), abs(h)) for l, h in iv).bit_length()
            per.append((f"requant>>{k},{bits}", s, seg))
        IV[i + 1], S[i + 1] = iv, s
    segments.append(seg)
    return segments, per


# --------------------------------------------------------------------------
# CLI


def load_test(path, upsample):
    t = json.load(open(path))
    x = np.asarray(t["images"], dtype=np.float64)
    if upsample > 1:
        x = np.repeat(np.repeat(x, upsample, axis=2), upsample, axis=3)
    return x, np.asarray(t["labels"], dtype=np.int64)


def argmax_rows(Y):
    return np.array([max(range(Y.shape[1]), key=lambda j: Y[i, j]) for i in range(Y.shape[0])])


def run(model, settings_obj, test, upsample=1, first=8, with_float=False, overrides=None, slow=False):
    """Everything the CLI writes, as a dict."""
    st = parse_settings(settings_obj)
    for k, v in (overrides or {}).items():
        if v is not None:
            st[k] = v
    params = {k: st[k] for k in ("input_bits", "weight_bits", "coef_bits", "weight_scale")}
    low = qref.lower_onnx(model)
    cps = place_checkpoints(low, st["requant"])
    x, y = load_test(test, upsample)
    if list(x.shape[1:]) != list(low.input_shape):
        raise SystemExit(f"test images are {list(x.shape[1:])} after --upsample {upsample}, the model takes {low.input_shape}")
    rng = st["input_range"] or model_input_range(model)
    if x.min() < rng[0] or x.max() > rng[1]:
        raise SystemExit(f"input values outside the declared input range {rng}")
    t0 = time.time()
    Y, s_out, trace = eval_int_batched(low, x, params, cps, slow=slow)
    pred = argmax_rows(Y)
    segs, per = worst_case(low, rng, params, cps)
    cap_needed = max(segs)
    field = st["field"]
    if field == "auto":
        field = "m127" if cap_needed <= FIELD_CAPACITY["m127"] else "bn254"
    desc = []
    for i, L in enumerate(low.layers):
        desc.append(qref.describe(qref.Lowered([L], 1.0, low.input_shape, [])))
        if i in cps:
            desc.append(f"requant(>>{cps[i][0]}, {cps[i][1]} bits)")
    out = {
        "model": os.path.basename(model),
        "settings": settings_obj,
        "params": params,
        "input_range": rng,
        "upsample": upsample,
        "lowering": " -> ".join(desc),
        "checkpoints": [{"tensor": st["requant"][c[2]]["tensor"], "layer": i, "kind": low.layers[i].kind,
                         "shift": c[0], "bits": c[1]} for i, c in sorted(cps.items())],
        "test_size": int(len(y)),
        "quantized_accuracy": float((pred == y).mean()),
        "quantized_correct": int((pred == y).sum()),
        "output_scale": int(s_out),
        "layers": [{"layer": lab, "scale": sc, "max_bits_seen": mb, "worst_case_bits": wb}
                   for (lab, sc, mb), (_, _, wb) in zip(trace, per)],
        "max_bits_seen": max(t[2] for t in trace),
        "worst_case_bits_per_segment": segs,
        "field": field,
        "fits_field": cap_needed <= FIELD_CAPACITY[field],
        "first": first,
        "labels": [int(v) for v in y[:first]],
        "predictions": [int(v) for v in pred[:first]],
        "outputs": [[str(int(v)) for v in row] for row in Y[:first]],
    }
    if with_float:
        fl = qref.eval_float(low, x)
        out["float_accuracy"] = float((fl.argmax(1) == y).mean())
        out["float_vs_quantized_prediction_agreement"] = float((fl.argmax(1) == pred).mean())
        deq = Y[:first].astype(np.float64) / 2.0 ** s_out
        out["first_float_outputs"] = [[float(v) for v in row] for row in fl[:first]]
        out["first_max_abs_dequantized_error"] = float(np.abs(deq - fl[:first]).max())
    print(f"  exact evaluation of {len(y)} items: {time.time() - t0:.1f} s", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--settings", help="settings file (JSON); none: the defaults, no checkpoint")
    ap.add_argument("--test", required=True, help="test set JSON: {\"images\": [N][C][H][W], \"labels\": [N]}")
    ap.add_argument("--upsample", type=int, default=1, help="nearest-neighbour factor applied to the test images")
    ap.add_argument("--first", type=int, default=8, help="how many exact outputs to write")
    ap.add_argument("--float", action="store_true", help="also the float64 accuracy of the lowered model")
    ap.add_argument("--input-bits", type=int)
    ap.add_argument("--weight-bits", type=int)
    ap.add_argument("--coef-bits", type=int)
    ap.add_argument("--slow", action="store_true", help="Python ints everywhere (no float64 / int64 fast path)")
    ap.add_argument("--out", help="write the JSON here (else stdout)")
    args = ap.parse_args()
    st = json.load(open(args.settings)) if args.settings else {"format": SETTINGS_FORMAT}
    try:
        res = run(args.model, st, args.test, args.upsample, args.first, args.float,
                  {"input_bits": args.input_bits, "weight_bits": args.weight_bits, "coef_bits": args.coef_bits},
                  slow=args.slow)
    except (SettingsError, qref.Unsupported) as e:
        print(str(e), file=sys.stderr)
        sys.exit(2)
    text = json.dumps(res, indent=1) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"{res['model']}: quantized accuracy {res['quantized_accuracy']:.4f} "
              f"({res['quantized_correct']}/{res['test_size']}), output scale {res['output_scale']}, "
              f"worst case {res['worst_case_bits_per_segment']} bits"
              + (f", float {res['float_accuracy']:.4f}" if "float_accuracy" in res else ""))
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
