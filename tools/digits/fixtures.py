#!/usr/bin/env python3
"""Regenerate the ONNX importer fixtures in onnx/tests/fixtures/.

Usage (from the repository root):

    pip install torch onnx onnxscript        # onnxscript: the opset-18 (dynamo) exporter
    python3 tools/digits/fixtures.py         # a few seconds

Every fixture is a small network with random (seeded) weights, exported by
``torch.onnx.export``, given the metadata ``verinfer.input_range`` and
checked with ``onnx.checker.check_model``. Beside each compilable model,
``NAME.ref.json`` holds a batch of 3 inputs (multiples of 1/256, so quantizing
them is unambiguous) and the exact integer outputs computed by ``qref.py``
(an implementation of docs/protocol.md §3 independent of torch and of the Rust code)
at the default parameters (8 input / 8 weight / 8 coefficient bits, uniform
weight scale). Before writing, the script checks that qref's float64
evaluation of its own lowering reproduces torch's float output, and that the
dequantized integer output is close to it.

Fixtures:
  conv_square         conv, x**2 (Pow), sum-pool; TorchScript exporter, opset 13
  conv_square_plus_x  conv + BatchNorm2d, x*x + x, sum-pool, an unpadded conv,
                      non-power-of-two sizes; dynamo exporter, opset 18
  dense               Linear -> x^2+x -> Linear -> x^2 -> Linear on a flat input
  avgpool_bn          plain AveragePool (1/4 folded into the next Linear) and a
                      BatchNormalization node (BatchNorm1d after a Linear)
  external_data       small conv net, initializers in external_data.onnx.data
  softmax             trailing Softmax (the reference is the pre-softmax scores)
  relu_maxpool        ReLU + MaxPool (no reference: the importer must refuse it)
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "onnx", "tests", "fixtures")
BATCH = 3
SEED = 20240


def sumpool(x):
    return F.avg_pool2d(x, 2) * 4


class ConvSquare(nn.Module):
    """conv(1->4, 3x3, pad 1) -> x**2 -> sumpool -> conv(4->4, 3x3, pad 1) -> x**2 -> sumpool -> fc(16->5)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = sumpool(self.c1(x) ** 2)
        x = sumpool(torch.square(self.c2(x)))
        return self.fc(torch.flatten(x, 1))


class ConvSquarePlusX(nn.Module):
    """2x6x6 input: conv(2->4, 3x3, pad 1) -> BN -> x*x+x -> sumpool (3x3) -> conv(4->6, 2x2, no pad) -> x*x+x -> fc(24->5)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 6, 2)
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        x = self.bn(self.c1(x))
        x = sumpool(x * x + x)
        x = self.c2(x)
        x = x * x + x
        return self.fc(torch.flatten(x, 1))


class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(10, 12)
        self.l2 = nn.Linear(12, 8)
        self.l3 = nn.Linear(8, 3)

    def forward(self, x):
        x = self.l1(x)
        x = x * x + x
        x = self.l2(x)
        x = x * x
        return self.l3(x)


class AvgPoolBN(nn.Module):
    """conv(1->4) -> x*x -> AveragePool 2x2 (plain average) -> fc(36->16) -> BatchNorm1d -> x*x+x -> fc(16->4).

    Input 1x6x6. The AveragePool's 1/4 is folded into fc1's float weights."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = nn.Linear(36, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        x = self.c1(x)
        x = F.avg_pool2d(x * x, 2)
        x = self.bn(self.fc1(torch.flatten(x, 1)))
        x = x * x + x
        return self.fc2(x)


class SmallConv(nn.Module):
    def __init__(self, softmax=False):
        super().__init__()
        self.c1 = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(12, 4)
        self.softmax = softmax

    def forward(self, x):
        x = sumpool(self.c1(x) ** 2)
        x = self.fc(torch.flatten(x, 1))
        return torch.softmax(x, dim=1) if self.softmax else x


class ReluMaxPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        return self.fc(torch.flatten(x, 1))


def randomize_bn(bn, gen):
    n = bn.num_features
    with torch.no_grad():
        bn.weight.copy_(0.5 + torch.rand(n, generator=gen))
        bn.bias.copy_(torch.rand(n, generator=gen) - 0.5)
        bn.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
        bn.running_var.copy_(0.5 + torch.rand(n, generator=gen))


def add_metadata(m, kv):
    for k, v in kv.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v


def dyadic_inputs(gen, shape, lo, hi):
    n = torch.randint(int(lo * 256), int(hi * 256) + 1, (BATCH, *shape), generator=gen)
    return n.double() / 256.0


def export(model, x, path, exporter, opset):
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        else:
            torch.onnx.export(model, (x,), path, dynamo=True, opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                              external_data=False)


def build(name, model, shape, rng, exporter="torchscript", opset=17, external=False, ref=True, extra_notes=""):
    gen = torch.Generator().manual_seed(SEED + sum(map(ord, name)))
    lo, hi = rng
    x = dyadic_inputs(gen, shape, lo, hi)
    model.eval()
    path = os.path.join(OUT, f"{name}.onnx")
    for p in (path, os.path.join(OUT, "external_data.onnx.data")):
        if p.endswith(".data") and not external:
            continue
        if os.path.exists(p):
            os.remove(p)
    export(model, x[:1].float(), path, exporter, opset)
    m = onnx.load(path)
    add_metadata(m, {"verinfer.input_range": f"{lo:g},{hi:g}", "verinfer.name": f"fixture-{name}"})
    if external:
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="external_data.onnx.data", size_threshold=0)
    else:
        onnx.save_model(m, path)
    onnx.checker.check_model(path)
    m = onnx.load(path)
    ops = [n.op_type for n in m.graph.node]
    info = {"name": name, "exporter": exporter, "opset": m.opset_import[0].version, "ops": ops,
            "torch": torch.__version__}
    if not ref:
        try:
            qref.lower_onnx(path)
            raise AssertionError(f"{name} should be refused")
        except qref.Unsupported as e:
            info["refused"] = str(e)
        return info

    with torch.no_grad():
        if getattr(model, "softmax", False):
            model.softmax = False  # compare with the pre-softmax scores
            fout = model(x.float()).double().numpy()
            model.softmax = True
        else:
            fout = model(x.float()).double().numpy()
    low = qref.lower_onnx(path)
    xin = x.numpy()
    ffl = qref.eval_float(low, xin)
    err = np.abs(ffl - fout).max()
    tol = 1e-4 * max(1.0, np.abs(fout).max())
    assert err < tol, (name, err)
    Y, s_out = qref.eval_int(low, xin)
    deq = Y.astype(np.float64) / 2.0 ** s_out
    wc, per = qref.worst_case_bits(low, [lo, hi])
    assert wc <= 120, (name, wc)
    notes = [
        f"exporter: torch {torch.__version__} torch.onnx.export("
        + ("dynamo=False" if exporter == "torchscript" else "dynamo=True, external_data=False")
        + f", opset {opset})",
        "ops: " + ", ".join(ops),
        "lowering (qref.py): " + qref.describe(low),
    ] + low.notes
    if any(L.kind == "sumpool" for L in low.layers):
        notes.append("AveragePool(2x2) = SumPool with factor 1/4; a following Mul by 4 cancels it "
                     "(factor 1.0, weights unchanged); otherwise the pending factor is multiplied "
                     "into the next linear layer's float weights before quantization")
    if extra_notes:
        notes.append(extra_notes)
    notes.append(f"max |dequantized - float| = {float(np.abs(deq - fout).max()):.3g}; "
                 f"interval worst case {wc} bits (per-layer {[p[2] for p in per]})")
    refj = {
        "model": f"{name}.onnx",
        "params": dict(qref.DEFAULT_PARAMS),
        "input_range": [lo, hi],
        "input_shape": list(shape),
        "input": x.numpy().tolist(),
        "output_shape": list(Y.shape),
        "output_scale_bits": s_out,
        "output": [str(int(v)) for v in Y.reshape(-1)],
        "float_output": fout.tolist(),
        "worst_case_bits": wc,
        "notes": "; ".join(notes),
    }
    with open(os.path.join(OUT, f"{name}.ref.json"), "w") as f:
        json.dump(refj, f, indent=1)
        f.write("\n")
    info.update({"output_scale_bits": s_out, "worst_case_bits": wc,
                 "max_output_bits": max(abs(int(v)) for v in Y.reshape(-1)).bit_length(),
                 "deq_err": float(np.abs(deq - fout).max()), "lowering": qref.describe(low)})
    return info


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    infos = []

    infos.append(build("conv_square", ConvSquare(), [1, 8, 8], (0.0, 1.0), "torchscript", 13))

    m = ConvSquarePlusX()
    randomize_bn(m.bn, torch.Generator().manual_seed(SEED + 1))
    try:
        import onnxscript  # noqa: F401
        infos.append(build("conv_square_plus_x", m, [2, 6, 6], (-1.0, 1.0), "dynamo", 18))
    except ImportError:
        infos.append(build("conv_square_plus_x", m, [2, 6, 6], (-1.0, 1.0), "torchscript", 18))

    infos.append(build("dense", Dense(), [10], (-1.0, 1.0), "torchscript", 17))

    m = AvgPoolBN()
    randomize_bn(m.bn, torch.Generator().manual_seed(SEED + 2))
    info = build("avgpool_bn", m, [1, 6, 6], (0.0, 1.0), "torchscript", 17,
                 extra_notes="BatchNormalization (eval, running statistics) folded in float64 into the "
                             "preceding Gemm: s = gamma/sqrt(var+eps), W' = W*s, b' = (b-mean)*s + beta; "
                             "eps is the ONNX float32 attribute widened to float64")
    assert "AveragePool" in info["ops"] and "BatchNormalization" in info["ops"], info["ops"]
    infos.append(info)

    infos.append(build("external_data", SmallConv(), [1, 4, 4], (0.0, 1.0), "torchscript", 17, external=True))
    infos.append(build("softmax", SmallConv(softmax=True), [1, 4, 4], (-1.0, 1.0), "torchscript", 17,
                       extra_notes="the trailing Softmax is dropped: output = pre-softmax integer scores; "
                                   "float_output holds torch's pre-softmax scores"))
    infos.append(build("relu_maxpool", ReluMaxPool(), [1, 4, 4], (0.0, 1.0), "torchscript", 17, ref=False))

    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# ONNX importer fixtures\n\n"
                "Generated by `python3 tools/digits/fixtures.py` (see tools/digits/README.md); do not edit.\n"
                "`NAME.ref.json` holds inputs and the exact integer outputs of `tools/digits/qref.py`.\n\n"
                "| fixture | exporter | opset | ops | output scale | worst-case bits |\n|---|---|---|---|---|---|\n")
        for i in infos:
            f.write(f"| {i['name']} | {i['exporter']} (torch {i['torch']}) | {i['opset']} | "
                    f"{', '.join(sorted(set(i['ops'])))} | {i.get('output_scale_bits', 'refused')} | "
                    f"{i.get('worst_case_bits', '-')} |\n")
    for i in infos:
        print(json.dumps(i))


if __name__ == "__main__":
    main()
