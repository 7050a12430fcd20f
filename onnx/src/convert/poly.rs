//! Symbolic quadratic polynomials: element-wise Mul/Add/Sub/Div/Pow on the running tensor are
//! tracked as `a·t² + b·t + c` in an anchor tensor and become one activation, and the scalar
//! factors left over are folded back into the linear layer before them or the output.

use super::*;

/// `a·t² + b·t + c` in the anchor tensor `t` (the output of layer `anchor - 1`, or the input
/// when `anchor` is 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Poly {
    pub(super) anchor: usize,
    pub(super) a: f64,
    pub(super) b: f64,
    pub(super) c: f64,
}

impl Poly {
    pub(super) fn identity(anchor: usize) -> Self {
        Poly {
            anchor,
            a: 0.0,
            b: 1.0,
            c: 0.0,
        }
    }

    pub(super) fn scale(self, k: f64) -> Self {
        Poly {
            a: self.a * k,
            b: self.b * k,
            c: self.c * k,
            ..self
        }
    }

    pub(super) fn shift(self, k: f64) -> Self {
        Poly {
            c: self.c + k,
            ..self
        }
    }
}

impl<'g> Converter<'g> {
    pub(super) fn emit_activation(&mut self, ctx: &Ctx, p: Poly) -> Result<(), OnnxError> {
        let act = match (p.a, p.b, p.c) {
            (a, b, c) if a == 1.0 && b == 0.0 && c == 0.0 => Activation::Square,
            (a, b, c) if a == 1.0 && b == 1.0 && c == 0.0 => Activation::SquarePlusX,
            (a, b, c) => Activation::Quadratic { a, b, c },
        };
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
                Layer::Activation(_) | Layer::Requant(_) | Layer::Add(_) | Layer::Branch(_) => {
                    return false
                }
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
                .filter(|(_, q, _)| q.anchor == cur && q.a == 0.0 && q.b == k0 && q.c == c0)
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
    pub(super) fn passthrough_input(
        &mut self,
        ctx: &Ctx,
        p: Poly,
    ) -> Result<(f64, f64), OnnxError> {
        let p = self.current(ctx, p)?;
        if p.a != 0.0 {
            self.emit_activation(ctx, p)?;
            return Ok((1.0, 0.0));
        }
        Ok((p.b, p.c))
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
        if main.a != 0.0 {
            self.emit_activation(ctx, main)?;
        } else if (main.b != 1.0 || main.c != 0.0) && !self.fold_back(main.b, main.c) {
            return Err(ctx.err(format!(
                "one operand is {}·t + {} of the previous layer's output t, a factor that cannot \
                 be folded into a linear layer before the add",
                main.b, main.c
            )));
        }
        if other.a != 0.0 {
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
        if other.b != 1.0 {
            return Err(ctx.err(format!(
                "the shortcut is {} times an earlier layer's output; the importer cannot fold \
                 that factor into it",
                other.b
            )));
        }
        self.push_layer(
            ctx,
            Layer::Add(Add {
                with: other.anchor - 1,
                subtract,
            }),
        )?;
        let offset = if subtract { -other.c } else { other.c };
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
}
