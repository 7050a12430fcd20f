//! Symbolic polynomials: element-wise Mul/Add/Sub/Div/Pow on the running tensor are tracked as
//! `Σ_k c_k·t^k` in an anchor tensor (degree up to [`MAX_ACTIVATION_DEGREE`]: `x**3`, Mul
//! chains, Horner forms as torch exports them) and become one activation, and the scalar factors
//! left over are folded back into the linear layer before them or the output.

use super::*;
use verinfer_circuits::model::MAX_ACTIVATION_DEGREE;

/// Coefficients a symbolic polynomial holds: `c_0` to `c_31`.
const TERMS: usize = MAX_ACTIVATION_DEGREE + 1;

/// `Σ_k c_k·t^k` in the anchor tensor `t` (the output of layer `anchor - 1`, or the input when
/// `anchor` is 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Poly {
    pub(super) anchor: usize,
    /// `c_0, …, c_31`, constant first.
    pub(super) k: [f64; TERMS],
}

impl Poly {
    /// `b·t + c`.
    pub(super) fn linear(anchor: usize, b: f64, c: f64) -> Self {
        let mut k = [0.0; TERMS];
        k[0] = c;
        k[1] = b;
        Poly { anchor, k }
    }

    pub(super) fn identity(anchor: usize) -> Self {
        Poly::linear(anchor, 1.0, 0.0)
    }

    /// The constant term.
    pub(super) fn cst(&self) -> f64 {
        self.k[0]
    }

    /// The coefficient of `t`.
    pub(super) fn lin(&self) -> f64 {
        self.k[1]
    }

    /// Whether a power of two or more appears: the value needs an activation layer.
    pub(super) fn nonlinear(&self) -> bool {
        self.k[2..].iter().any(|&c| c != 0.0)
    }

    /// The highest power with a non-zero coefficient.
    pub(super) fn degree(&self) -> usize {
        self.k.iter().rposition(|&c| c != 0.0).unwrap_or(0)
    }

    pub(super) fn scale(self, f: f64) -> Self {
        Poly {
            k: self.k.map(|c| c * f),
            ..self
        }
    }

    pub(super) fn shift(mut self, f: f64) -> Self {
        self.k[0] += f;
        self
    }

    /// `self + sign·q` (same anchor).
    fn plus(mut self, q: &Poly, sign: f64) -> Self {
        for (a, b) in self.k.iter_mut().zip(&q.k) {
            *a += sign * b;
        }
        self
    }

    /// `self·q` (same anchor), or `None` past degree 31.
    fn times(&self, q: &Poly) -> Option<Self> {
        let (dp, dq) = (self.degree(), q.degree());
        if dp + dq > MAX_ACTIVATION_DEGREE {
            return None;
        }
        let mut k = [0.0; TERMS];
        for i in 0..=dp {
            for j in 0..=dq {
                k[i + j] += self.k[i] * q.k[j];
            }
        }
        Some(Poly { k, ..*self })
    }

    /// The activation this polynomial becomes: the named quadratics where they fit, else a
    /// polynomial of its degree.
    fn activation(&self) -> Activation {
        match (self.degree(), self.k[2], self.k[1], self.k[0]) {
            (2, a, b, c) if a == 1.0 && b == 0.0 && c == 0.0 => Activation::Square,
            (2, a, b, c) if a == 1.0 && b == 1.0 && c == 0.0 => Activation::SquarePlusX,
            (d, a, b, c) if d <= 2 => Activation::Quadratic { a, b, c },
            (d, ..) => Activation::Polynomial {
                coefficients: self.k[..=d].to_vec(),
            },
        }
    }
}

impl<'g> Converter<'g> {
    pub(super) fn emit_activation(&mut self, ctx: &Ctx, p: Poly) -> Result<(), OnnxError> {
        let act = p.activation();
        self.emitted.push((p, self.layers.len()));
        self.push_layer(ctx, Layer::Activation(act))
    }

    /// Folds `k·t + c` (t the current anchor) backward into the last linear layer, through
    /// sum-pools and reshapes. Returns whether it could.
    pub(super) fn fold_back(&mut self, k: f64, c: f64) -> bool {
        if k == 1.0 && c == 0.0 {
            return true;
        }
        let (k0, c0, cur) = (k, c, self.cur());
        let mut c = c;
        for i in (0..self.layers.len()).rev() {
            match &self.layers[i] {
                Layer::SumPool(sp) => {
                    c /= (sp.window[0] * sp.window[1]) as f64;
                    continue;
                }
                Layer::Flatten | Layer::Reshape { .. } => continue,
                // Scalars do not commute with a nonlinear step (a clamp, a power), and an add
                // or a branch would need them on another path too.
                Layer::Activation(_)
                | Layer::Requant(_)
                | Layer::Relu(_)
                | Layer::MaxPool(_)
                | Layer::Mul(_)
                | Layer::Scale { .. }
                | Layer::Add(_)
                | Layer::Branch(_) => return false,
                Layer::Conv2d(_) | Layer::Dense(_) => {}
            }
            // Every value computed from this layer's output on would change: refuse while
            // another node still reads one of them (e.g. a shortcut reading the raw output).
            let read_elsewhere = self.values.iter().any(|(name, v)| {
                matches!(v, Value::Act(q) if q.anchor > i && q.anchor <= cur)
                    && self.uses.get(name).copied().unwrap_or(0) > 0
            });
            if read_elsewhere {
                return false;
            }
            let (weight, bias, out) = match &mut self.layers[i] {
                Layer::Conv2d(cv) => (&mut cv.weight, &mut cv.bias, cv.out_channels),
                Layer::Dense(d) => (&mut d.weight, &mut d.bias, d.out_features),
                _ => return false,
            };
            weight.iter_mut().for_each(|w| *w *= k);
            self.changed.push((i, self.events));
            self.events += 1;
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
            // The values that were `k·t + c` are now the current layer's output itself.
            let now: Vec<String> = self
                .named
                .iter()
                .filter(|(_, q, _)| {
                    q.anchor == cur && !q.nonlinear() && q.lin() == k0 && q.cst() == c0
                })
                .map(|(n, _, _)| n.clone())
                .collect();
            for n in now {
                let event = self.tick();
                self.named.push((n, Poly::identity(cur), event));
            }
            return true;
        }
        false
    }

    /// Prepares the input of a linear layer: emits a pending activation, folds an offset
    /// backward if possible. Returns the factor `k` and the offset `c` left for the layer.
    pub(super) fn linear_input(&mut self, ctx: &Ctx, p: Poly) -> Result<(f64, f64), OnnxError> {
        let p = self.current(ctx, p)?;
        if p.nonlinear() {
            self.emit_activation(ctx, p)?;
            return Ok((1.0, 0.0));
        }
        if p.cst() != 0.0 && self.fold_back(p.lin(), p.cst()) {
            return Ok((1.0, 0.0));
        }
        Ok((p.lin(), p.cst()))
    }

    /// Prepares the input of a pool or reshape: emits a pending activation; a degree-1
    /// polynomial is carried through. Returns `(k, c)`.
    pub(super) fn passthrough_input(
        &mut self,
        ctx: &Ctx,
        p: Poly,
    ) -> Result<(f64, f64), OnnxError> {
        let p = self.current(ctx, p)?;
        if p.nonlinear() {
            self.emit_activation(ctx, p)?;
            return Ok((1.0, 0.0));
        }
        Ok((p.lin(), p.cst()))
    }

    pub(super) fn finish_output(&mut self) -> Result<(), OnnxError> {
        let name = self.output.clone();
        // The graph output is this value's last reader.
        if let Some(u) = self.uses.get_mut(&name) {
            *u = u.saturating_sub(1);
        }
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
        if p.nonlinear() {
            let node = NodeProto {
                name: format!("output '{shown}'"),
                ..NodeProto::default()
            };
            let ctx = Ctx::new(&node, 0);
            return self.emit_activation(&ctx, p);
        }
        if !self.fold_back(p.lin(), p.cst()) {
            return Err(OnnxError::Graph(format!(
                "the output '{shown}' is {}·t + {} where t is the output of the last layer: this \
                 factor cannot be folded into a linear layer (is there an AveragePool or a scalar \
                 Mul after the last activation? use sum-pooling `F.avg_pool2d(x, k) * (k*k)` or \
                 end with a linear layer)",
                p.lin(),
                p.cst()
            )));
        }
        Ok(())
    }

    /// `x ± y` of two values computed from different layers' outputs: a residual `add` layer.
    /// The operand on the current layer's output is the add's input (its pending quadratic
    /// emitted, a pending factor or offset folded back into its linear layer), the other its
    /// `with` (which must be that layer's output itself, plus at most an offset carried on).
    fn residual(&mut self, ctx: &Ctx, x: Poly, y: Poly) -> Result<(), OnnxError> {
        let subtract = match ctx.node.op_type.as_str() {
            "Add" => false,
            "Sub" => true,
            _ => {
                return Err(ctx.unsupported(
                    "a product or quotient of two layers' outputs is not a polynomial of one \
                     tensor; only their sum or difference (a residual connection) is supported",
                ))
            }
        };
        // Neither on the current output: continue from the later one.
        let (x, y) = if x.anchor != self.cur() && y.anchor != self.cur() {
            if x.anchor > y.anchor {
                (self.current(ctx, x)?, y)
            } else {
                (x, self.current(ctx, y)?)
            }
        } else {
            (x, y)
        };
        // Z = x ± y = sign·(main ± other).
        let (main, other, sign) = if x.anchor == self.cur() {
            (x, y, 1.0)
        } else if subtract {
            (y, x, -1.0)
        } else {
            (y, x, 1.0)
        };
        if main.nonlinear() {
            self.emit_activation(ctx, main)?;
        } else if (main.lin() != 1.0 || main.cst() != 0.0)
            && !self.fold_back(main.lin(), main.cst())
        {
            return Err(ctx.err(format!(
                "one operand is {}·t + {} of the previous layer's output t, a factor that cannot \
                 be folded into a linear layer before the add",
                main.lin(),
                main.cst()
            )));
        }
        if other.nonlinear() {
            return Err(ctx.err(
                "the other operand is an elementwise expression of an earlier layer's output \
                 that no layer computes; compute it before the branch",
            ));
        }
        if other.anchor == 0 {
            return Err(ctx.unsupported(
                "adds the model input (a shortcut from the input); put a layer before the first \
                 residual block",
            ));
        }
        if other.lin() != 1.0 {
            return Err(ctx.err(format!(
                "the shortcut is {} times an earlier layer's output; the importer cannot fold \
                 that factor into it",
                other.lin()
            )));
        }
        self.push_layer(
            ctx,
            Layer::Add(Add {
                with: other.anchor - 1,
                subtract,
            }),
        )?;
        let offset = if subtract { -other.cst() } else { other.cst() };
        let r = Poly::identity(self.cur()).shift(offset).scale(sign);
        self.set_poly(ctx, r)
    }

    pub(super) fn binary(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
            (Value::Act(p), Value::Act(q)) if p.anchor != q.anchor => self.residual(ctx, p, q),
            (Value::Act(p), Value::Act(q)) => {
                let r = match op {
                    "Add" => p.plus(&q, 1.0),
                    "Sub" => p.plus(&q, -1.0),
                    "Mul" => p.times(&q).ok_or_else(|| {
                        ctx.err(format!(
                            "the product has degree {}; polynomial activations go up to degree \
                             {MAX_ACTIVATION_DEGREE}",
                            p.degree() + q.degree()
                        ))
                    })?,
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

    /// A ReLU or LeakyReLU: its own layer (an exact function at a checkpoint), read by its input
    /// as the previous layer's output itself (a pending polynomial emitted, a factor or offset
    /// folded back).
    pub(super) fn relu(&mut self, ctx: &Ctx, slope_shift: Option<u32>) -> Result<(), OnnxError> {
        let p = self.req_act(ctx, 0)?;
        self.exact_layer(ctx, p, Layer::Relu(Relu { slope_shift }))
    }

    /// Appends `layer`, an exact function (ReLU, max-pool), reading `p` as the previous layer's
    /// output itself: a pending polynomial is emitted first, a factor or offset folded back.
    pub(super) fn exact_layer(
        &mut self,
        ctx: &Ctx,
        p: Poly,
        layer: Layer,
    ) -> Result<(), OnnxError> {
        let p = self.current(ctx, p)?;
        if p.nonlinear() {
            self.emit_activation(ctx, p)?;
        } else if (p.lin() != 1.0 || p.cst() != 0.0) && !self.fold_back(p.lin(), p.cst()) {
            return Err(ctx.err(format!(
                "its input is {}·t + {} of the previous layer's output t, a factor that cannot be \
                 folded into a linear layer before the {}",
                p.lin(),
                p.cst(),
                layer.op_name()
            )));
        }
        self.push_layer(ctx, layer)?;
        let r = Poly::identity(self.cur());
        self.set_poly(ctx, r)
    }

    pub(super) fn pow(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
            Value::Act(p) => {
                let n = exp as usize;
                if exp.fract() != 0.0 || !(1.0..=MAX_ACTIVATION_DEGREE as f64).contains(&exp) {
                    return Err(ctx.unsupported(format!(
                        "exponent {exp}: a polynomial activation needs an integer power from 1 \
                         to {MAX_ACTIVATION_DEGREE}"
                    )));
                }
                let mut r = Poly::linear(p.anchor, 0.0, 1.0);
                for _ in 0..n {
                    r = r.times(&p).ok_or_else(|| {
                        ctx.err(format!(
                            "raising a polynomial of degree {} to the power {n} passes degree \
                             {MAX_ACTIVATION_DEGREE}",
                            p.degree()
                        ))
                    })?;
                }
                self.set_poly(ctx, r)
            }
        }
    }
}
