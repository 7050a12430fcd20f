#!/usr/bin/env python3
"""Train the deep x²+x digits networks (lenet5, vgg7, resnet) and export them to ONNX.

Usage (from the repository root):

    python3 tools/deep/train.py                 # all three, a few minutes on one core
    python3 tools/deep/train.py --only lenet5   # a subset (accuracy.json entries are merged)

Data: the split of tools/digits/train.py (sklearn digits, values/16, stratified 20 % hold-out
with random_state 0; the held-out images are models/digits/test_set.json). The 8×8 images are
upsampled by nearest neighbour (each pixel repeated 4×4 for 32×32, 2×2 for 16×16), so the
inputs stay exact multiples of 1/16 in [0, 1].

Writes models/deep/<model>.onnx (TorchScript exporter, opset 17, dynamic batch, metadata
verinfer.input_range = "0,1", verinfer.name = <model>) and models/deep/accuracy.json (float
test accuracy, parameters, training settings, and for every x²+x activation the ONNX value
name of its output with its float min/max over the training set). The quantized figures are
added by tools/deep/calibrate.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(ROOT, "tools", "digits"))
import models as M  # noqa: E402
import qref  # noqa: E402  (tools/digits/qref.py)


def _digits_train():
    """tools/digits/train.py as a module (its split rule and metadata helper)."""
    spec = importlib.util.spec_from_file_location("digits_train", os.path.join(ROOT, "tools", "digits", "train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


DT = _digits_train()
SPLIT_SEED = DT.SPLIT_SEED
TORCH_SEED = 2024
OPSET = 17

# per model: epochs, batch, peak lr; Adam, cosine decay to 0 after 1 warm-up epoch,
# gradient-norm clipping, small weight decay
TRAINING = {
    "lenet5": {"epochs": 30, "batch": 32, "lr": 2e-3, "weight_decay": 1e-4, "clip": 1.0},
    "vgg7": {"epochs": 20, "batch": 32, "lr": 1e-3, "weight_decay": 1e-4, "clip": 1.0},
    "resnet": {"epochs": 20, "batch": 32, "lr": 1e-3, "weight_decay": 1e-4, "clip": 1.0},
}


def upsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of [N, C, H, W] by an integer factor (values unchanged)."""
    return np.repeat(np.repeat(x, factor, axis=2), factor, axis=3)


def set_determinism(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def train_one(name, xtr, ytr, log):
    cfg = TRAINING[name]
    set_determinism(TORCH_SEED)
    model = M.MODELS[name]()
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    X = torch.tensor(xtr, dtype=torch.float32)
    Y = torch.tensor(ytr)
    g = torch.Generator().manual_seed(TORCH_SEED)
    steps_per_epoch = math.ceil(len(X) / cfg["batch"])
    total = cfg["epochs"] * steps_per_epoch
    warm = steps_per_epoch

    def lr_at(step):
        if step < warm:
            return cfg["lr"] * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg["lr"] * 0.5 * (1 + math.cos(math.pi * t))

    step = 0
    model.train()
    for ep in range(cfg["epochs"]):
        perm = torch.randperm(len(X), generator=g)
        tot = 0.0
        for i in range(0, len(X), cfg["batch"]):
            idx = perm[i:i + cfg["batch"]]
            for pg in opt.param_groups:
                pg["lr"] = lr_at(step)
            opt.zero_grad()
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            if not torch.isfinite(loss):
                raise RuntimeError(f"{name}: loss diverged at epoch {ep}")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
            opt.step()
            tot += float(loss.detach()) * len(idx)
            step += 1
        log(f"  {name} epoch {ep + 1:2d}/{cfg['epochs']} loss {tot / len(X):.4f}")
    model.eval()
    return model


def act_ranges(model, X):
    """Float min/max of every x²+x output over X (eval mode), keyed by module path."""
    out = {}
    hooks = []
    for path, mod in M.act_modules(model):
        def hook(_m, _i, o, path=path):
            lo, hi = float(o.min()), float(o.max())
            if path in out:
                lo, hi = min(lo, out[path][0]), max(hi, out[path][1])
            out[path] = (lo, hi)
        hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        for i in range(0, len(X), 256):
            model(X[i:i + 256])
    for h in hooks:
        h.remove()
    return out


def onnx_act_name(path: str) -> str:
    """The TorchScript exporter's name for the Add output of module `path` (x*x + x)."""
    return "/" + path.replace(".", "/") + "/Add_output_0"


def export(model, name, path, hw):
    return DT.export_onnx(model, path, hw, name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "deep"))
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(M.MODELS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    def log(s):
        print(s, flush=True)

    xtr, xte, ytr, yte = DT.load_data()
    names = args.only.split(",") if args.only else list(M.MODELS)
    acc_path = os.path.join(args.out, "accuracy.json")
    report = {"models": {}}
    if os.path.exists(acc_path):
        report = json.load(open(acc_path))
    total_t0 = time.time()
    for name in names:
        cls = M.MODELS[name]
        up = cls.input_hw // 8
        xtr_u, xte_u = upsample(xtr, up), upsample(xte, up)
        t0 = time.time()
        model = train_one(name, xtr_u, ytr, log)
        train_s = time.time() - t0
        xte_t = torch.tensor(xte_u, dtype=torch.float32)
        with torch.no_grad():
            logits = model(xte_t).double().numpy()
        acc_f = float((logits.argmax(1) == yte).mean())
        with torch.no_grad():
            acc_train = float((model(torch.tensor(xtr_u, dtype=torch.float32)).argmax(1).numpy() == ytr).mean())
        path = os.path.join(args.out, f"{name}.onnx")
        m = export(model, name, path, cls.input_hw)
        values = {o for n in m.graph.node for o in n.output}
        ranges = act_ranges(model, torch.tensor(xtr_u, dtype=torch.float32))
        acts = []
        for mod_path, (lo, hi) in ranges.items():
            vname = onnx_act_name(mod_path)
            if vname not in values:
                raise AssertionError(f"{name}: no ONNX value {vname}")
            acts.append({"module": mod_path, "onnx": vname, "min": lo, "max": hi})
        entry = {
            "onnx": os.path.basename(path),
            "input_shape": [1, cls.input_hw, cls.input_hw],
            "upsample": up,
            "params": M.n_params(model),
            "float": acc_f,
            "float_correct": int((logits.argmax(1) == yte).sum()),
            "float_train": acc_train,
            "training": dict(TRAINING[name]),
            "train_time_s": round(train_s, 1),
            "onnx_ops": sorted({n.op_type for n in m.graph.node}),
            "onnx_bytes": os.path.getsize(path),
            "activations": acts,
        }
        try:
            low = qref.lower_onnx(path)
            fl = qref.eval_float(low, xte_u)
            err = float(np.abs(fl - logits).max())
            entry["lowering"] = qref.describe(low)
            entry["lowering_max_abs_err_vs_torch"] = err
            assert err < 1e-3 * max(1.0, float(np.abs(logits).max())), err
        except qref.Unsupported as e:
            entry["lowering"] = None
            entry["refused_by_qref"] = str(e)
        report["models"][name] = entry
        log(f"{name:8s} params {entry['params']:7d}  float test {acc_f:.4f}  train {acc_train:.4f}  "
            f"{train_s:.1f}s  lowering: {entry.get('lowering') or entry.get('refused_by_qref')}")
    report.update({
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "numpy_version": np.__version__,
        "exporter": f"torch.onnx.export(dynamo=False, opset_version={OPSET})",
        "seeds": {"split": SPLIT_SEED, "torch": TORCH_SEED},
        "optimizer": "Adam, linear warm-up 1 epoch then cosine decay to 0, clip_grad_norm, "
                     "1 torch thread, torch.use_deterministic_algorithms(True)",
        "data": "sklearn.datasets.load_digits / 16, split of tools/digits/train.py "
                f"(train_test_split(test_size=0.2, random_state={SPLIT_SEED}, stratify=y)); "
                "nearest-neighbour upsampling by `upsample` (np.repeat on both axes); "
                "test set = models/digits/test_set.json",
        "test_size": int(len(yte)),
        "train_size": int(len(ytr)),
    })
    report["last_run_time_s"] = round(time.time() - total_t0, 1)
    with open(acc_path, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
