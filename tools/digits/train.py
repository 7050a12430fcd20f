#!/usr/bin/env python3
"""Train the scikit-learn digits CNNs shipped with verinfer and export them to ONNX.

Usage (from the repository root):

    pip install torch scikit-learn onnx        # torch: the CPU is enough
    python3 tools/digits/train.py              # about 1 minute on 2 cores

Optional: ``--only square,relu`` trains a subset; ``--out DIR`` writes
elsewhere (default ``models/digits``).

What it does:

* loads ``sklearn.datasets.load_digits`` (1,797 8x8 images, values 0..16,
  divided by 16 so inputs are in [0, 1]) and splits it once, stratified, with
  a fixed seed: 20 % is held out as the test set and never used in training;
* for every activation in ``ACTIVATIONS`` trains
  conv(1->8, 3x3, pad 1) -> BatchNorm2d -> act -> sum-pool 2x2 ->
  conv(8->16, 3x3, pad 1) -> BatchNorm2d -> act -> sum-pool 2x2 ->
  flatten -> Linear(64->10)
  with Adam (lr 1e-3), deterministic (fixed seeds, one thread,
  ``torch.use_deterministic_algorithms``). Sum-pooling is written
  ``F.avg_pool2d(x, 2) * 4`` (exports as AveragePool + Mul by 4, see docs/protocol.md
  §3). The ``relu`` entry is the ReLU + MaxPool original, kept for the
  accuracy comparison and the importer's refusal message;
* exports each model to ``models/digits/digits_<act>.onnx`` (TorchScript
  exporter, opset 17, weights embedded in the file, dynamic batch dimension)
  and adds the metadata ``verinfer.input_range = "0,1"`` and
  ``verinfer.name = "digits-<act>"``;
* writes ``models/digits/test_set.json`` (the held-out images and labels) and
  ``models/digits/accuracy.json``: float test accuracy (torch) and the test
  accuracy of the exact integer reference in ``qref.py`` (numpy / Python ints,
  independent of torch and of the Rust code) at the default parameters
  (8 input / 8 weight / 8 coefficient bits, uniform weight scale), plus the
  largest integer magnitudes seen and the interval-analysis worst case.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qref  # noqa: E402

SPLIT_SEED = 0
TORCH_SEED = 1234
EPOCHS = 40
BATCH = 32
LR = 1e-3
OPSET = 17

PI = math.pi

# name -> (elementwise activation, pooling kind, description)
# Polynomials are written with plain Mul/Add so they export as such.
ACTIVATIONS = {
    "square": (lambda x: x * x, "sum", "x^2"),
    "square_plus_x": (lambda x: x * x + x, "sum", "x^2 + x"),
    "relu_fourier": (lambda x: (4 / (3 * PI)) * (x * x) + 0.5 * x + 1 / (3 * PI), "sum", "4/(3pi) x^2 + x/2 + 1/(3pi)"),
    "relu_lsq": (lambda x: (15 / 32) * (x * x) + 0.5 * x + 3 / 32, "sum", "15/32 x^2 + x/2 + 3/32"),
    "relu_minimax": (lambda x: 0.5 * (x * x) + 0.5 * x + 1 / 16, "sum", "x^2/2 + x/2 + 1/16"),
    "faster_cryptonets": (lambda x: 0.125 * (x * x) + 0.5 * x + 0.25, "sum", "2^-3 x^2 + 2^-1 x + 2^-2"),
    "relu": (F.relu, "max", "ReLU + MaxPool2d(2) (cannot be compiled; for comparison)"),
}


class DigitsNet(nn.Module):
    def __init__(self, act, pool):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(64, 10)
        self.act = act
        self.pool_kind = pool

    def pool(self, x):
        if self.pool_kind == "sum":
            return F.avg_pool2d(x, 2) * 4  # sum-pooling (docs/protocol.md §3 pitfall)
        return F.max_pool2d(x, 2)

    def forward(self, x):
        x = self.pool(self.act(self.bn1(self.conv1(x))))
        x = self.pool(self.act(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


def set_determinism(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def load_data():
    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=SPLIT_SEED, stratify=y)
    return xtr, xte, ytr, yte


def train_one(name, xtr, ytr):
    act, pool, _ = ACTIVATIONS[name]
    set_determinism(TORCH_SEED)
    model = DigitsNet(act, pool)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    X = torch.tensor(xtr, dtype=torch.float32)
    Y = torch.tensor(ytr)
    g = torch.Generator().manual_seed(TORCH_SEED)
    model.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def export_onnx(model, path, hw, verinfer_name):
    """Exports a 1×hw×hw model (TorchScript exporter, dynamic batch, input range [0, 1] and
    name in the metadata, weights embedded) and returns the saved ONNX model."""
    dummy = torch.zeros(1, 1, hw, hw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), path, dynamo=False, opset_version=OPSET,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    m = onnx.load(path)
    add_metadata(m, {"verinfer.input_range": "0,1", "verinfer.name": verinfer_name})
    onnx.checker.check_model(m)
    onnx.save_model(m, path)  # embedded weights (small models, single file)
    return m


def export(model, name, path):
    m = export_onnx(model, path, 8, f"digits-{name}")
    return [n.op_type for n in m.graph.node]


def add_metadata(m, kv):
    for k, v in kv.items():
        for p in m.metadata_props:
            if p.key == k:
                p.value = v
                break
        else:
            p = m.metadata_props.add()
            p.key, p.value = k, v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "models", "digits"))
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(ACTIVATIONS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    xtr, xte, ytr, yte = load_data()
    names = args.only.split(",") if args.only else list(ACTIVATIONS)

    # held-out test set: /16 values are exact in binary, printed short
    with open(os.path.join(args.out, "test_set.json"), "w") as f:
        imgs = [[[[float(v) for v in row] for row in img[0]]] for img in xte]
        json.dump({"source": "sklearn.datasets.load_digits, values/16, stratified 20% hold-out, "
                             f"train_test_split(random_state={SPLIT_SEED})",
                   "images": imgs, "labels": [int(v) for v in yte]}, f, separators=(",", ":"))
        f.write("\n")

    acc_path = os.path.join(args.out, "accuracy.json")
    report = {"models": {}}
    if args.only and os.path.exists(acc_path):
        report = json.load(open(acc_path))
    xte_t = torch.tensor(xte, dtype=torch.float32)
    total_t0 = time.time()
    for name in names:
        t0 = time.time()
        model = train_one(name, xtr, ytr)
        train_s = time.time() - t0
        with torch.no_grad():
            logits = model(xte_t).double().numpy()
        acc_f = float((logits.argmax(1) == yte).mean())
        path = os.path.join(args.out, f"digits_{name}.onnx")
        ops = export(model, name, path)
        entry = {"activation": ACTIVATIONS[name][2], "float": acc_f, "quantized": None,
                 "float_correct": int((logits.argmax(1) == yte).sum()),
                 "params": dict(qref.DEFAULT_PARAMS), "onnx": os.path.basename(path),
                 "onnx_ops": sorted(set(ops)), "train_time_s": round(train_s, 2)}
        if ACTIVATIONS[name][1] == "sum":
            low = qref.lower_onnx(path)
            # the lowering must reproduce the torch float model
            fl = qref.eval_float(low, xte)
            assert np.abs(fl - logits).max() < 1e-3, np.abs(fl - logits).max()
            trace = []
            Y, s_out = qref.eval_int(low, xte, trace=trace)
            pred = np.array([max(range(Y.shape[1]), key=lambda j: Y[i, j]) for i in range(Y.shape[0])])
            acc_q = float((pred == yte).mean())
            wc, per = qref.worst_case_bits(low, [0.0, 1.0])
            deq = Y.astype(np.float64) / 2.0 ** s_out
            entry.update({
                "quantized": acc_q,
                "quantized_correct": int((pred == yte).sum()),
                "output_scale_bits": s_out,
                "max_abs_output_bits": max(abs(int(v)) for v in Y.reshape(-1)).bit_length(),
                "max_abs_value_bits_seen": max(t[2] for t in trace),
                "worst_case_bits": wc,
                "layers": [{"kind": k, "scale_bits": sc, "worst_case_bits": b, "max_bits_seen": t[2]}
                           for (k, sc, b), t in zip(per, trace)],
                "max_abs_dequantized_error": float(np.abs(deq - logits).max()),
                "float_vs_quantized_prediction_agreement": float((pred == logits.argmax(1)).mean()),
                "lowering": qref.describe(low),
            })
            if entry["layers"][1]["scale_bits"] != 2 * entry["layers"][0]["scale_bits"]:
                # non-integer coefficients: 8 coefficient bits add 8 + 2*8 bits of scale;
                # record what fewer coefficient bits would give
                alt = dict(qref.DEFAULT_PARAMS, coef_bits=4)
                Ya, sa = qref.eval_int(low, xte, params=alt)
                pa = np.array([max(range(Ya.shape[1]), key=lambda j: Ya[i, j]) for i in range(Ya.shape[0])])
                entry["alternative"] = {
                    "params": alt, "quantized": float((pa == yte).mean()),
                    "output_scale_bits": sa,
                    "max_abs_output_bits": max(abs(int(v)) for v in Ya.reshape(-1)).bit_length(),
                    "worst_case_bits": qref.worst_case_bits(low, [0.0, 1.0], params=alt)[0],
                }
        else:
            try:
                qref.lower_onnx(path)
                raise AssertionError("relu model should be refused")
            except qref.Unsupported as e:
                entry["refused"] = str(e)
        report["models"][name] = entry
        print(f"{name:18s} float {acc_f:.4f}  quantized {entry['quantized']}  "
              f"worst-case bits {entry.get('worst_case_bits')}  train {train_s:.1f}s", flush=True)
    report.update({
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "exporter": f"torch.onnx.export(dynamo=False, opset_version={OPSET})",
        "seeds": {"split": SPLIT_SEED, "torch": TORCH_SEED},
        "training": {"optimizer": "Adam", "lr": LR, "epochs": EPOCHS, "batch": BATCH, "threads": 1},
        "test_size": int(len(yte)),
        "train_size": int(len(ytr)),
        "total_time_s": round(time.time() - total_t0, 1),
    })
    with open(acc_path, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
