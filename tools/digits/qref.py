"""Exact integer reference for verinfer's quantization contract (docs/protocol.md §3).

This module is deliberately independent of the Rust code and of torch: it
reads an ONNX file with the `onnx` package, lowers it to a small list of
layers (conv / dense / activation / sumpool / flatten, and add / branch for
residual networks), and evaluates that list either

* exactly, with Python integers (numpy ``dtype=object`` arrays), following
  docs/protocol.md §3 to the letter (``eval_int`` here: chains, uniform
  weights; tools/deep/qref_deep.py: graphs, checkpoints, per-layer weights), or
* in float64 (to check the lowering against the exporter's own float output).

Lowering rules (what the Rust importer is expected to do as well):

* Conv / Gemm / MatMul(+Add) become linear layers with float64 weights.
* BatchNormalization directly after a linear layer is folded into it, in
  float64: ``s = gamma / sqrt(var + eps)``, ``W' = W * s``,
  ``b' = (b - mean) * s + beta``.
* Elementwise Mul / Add / Sub / Div / Pow(·, 2) over one tensor and scalar
  constants are tracked as a polynomial ``a·x² + b·x + c`` of the last
  linear layer's output; the polynomial becomes one activation layer when the
  value is consumed by a pool, a linear layer or the output.
* AveragePool(k×k) becomes SumPool with a pending scalar factor ``1/k²``;
  a pure scalar factor ``k`` (polynomial ``0·x² + k·x + 0``) is pushed through
  pools / Flatten and multiplied into the NEXT linear layer's float weights
  (``W * k``, bias unchanged). So ``avg_pool2d(x, 2) * 4`` has factor 1.0. A
  factor left at the output must be a power of two and changes the output
  scale. A pending offset ``c`` (``k·x + c``) folds back into the last linear
  layer when nothing nonlinear is in between (``c`` / window area through a
  sum-pool), else into the next linear layer's bias (``b + c·ΣW``).
* Flatten / Reshape to (batch, features) is a row-major relabelling (a pending
  polynomial becomes an activation layer before it; a pure factor passes).
* Add / Sub of two values on different layers' outputs (a residual
  connection) is an ``add`` layer: its input is the operand on the latest
  layer's output (a pending factor folded back into its linear layer), its
  ``ref`` the earlier layer whose output is the other operand. ``latest −
  earlier`` with the latest as subtrahend leaves the pending factor −1.
* A value read again after later layers (a shortcut reading a block's input)
  continues from that layer's output through a ``branch`` layer.
* Only nodes the graph output depends on are lowered.
* A trailing Softmax / LogSoftmax is dropped.
* Relu / MaxPool (and anything else) are refused.

Quantization: ``q(x, s) = round_half_away_from_zero(x · 2^s)`` computed as
``y = |x| · 2^s`` in float64 (exact), ``r = floor(y)``, ``r += 1`` if
``y - r >= 0.5``, then the sign is applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

DEFAULT_PARAMS = {"input_bits": 8, "weight_bits": 8, "coef_bits": 8, "weight_scale": "uniform"}


class Unsupported(Exception):
    pass


# --------------------------------------------------------------------------
# Quantization


def q(x: float, s: int) -> int:
    """round_half_away_from_zero(x * 2**s), exact (float64 power-of-two scaling)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot quantize {x}")
    y = abs(x) * (2.0 ** s) if s <= 1000 else math.inf
    if math.isinf(y):
        # x·2^s overflows float64: the same rounding with exact rationals (deep models
        # without checkpoints reach scales of thousands of bits)
        y = Fraction(abs(x)) * (1 << s)
        r = math.floor(y)
        if y - r >= Fraction(1, 2):
            r += 1
        return -r if x < 0 else r
    r = math.floor(y)
    if y - r >= 0.5:
        r += 1
    r = int(r)
    return -r if x < 0 else r


def q_array(a: np.ndarray, s: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    out = np.empty(a.shape, dtype=object)
    flat_in = a.reshape(-1)
    flat_out = out.reshape(-1)
    for i, v in enumerate(flat_in):
        flat_out[i] = q(v, s)
    return out


def is_integer(v: float) -> bool:
    return float(v) == math.floor(float(v))


# --------------------------------------------------------------------------
# Layer list


@dataclass
class Layer:
    kind: str  # conv | dense | act | sumpool | flatten | add | branch
    W: np.ndarray | None = None  # float64
    b: np.ndarray | None = None  # float64
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)  # top, left, bottom, right
    coefs: tuple = (0.0, 1.0, 0.0)  # a, b, c for act
    window: tuple = (1, 1)
    # add: the earlier layer whose output is added (subtracted) to the previous layer's output;
    # branch: the earlier layer whose output it continues from
    ref: int = -1
    subtract: bool = False
    notes: list = field(default_factory=list)


@dataclass
class Lowered:
    layers: list
    output_factor: float  # scalar left over at the output (1.0 normally)
    input_shape: list  # per-item shape (no batch)
    notes: list
    # ONNX value name -> index of the lowered layer whose integers it denotes, or the reason the
    # name denotes no layer's integers (str); see `resolve_name` and tools/deep/README.md
    names: dict = field(default_factory=dict)


# --------------------------------------------------------------------------
# ONNX -> layers


@dataclass
class _Val:
    """A runtime tensor: poly(a, b, c) applied elementwise to layer output `base`."""

    base: int  # number of layers emitted when this base was produced
    poly: tuple  # (a, b, c) floats
    open_linear: bool  # base is the raw output of a linear layer (bias / BN foldable)
    name: str = ""  # the ONNX value it was first stored under


class _Vals(dict):
    """name -> _Val that also records, when a value is stored, which layer's integers the name
    denotes (`on_store`); an alias (Identity, Dropout, Softmax) shares its source's _Val."""

    def __init__(self, on_store):
        super().__init__()
        self.on_store = on_store

    def __setitem__(self, key, v):
        alias_of = v.name if v.name else None
        if not v.name:
            v.name = key
        super().__setitem__(key, v)
        self.on_store(key, v, alias_of)


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _const_eval(node, ins):
    op = node.op_type
    at = _attrs(node)
    if op == "Identity":
        return ins[0]
    if op == "Cast":
        return ins[0].astype(onnx.helper.tensor_dtype_to_np_dtype(at["to"]))
    if op == "Transpose":
        return np.transpose(ins[0], at.get("perm"))
    if op == "Reshape":
        return ins[0].reshape([int(d) for d in ins[1]])
    if op == "Unsqueeze":
        axes = at.get("axes") if "axes" in at else [int(a) for a in ins[1]]
        x = ins[0]
        for a in sorted(axes):
            x = np.expand_dims(x, a)
        return x
    if op == "Squeeze":
        axes = at.get("axes") if "axes" in at else ([int(a) for a in ins[1]] if len(ins) > 1 else None)
        return np.squeeze(ins[0], axis=tuple(axes) if axes is not None else None)
    if op in ("Mul", "Add", "Sub", "Div"):
        f = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}[op]
        return f(ins[0], ins[1])
    if op == "Sqrt":
        return np.sqrt(ins[0])
    if op == "Neg":
        return -ins[0]
    raise Unsupported(f"constant folding of {op} not supported")


def _poly_mul(p, r):
    a1, b1, c1 = p
    a2, b2, c2 = r
    if (a1 != 0 and (a2 != 0 or b2 != 0)) or (a2 != 0 and (b1 != 0)):
        raise Unsupported("polynomial of degree > 2")
    return (a1 * c2 + a2 * c1 + b1 * b2, b1 * c2 + b2 * c1, c1 * c2)


def _scalar(c: np.ndarray, what: str) -> float:
    c = np.asarray(c)
    if c.size != 1:
        raise Unsupported(f"{what}: only scalar constants are supported, got shape {c.shape}")
    return float(c.reshape(-1)[0])


def lower_onnx(path: str) -> Lowered:
    model = onnx.load(path)  # loads external data next to the file too
    g = model.graph
    consts: dict[str, np.ndarray] = {}
    for init in g.initializer:
        consts[init.name] = numpy_helper.to_array(init).astype(np.float64) if numpy_helper.to_array(init).dtype.kind == "f" else numpy_helper.to_array(init)
    init_names = set(consts)
    real_inputs = [i for i in g.input if i.name not in init_names]
    if len(real_inputs) != 1:
        raise Unsupported(f"expected one graph input, got {[i.name for i in real_inputs]}")
    inp = real_inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    input_shape = dims[1:]

    layers: list[Layer] = []
    notes: list[str] = []
    ident = (0.0, 1.0, 0.0)
    # name bookkeeping: versions[i] counts the folds (BatchNormalization, bias Add, a factor or
    # offset folded back) into layer i after it was emitted; a name stored at an older version
    # is a pre-fold name
    versions: dict[int, int] = {}
    names: dict = {}
    aliases: dict[str, str] = {}
    # activation layers by the (base, polynomial) they compute: a later read of that value is
    # the activation layer's output (a residual block's input read again by its shortcut)
    emitted: dict[tuple, int] = {}
    # only the nodes the output depends on are lowered (a dead node would add layers)
    producer = {}
    for n, node in enumerate(g.node):
        for o in node.output:
            producer.setdefault(o, n)
    live, stack = set(), [o.name for o in g.output]
    while stack:
        n = producer.get(stack.pop())
        if n is not None and n not in live:
            live.add(n)
            stack.extend(g.node[n].input)
    live_nodes = [node for n, node in enumerate(g.node) if n in live]
    # remaining readers of every value (live node inputs and the graph output)
    uses: dict[str, int] = {}
    for node in live_nodes:
        for i in node.input:
            if i:
                uses[i] = uses.get(i, 0) + 1
    for o in g.output:
        uses[o.name] = uses.get(o.name, 0) + 1

    def on_store(key, v, alias_of):
        if alias_of is not None:
            aliases[key] = alias_of
            return
        a, b, c = v.poly
        if v.base == 0:
            names[key] = "the graph input is no layer's output"
        elif a == 0 and c == 0 and b != 0:
            # the raw output of a linear layer, a pool, a flatten or an add, or a pure scalar
            # factor of it (pending, folded into the next linear layer): that layer's integers
            names[key] = ("layer", v.base - 1, versions.get(v.base - 1, 0))
        elif a == 0 and b != 0:
            names[key] = (f"the output of layer {v.base - 1} plus a constant that is folded into "
                          "another layer (no layer computes it)")
        elif a == 0:
            names[key] = "a constant (zero times a layer's output)"
        else:
            names[key] = "an intermediate value of an activation polynomial (name its last node)"

    vals: dict[str, _Val] = _Vals(on_store)
    vals[inp.name] = _Val(0, (0.0, 1.0, 0.0), False)

    def read(name) -> _Val:
        """The value `name` holds; a quadratic that an activation layer already computes is that
        layer's output."""
        v = vals[name]
        if v.poly[0] != 0:
            li = emitted.get((v.base, v.poly))
            if li is not None:
                return _Val(li + 1, ident, False, v.name)
        return v

    def shared(base) -> bool:
        """Whether a value on layer output `base` still has readers after this node."""
        return any(v.base == base and uses.get(n, 0) > 0 for n, v in vals.items())

    def current(v: _Val) -> _Val:
        """`v` in terms of the last layer's output: a value of an earlier layer's output (read
        again after later layers, e.g. by a shortcut) continues from it through a branch."""
        if v.base == len(layers):
            return v
        if v.base == 0:
            raise Unsupported("reads the model input again after other layers (a branch from the "
                              "input); put a layer before the first branch")
        layers.append(Layer("branch", ref=v.base - 1))
        return _Val(len(layers), v.poly, False, v.name)

    def emit_act(v: _Val, name: str | None):
        """Appends the activation of the (current) quadratic `v`; `name` denotes it."""
        layers.append(Layer("act", coefs=v.poly))
        emitted[(v.base, v.poly)] = len(layers) - 1
        if name:
            names[name] = ("layer", len(layers) - 1, 0)

    def fold_back(k: float, c: float) -> bool:
        """Folds `k·t + c` (t the last layer's output) backward into the last linear layer's
        weights and bias, through sum-pools (c / window area) and flattens; False if an
        activation, add or branch comes first."""
        if k == 1.0 and c == 0.0:
            return True
        cur = len(layers)
        cc = c
        for i in range(cur - 1, -1, -1):
            L = layers[i]
            if L.kind == "sumpool":
                cc /= L.window[0] * L.window[1]
                continue
            if L.kind == "flatten":
                continue
            if L.kind in ("act", "add", "branch"):
                return False
            if shared(cur):
                raise Unsupported(f"folding {k!r}·t + {c!r} back into layer {i} would change the "
                                  "value t that is also read elsewhere")
            L.W = L.W * k
            L.b = L.b * k + cc
            for j in range(i, cur):
                versions[j] = versions.get(j, 0) + 1
            notes.append(f"factor {k!r} and offset {c!r} folded back into {L.kind} layer {i}")
            # the values that were k·t + c are now the last layer's output itself
            for n, v in vals.items():
                if n not in aliases and v.base == cur and v.poly == (0.0, k, c):
                    names[n] = ("layer", cur - 1, versions.get(cur - 1, 0))
            return True
        return False

    def linear_in(v: _Val):
        """The input of a linear layer: emits a pending activation, folds an offset back if it
        can. Returns the factor and offset left for the layer, (k, c): input = k·t + c."""
        w = current(v)
        a, b, c = w.poly
        if a != 0:
            emit_act(w, v.name if w is v else None)
            return 1.0, 0.0
        if c != 0 and fold_back(b, c):
            return 1.0, 0.0
        return b, c

    def passthrough(v: _Val):
        """The input of a pool or flatten: emits a pending activation; returns (k, c)."""
        w = current(v)
        a, b, c = w.poly
        if a != 0:
            emit_act(w, v.name if w is v else None)
            return 1.0, 0.0
        return b, c

    def fold_input(W, B, k, c, what):
        """A linear layer on the input k·t + c: W' = k·W, b' = b + c·ΣW[o] (row-major sums)."""
        if c != 0:
            B = B + np.array([c * sum(float(w) for w in row) for row in W.reshape(W.shape[0], -1)])
            notes.append(f"offset {c!r} folded into the bias of {what} layer {len(layers)}")
        if k != 1.0:
            notes.append(f"factor {k!r} folded into {what} layer {len(layers)}")
        return W * k, B.copy()

    def residual(op, x: _Val, y: _Val) -> _Val:
        """x ± y of two values on different layers' outputs: an add layer. The operand on the
        latest layer's output is its input (a pending activation emitted, a pending factor or
        offset folded back into its linear layer); the other, an earlier layer's output plus at
        most an offset, is its `ref`. Returns the result: sign·(add output) + offset."""
        if op not in ("Add", "Sub"):
            raise Unsupported("a product or quotient of two layers' outputs is not a polynomial "
                              "of one tensor; only their sum or difference is supported")
        subtract = op == "Sub"
        xb, yb = x, y
        if x.base != len(layers) and y.base != len(layers):
            if x.base > y.base:
                x = current(x)
            else:
                y = current(y)
        if x.base == len(layers):
            main, other, sign, was = x, y, 1.0, xb
        else:
            main, other, sign, was = y, x, (-1.0 if subtract else 1.0), yb
        a, b, c = main.poly
        if a != 0:
            emit_act(main, main.name if main is was else None)
        elif (b != 1.0 or c != 0.0) and not fold_back(b, c):
            raise Unsupported(f"one operand is {b!r}·t + {c!r} of the previous layer's output t, "
                              "a factor that cannot be folded into a linear layer before the add")
        oa, ob, oc = other.poly
        if oa != 0:
            raise Unsupported("the other operand is an elementwise expression of an earlier "
                              "layer's output that no layer computes")
        if other.base == 0:
            raise Unsupported("adds the model input (a shortcut from the input)")
        if ob != 1.0:
            raise Unsupported(f"the shortcut is {ob!r} times an earlier layer's output")
        layers.append(Layer("add", ref=other.base - 1, subtract=subtract))
        off = -oc if subtract else oc
        return _Val(len(layers), (0.0, sign, off * sign), False)

    for node in live_nodes:
        op = node.op_type
        at = _attrs(node)
        ins = list(node.input)
        for i in ins:
            if i and i in uses:
                uses[i] -= 1
        if op == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(at["value"])
            if consts[node.output[0]].dtype.kind == "f":
                consts[node.output[0]] = consts[node.output[0]].astype(np.float64)
            continue
        if all((i in consts) or i == "" for i in ins) and op not in ("Shape",):
            consts[node.output[0]] = _const_eval(node, [consts[i] for i in ins if i != ""])
            continue
        if op == "Conv":
            v = read(ins[0])
            if at.get("group", 1) != 1:
                raise Unsupported("grouped conv")
            if any(d != 1 for d in at.get("dilations", [1, 1])):
                raise Unsupported("dilated conv")
            if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise Unsupported("auto_pad")
            W = consts[ins[1]].astype(np.float64)
            B = consts[ins[2]].astype(np.float64) if len(ins) > 2 and ins[2] else np.zeros(W.shape[0])
            p = at.get("pads", [0, 0, 0, 0])
            k, c = linear_in(v)
            if c != 0 and any(p):
                raise Unsupported(f"conv input shifted by the constant {c!r}: cannot fold into a padded convolution")
            W, B = fold_input(W, B, k, c, "conv")
            layers.append(Layer("conv", W=W, b=B, stride=tuple(at.get("strides", [1, 1])), pads=(p[0], p[1], p[2], p[3])))
            vals[node.output[0]] = _Val(len(layers), ident, True)
        elif op == "Gemm":
            v = read(ins[0])
            if at.get("transA", 0):
                raise Unsupported("Gemm transA")
            Bm = consts[ins[1]].astype(np.float64)
            W = Bm if at.get("transB", 0) else Bm.T
            W = W * float(at.get("alpha", 1.0))
            C = consts[ins[2]].astype(np.float64) * float(at.get("beta", 1.0)) if len(ins) > 2 and ins[2] else np.zeros(W.shape[0])
            C = np.broadcast_to(C, (W.shape[0],)).copy()
            k, c = linear_in(v)
            W, C = fold_input(W, C, k, c, "dense")
            layers.append(Layer("dense", W=W, b=C))
            vals[node.output[0]] = _Val(len(layers), ident, True)
        elif op == "MatMul":
            v = read(ins[0])
            W = consts[ins[1]].astype(np.float64).T
            k, c = linear_in(v)
            W, C = fold_input(W, np.zeros(W.shape[0]), k, c, "dense")
            layers.append(Layer("dense", W=W, b=C))
            vals[node.output[0]] = _Val(len(layers), ident, True)
        elif op == "BatchNormalization":
            v = read(ins[0])
            if v.base != len(layers) or not v.open_linear or v.poly != ident:
                raise Unsupported("BatchNormalization not directly after a linear layer")
            if at.get("training_mode", 0):
                raise Unsupported("BatchNormalization in training mode")
            if shared(len(layers)):
                raise Unsupported("BatchNormalization folded into a layer whose output is also read elsewhere")
            gamma, beta, mean, var = (consts[i].astype(np.float64) for i in ins[1:5])
            eps = float(at.get("epsilon", 1e-5))  # an ONNX float32 attribute, widened
            L = layers[-1]
            s = gamma / np.sqrt(var + eps)
            shape = (-1,) + (1,) * (L.W.ndim - 1)
            L.W = L.W * s.reshape(shape)
            L.b = (L.b - mean) * s + beta
            L.notes.append("BatchNormalization folded")
            versions[len(layers) - 1] = versions.get(len(layers) - 1, 0) + 1
            notes.append(f"BatchNormalization folded into {L.kind} layer {len(layers) - 1} (eps={eps!r})")
            vals[node.output[0]] = _Val(len(layers), ident, True)
        elif op in ("Mul", "Add", "Sub", "Div"):
            a_in, b_in = ins[0], ins[1]
            if a_in in consts and b_in in consts:
                raise AssertionError("unreachable")
            if a_in in consts or b_in in consts:
                (t, c, c_first) = (b_in, a_in, True) if a_in in consts else (a_in, b_in, False)
                v = read(t)
                cval = consts[c]
                if op == "Add" and v.open_linear and v.poly == ident and cval.size > 1:
                    # MatMul + Add(bias vector)
                    L = layers[-1] if layers else None
                    if v.base != len(layers) or L is None or L.kind != "dense":
                        raise Unsupported("vector Add after a non-dense layer")
                    if shared(len(layers)):
                        raise Unsupported("vector Add folded into a layer whose output is also read elsewhere")
                    L.b = L.b + cval.reshape(-1).astype(np.float64)
                    versions[len(layers) - 1] = versions.get(len(layers) - 1, 0) + 1
                    vals[node.output[0]] = _Val(len(layers), ident, True)
                    continue
                s = _scalar(cval, op)
                pa, pb, pc = v.poly
                if op == "Mul":
                    poly = (pa * s, pb * s, pc * s)
                elif op == "Div":
                    if c_first:
                        raise Unsupported("division by a tensor")
                    poly = (pa / s, pb / s, pc / s)
                elif op == "Add":
                    poly = (pa, pb, pc + s)
                else:  # Sub
                    poly = (-pa, -pb, s - pc) if c_first else (pa, pb, pc - s)
                vals[node.output[0]] = _Val(v.base, poly, False)
            else:
                v1, v2 = read(a_in), read(b_in)
                if v1.base != v2.base:
                    vals[node.output[0]] = residual(op, v1, v2)
                    continue
                if op == "Mul":
                    poly = _poly_mul(v1.poly, v2.poly)
                elif op == "Add":
                    poly = tuple(x + y for x, y in zip(v1.poly, v2.poly))
                elif op == "Sub":
                    poly = tuple(x - y for x, y in zip(v1.poly, v2.poly))
                else:
                    raise Unsupported("division by a tensor")
                vals[node.output[0]] = _Val(v1.base, poly, False)
        elif op == "Pow":
            v = read(ins[0])
            e = _scalar(consts[ins[1]], "Pow exponent")
            if e == 2.0:
                poly = _poly_mul(v.poly, v.poly)
            elif e == 1.0:
                poly = v.poly
            else:
                raise Unsupported(f"Pow with exponent {e}")
            vals[node.output[0]] = _Val(v.base, poly, False)
        elif op == "AveragePool":
            v = read(ins[0])
            ks = tuple(at["kernel_shape"])
            st = tuple(at.get("strides", ks))
            if any(p != 0 for p in at.get("pads", [0, 0, 0, 0])) or at.get("ceil_mode", 0):
                raise Unsupported("padded / ceil_mode AveragePool")
            k, c = passthrough(v)
            layers.append(Layer("sumpool", window=ks, stride=st))
            # the mean of k·t + c over the window: (k / area)·(window sum of t) + c
            vals[node.output[0]] = _Val(len(layers), (0.0, k / (ks[0] * ks[1]), c), False)
        elif op in ("Flatten", "Reshape"):
            v = read(ins[0])
            if op == "Flatten" and at.get("axis", 1) != 1:
                raise Unsupported("Flatten axis != 1")
            if op == "Reshape":
                shp = consts.get(ins[1])
                if shp is None or len(shp) != 2:
                    raise Unsupported("Reshape other than to (batch, features)")
            k, c = passthrough(v)  # an activation stays before the relabelling
            layers.append(Layer("flatten"))
            vals[node.output[0]] = _Val(len(layers), (0.0, k, c), False)
        elif op in ("Identity", "Dropout"):
            vals[node.output[0]] = vals[ins[0]]
        elif op in ("Softmax", "LogSoftmax"):
            if node.output[0] not in [o.name for o in g.output]:
                raise Unsupported("Softmax not at the output")
            vals[node.output[0]] = vals[ins[0]]
            notes.append(f"trailing {op} dropped (output = pre-softmax scores)")
        else:
            raise Unsupported(f"operator {op} is not supported (only polynomial activations and sum/average pooling)")

    if len(g.output) != 1:
        raise Unsupported("expected one graph output")
    out_name = g.output[0].name
    uses[out_name] = uses.get(out_name, 1) - 1
    v = read(out_name)
    if v.base != len(layers):
        raise Unsupported("the output is not computed from the last layer (a value read after later layers)")
    a, b, c = v.poly
    k = 1.0
    if a != 0:
        emit_act(v, v.name)
    elif c == 0:
        k = b  # a pure factor: a power of two changes the output scale (output_scale_adjust)
    elif not fold_back(b, c):
        raise Unsupported(f"the output is {b!r}·t + {c!r} of the last layer's output, which cannot be folded back")
    final = {}
    for key, rec in names.items():
        if isinstance(rec, tuple):
            _, i, ver = rec
            if ver != versions.get(i, 0):
                later = [n for n, r in names.items() if isinstance(r, tuple) and r[1] == i and r[2] == versions.get(i, 0)]
                rec = (f"a value before a fold into layer {i} ({layers[i].kind}); "
                       f"name the folded output{' ' + repr(later[0]) if later else ''}")
            else:
                rec = i
        final[key] = rec
    for key, src in aliases.items():
        while src in aliases:
            src = aliases[src]
        final[key] = final.get(src, "unknown value")
    return Lowered(layers, k, input_shape, notes, final)


def resolve_name(low: Lowered, tensor: str) -> int:
    """The lowered layer (0-based, list without checkpoints) a settings file's `tensor` names:
    `layer:N`, or an ONNX value name (rules in tools/deep/README.md). Raises ValueError."""
    if tensor.startswith("layer:"):
        n = tensor[len("layer:"):]
        if not n.isdigit() or not n.isascii():
            raise ValueError(f"{tensor!r}: expected layer:N with N a decimal number")
        i = int(n)
        if i >= len(low.layers):
            raise ValueError(f"{tensor!r}: the model has {len(low.layers)} layers (layer:0..layer:{len(low.layers) - 1})")
        return i
    rec = low.names.get(tensor)
    if rec is None:
        raise ValueError(f"{tensor!r} names no value of the model")
    if isinstance(rec, str):
        raise ValueError(f"{tensor!r} denotes no layer's integers: {rec}")
    return rec


# --------------------------------------------------------------------------
# Evaluation


def _conv(X, W, b, stride, pads, dtype):
    """Cross-correlation (PyTorch Conv2d), zero padding. X: [N,C,H,W]."""
    N, C, H, Wd = X.shape
    O, C2, kh, kw = W.shape
    assert C == C2, (C, C2)
    pt, pl, pb, pr = pads
    Xp = np.zeros((N, C, H + pt + pb, Wd + pl + pr), dtype=dtype)
    if dtype is object:
        Xp[...] = 0
    Xp[:, :, pt:pt + H, pl:pl + Wd] = X
    sh, sw = stride
    Ho = (H + pt + pb - kh) // sh + 1
    Wo = (Wd + pl + pr - kw) // sw + 1
    cols = np.empty((N, C, kh, kw, Ho, Wo), dtype=dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, u, v] = Xp[:, :, u:u + sh * (Ho - 1) + 1:sh, v:v + sw * (Wo - 1) + 1:sw]
    cols = cols.reshape(N, C * kh * kw, Ho * Wo)
    Y = np.matmul(W.reshape(O, C * kh * kw), cols)  # [N, O, Ho*Wo]
    Y = Y + b.reshape(1, O, 1)
    return Y.reshape(N, O, Ho, Wo)


def _sumpool(X, window, stride):
    N, C, H, W = X.shape
    kh, kw = window
    sh, sw = stride
    Ho = (H - kh) // sh + 1
    Wo = (W - kw) // sw + 1
    Y = None
    for u in range(kh):
        for v in range(kw):
            part = X[:, :, u:u + sh * (Ho - 1) + 1:sh, v:v + sw * (Wo - 1) + 1:sw]
            Y = part.copy() if Y is None else Y + part
    return Y


def eval_float(low: Lowered, x: np.ndarray) -> np.ndarray:
    X = np.asarray(x, dtype=np.float64)
    T = [X]  # T[t]: the input (t = 0) or the output of layer t - 1
    for L in low.layers:
        if L.kind == "add":
            B = T[L.ref + 1]
            X = X - B if L.subtract else X + B
        elif L.kind == "branch":
            X = T[L.ref + 1]
        elif L.kind == "conv":
            X = _conv(X, L.W, L.b, L.stride, L.pads, np.float64)
        elif L.kind == "dense":
            X = X @ L.W.T + L.b
        elif L.kind == "act":
            a, b, c = L.coefs
            X = a * X * X + b * X + c
        elif L.kind == "sumpool":
            X = _sumpool(X, L.window, L.stride)
        elif L.kind == "flatten":
            X = X.reshape(X.shape[0], -1)
        T.append(X)
    return X * low.output_factor


def _chain_only(low: Lowered):
    if any(L.kind in ("add", "branch") for L in low.layers):
        raise Unsupported("residual layers (add, branch): use tools/deep/qref_deep.py")


def output_scale_adjust(factor: float) -> int:
    """A leftover output factor 2^-k adds k to the output scale."""
    if factor == 1.0:
        return 0
    m, e = math.frexp(factor)
    if m != 0.5 or factor <= 0:
        raise Unsupported(f"output factor {factor} is not a power of two")
    return -(e - 1)


def quantize_act(coefs, s: int, s_c: int):
    """An activation a·x² + b·x + c at input scale s (docs/protocol.md §3): integer
    coefficients give qa·X² + (b << s)·X + (c << 2s) at scale 2s, others are quantized at s_c
    and give scale 2s + s_c. Returns (qa, B, C, output scale) with Y = qa·X² + B·X + C."""
    a, b, c = coefs
    if is_integer(a) and is_integer(b) and is_integer(c):
        qa, qb, qc = int(a), int(b), int(c)
        s_new = 2 * s
    else:
        qa, qb, qc = q(a, s_c), q(b, s_c), q(c, s_c)
        s_new = 2 * s + s_c
    return qa, qb << s, qc << (2 * s), s_new


def act_interval(qa: int, B: int, C: int, lo: int, hi: int):
    """The exact range of qa·x² + B·x + C over the integers in [lo, hi]: the ends, and the
    integers around the vertex −B/(2·qa)."""
    def f(x):
        return qa * x * x + B * x + C

    cands = [f(lo), f(hi)]
    if qa != 0:
        xv = -B // (2 * qa)
        cands += [f(t) for t in (xv, xv + 1) if lo <= t <= hi]
    return min(cands), max(cands)


def eval_int(low: Lowered, x: np.ndarray, params=DEFAULT_PARAMS, trace=None):
    """Exact integer inference. Returns (Y as object array of Python ints, output scale bits).

    If `trace` is a list, (kind, scale, max_abs_bits) per layer is appended."""
    if params.get("weight_scale", "uniform") != "uniform":
        raise Unsupported("only uniform weight scale is implemented")
    _chain_only(low)
    s_in, s_w, s_c = params["input_bits"], params["weight_bits"], params["coef_bits"]
    X = q_array(x, s_in)
    s = s_in
    for L in low.layers:
        if L.kind == "conv":
            Wq = q_array(L.W, s_w)
            Bq = q_array(L.b, s + s_w)
            X = _conv(X, Wq, Bq, L.stride, L.pads, object)
            s = s + s_w
        elif L.kind == "dense":
            Wq = q_array(L.W, s_w)
            Bq = q_array(L.b, s + s_w)
            X = np.matmul(X, Wq.T) + Bq.reshape(1, -1)
            s = s + s_w
        elif L.kind == "act":
            qa, B_, C_, s_new = quantize_act(L.coefs, s, s_c)
            X = qa * X * X + B_ * X + C_
            s = s_new
        elif L.kind == "sumpool":
            X = _sumpool(X, L.window, L.stride)
        elif L.kind == "flatten":
            X = X.reshape(X.shape[0], -1)
        if trace is not None:
            m = max((abs(int(v)) for v in X.reshape(-1)), default=0)
            trace.append((L.kind, s, m.bit_length()))
    return X, s + output_scale_adjust(low.output_factor)


def worst_case_bits(low: Lowered, input_range, params=DEFAULT_PARAMS):
    """Interval bound (per channel / feature) of every layer's integer values.

    Returns (max bits over all layers, per-layer list). Zero padding is
    accounted for by widening every conv input interval to contain 0."""
    _chain_only(low)
    s_in, s_w, s_c = params["input_bits"], params["weight_bits"], params["coef_bits"]
    lo, hi = q(input_range[0], s_in), q(input_range[1], s_in)
    C = low.input_shape[0] if low.input_shape else 1
    # intervals per channel (conv) or per feature (dense): lists of (lo, hi)
    iv = [(lo, hi)] * C
    spatial = list(low.input_shape[1:])
    s = s_in
    per = []
    for L in low.layers:
        if L.kind == "conv":
            Wq = q_array(L.W, s_w)
            Bq = q_array(L.b, s + s_w)
            new = []
            for o in range(Wq.shape[0]):
                mn = mx = Bq[o]
                for c in range(Wq.shape[1]):
                    l, h = min(iv[c][0], 0), max(iv[c][1], 0)
                    for w in Wq[o, c].reshape(-1):
                        mn += min(w * l, w * h)
                        mx += max(w * l, w * h)
                new.append((mn, mx))
            iv = new
            s += s_w
        elif L.kind == "dense":
            Wq = q_array(L.W, s_w)
            Bq = q_array(L.b, s + s_w)
            new = []
            for o in range(Wq.shape[0]):
                mn = mx = Bq[o]
                for k in range(Wq.shape[1]):
                    w = Wq[o, k]
                    l, h = iv[k]
                    mn += min(w * l, w * h)
                    mx += max(w * l, w * h)
                new.append((mn, mx))
            iv = new
            s += s_w
        elif L.kind == "act":
            qa, B_, C_, s_new = quantize_act(L.coefs, s, s_c)
            iv = [act_interval(qa, B_, C_, l, h) for l, h in iv]
            s = s_new
        elif L.kind == "sumpool":
            n = L.window[0] * L.window[1]
            iv = [(l * n, h * n) for l, h in iv]
        elif L.kind == "flatten":
            # per-channel -> per-feature, row-major (C, H, W)
            hw = 1
            for d in spatial_shape_after(low, L):
                hw *= d
            iv = [t for t in iv for _ in range(hw)]
        m = max(max(abs(l), abs(h)) for l, h in iv)
        per.append((L.kind, s, m.bit_length()))
    return max(p[2] for p in per), per


def tensor_shapes(low: Lowered) -> list:
    """Per-item shape of every tensor: [0] the input, [i + 1] the output of layer i."""
    shapes = [tuple(low.input_shape)]
    for L in low.layers:
        sh = shapes[-1]
        if L.kind == "conv":
            kh, kw = L.W.shape[2:]
            sh = (L.W.shape[0],
                  (sh[1] + L.pads[0] + L.pads[2] - kh) // L.stride[0] + 1,
                  (sh[2] + L.pads[1] + L.pads[3] - kw) // L.stride[1] + 1)
        elif L.kind == "dense":
            sh = (L.W.shape[0],)
        elif L.kind == "sumpool":
            sh = (sh[0], (sh[1] - L.window[0]) // L.stride[0] + 1, (sh[2] - L.window[1]) // L.stride[1] + 1)
        elif L.kind == "flatten":
            sh = (int(np.prod(sh)),)
        elif L.kind == "branch":
            sh = shapes[L.ref + 1]
        shapes.append(sh)
    return shapes


def spatial_shape_after(low: Lowered, upto: Layer):
    """Spatial (H, W) shape of the tensor entering layer `upto`."""
    for i, L in enumerate(low.layers):
        if L is upto:
            return tuple(tensor_shapes(low)[i][1:])
    raise ValueError("layer not found")


def describe(low: Lowered) -> str:
    parts = []
    for L in low.layers:
        if L.kind in ("conv", "dense"):
            parts.append(f"{L.kind}{list(L.W.shape)}")
        elif L.kind == "act":
            parts.append("act(%r,%r,%r)" % L.coefs)
        elif L.kind == "sumpool":
            parts.append(f"sumpool{list(L.window)}")
        elif L.kind == "add":
            parts.append(f"{'sub' if L.subtract else 'add'}[{L.ref}]")
        elif L.kind == "branch":
            parts.append(f"branch[{L.ref}]")
        else:
            parts.append(L.kind)
    if low.output_factor != 1.0:
        parts.append(f"x{low.output_factor!r}")
    return " -> ".join(parts)
