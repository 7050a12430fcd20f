#!/usr/bin/env python3
"""Provisional settings files, quantized accuracy and fixtures of the deep digits models.

Usage (after tools/deep/train.py, from the repository root):

    python3 tools/deep/calibrate.py            # lenet5, vgg7, resnet: about 5 minutes

For lenet5 and vgg7 and each bit setting (8/8/8 and 6/6/6 input / weight / coefficient bits,
uniform and per-layer weight scale) it

* puts a checkpoint requant(shift, 16) after every x²+x activation, named by the ONNX value
  of the activation's output (its Add). The shift keeps as many fractional bits f as fit in 16
  signed bits with one bit of headroom: with M = max |float value| of that activation over the
  training set (models/deep/accuracy.json) and 2^(e-1) <= M < 2^e, f = 14 - e, so
  M·2^f < 2^14; shift = (the activation's integer scale) - f, where the scale follows
  docs/protocol.md §3 from the input bits and the earlier checkpoints;
* writes models/deep/<model>.settings.json (8/8/8), <model>.6bit.settings.json (6/6/6), and the
  same two with "weight_scale": "per-layer" (<model>.perlayer.settings.json,
  <model>.6bit.perlayer.settings.json);
* runs the exact reference (qref_deep.py) on the 360 held-out digits, upsampled as in
  training, and writes models/deep/fixtures/<model>.<bits>.json (accuracy, exact integer
  outputs of the first 8 test images as decimal strings, output scale, per-layer scales and
  bits) and the `quantized` figures of models/deep/accuracy.json;
* writes models/deep/fixtures/input_first8_x<k>.json: the first 8 test images upsampled ×k,
  shaped [8][1][H][W], ready for `verinfer infer --input`.

resnet's settings files are not made by this rule but by `verinfer calibrate` (FIXED_SETTINGS,
command in CALIBRATE_COMMAND): the script reads them as they are and writes the same fixtures
and accuracy figures from the exact reference alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import qref_deep as QD  # noqa: E402
from qref_deep import qref  # noqa: E402

KEEP_BITS = 16  # signed bits a checkpoint keeps
HEADROOM = 1  # bits left free above the largest training value
# tag -> (input, weight, coefficient bits, weight scale); the uniform ones are the brief's two
# settings, the per-layer ones show what the uniform weight scale costs
BIT_SETTINGS = {
    "8bit": (8, 8, 8, "uniform"),
    "6bit": (6, 6, 6, "uniform"),
    "8bit-perlayer": (8, 8, 8, "per-layer"),
    "6bit-perlayer": (6, 6, 6, "per-layer"),
}
SETTINGS_NAME = {"8bit": "{m}.settings.json", "6bit": "{m}.6bit.settings.json",
                 "8bit-perlayer": "{m}.perlayer.settings.json", "6bit-perlayer": "{m}.6bit.perlayer.settings.json"}
FIRST = 8
# models whose settings files come from `verinfer calibrate` (read, never written, here)
FIXED_SETTINGS = {
    "resnet": {"8bit-perlayer": "resnet.settings.json", "6bit-perlayer": "resnet.6bit.perlayer.settings.json"},
}
CALIBRATE_COMMAND = ("verinfer calibrate --model models/deep/resnet.onnx --data <the 360 test images upsampled x2, "
                     "{{\"images\", \"labels\"}}> --weight-scale per-layer --input-bits {b} --weight-bits {b} "
                     "--coef-bits {b} --settings models/deep/{f}")


def frac_bits(m: float) -> int:
    """Most fractional bits f with m·2^f < 2^(KEEP_BITS - 1 - HEADROOM)."""
    if m <= 0:
        return 0
    e = math.frexp(m)[1]  # 2^(e-1) <= m < 2^e
    return KEEP_BITS - 1 - HEADROOM - e


def settings_for(low, acts, bits):
    """The settings object: a checkpoint after each named activation (see module doc)."""
    s_in, s_w, s_c, ws = bits
    params = {"input_bits": s_in, "weight_bits": s_w, "coef_bits": s_c, "weight_scale": ws}
    rng = {a["onnx"]: max(abs(a["min"]), abs(a["max"])) for a in acts}
    at = {}
    for name in rng:
        at[qref.resolve_name(low, name)] = name
    requant, s = [], s_in
    for i, L in enumerate(low.layers):
        if L.kind in ("conv", "dense"):
            s += QD.weight_scale_bits(L.W, params)
        elif L.kind == "act":
            a, b, c = L.coefs
            s = 2 * s if all(qref.is_integer(v) for v in (a, b, c)) else 2 * s + s_c
        if i in at:
            if L.kind != "act":
                raise AssertionError(f"{at[i]} is layer {i} ({L.kind}), not an activation")
            f = frac_bits(rng[at[i]])
            shift = max(0, s - f)
            requant.append({"tensor": at[i], "shift": shift, "bits": KEEP_BITS})
            s -= shift
    missing = [i for i, L in enumerate(low.layers) if L.kind == "act" and i not in at]
    if missing:
        raise AssertionError(f"activation layers without a recorded range: {missing}")
    return {"format": QD.SETTINGS_FORMAT, "input_bits": s_in, "weight_bits": s_w, "coef_bits": s_c,
            "weight_scale": ws, "field": "auto", "input_range": [0, 1], "requant": requant}


def onnx_reference_error(model, low, test, up):
    """Largest |float64 lowered model − onnx.reference (float32 ONNX semantics)| on the test set:
    checks the lowering (folds, branches, adds) without torch."""
    from onnx.reference import ReferenceEvaluator

    x, _ = QD.load_test(test, up)
    ref = ReferenceEvaluator(model)
    want = ref.run(None, {ref.input_names[0]: x.astype(np.float32)})[0].astype(np.float64)
    err = float(np.abs(qref.eval_float(low, x) - want).max())
    assert err < 1e-3 * max(1.0, float(np.abs(want).max())), err
    return err


def dump(obj, path, compact_lists=False):
    with open(path, "w") as f:
        if compact_lists:
            json.dump(obj, f, separators=(",", ":"))
        else:
            json.dump(obj, f, indent=1)
        f.write("\n")


def write_settings(obj, path):
    """One checkpoint per line (readable, still plain JSON)."""
    head = {k: v for k, v in obj.items() if k != "requant"}
    lines = ",\n".join("  " + json.dumps(r) for r in obj["requant"])
    text = json.dumps(head)[:-1] + ',\n "requant": [\n' + lines + "\n ]}\n"
    json.loads(text)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.path.join(ROOT, "models", "deep"))
    ap.add_argument("--test", default=os.path.join(ROOT, "models", "digits", "test_set.json"))
    ap.add_argument("--only", default="lenet5,vgg7,resnet")
    args = ap.parse_args()
    acc_path = os.path.join(args.dir, "accuracy.json")
    report = json.load(open(acc_path))
    fx_dir = os.path.join(args.dir, "fixtures")
    os.makedirs(fx_dir, exist_ok=True)
    t_all = time.time()
    for name in args.only.split(","):
        entry = report["models"][name]
        model = os.path.join(args.dir, entry["onnx"])
        low = qref.lower_onnx(model)
        up = entry["upsample"]
        if entry.get("lowering") is None:
            # trained before the reference lowered it (train.py records this for new runs)
            entry.pop("refused_by_qref", None)
            entry["lowering"] = qref.describe(low)
            entry["lowering_max_abs_err_vs_onnx_reference"] = onnx_reference_error(model, low, args.test, up)
        quant = {}
        fixed = FIXED_SETTINGS.get(name, {})
        for tag, bits in BIT_SETTINGS.items():
            if name in FIXED_SETTINGS and tag not in fixed:
                continue
            sname = fixed.get(tag) or SETTINGS_NAME[tag].format(m=name)
            if tag in fixed:
                st = json.load(open(os.path.join(args.dir, sname)))
                if [st["input_bits"], st["weight_bits"], st["coef_bits"], st["weight_scale"]] != list(bits):
                    raise AssertionError(f"{sname} is not {tag}")
            else:
                st = settings_for(low, entry["activations"], bits)
                write_settings(st, os.path.join(args.dir, sname))
            t0 = time.time()
            res = QD.run(model, st, args.test, upsample=up, first=FIRST, with_float=True)
            res = {"settings_file": sname, "test_set": "models/digits/test_set.json",
                   "input_note": f"test images upsampled x{up} by nearest neighbour (np.repeat on H and W); "
                                 f"the first {FIRST} are fixtures/input_first8_x{up}.json", **res}
            dump(res, os.path.join(fx_dir, f"{name}.{tag}.json"))
            # without checkpoints resnet's adds would lift by more than the compiler allows: the
            # bound is still the bits the values need
            segs_none, _ = QD.worst_case(low, res["input_range"], res["params"], {}, lift_limit=False)
            quant[tag] = {
                "settings": sname,
                "bits": "/".join(str(b) for b in bits[:3]) + " " + bits[3],
                "quantized": res["quantized_accuracy"],
                "quantized_correct": res["quantized_correct"],
                "float_lowered": res["float_accuracy"],
                "float_vs_quantized_prediction_agreement": res["float_vs_quantized_prediction_agreement"],
                "output_scale": res["output_scale"],
                "shifts": [r["shift"] for r in st["requant"]],
                "max_bits_seen": res["max_bits_seen"],
                "worst_case_bits_per_segment": res["worst_case_bits_per_segment"],
                "worst_case_bits_without_checkpoints": segs_none[0],
                "fixture": f"fixtures/{name}.{tag}.json",
            }
            if tag in fixed:
                quant[tag]["settings_from"] = CALIBRATE_COMMAND.format(b=bits[0], f=sname)
            print(f"{name:7s} {quant[tag]['bits']}: quantized {res['quantized_accuracy']:.4f} "
                  f"(float {res['float_accuracy']:.4f}), shifts {quant[tag]['shifts']}, "
                  f"worst case {res['worst_case_bits_per_segment']} (without checkpoints {segs_none[0]}) "
                  f"{time.time() - t0:.1f}s", flush=True)
        entry["quantized"] = quant
        x, _ = QD.load_test(args.test, up)
        dump([[[[float(v) for v in row] for row in img[0]]] for img in x[:FIRST]],
             os.path.join(fx_dir, f"input_first8_x{up}.json"), compact_lists=True)
    report["calibration"] = {
        "rule": f"a checkpoint requant(shift, {KEEP_BITS}) after every activation; f = {KEEP_BITS - 1 - HEADROOM} - e "
                "fractional bits with 2^(e-1) <= max|float activation over the training set| < 2^e "
                f"({HEADROOM} bit of headroom in {KEEP_BITS} signed bits); shift = activation scale - f",
        "bit_settings": {k: "/".join(map(str, v[:3])) + " " + v[3] for k, v in BIT_SETTINGS.items()},
        "time_s": round(time.time() - t_all, 1),
    }
    dump(report, acc_path)


if __name__ == "__main__":
    main()
