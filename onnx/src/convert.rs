//! Graph → model IR conversion: constant folding, symbolic quadratic polynomials, and the
//! folding of scalar factors, biases and batch norms into linear layers (see the crate docs).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use verinfer_circuits::model::{output_shape, Activation, Conv2d, Dense, Layer, Model, SumPool};

use crate::proto::{self, AttributeProto, GraphProto, ModelProto, NodeProto};
use crate::tensor::{self, numel, Const, Data, MAX_FOLD};
use crate::{clean, ImportOptions, Imported, OnnxError};

/// Stands for the (possibly symbolic) batch size inside folded shape tensors.
const BATCH: i64 = i64::MIN / 2;

/// Total number of elements constant folding may create.
const FOLD_BUDGET: usize = 1 << 26;

/// Exporter-default graph names that make poor model names.
const GENERIC_NAMES: [&str; 4] = ["main_graph", "torch_jit", "torch-jit-export", "graph"];

/// `a·t² + b·t + c` in the anchor tensor `t` (the output of layer `anchor - 1`, or the input
/// when `anchor` is 0).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Poly {
    anchor: usize,
    a: f64,
    b: f64,
    c: f64,
}

impl Poly {
    fn identity(anchor: usize) -> Self {
        Poly {
            anchor,
            a: 0.0,
            b: 1.0,
            c: 0.0,
        }
    }

    fn scale(self, k: f64) -> Self {
        Poly {
            a: self.a * k,
            b: self.b * k,
            c: self.c * k,
            ..self
        }
    }

    fn shift(self, k: f64) -> Self {
        Poly {
            c: self.c + k,
            ..self
        }
    }
}

#[derive(Clone, Debug)]
enum Value {
    Const(Rc<Const>),
    Act(Poly),
}

/// The node being converted, for attributes and messages.
struct Ctx<'n> {
    node: &'n NodeProto,
    label: String,
    op: String,
}

impl<'n> Ctx<'n> {
    fn new(node: &'n NodeProto, idx: usize) -> Self {
        let label = if node.name.is_empty() {
            format!("node #{idx}")
        } else {
            format!("node '{}'", clean(&node.name))
        };
        Ctx {
            node,
            label,
            op: clean(&node.op_type),
        }
    }

    fn err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.label.clone(),
            op: self.op.clone(),
            msg: msg.into(),
        }
    }

    fn unsupported(&self, hint: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            node: self.label.clone(),
            op: self.op.clone(),
            hint: hint.into(),
        }
    }

    fn attr(&self, name: &str) -> Option<&'n AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    fn attr_f(&self, name: &str, default: f64) -> f64 {
        self.attr(name).map_or(default, |a| f64::from(a.f))
    }

    fn attr_ints(&self, name: &str) -> Option<&'n [i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }

    fn attr_s(&self, name: &str) -> Option<String> {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    fn input_name(&self, i: usize) -> Option<&'n str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Normalizes a possibly negative axis for a tensor of rank `rank`.
fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = i64::try_from(rank).ok()?;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

fn to_usizes(v: &[i64]) -> Option<Vec<usize>> {
    v.iter().map(|&x| usize::try_from(x).ok()).collect()
}

struct Converter<'g> {
    base_dir: Option<&'g Path>,
    layers: Vec<Layer>,
    /// `shapes[i]`: per-item shape of anchor `i`; always `layers.len() + 1` entries.
    shapes: Vec<Vec<usize>>,
    values: HashMap<String, Value>,
    /// Remaining consumers of every tensor (node inputs and the graph output).
    uses: HashMap<String, usize>,
    notes: Vec<String>,
    /// The input's batch size when fixed in the file.
    batch: Option<usize>,
    output: String,
    folded: usize,
}

/// Converts a decoded ONNX model.
pub(crate) fn convert(
    m: &ModelProto,
    base_dir: Option<&Path>,
    opts: &ImportOptions,
    stem: Option<&str>,
) -> Result<Imported, OnnxError> {
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Graph("the file contains no graph".into()))?;
    check_opset(m)?;
    check_unique_names(g)?;
    let meta = |key: &str| {
        m.metadata_props
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    };
    let mut notes = Vec::new();
    let input_range = match (opts.input_range, meta("verinfer.input_range")) {
        (Some(r), _) => r,
        (None, Some(text)) => parse_range(text)?,
        (None, None) => {
            notes.push(
                "no input range in the file (metadata 'verinfer.input_range'): assuming [-1, 1]; \
                 set it with --input-range lo,hi"
                    .to_string(),
            );
            [-1.0, 1.0]
        }
    };
    let name = meta("verinfer.name")
        .map(clean)
        .or_else(|| {
            (!g.name.is_empty() && !GENERIC_NAMES.contains(&g.name.as_str()))
                .then(|| clean(&g.name))
        })
        .or_else(|| stem.map(clean))
        .unwrap_or_else(|| "onnx-model".to_string());

    let mut cv = Converter {
        base_dir,
        layers: Vec::new(),
        shapes: Vec::new(),
        values: HashMap::new(),
        uses: HashMap::new(),
        notes,
        batch: None,
        output: String::new(),
        folded: 0,
    };
    let input_shape = cv.setup(g)?;
    let live = live_nodes(g, &cv.output);
    for &i in &live {
        if let Some(node) = g.node.get(i) {
            for name in node.input.iter().filter(|s| !s.is_empty()) {
                *cv.uses.entry(name.clone()).or_insert(0) += 1;
            }
        }
    }
    *cv.uses.entry(cv.output.clone()).or_insert(0) += 1;
    for &i in &live {
        if let Some(node) = g.node.get(i) {
            cv.node(node, i)?;
        }
    }
    cv.finish_output()?;
    let model = Model {
        name,
        input_shape,
        input_range,
        layers: cv.layers,
    };
    model.validate()?;
    Ok(Imported {
        model,
        notes: cv.notes,
    })
}

/// Operator-set versions of the default ONNX domain the importer implements (README: opset
/// 13 to 18). Operators change meaning across opsets (e.g. where Squeeze, Unsqueeze and
/// ReduceMean take their axes), so a model outside this range, or one that does not say, could
/// be read differently here than by the runtime that trained or serves it.
pub(crate) const OPSETS: std::ops::RangeInclusive<i64> = 13..=18;

/// Refuses a model whose default-domain opset is missing, declared twice or outside [`OPSETS`].
fn check_opset(m: &ModelProto) -> Result<(), OnnxError> {
    let default: Vec<i64> = m
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .collect();
    let (lo, hi) = (OPSETS.start(), OPSETS.end());
    match default.as_slice() {
        [] => Err(OnnxError::Opset(format!(
            "the model declares no ONNX opset (opset_import); export with opset_version \
             {lo} to {hi}"
        ))),
        [v] if OPSETS.contains(v) => Ok(()),
        [v] => Err(OnnxError::Opset(format!(
            "opset {v} is not supported (only {lo} to {hi}); re-export with opset_version in \
             that range"
        ))),
        many => Err(OnnxError::Opset(format!(
            "the ONNX domain is imported {} times (versions {many:?}); expected once",
            many.len()
        ))),
    }
}

/// Refuses a graph where one name means two things: two initializers, two graph inputs or two
/// node outputs of the same name, or a node output that reuses an initializer's or an input's
/// name. Tools disagree on which definition wins (onnxruntime keeps the first initializer, a
/// map keeps the last), so such a file would show different weights to different readers.
/// A graph input may share its name with an initializer: older exporters list every weight
/// as an input too, and the initializer is then the value.
fn check_unique_names(g: &GraphProto) -> Result<(), OnnxError> {
    fn first_repeat<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
        let mut seen = HashSet::new();
        names.into_iter().find(|n| !seen.insert(*n))
    }
    let inits = g.initializer.iter().map(|t| t.name.as_str());
    if let Some(n) = first_repeat(inits.clone()) {
        return Err(OnnxError::Graph(format!(
            "two initializers are named '{}'",
            clean(n)
        )));
    }
    if let Some(n) = first_repeat(g.input.iter().map(|i| i.name.as_str())) {
        return Err(OnnxError::Graph(format!(
            "two graph inputs are named '{}'",
            clean(n)
        )));
    }
    let defined: HashSet<&str> = inits
        .chain(g.input.iter().map(|i| i.name.as_str()))
        .collect();
    let mut outputs = HashSet::new();
    for (idx, node) in g.node.iter().enumerate() {
        for o in node.output.iter().filter(|o| !o.is_empty()) {
            let clash = if defined.contains(o.as_str()) {
                "an initializer or graph input"
            } else if !outputs.insert(o.as_str()) {
                "another node's output"
            } else {
                continue;
            };
            let node = if node.name.is_empty() {
                format!("node #{idx}")
            } else {
                format!("node '{}'", clean(&node.name))
            };
            return Err(OnnxError::Graph(format!(
                "{node} defines '{}', already the name of {clash}",
                clean(o)
            )));
        }
    }
    Ok(())
}

fn parse_range(text: &str) -> Result<[f64; 2], OnnxError> {
    let err = |msg: &str| OnnxError::Metadata {
        key: "verinfer.input_range".into(),
        msg: format!("'{}': {msg}", clean(text)),
    };
    let mut parts = text.split(',').map(str::trim);
    let (Some(lo), Some(hi), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err("expected \"lo,hi\", e.g. \"0,1\""));
    };
    let (Ok(lo), Ok(hi)) = (lo.parse::<f64>(), hi.parse::<f64>()) else {
        return Err(err("expected two numbers \"lo,hi\", e.g. \"0,1\""));
    };
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return Err(err("needs finite lo <= hi"));
    }
    Ok([lo, hi])
}

/// Indices of the nodes the graph output depends on, in file order.
fn live_nodes(g: &GraphProto, output: &str) -> Vec<usize> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for o in &n.output {
            producer.entry(o.as_str()).or_insert(i);
        }
    }
    let mut live = HashSet::new();
    let mut stack = vec![output];
    while let Some(t) = stack.pop() {
        if let Some(&i) = producer.get(t) {
            if live.insert(i) {
                if let Some(n) = g.node.get(i) {
                    stack.extend(n.input.iter().map(String::as_str));
                }
            }
        }
    }
    let mut v: Vec<usize> = live.into_iter().collect();
    v.sort_unstable();
    v
}

const ACTIVATION_HINT: &str = "only quadratic activations can be proved: use x² or x²+x, \
     e.g. `x * x + x` in PyTorch";
const MAXPOOL_HINT: &str = "max-pooling cannot be proved: use sum-pooling, \
     `F.avg_pool2d(x, k) * (k*k)` in PyTorch";

impl<'g> Converter<'g> {
    /// Reads the initializers, the input and the output; returns the per-item input shape.
    fn setup(&mut self, g: &GraphProto) -> Result<Vec<usize>, OnnxError> {
        for t in &g.initializer {
            let c = tensor::decode(t, self.base_dir).map_err(|msg| OnnxError::Tensor {
                name: clean(&t.name),
                msg,
            })?;
            self.values.insert(t.name.clone(), Value::Const(Rc::new(c)));
        }
        let inputs: Vec<_> = g
            .input
            .iter()
            .filter(|i| !self.values.contains_key(&i.name))
            .collect();
        let [input] = inputs.as_slice() else {
            let names: Vec<String> = inputs
                .iter()
                .map(|i| format!("'{}'", clean(&i.name)))
                .collect();
            return Err(OnnxError::Graph(format!(
                "expected exactly one input (besides the weights), found {}: {}",
                inputs.len(),
                names.join(", ")
            )));
        };
        let [output] = g.output.as_slice() else {
            return Err(OnnxError::Graph(format!(
                "expected exactly one output, found {}",
                g.output.len()
            )));
        };
        self.output = output.name.clone();
        let iname = clean(&input.name);
        let tt = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .ok_or_else(|| OnnxError::Graph(format!("input '{iname}' is not a tensor")))?;
        if !matches!(
            tt.elem_type,
            0 | proto::DT_FLOAT | proto::DT_DOUBLE | proto::DT_FLOAT16 | proto::DT_BFLOAT16
        ) {
            return Err(OnnxError::Graph(format!(
                "input '{iname}' has element type {}, expected a float type",
                tt.elem_type
            )));
        }
        let dims = tt
            .shape
            .as_ref()
            .map(|s| s.dim.as_slice())
            .ok_or_else(|| OnnxError::Graph(format!("input '{iname}' has no shape")))?;
        if !(dims.len() == 2 || dims.len() == 4) {
            return Err(OnnxError::Graph(format!(
                "input '{iname}' has rank {}; expected [N, C, H, W] or [N, F]",
                dims.len()
            )));
        }
        self.batch = dims
            .first()
            .and_then(|d| usize::try_from(d.dim_value).ok())
            .filter(|&n| n > 0);
        let mut item = Vec::new();
        for (i, d) in dims.iter().enumerate().skip(1) {
            match usize::try_from(d.dim_value) {
                Ok(v) if v > 0 => item.push(v),
                _ => {
                    return Err(OnnxError::Graph(format!(
                        "input '{iname}': dimension {i} is not a fixed positive size (\"{}\"); \
                         export with a fixed input size (only the batch may be dynamic)",
                        clean(&d.dim_param)
                    )))
                }
            }
        }
        if numel(&item).is_none_or(|n| n > verinfer_circuits::model::MAX_TENSOR_ELEMS) {
            return Err(OnnxError::Graph(format!("input '{iname}' is too large")));
        }
        self.shapes.push(item.clone());
        self.values
            .insert(input.name.clone(), Value::Act(Poly::identity(0)));
        Ok(item)
    }

    // ----- values -----

    fn get(&mut self, ctx: &Ctx, i: usize) -> Result<Option<Value>, OnnxError> {
        let Some(name) = ctx.input_name(i) else {
            return Ok(None);
        };
        let v = self.values.get(name).cloned().ok_or_else(|| {
            ctx.err(format!(
                "input '{}' is not produced by an earlier node or initializer",
                clean(name)
            ))
        })?;
        Ok(Some(v))
    }

    fn req(&mut self, ctx: &Ctx, i: usize) -> Result<Value, OnnxError> {
        self.get(ctx, i)?
            .ok_or_else(|| ctx.err(format!("missing input {i}")))
    }

    fn req_const(&mut self, ctx: &Ctx, i: usize, what: &str) -> Result<Rc<Const>, OnnxError> {
        match self.req(ctx, i)? {
            Value::Const(c) => Ok(c),
            Value::Act(_) => Err(ctx.err(format!(
                "the {what} (input {i}) must be a constant, but it depends on the model input"
            ))),
        }
    }

    fn opt_const(
        &mut self,
        ctx: &Ctx,
        i: usize,
        what: &str,
    ) -> Result<Option<Rc<Const>>, OnnxError> {
        match self.get(ctx, i)? {
            None => Ok(None),
            Some(Value::Const(c)) => Ok(Some(c)),
            Some(Value::Act(_)) => Err(ctx.err(format!(
                "the {what} (input {i}) must be a constant, but it depends on the model input"
            ))),
        }
    }

    fn req_act(&mut self, ctx: &Ctx, i: usize) -> Result<Poly, OnnxError> {
        match self.req(ctx, i)? {
            Value::Act(p) => Ok(p),
            Value::Const(_) => Err(ctx.err(format!(
                "input {i} is a constant; expected a tensor computed from the model input"
            ))),
        }
    }

    fn set(&mut self, ctx: &Ctx, v: Value) -> Result<(), OnnxError> {
        let name = ctx
            .node
            .output
            .first()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ctx.err("the node has no output"))?;
        if let Value::Const(c) = &v {
            tensor::check_dims(&c.dims).map_err(|m| ctx.err(m))?;
            self.folded = self.folded.saturating_add(c.len());
            if self.folded > FOLD_BUDGET {
                return Err(ctx.err("constant folding produces too much data"));
            }
        }
        if self.values.insert(name.clone(), v).is_some() {
            return Err(ctx.err(format!("tensor '{}' is defined twice", clean(name))));
        }
        Ok(())
    }

    fn set_const(&mut self, ctx: &Ctx, c: Option<Const>) -> Result<(), OnnxError> {
        let c = c.ok_or_else(|| ctx.err("cannot fold this operation on its constant inputs"))?;
        self.set(ctx, Value::Const(Rc::new(c)))
    }

    fn set_poly(&mut self, ctx: &Ctx, p: Poly) -> Result<(), OnnxError> {
        if ![p.a, p.b, p.c].iter().all(|x| x.is_finite()) {
            return Err(ctx.err("a coefficient of the elementwise expression is not finite"));
        }
        self.set(ctx, Value::Act(p))
    }

    fn cur(&self) -> usize {
        self.layers.len()
    }

    fn cur_shape(&self) -> Vec<usize> {
        self.shapes.last().cloned().unwrap_or_default()
    }

    fn anchor_shape(&self, p: &Poly) -> Vec<usize> {
        self.shapes.get(p.anchor).cloned().unwrap_or_default()
    }

    // ----- chain building -----

    fn push_layer(&mut self, ctx: &Ctx, layer: Layer) -> Result<(), OnnxError> {
        let out = output_shape(&layer, &self.cur_shape(), self.layers.len())
            .map_err(|e| ctx.err(e.to_string()))?;
        self.layers.push(layer);
        self.shapes.push(out);
        Ok(())
    }

    fn check_current(&self, ctx: &Ctx, p: &Poly) -> Result<(), OnnxError> {
        if p.anchor != self.cur() {
            return Err(ctx.err(
                "reads a tensor that an earlier layer already consumed: branches and residual \
                 connections are not supported (the model must be a single chain of layers)",
            ));
        }
        Ok(())
    }

    fn emit_activation(&mut self, ctx: &Ctx, p: Poly) -> Result<(), OnnxError> {
        let act = match (p.a, p.b, p.c) {
            (a, b, c) if a == 1.0 && b == 0.0 && c == 0.0 => Activation::Square,
            (a, b, c) if a == 1.0 && b == 1.0 && c == 0.0 => Activation::SquarePlusX,
            (a, b, c) => Activation::Quadratic { a, b, c },
        };
        self.push_layer(ctx, Layer::Activation(act))
    }

    /// Folds `k·t + c` (t the current anchor) backward into the last linear layer, through
    /// sum-pools and reshapes. Returns whether it could.
    fn fold_back(&mut self, k: f64, c: f64) -> bool {
        if k == 1.0 && c == 0.0 {
            return true;
        }
        let mut c = c;
        for i in (0..self.layers.len()).rev() {
            let (weight, bias, out) = match &mut self.layers[i] {
                Layer::SumPool(sp) => {
                    c /= (sp.window[0] * sp.window[1]) as f64;
                    continue;
                }
                Layer::Flatten | Layer::Reshape { .. } => continue,
                Layer::Activation(_) => return false,
                Layer::Conv2d(cv) => (&mut cv.weight, &mut cv.bias, cv.out_channels),
                Layer::Dense(d) => (&mut d.weight, &mut d.bias, d.out_features),
            };
            weight.iter_mut().for_each(|w| *w *= k);
            if let Some(b) = bias {
                b.iter_mut().for_each(|x| *x = *x * k + c);
            } else if c != 0.0 {
                *bias = Some(vec![c; out]);
            }
            let op = self.layers[i].op_name();
            if k != 1.0 {
                self.notes.push(format!(
                    "folded the constant factor {k} into the weights of layer {i} ({op})"
                ));
            }
            if c != 0.0 {
                self.notes.push(format!(
                    "folded the constant offset {c} into the bias of layer {i} ({op})"
                ));
            }
            return true;
        }
        false
    }

    /// Prepares the input of a linear layer: emits a pending activation, folds an offset
    /// backward if possible. Returns the factor `k` and the offset `c` left for the layer.
    fn linear_input(&mut self, ctx: &Ctx, p: Poly) -> Result<(f64, f64), OnnxError> {
        self.check_current(ctx, &p)?;
        if p.a != 0.0 {
            self.emit_activation(ctx, p)?;
            return Ok((1.0, 0.0));
        }
        if p.c != 0.0 && self.fold_back(p.b, p.c) {
            return Ok((1.0, 0.0));
        }
        Ok((p.b, p.c))
    }

    /// Prepares the input of a pool or reshape: emits a pending activation; a degree-1
    /// polynomial is carried through. Returns `(k, c)`.
    fn passthrough_input(&mut self, ctx: &Ctx, p: Poly) -> Result<(f64, f64), OnnxError> {
        self.check_current(ctx, &p)?;
        if p.a != 0.0 {
            self.emit_activation(ctx, p)?;
            return Ok((1.0, 0.0));
        }
        Ok((p.b, p.c))
    }

    fn finish_output(&mut self) -> Result<(), OnnxError> {
        let name = self.output.clone();
        let shown = clean(&name);
        let p = match self.values.get(&name) {
            Some(Value::Act(p)) => *p,
            Some(Value::Const(_)) => {
                return Err(OnnxError::Graph(format!(
                    "the output '{shown}' does not depend on the input"
                )))
            }
            None => {
                return Err(OnnxError::Graph(format!(
                    "the output '{shown}' is not produced by any node"
                )))
            }
        };
        if p.anchor != self.cur() {
            return Err(OnnxError::Graph(format!(
                "the output '{shown}' is not computed from the last layer: branches are not \
                 supported"
            )));
        }
        if p.a != 0.0 {
            let node = NodeProto {
                name: format!("output '{shown}'"),
                ..NodeProto::default()
            };
            let ctx = Ctx::new(&node, 0);
            return self.emit_activation(&ctx, p);
        }
        if !self.fold_back(p.b, p.c) {
            return Err(OnnxError::Graph(format!(
                "the output '{shown}' is {}·t + {} where t is the output of the last layer: this \
                 factor cannot be folded into a linear layer (is there an AveragePool or a scalar \
                 Mul after the last activation? use sum-pooling `F.avg_pool2d(x, k) * (k*k)` or \
                 end with a linear layer)",
                p.b, p.c
            )));
        }
        Ok(())
    }

    /// Applies a per-channel affine map to the output of the last linear layer: for each output
    /// channel `o`, `f(o, b[o])` gives the weight factor and the new bias.
    fn fold_channelwise(
        &mut self,
        ctx: &Ctx,
        p: Poly,
        what: &str,
        f: &dyn Fn(usize, f64) -> (f64, f64),
    ) -> Result<Poly, OnnxError> {
        let anchor = self.cur();
        let linear = matches!(
            self.layers.last(),
            Some(Layer::Conv2d(_)) | Some(Layer::Dense(_))
        );
        if p.anchor != anchor || !linear || p.a != 0.0 {
            return Err(ctx.err(format!(
                "{what} must directly follow a Conv, Gemm or MatMul (it is folded into that layer)"
            )));
        }
        let shared = self.values.iter().any(|(name, v)| {
            matches!(v, Value::Act(q) if q.anchor == anchor)
                && self.uses.get(name).copied().unwrap_or(0) > 0
        });
        if shared {
            return Err(ctx.err(format!(
                "{what} is folded into the preceding layer, but that layer's output is also used \
                 elsewhere"
            )));
        }
        if !self.fold_back(p.b, p.c) {
            return Err(ctx.err("cannot fold into the preceding layer"));
        }
        let Some(layer) = self.layers.last_mut() else {
            return Err(ctx.err("no preceding layer"));
        };
        let (weight, bias, out) = match layer {
            Layer::Conv2d(cv) => (&mut cv.weight, &mut cv.bias, cv.out_channels),
            Layer::Dense(d) => (&mut d.weight, &mut d.bias, d.out_features),
            _ => return Err(ctx.err("no preceding linear layer")),
        };
        let per = (weight.len() / out.max(1)).max(1);
        let b = bias.get_or_insert_with(|| vec![0.0; out]);
        for (o, (bo, ws)) in b.iter_mut().zip(weight.chunks_mut(per)).enumerate() {
            let (s, nb) = f(o, *bo);
            ws.iter_mut().for_each(|w| *w *= s);
            *bo = nb;
        }
        Ok(Poly::identity(anchor))
    }

    /// The per-channel values of a constant broadcast against an activation of per-item shape
    /// `item` (numpy rules with the batch axis in front), if it varies along channels only.
    fn channel_vector(&self, ctx: &Ctx, k: &Const, item: &[usize]) -> Result<Vec<f64>, OnnxError> {
        let full_rank = item.len() + 1;
        let ch = item.first().copied().unwrap_or(1);
        let r = k.dims.len();
        let bad =
            || {
                ctx.err(format!(
                "constant of shape {:?} does not broadcast per channel against an activation of \
                 shape [N, {}]; only scalars and per-channel constants are supported",
                k.dims,
                item.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            ))
            };
        if r > full_rank {
            return Err(bad());
        }
        for (j, &d) in k.dims.iter().enumerate() {
            let axis = full_rank - r + j;
            if d != 1 && axis != 1 {
                return Err(bad());
            }
            if axis == 1 && d != 1 && d != ch {
                return Err(bad());
            }
        }
        let v = k.to_f64();
        Ok(match v.as_slice() {
            [x] => vec![*x; ch],
            _ if v.len() == ch => v,
            _ => return Err(bad()),
        })
    }

    // ----- nodes -----

    fn node(&mut self, node: &NodeProto, idx: usize) -> Result<(), OnnxError> {
        let ctx = Ctx::new(node, idx);
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(
                ctx.unsupported(format!("custom operator domain '{}'", clean(&node.domain)))
            );
        }
        for name in node.input.iter().filter(|s| !s.is_empty()) {
            if let Some(u) = self.uses.get_mut(name) {
                *u = u.saturating_sub(1);
            }
        }
        match node.op_type.as_str() {
            "Identity" | "Dropout" => {
                let v = self.req(&ctx, 0)?;
                self.set(&ctx, v)
            }
            "Constant" => self.constant(&ctx),
            "ConstantOfShape" => self.constant_of_shape(&ctx),
            "Shape" => self.shape(&ctx),
            "Gather" => self.gather(&ctx),
            "Slice" => self.slice(&ctx),
            "Concat" => self.concat(&ctx),
            "Cast" => self.cast(&ctx),
            "Transpose" => self.transpose(&ctx),
            "Unsqueeze" | "Squeeze" => self.squeeze(&ctx),
            "Reshape" => self.reshape(&ctx),
            "Flatten" => self.flatten(&ctx),
            "Add" | "Sub" | "Mul" | "Div" => self.binary(&ctx),
            "Neg" => match self.req(&ctx, 0)? {
                Value::Act(p) => self.set_poly(&ctx, p.scale(-1.0)),
                Value::Const(c) => {
                    let data = match &c.data {
                        Data::F(v) => Data::F(v.iter().map(|x| -x).collect()),
                        Data::I(v) => Data::I(v.iter().map(|x| x.saturating_neg()).collect()),
                    };
                    let neg = Const {
                        dims: c.dims.clone(),
                        data,
                    };
                    self.set_const(&ctx, Some(neg))
                }
            },
            "Sqrt" | "Reciprocal" => {
                let c = self.req_const(&ctx, 0, "operand").map_err(|_| {
                    ctx.unsupported(format!("{} of activations cannot be proved", ctx.op))
                })?;
                let f: fn(f64) -> f64 = if node.op_type == "Sqrt" {
                    f64::sqrt
                } else {
                    f64::recip
                };
                let out = Const::floats(c.dims.clone(), c.to_f64().into_iter().map(f).collect());
                self.set_const(&ctx, Some(out))
            }
            "Pow" => self.pow(&ctx),
            "Conv" => self.conv(&ctx),
            "Gemm" => self.gemm(&ctx),
            "MatMul" => self.matmul(&ctx),
            "BatchNormalization" => self.batchnorm(&ctx),
            "AveragePool" => self.avgpool(&ctx),
            "GlobalAveragePool" => {
                let p = self.req_act(&ctx, 0)?;
                self.global_pool(&ctx, p, true, true)
            }
            "ReduceMean" | "ReduceSum" => self.reduce(&ctx),
            "Softmax" | "LogSoftmax" => self.softmax(&ctx),
            "Relu" | "LeakyRelu" | "PRelu" | "Sigmoid" | "HardSigmoid" | "Tanh" | "Gelu"
            | "Elu" | "Selu" | "Celu" | "Softplus" | "Softsign" | "HardSwish" | "Mish" | "Erf"
            | "Clip" | "ThresholdedRelu" | "Exp" | "Log" | "Abs" | "Sign" | "Sin" | "Cos"
            | "Max" | "Min" => Err(ctx.unsupported(ACTIVATION_HINT)),
            "MaxPool" | "GlobalMaxPool" | "LpPool" | "GlobalLpPool" | "MaxRoiPool" => {
                Err(ctx.unsupported(MAXPOOL_HINT))
            }
            _ => Err(ctx.unsupported(
                "unsupported op (supported: Conv, Gemm, MatMul, BatchNormalization, AveragePool, \
                 GlobalAveragePool, Flatten, Reshape, quadratic Mul/Add/Sub/Pow, Identity, \
                 Dropout, trailing Softmax, and constant shape computations)",
            )),
        }
    }

    fn constant(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let a = ctx
            .node
            .attribute
            .first()
            .ok_or_else(|| ctx.err("Constant without a value"))?;
        let c = match a.name.as_str() {
            "value" => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| ctx.err("'value' has no tensor"))?;
                tensor::decode(t, self.base_dir).map_err(|m| ctx.err(m))?
            }
            "value_float" => Const::floats(vec![], vec![f64::from(a.f)]),
            "value_floats" => Const::floats(
                vec![a.floats.len()],
                a.floats.iter().map(|&x| f64::from(x)).collect(),
            ),
            "value_int" => Const::ints(vec![], vec![a.i]),
            "value_ints" => Const::ints(vec![a.ints.len()], a.ints.clone()),
            other => {
                return Err(ctx.unsupported(format!(
                    "Constant attribute '{}' is not supported",
                    clean(other)
                )))
            }
        };
        self.set(ctx, Value::Const(Rc::new(c)))
    }

    fn constant_of_shape(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let s = self.req_const(ctx, 0, "shape")?;
        let dims = s
            .to_i64()
            .as_deref()
            .and_then(to_usizes)
            .ok_or_else(|| ctx.err("the shape must be non-negative integers"))?;
        let n = numel(&dims)
            .filter(|&n| n <= MAX_FOLD)
            .ok_or_else(|| ctx.err("the shape is too large"))?;
        let value = match ctx.attr("value").and_then(|a| a.t.as_ref()) {
            Some(t) => tensor::decode(t, None).map_err(|m| ctx.err(m))?,
            None => Const::floats(vec![1], vec![0.0]),
        };
        let out = match &value.data {
            Data::F(v) if v.len() == 1 => Const::floats(dims, vec![v[0]; n]),
            Data::I(v) if v.len() == 1 => Const::ints(dims, vec![v[0]; n]),
            _ => return Err(ctx.err("'value' must hold one element")),
        };
        self.set_const(ctx, Some(out))
    }

    fn shape(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let full: Vec<i64> = match self.req(ctx, 0)? {
            Value::Const(c) => c.dims.iter().map(|&d| d as i64).collect(),
            Value::Act(p) => std::iter::once(BATCH)
                .chain(self.anchor_shape(&p).iter().map(|&d| d as i64))
                .collect(),
        };
        let r = full.len() as i64;
        let clampi = |x: i64| {
            let x = if x < 0 { x + r } else { x };
            x.clamp(0, r) as usize
        };
        let start = clampi(ctx.attr_i("start", 0));
        let end = ctx.attr("end").map_or(full.len(), |a| clampi(a.i));
        let v: Vec<i64> = full.get(start..end.max(start)).unwrap_or(&[]).to_vec();
        self.set_const(ctx, Some(Const::ints(vec![v.len()], v)))
    }

    fn gather(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let data = match self.req(ctx, 0)? {
            Value::Const(c) => c,
            Value::Act(_) => {
                return Err(ctx.unsupported("Gather on activations (indexing) cannot be proved"))
            }
        };
        let idx = self.req_const(ctx, 1, "indices")?;
        let axis = norm_axis(ctx.attr_i("axis", 0), data.dims.len())
            .ok_or_else(|| ctx.err("axis out of range"))?;
        let d = data.dims[axis] as i64;
        let list: Vec<usize> = idx
            .to_i64()
            .unwrap_or_default()
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + d } else { i };
                usize::try_from(j).ok().filter(|&j| (j as i64) < d)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| ctx.err("index out of range"))?;
        if list.len() != idx.len() {
            return Err(ctx.err("indices must be integers"));
        }
        let mut sel: Vec<Vec<usize>> = data.dims.iter().map(|&n| (0..n).collect()).collect();
        sel[axis] = list;
        let picked = data.select(&sel);
        let out = picked.map(|p| {
            let mut dims = data.dims[..axis].to_vec();
            dims.extend_from_slice(&idx.dims);
            dims.extend_from_slice(&data.dims[axis + 1..]);
            p.with_dims(dims)
        });
        self.set_const(ctx, out)
    }

    fn slice(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let data = match self.req(ctx, 0)? {
            Value::Const(c) => c,
            Value::Act(_) => return Err(ctx.unsupported("Slice of activations cannot be proved")),
        };
        let ints = |c: Option<Rc<Const>>| c.and_then(|c| c.to_i64());
        let (starts, ends, axes, steps) = if let Some(s) = ctx.attr_ints("starts") {
            (
                Some(s.to_vec()),
                ctx.attr_ints("ends").map(<[i64]>::to_vec),
                ctx.attr_ints("axes").map(<[i64]>::to_vec),
                None,
            )
        } else {
            (
                ints(self.opt_const(ctx, 1, "starts")?),
                ints(self.opt_const(ctx, 2, "ends")?),
                ints(self.opt_const(ctx, 3, "axes")?),
                ints(self.opt_const(ctx, 4, "steps")?),
            )
        };
        let (Some(starts), Some(ends)) = (starts, ends) else {
            return Err(ctx.err("starts and ends must be integer constants"));
        };
        let r = data.dims.len();
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(ctx.err("starts, ends, axes and steps differ in length"));
        }
        let mut sel: Vec<Vec<usize>> = data.dims.iter().map(|&n| (0..n).collect()).collect();
        for i in 0..starts.len() {
            let axis = norm_axis(axes[i], r).ok_or_else(|| ctx.err("axis out of range"))?;
            let d = data.dims[axis] as i128;
            let (mut s, mut e, st) = (starts[i] as i128, ends[i] as i128, steps[i] as i128);
            if st == 0 {
                return Err(ctx.err("step 0"));
            }
            if s < 0 {
                s += d;
            }
            if e < 0 {
                e += d;
            }
            let mut list = Vec::new();
            if st > 0 {
                let (s, e) = (s.clamp(0, d), e.clamp(0, d));
                let mut j = s;
                while j < e {
                    list.push(j as usize);
                    j += st;
                }
            } else if d > 0 {
                let (s, e) = (s.clamp(0, d - 1), e.clamp(-1, d - 1));
                let mut j = s;
                while j > e {
                    list.push(j as usize);
                    j += st;
                }
            }
            sel[axis] = list;
        }
        let out = data.select(&sel);
        self.set_const(ctx, out)
    }

    fn concat(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let mut parts = Vec::new();
        for i in 0..ctx.node.input.len() {
            match self.get(ctx, i)? {
                Some(Value::Const(c)) => parts.push((*c).clone()),
                Some(Value::Act(_)) => {
                    return Err(ctx.unsupported(
                        "Concat of activations (torch.cat) is not supported: the model must be a \
                         single chain of layers",
                    ))
                }
                None => {}
            }
        }
        let rank = parts.first().map_or(0, |p| p.dims.len());
        let axis =
            norm_axis(ctx.attr_i("axis", 0), rank).ok_or_else(|| ctx.err("axis out of range"))?;
        let out = Const::concat(&parts, axis);
        self.set_const(ctx, out)
    }

    fn cast(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let to = ctx.attr_i("to", 0);
        let float = matches!(
            to as i32,
            proto::DT_FLOAT | proto::DT_DOUBLE | proto::DT_FLOAT16 | proto::DT_BFLOAT16
        );
        match self.req(ctx, 0)? {
            Value::Act(p) if float => self.set_poly(ctx, p),
            Value::Act(_) => {
                Err(ctx.unsupported("casting activations to an integer type cannot be proved"))
            }
            Value::Const(c) if float => {
                let out = Const::floats(c.dims.clone(), c.to_f64());
                self.set_const(ctx, Some(out))
            }
            Value::Const(c) => {
                let v: Vec<i64> = match &c.data {
                    Data::I(v) => v.clone(),
                    Data::F(v) => v
                        .iter()
                        .map(|&x| if x.is_finite() { x.trunc() as i64 } else { 0 })
                        .collect(),
                };
                let v = if to as i32 == proto::DT_BOOL {
                    v.iter().map(|&x| i64::from(x != 0)).collect()
                } else {
                    v
                };
                self.set_const(ctx, Some(Const::ints(c.dims.clone(), v)))
            }
        }
    }

    fn transpose(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        match self.req(ctx, 0)? {
            Value::Const(c) => {
                let r = c.dims.len();
                let perm = match ctx.attr_ints("perm") {
                    Some(p) => to_usizes(p).ok_or_else(|| ctx.err("bad perm"))?,
                    None => (0..r).rev().collect(),
                };
                let out = c.transpose(&perm);
                self.set_const(ctx, out)
            }
            Value::Act(_) => Err(ctx.unsupported("Transpose of activations is not supported")),
        }
    }

    /// The axes of Squeeze / Unsqueeze / Reduce*: attribute (older opsets) or input 1.
    fn axes(&mut self, ctx: &Ctx) -> Result<Option<Vec<i64>>, OnnxError> {
        if let Some(a) = ctx.attr_ints("axes") {
            return Ok(Some(a.to_vec()));
        }
        match self.opt_const(ctx, 1, "axes")? {
            Some(c) => Ok(Some(
                c.to_i64().ok_or_else(|| ctx.err("axes must be integers"))?,
            )),
            None => Ok(None),
        }
    }

    fn squeeze(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let unsqueeze = ctx.node.op_type == "Unsqueeze";
        let x = self.req(ctx, 0)?;
        let axes = self.axes(ctx)?;
        let is_act = matches!(x, Value::Act(_));
        let full: Vec<usize> = match &x {
            Value::Const(c) => c.dims.clone(),
            Value::Act(p) => std::iter::once(1).chain(self.anchor_shape(p)).collect(),
        };
        let rank = if unsqueeze {
            full.len() + axes.as_ref().map_or(0, Vec::len)
        } else {
            full.len()
        };
        let norm: Vec<usize> = match axes {
            Some(axes) => {
                let mut norm: Vec<usize> = axes
                    .iter()
                    .map(|&a| norm_axis(a, rank))
                    .collect::<Option<_>>()
                    .ok_or_else(|| ctx.err("axis out of range"))?;
                norm.sort_unstable();
                let n = norm.len();
                norm.dedup();
                if norm.len() != n {
                    return Err(ctx.err("repeated axis"));
                }
                norm
            }
            None if !unsqueeze && !is_act => (0..full.len()).filter(|&i| full[i] == 1).collect(),
            None => {
                return Err(ctx.err(
                    "no axes given, which is ambiguous about the batch dimension; give the axes \
                     (e.g. `x.squeeze(-1)`)",
                ))
            }
        };
        if is_act && norm.contains(&0) {
            return Err(
                ctx.err("only per-item reshapes are supported (the batch axis must stay first)")
            );
        }
        let new: Vec<usize> = if unsqueeze {
            let mut it = full.iter();
            (0..rank)
                .map(|i| {
                    if norm.contains(&i) {
                        1
                    } else {
                        it.next().copied().unwrap_or(1)
                    }
                })
                .collect()
        } else {
            if norm.iter().any(|&i| full[i] != 1) {
                return Err(ctx.err("cannot squeeze an axis whose size is not 1"));
            }
            (0..full.len())
                .filter(|i| !norm.contains(i))
                .map(|i| full[i])
                .collect()
        };
        match x {
            Value::Const(c) => self.set_const(ctx, Some(c.with_dims(new))),
            Value::Act(p) => {
                let item = new.get(1..).unwrap_or(&[]).to_vec();
                self.reshape_act(ctx, p, item)
            }
        }
    }

    /// Moves a polynomial to a new per-item shape (Flatten / Reshape layer or nothing).
    fn reshape_act(&mut self, ctx: &Ctx, p: Poly, item: Vec<usize>) -> Result<(), OnnxError> {
        if item == self.anchor_shape(&p) {
            return self.set_poly(ctx, p);
        }
        if item.is_empty() || item.len() > 3 {
            return Err(ctx.err(format!(
                "per-item shape {item:?} is not supported (1 to 3 dimensions)"
            )));
        }
        let (k, c) = self.passthrough_input(ctx, p)?;
        let layer = if item.len() == 1 {
            Layer::Flatten
        } else {
            Layer::Reshape { shape: item }
        };
        self.push_layer(ctx, layer)?;
        let anchor = self.cur();
        self.set_poly(
            ctx,
            Poly {
                anchor,
                a: 0.0,
                b: k,
                c,
            },
        )
    }

    fn reshape(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let x = self.req(ctx, 0)?;
        let target = self
            .req_const(ctx, 1, "shape")?
            .to_i64()
            .ok_or_else(|| ctx.err("the shape must be integers"))?;
        let allowzero = ctx.attr_i("allowzero", 0) != 0;
        match x {
            Value::Const(c) => {
                let dims = resolve_shape(&c.dims, &target, allowzero)
                    .ok_or_else(|| ctx.err(format!("cannot reshape {:?} to {target:?}", c.dims)))?;
                self.set_const(ctx, Some(c.with_dims(dims)))
            }
            Value::Act(p) => {
                let cur = self.anchor_shape(&p);
                let item = self.resolve_item_shape(&cur, &target).ok_or_else(|| {
                    ctx.err(format!(
                        "cannot reshape [N, {}] to {}: the batch axis must stay first and the \
                         per-item size unchanged",
                        cur.iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        show_shape(&target)
                    ))
                })?;
                self.reshape_act(ctx, p, item)
            }
        }
    }

    /// The per-item shape of a `Reshape` of an activation `[N, cur...]` to `target`.
    fn resolve_item_shape(&self, cur: &[usize], target: &[i64]) -> Option<Vec<usize>> {
        let (&d0, rest) = target.split_first()?;
        let batch_ok =
            d0 == BATCH || d0 == 0 || d0 == -1 || self.batch.is_some_and(|n| d0 == n as i64);
        if !batch_ok {
            return None;
        }
        // With the batch inferred, the per-item dimensions must all be given.
        if d0 == -1 && rest.contains(&-1) {
            return None;
        }
        resolve_shape(cur, rest, false)
    }

    fn flatten(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let x = self.req(ctx, 0)?;
        let axis = ctx.attr_i("axis", 1);
        match x {
            Value::Const(c) => {
                let a = if axis < 0 {
                    axis + c.dims.len() as i64
                } else {
                    axis
                };
                let a = usize::try_from(a)
                    .ok()
                    .filter(|&a| a <= c.dims.len())
                    .ok_or_else(|| ctx.err("axis out of range"))?;
                let dims = vec![
                    numel(&c.dims[..a]).unwrap_or(0),
                    numel(&c.dims[a..]).unwrap_or(0),
                ];
                self.set_const(ctx, Some(c.with_dims(dims)))
            }
            Value::Act(p) => {
                let shape = self.anchor_shape(&p);
                let rank = shape.len() as i64 + 1;
                let a = if axis < 0 { axis + rank } else { axis };
                if a != 1 {
                    return Err(ctx.err(format!(
                        "Flatten with axis {axis} mixes the batch axis; use `torch.flatten(x, 1)`"
                    )));
                }
                let n = numel(&shape).unwrap_or(0);
                self.reshape_act(ctx, p, vec![n])
            }
        }
    }

    fn binary(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let op = ctx.node.op_type.as_str();
        let x = self.req(ctx, 0)?;
        let y = self.req(ctx, 1)?;
        match (x, y) {
            (Value::Const(u), Value::Const(v)) => {
                if [&u, &v]
                    .iter()
                    .any(|c| matches!(&c.data, Data::I(d) if d.contains(&BATCH)))
                {
                    return Err(ctx.err("arithmetic on the batch size is not supported"));
                }
                let out = match op {
                    "Add" => tensor::broadcast(&u, &v, |a, b| a + b, i64::checked_add),
                    "Sub" => tensor::broadcast(&u, &v, |a, b| a - b, i64::checked_sub),
                    "Mul" => tensor::broadcast(&u, &v, |a, b| a * b, i64::checked_mul),
                    _ => tensor::broadcast(&u, &v, |a, b| a / b, i64::checked_div),
                };
                self.set_const(ctx, out)
            }
            (Value::Act(p), Value::Act(q)) => {
                if p.anchor != q.anchor {
                    return Err(ctx.err(
                        "combines the outputs of two different layers: residual connections and \
                         branches are not supported",
                    ));
                }
                let r = match op {
                    "Add" => Poly {
                        a: p.a + q.a,
                        b: p.b + q.b,
                        c: p.c + q.c,
                        ..p
                    },
                    "Sub" => Poly {
                        a: p.a - q.a,
                        b: p.b - q.b,
                        c: p.c - q.c,
                        ..p
                    },
                    "Mul" => {
                        let t4 = p.a * q.a;
                        let t3 = p.a * q.b + p.b * q.a;
                        if t4 != 0.0 || t3 != 0.0 {
                            return Err(ctx.err(
                                "the product has degree above 2; only quadratic activations \
                                 (a·x² + b·x + c) are supported",
                            ));
                        }
                        Poly {
                            a: p.a * q.c + p.b * q.b + p.c * q.a,
                            b: p.b * q.c + p.c * q.b,
                            c: p.c * q.c,
                            ..p
                        }
                    }
                    _ => {
                        return Err(ctx.unsupported("division by an activation is not a polynomial"))
                    }
                };
                self.set_poly(ctx, r)
            }
            (Value::Act(p), Value::Const(k)) => {
                if let Some(s) = k.scalar() {
                    let r = match op {
                        "Add" => p.shift(s),
                        "Sub" => p.shift(-s),
                        "Mul" => p.scale(s),
                        _ if s == 0.0 => return Err(ctx.err("division by zero")),
                        _ => p.scale(1.0 / s),
                    };
                    return self.set_poly(ctx, r);
                }
                let vec = self.channel_vector(ctx, &k, &self.anchor_shape(&p))?;
                let what = format!("{op} of a per-channel constant");
                let r = match op {
                    "Add" => self.fold_channelwise(ctx, p, &what, &|o, b| (1.0, b + vec[o]))?,
                    "Sub" => self.fold_channelwise(ctx, p, &what, &|o, b| (1.0, b - vec[o]))?,
                    "Mul" => self.fold_channelwise(ctx, p, &what, &|o, b| (vec[o], b * vec[o]))?,
                    _ => {
                        if vec.contains(&0.0) {
                            return Err(ctx.err("division by zero"));
                        }
                        self.fold_channelwise(ctx, p, &what, &|o, b| (1.0 / vec[o], b / vec[o]))?
                    }
                };
                self.set_poly(ctx, r)
            }
            (Value::Const(k), Value::Act(p)) => {
                if op == "Div" {
                    return Err(ctx.unsupported("division by an activation is not a polynomial"));
                }
                if let Some(s) = k.scalar() {
                    let r = match op {
                        "Add" => p.shift(s),
                        "Sub" => p.scale(-1.0).shift(s),
                        _ => p.scale(s),
                    };
                    return self.set_poly(ctx, r);
                }
                let vec = self.channel_vector(ctx, &k, &self.anchor_shape(&p))?;
                let what = format!("{op} of a per-channel constant");
                let r = match op {
                    "Add" => self.fold_channelwise(ctx, p, &what, &|o, b| (1.0, b + vec[o]))?,
                    "Sub" => self.fold_channelwise(ctx, p, &what, &|o, b| (-1.0, vec[o] - b))?,
                    _ => self.fold_channelwise(ctx, p, &what, &|o, b| (vec[o], b * vec[o]))?,
                };
                self.set_poly(ctx, r)
            }
        }
    }

    fn pow(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let x = self.req(ctx, 0)?;
        let e = self.req_const(ctx, 1, "exponent")?;
        let exp = e
            .scalar()
            .ok_or_else(|| ctx.err("the exponent must be a single number"))?;
        match x {
            Value::Const(c) => {
                let out = Const::floats(
                    c.dims.clone(),
                    c.to_f64().iter().map(|v| v.powf(exp)).collect(),
                );
                self.set_const(ctx, Some(out))
            }
            Value::Act(p) if exp == 1.0 => self.set_poly(ctx, p),
            Value::Act(p) if exp == 2.0 => {
                if p.a != 0.0 {
                    return Err(ctx.err(
                        "squaring a quadratic gives degree 4; only quadratic activations are \
                         supported",
                    ));
                }
                self.set_poly(
                    ctx,
                    Poly {
                        a: p.b * p.b,
                        b: 2.0 * p.b * p.c,
                        c: p.c * p.c,
                        ..p
                    },
                )
            }
            Value::Act(_) => Err(ctx.unsupported(format!(
                "exponent {exp}: only x**2 is supported (use x² or x²+x)"
            ))),
        }
    }

    /// A float weight tensor of the expected rank.
    fn weight(
        &mut self,
        ctx: &Ctx,
        i: usize,
        rank: usize,
        what: &str,
    ) -> Result<Rc<Const>, OnnxError> {
        let w = self.req_const(ctx, i, what)?;
        if !w.is_float() {
            return Err(ctx.err(format!(
                "the {what} must be floating point, got an integer tensor"
            )));
        }
        if w.dims.len() != rank || w.dims.contains(&0) {
            return Err(ctx.err(format!(
                "the {what} has shape {:?}, expected rank {rank} and no empty dimension",
                w.dims
            )));
        }
        Ok(w)
    }

    fn opt_bias(&mut self, ctx: &Ctx, i: usize, out: usize) -> Result<Option<Vec<f64>>, OnnxError> {
        let Some(b) = self.opt_const(ctx, i, "bias")? else {
            return Ok(None);
        };
        if !b.is_float() {
            return Err(ctx.err("the bias must be floating point"));
        }
        let v = b.to_f64();
        let shape_ok = match b.dims.as_slice() {
            [n] | [1, n] => *n == out || *n == 1,
            [] => true,
            _ => false,
        };
        match v.as_slice() {
            [x] if shape_ok => Ok(Some(vec![*x; out])),
            _ if shape_ok && v.len() == out => Ok(Some(v)),
            _ => Err(ctx.err(format!("the bias has shape {:?}, expected [{out}]", b.dims))),
        }
    }

    fn conv(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let p = self.req_act(ctx, 0)?;
        let w = self.weight(ctx, 1, 4, "weight")?;
        let (out, wc, kh, kw) = (w.dims[0], w.dims[1], w.dims[2], w.dims[3]);
        let bias = self.opt_bias(ctx, 2, out)?;
        if ctx.attr_i("group", 1) != 1 {
            return Err(
                ctx.unsupported("grouped or depthwise convolution (group > 1); use groups=1")
            );
        }
        if ctx
            .attr_ints("dilations")
            .is_some_and(|d| d.iter().any(|&x| x != 1))
        {
            return Err(ctx.unsupported("dilated convolution; use dilation=1"));
        }
        if let Some(ks) = ctx.attr_ints("kernel_shape") {
            if ks != [kh as i64, kw as i64] {
                return Err(ctx.err(format!(
                    "kernel_shape {ks:?} does not match the weight shape {:?}",
                    w.dims
                )));
            }
        }
        let stride = match ctx.attr_ints("strides") {
            None => [1, 1],
            Some(&[a, b]) if a > 0 && b > 0 => [a as usize, b as usize],
            Some(s) => return Err(ctx.err(format!("strides {s:?}: expected two positive values"))),
        };
        let shape = self.anchor_shape(&p);
        let [c, h, wd] = shape.as_slice() else {
            return Err(ctx.err(format!(
                "expects an image [N, C, H, W], got per-item shape {shape:?}"
            )));
        };
        if *c != wc {
            return Err(ctx.err(format!(
                "the weight expects {wc} input channels, the input has {c}"
            )));
        }
        let auto = ctx.attr_s("auto_pad").unwrap_or_default();
        let padding = match auto.as_str() {
            "" | "NOTSET" => match ctx.attr_ints("pads") {
                None => [0, 0],
                Some(&[t, l, b, r]) if t == b && l == r && t >= 0 && l >= 0 => {
                    [t as usize, l as usize]
                }
                Some(pads) => {
                    return Err(ctx.err(format!(
                        "asymmetric padding {pads:?} (top, left, bottom, right): only equal \
                         padding on both sides is supported (e.g. padding=1 in PyTorch)"
                    )))
                }
            },
            "VALID" => [0, 0],
            "SAME_UPPER" | "SAME_LOWER" => {
                let same = |n: usize, k: usize, s: usize| -> Option<usize> {
                    let outn = n.div_ceil(s);
                    let total = ((outn - 1) * s + k).saturating_sub(n);
                    (total % 2 == 0).then_some(total / 2)
                };
                match (same(*h, kh, stride[0]), same(*wd, kw, stride[1])) {
                    (Some(a), Some(b)) => [a, b],
                    _ => {
                        return Err(ctx.err(format!(
                            "auto_pad {auto} needs asymmetric padding here; only equal padding on \
                             both sides is supported"
                        )))
                    }
                }
            }
            other => return Err(ctx.err(format!("unknown auto_pad '{}'", clean(other)))),
        };
        let (k, off) = self.linear_input(ctx, p)?;
        if off != 0.0 && padding != [0, 0] {
            return Err(ctx.err(format!(
                "its input is shifted by the constant {off}, which cannot be folded into a \
                 padded convolution (the zero padding would not be shifted); fold the offset \
                 into the previous layer or normalize the input outside the model"
            )));
        }
        let (weight, bias) = self.fold_input_affine(ctx, &w.to_f64(), out, bias, k, off, "conv2d");
        self.push_linear(
            ctx,
            Layer::Conv2d(Conv2d {
                in_channels: wc,
                out_channels: out,
                kernel: [kh, kw],
                stride,
                padding,
                weight,
                bias,
            }),
        )
    }

    /// Folds an input `k·x + off` into a linear layer's weights `[out, per]` and bias:
    /// `W' = k·W`, `b' = b + off·ΣW[o]`.
    #[allow(clippy::too_many_arguments)]
    fn fold_input_affine(
        &mut self,
        ctx: &Ctx,
        weight: &[f64],
        out: usize,
        bias: Option<Vec<f64>>,
        k: f64,
        off: f64,
        op: &str,
    ) -> (Vec<f64>, Option<Vec<f64>>) {
        let per = (weight.len() / out.max(1)).max(1);
        let mut bias = bias;
        if off != 0.0 {
            let b = bias.get_or_insert_with(|| vec![0.0; out]);
            for (bo, ws) in b.iter_mut().zip(weight.chunks(per)) {
                *bo += off * ws.iter().sum::<f64>();
            }
            self.notes.push(format!(
                "folded the constant input offset {off} into the bias of layer {} ({op}, {})",
                self.cur(),
                ctx.label
            ));
        }
        if k != 1.0 {
            self.notes.push(format!(
                "folded the constant factor {k} into the weights of layer {} ({op}, {})",
                self.cur(),
                ctx.label
            ));
        }
        (weight.iter().map(|x| x * k).collect(), bias)
    }

    /// Appends a linear layer; its output is the new anchor.
    fn push_linear(&mut self, ctx: &Ctx, layer: Layer) -> Result<(), OnnxError> {
        self.push_layer(ctx, layer)?;
        let a = self.cur();
        self.set_poly(ctx, Poly::identity(a))
    }

    /// Appends a Dense layer with weights `[out, in]` (row-major) on the polynomial `p`.
    fn dense(
        &mut self,
        ctx: &Ctx,
        p: Poly,
        weight: Vec<f64>,
        out: usize,
        bias: Option<Vec<f64>>,
    ) -> Result<(), OnnxError> {
        let shape = self.anchor_shape(&p);
        let inf = weight.len() / out.max(1);
        if shape.len() != 1 {
            return Err(ctx.err(format!(
                "expects a flat input [N, F], got per-item shape {shape:?}; flatten first \
                 (`torch.flatten(x, 1)`)"
            )));
        }
        if shape[0] != inf {
            return Err(ctx.err(format!(
                "the weight expects {inf} input features, the input has {}",
                shape[0]
            )));
        }
        let (k, off) = self.linear_input(ctx, p)?;
        let (weight, bias) = self.fold_input_affine(ctx, &weight, out, bias, k, off, "dense");
        self.push_linear(
            ctx,
            Layer::Dense(Dense {
                in_features: inf,
                out_features: out,
                weight,
                bias,
            }),
        )
    }

    fn gemm(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let p = self.req_act(ctx, 0)?;
        let w = self.weight(ctx, 1, 2, "weight (B)")?;
        if ctx.attr_i("transA", 0) != 0 {
            return Err(ctx.err("transA = 1 is not supported"));
        }
        let alpha = ctx.attr_f("alpha", 1.0);
        let beta = ctx.attr_f("beta", 1.0);
        let trans_b = ctx.attr_i("transB", 0) != 0;
        let (weight, out) = if trans_b {
            (w.to_f64(), w.dims[0])
        } else {
            let t = w.transpose(&[1, 0]).ok_or_else(|| ctx.err("bad weight"))?;
            (t.to_f64(), w.dims[1])
        };
        let bias = self.opt_bias(ctx, 2, out)?;
        let weight = weight.iter().map(|x| x * alpha).collect();
        let bias = bias.map(|b| b.iter().map(|x| x * beta).collect());
        self.dense(ctx, p, weight, out, bias)
    }

    fn matmul(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let p =
            match self.req(ctx, 0)? {
                Value::Act(p) => p,
                Value::Const(_) => return Err(ctx.err(
                    "expects the activation as the first operand and a constant weight [in, out] \
                     as the second",
                )),
            };
        let w = self.weight(ctx, 1, 2, "weight")?;
        let t = w.transpose(&[1, 0]).ok_or_else(|| ctx.err("bad weight"))?;
        self.dense(ctx, p, t.to_f64(), w.dims[1], None)
    }

    fn batchnorm(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        if ctx.attr_i("training_mode", 0) != 0 {
            return Err(ctx.err("training mode is not supported; export with model.eval()"));
        }
        for extra in ctx.node.output.iter().skip(1).filter(|s| !s.is_empty()) {
            if self.uses.get(extra).copied().unwrap_or(0) > 0 {
                return Err(ctx.err("the running statistics outputs cannot be used"));
            }
        }
        let p = self.req_act(ctx, 0)?;
        let ch = self.anchor_shape(&p).first().copied().unwrap_or(0);
        let mut params = Vec::new();
        for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            let c = self.req_const(ctx, i, what)?;
            if c.len() != ch || !c.is_float() {
                return Err(ctx.err(format!(
                    "the {what} has shape {:?}, expected [{ch}] floats",
                    c.dims
                )));
            }
            params.push(c.to_f64());
        }
        let eps = ctx.attr_f("epsilon", 1e-5);
        let [gamma, beta, mean, var] = params.as_slice() else {
            return Err(ctx.err("missing parameters"));
        };
        let mut s = Vec::with_capacity(ch);
        for o in 0..ch {
            let d = var[o] + eps;
            if d.is_nan() || d <= 0.0 {
                return Err(ctx.err(format!("variance + epsilon is not positive at channel {o}")));
            }
            s.push(gamma[o] / d.sqrt());
        }
        let r = self.fold_channelwise(ctx, p, "BatchNormalization", &|o, b| {
            (s[o], (b - mean[o]) * s[o] + beta[o])
        })?;
        self.notes.push(format!(
            "folded BatchNormalization ({}) into layer {} ({})",
            ctx.label,
            self.cur() - 1,
            self.layers.last().map_or("?", Layer::op_name)
        ));
        self.set_poly(ctx, r)
    }

    /// Appends a SumPool and sets the output to `k/area · s + c`.
    fn sum_pool(
        &mut self,
        ctx: &Ctx,
        p: Poly,
        window: [usize; 2],
        stride: [usize; 2],
        average: bool,
    ) -> Result<Poly, OnnxError> {
        let (k, c) = self.passthrough_input(ctx, p)?;
        self.push_layer(
            ctx,
            Layer::SumPool(SumPool {
                window,
                stride: (stride != window).then_some(stride),
            }),
        )?;
        let area = (window[0] * window[1]) as f64;
        let k = if average { k / area } else { k };
        let c = if average { c } else { c * area };
        Ok(Poly {
            anchor: self.cur(),
            a: 0.0,
            b: k,
            c,
        })
    }

    fn avgpool(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let p = self.req_act(ctx, 0)?;
        let shape = self.anchor_shape(&p);
        let [_, h, w] = shape.as_slice() else {
            return Err(ctx.err(format!(
                "expects an image [N, C, H, W], got per-item shape {shape:?}"
            )));
        };
        let window = match ctx.attr_ints("kernel_shape") {
            Some(&[a, b]) if a > 0 && b > 0 => [a as usize, b as usize],
            other => {
                return Err(ctx.err(format!(
                    "kernel_shape {other:?}: expected two positive values"
                )))
            }
        };
        let stride = match ctx.attr_ints("strides") {
            None => [1, 1],
            Some(&[a, b]) if a > 0 && b > 0 => [a as usize, b as usize],
            Some(s) => return Err(ctx.err(format!("strides {s:?}: expected two positive values"))),
        };
        if ctx
            .attr_ints("pads")
            .is_some_and(|p| p.iter().any(|&x| x != 0))
        {
            return Err(ctx.unsupported(
                "padded average pooling; use padding=0 (sum-pooling: `F.avg_pool2d(x, k) * (k*k)`)",
            ));
        }
        if ctx
            .attr_ints("dilations")
            .is_some_and(|d| d.iter().any(|&x| x != 1))
        {
            return Err(ctx.unsupported("dilated pooling"));
        }
        let auto = ctx.attr_s("auto_pad").unwrap_or_default();
        if !matches!(auto.as_str(), "" | "NOTSET" | "VALID") {
            return Err(ctx.unsupported(format!("auto_pad {}", clean(&auto))));
        }
        if ctx.attr_i("ceil_mode", 0) != 0
            && (h.checked_sub(window[0]).is_some_and(|d| d % stride[0] != 0)
                || w.checked_sub(window[1]).is_some_and(|d| d % stride[1] != 0))
        {
            return Err(ctx.unsupported(
                "ceil_mode=True with windows that do not tile the input; use ceil_mode=False",
            ));
        }
        let r = self.sum_pool(ctx, p, window, stride, true)?;
        self.set_poly(ctx, r)
    }

    fn global_pool(
        &mut self,
        ctx: &Ctx,
        p: Poly,
        average: bool,
        keepdims: bool,
    ) -> Result<(), OnnxError> {
        let shape = self.anchor_shape(&p);
        let [ch, h, w] = shape.as_slice() else {
            return Err(ctx.err(format!(
                "expects an image [N, C, H, W], got per-item shape {shape:?}"
            )));
        };
        let ch = *ch;
        let r = self.sum_pool(ctx, p, [*h, *w], [*h, *w], average)?;
        if keepdims {
            self.set_poly(ctx, r)
        } else {
            self.reshape_act(ctx, r, vec![ch])
        }
    }

    fn reduce(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let p = match self.req(ctx, 0)? {
            Value::Act(p) => p,
            Value::Const(_) => {
                return Err(ctx.unsupported("reductions of constants are not folded"))
            }
        };
        let axes = self.axes(ctx)?;
        let keepdims = ctx.attr_i("keepdims", 1) != 0;
        let mut axes: Vec<usize> = axes
            .unwrap_or_default()
            .iter()
            .map(|&a| norm_axis(a, 4))
            .collect::<Option<_>>()
            .ok_or_else(|| ctx.err("axis out of range"))?;
        axes.sort_unstable();
        if axes != [2, 3] || self.anchor_shape(&p).len() != 3 {
            return Err(ctx.unsupported(
                "only reductions over the two spatial axes of an image are supported \
                 (global pooling, e.g. `x.mean((2, 3))`)",
            ));
        }
        let average = ctx.node.op_type == "ReduceMean";
        self.global_pool(ctx, p, average, keepdims)
    }

    fn softmax(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let p = self.req_act(ctx, 0)?;
        if ctx.node.output.first() != Some(&self.output) {
            return Err(ctx.unsupported(
                "Softmax is only supported as the last operation (it is dropped: argmax is \
                 unchanged)",
            ));
        }
        let rank = self.anchor_shape(&p).len() + 1;
        let default = -1;
        if norm_axis(ctx.attr_i("axis", default), rank) == Some(0) {
            return Err(ctx.unsupported("softmax over the batch axis"));
        }
        self.notes.push(format!(
            "dropped trailing {} ({}): argmax is unchanged, outputs are pre-softmax scores",
            ctx.op, ctx.label
        ));
        self.set_poly(ctx, p)
    }
}

fn show_shape(s: &[i64]) -> String {
    let parts: Vec<String> = s
        .iter()
        .map(|&d| {
            if d == BATCH {
                "N".into()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// ONNX `Reshape` semantics on a constant's full shape (0 copies, -1 infers).
fn resolve_shape(cur: &[usize], target: &[i64], allowzero: bool) -> Option<Vec<usize>> {
    let total = numel(cur)?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*cur.get(i)?),
            d if d >= 0 => out.push(usize::try_from(d).ok()?),
            _ => return None,
        }
    }
    let known = numel(&out)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return None;
        }
        out[i] = total / known;
    }
    (numel(&out)? == total).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::*;

    fn ints(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DT_INT64,
            int64_data: v.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn negative_step_slice_of_an_empty_axis_is_empty() {
        let input = ValueInfoProto {
            name: "input".into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: DT_FLOAT,
                    shape: Some(TensorShapeProto {
                        dim: [1, 2]
                            .map(|d| Dimension {
                                dim_value: d,
                                dim_param: String::new(),
                            })
                            .to_vec(),
                    }),
                }),
            }),
        };
        let node = |op: &str, inputs: &[&str], out: &str| NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            ..Default::default()
        };
        let graph = GraphProto {
            input: vec![input],
            output: vec![ValueInfoProto {
                name: "out".into(),
                r#type: None,
            }],
            initializer: vec![
                ints("empty", &[0], &[]),
                ints("starts", &[1], &[-1]),
                ints("ends", &[1], &[-10]),
                ints("axes", &[1], &[0]),
                ints("steps", &[1], &[-1]),
            ],
            node: vec![
                node("Slice", &["empty", "starts", "ends", "axes", "steps"], "s"),
                node("Shape", &["s"], "n"),
                node("Add", &["input", "n"], "out"),
            ],
            ..Default::default()
        };
        let model = ModelProto {
            graph: Some(graph),
            ..Default::default()
        };
        // The slice folds to an empty tensor (its shape [0]); the model is then refused.
        assert!(convert(&model, None, &ImportOptions::default(), None).is_err());
    }
}
