//! Graph → model IR conversion (see the crate docs). This file holds the driver (graph checks,
//! the value table, the per-node dispatch); the jobs sit beside it: constant folding and
//! relabelling ops (`shapes`), symbolic quadratic polynomials (`poly`), linear layers with
//! batch-norm and factor folding (`linear`), pooling (`pool`).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use verinfer_circuits::circuit::MAX_LEAKY_SHIFT;
use verinfer_circuits::model::{
    output_shape_in, Activation, Add, Branch, Conv2d, Dense, Layer, Model, Relu, SumPool,
};
use verinfer_circuits::settings::{TensorName, TensorNames};

use crate::proto::{self, AttributeProto, GraphProto, ModelProto, NodeProto};
use crate::tensor::{self, numel, Const, Data, MAX_FOLD};
use crate::{clean, ImportOptions, Imported, OnnxError};

mod linear;
mod poly;
mod pool;
mod shapes;

use poly::Poly;

/// Stands for the (possibly symbolic) batch size inside folded shape tensors.
const BATCH: i64 = i64::MIN / 2;

/// Total number of elements constant folding may create.
const FOLD_BUDGET: usize = 1 << 26;

/// Exporter-default graph names that make poor model names.
const GENERIC_NAMES: [&str; 4] = ["main_graph", "torch_jit", "torch-jit-export", "graph"];

/// The layer a value name stands for, or why none (with a layer whose name to suggest).
type Resolved = Result<usize, (String, Option<usize>)>;

// A polynomial's coefficients stay inline (264 bytes) so `Poly` remains `Copy`; a graph holds
// at most a few thousand values.
#[allow(clippy::large_enum_variant)]
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
    /// Every value computed from the input, as it was defined: `(name, polynomial, event)`.
    named: Vec<(String, Poly, usize)>,
    /// Layers whose weights changed after they were emitted: `(layer, event)`.
    changed: Vec<(usize, usize)>,
    /// Activation layers and the polynomial each computes: `(polynomial, layer)`.
    emitted: Vec<(Poly, usize)>,
    /// Orders `named` against `changed`.
    events: usize,
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
        named: Vec::new(),
        changed: Vec::new(),
        emitted: Vec::new(),
        events: 0,
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
    let names = cv.tensor_names();
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
        names,
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

const ACTIVATION_HINT: &str = "only polynomial activations (e.g. `x * x + x` in PyTorch), \
     ReLU and LeakyReLU with a power-of-two slope can be proved";
const MAXPOOL_HINT: &str = "only MaxPool, AveragePool and their global forms can be proved";

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
        let event = self.tick();
        self.named
            .push((input.name.clone(), Poly::identity(0), event));
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
        Ok(Some(match v {
            Value::Act(p) => Value::Act(self.realized(p)),
            c => c,
        }))
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
        if let Value::Act(p) = &v {
            let event = self.tick();
            self.named.push((name.clone(), *p, event));
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
        if !p.k.iter().all(|x| x.is_finite()) {
            return Err(ctx.err("a coefficient of the elementwise expression is not finite"));
        }
        self.set(ctx, Value::Act(p))
    }

    fn cur(&self) -> usize {
        self.layers.len()
    }

    fn tick(&mut self) -> usize {
        self.events += 1;
        self.events - 1
    }

    /// What every value name computed from the input stands for in the finished model: the
    /// layer that computes it (up to a scalar factor the importer folds into the next linear
    /// layer), or why no layer does.
    fn tensor_names(&self) -> TensorNames {
        let resolved: Vec<(String, Resolved)> = self
            .named
            .iter()
            .map(|(name, p, event)| (clean(name), self.name_of(p, *event)))
            .collect();
        // Later definitions of a name (the output after a fold) replace earlier ones.
        let mut latest: HashMap<&str, usize> = HashMap::new();
        for (i, (name, _)) in resolved.iter().enumerate() {
            latest.insert(name, i);
        }
        let good = |layer: usize| {
            resolved
                .iter()
                .enumerate()
                .find(|(i, (n, r))| *r == Ok(layer) && latest.get(n.as_str()) == Some(i))
                .map(|(_, (n, _))| n.as_str())
        };
        let mut names = TensorNames::default();
        for (i, (name, r)) in resolved.iter().enumerate() {
            if latest.get(name.as_str()) != Some(&i) {
                continue;
            }
            let what = match r {
                Ok(layer) => TensorName::Layer(*layer),
                Err((why, hint)) => {
                    let hint = hint
                        .and_then(good)
                        .map(|n| format!(": name '{n}' instead"))
                        .unwrap_or_default();
                    TensorName::Refused(format!("{why}{hint}"))
                }
            };
            names.insert(name.clone(), what);
        }
        names
    }

    /// The layer computing `p` (defined at `event`), or why none does with a layer whose
    /// output to suggest instead.
    fn name_of(&self, p: &Poly, event: usize) -> Resolved {
        let layer = if p.nonlinear() {
            match self.emitted.iter().find(|(q, _)| q == p) {
                Some(&(_, l)) => l,
                None => {
                    let whole = self.emitted.iter().find(|(q, _)| q.anchor == p.anchor);
                    return Err((
                        "is part of an elementwise expression that becomes one activation layer"
                            .into(),
                        whole.map(|&(_, l)| l),
                    ));
                }
            }
        } else if p.anchor == 0 {
            return Err((
                "is the model input: a checkpoint goes on a layer's output".into(),
                None,
            ));
        } else if p.cst() != 0.0 {
            return Err((
                format!(
                    "is the output of layer {} plus a constant that the importer folds into \
                     another layer, so no layer computes it",
                    p.anchor - 1
                ),
                None,
            ));
        } else if p.lin() == 0.0 {
            return Err(("is constant zero".into(), None));
        } else {
            p.anchor - 1
        };
        match self.changed.iter().find(|&&(l, e)| e > event && l <= layer) {
            Some(&(l, _)) => Err((
                format!(
                    "changes when the importer folds a later constant (e.g. a \
                     BatchNormalization) into layer {l}"
                ),
                Some(layer),
            )),
            None => Ok(layer),
        }
    }

    fn anchor_shape(&self, p: &Poly) -> Vec<usize> {
        self.shapes.get(p.anchor).cloned().unwrap_or_default()
    }

    // ----- chain building -----

    fn push_layer(&mut self, ctx: &Ctx, layer: Layer) -> Result<(), OnnxError> {
        let out = output_shape_in(&layer, &self.shapes, self.layers.len())
            .map_err(|e| ctx.err(e.to_string()))?;
        self.layers.push(layer);
        self.shapes.push(out);
        Ok(())
    }

    /// `p` in terms of the current layer's output: when it is a function of an earlier
    /// layer's output (a residual block's input, read again by its shortcut), a `branch` layer
    /// continues from that output first.
    fn current(&mut self, ctx: &Ctx, p: Poly) -> Result<Poly, OnnxError> {
        if p.anchor == self.cur() {
            return Ok(p);
        }
        if p.anchor == 0 {
            return Err(ctx.unsupported(
                "reads the model input again after other layers (a branch from the input); put \
                 a layer before the first branch",
            ));
        }
        self.push_layer(ctx, Layer::Branch(Branch { from: p.anchor - 1 }))?;
        Ok(Poly {
            anchor: self.cur(),
            ..p
        })
    }

    /// A value as what computes it now: a quadratic that has become an activation layer is
    /// that layer's output.
    fn realized(&self, p: Poly) -> Poly {
        if !p.nonlinear() {
            return p;
        }
        match self.emitted.iter().find(|(q, _)| *q == p) {
            Some(&(_, layer)) => Poly::identity(layer + 1),
            None => p,
        }
    }

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
            "Relu" => self.relu(&ctx, None),
            "LeakyRelu" => {
                let alpha = ctx.attr_f("alpha", 0.01);
                let shift = (1..=MAX_LEAKY_SHIFT).find(|&k| alpha == 2f64.powi(-(k as i32)));
                match shift {
                    Some(k) => self.relu(&ctx, Some(k)),
                    None => Err(ctx.unsupported(format!(
                        "LeakyRelu with alpha {alpha}: only slopes 2^-k (k = 1..={MAX_LEAKY_SHIFT}) \
                         are exact on integers, e.g. negative_slope=1/16"
                    ))),
                }
            }
            "PRelu" | "Sigmoid" | "HardSigmoid" | "Tanh" | "Gelu" | "Elu" | "Selu" | "Celu"
            | "Softplus" | "Softsign" | "HardSwish" | "Mish" | "Erf" | "Clip"
            | "ThresholdedRelu" | "Exp" | "Log" | "Abs" | "Sign" | "Sin" | "Cos" | "Max"
            | "Min" => Err(ctx.unsupported(ACTIVATION_HINT)),
            "MaxPool" => self.maxpool(&ctx, false),
            "GlobalMaxPool" => self.maxpool(&ctx, true),
            "LpPool" | "GlobalLpPool" | "MaxRoiPool" => Err(ctx.unsupported(MAXPOOL_HINT)),
            _ => Err(ctx.unsupported(
                "unsupported op (supported: Conv, Gemm, MatMul, BatchNormalization, AveragePool, \
                 GlobalAveragePool, Flatten, Reshape, polynomial Mul/Add/Sub/Pow, Identity, \
                 Dropout, trailing Softmax, and constant shape computations)",
            )),
        }
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
