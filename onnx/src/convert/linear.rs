//! Linear layers: Conv, Gemm and MatMul with their weights and biases, BatchNorm folded into
//! the layer before it, and per-channel affine factors folded into weights.

use super::*;

/// Most channels of a per-channel affine map that becomes a layer of its own (its diagonal
/// weight matrix has `channels²` entries).
const MAX_DIAGONAL: usize = 4096;

impl<'g> Converter<'g> {
    /// Applies a per-channel affine map to the output of the last linear layer: for each output
    /// channel `o`, `f(o, b[o])` gives the weight factor and the new bias.
    pub(super) fn fold_channelwise(
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
        let shared = self.values.iter().any(|(name, v)| {
            matches!(v, Value::Act(q) if q.anchor == anchor)
                && self.uses.get(name).copied().unwrap_or(0) > 0
        });
        let direct = p.anchor == anchor && linear && !p.nonlinear() && !shared;
        if !(direct && self.fold_back(p.lin(), p.cst())) {
            return self.per_channel_layer(ctx, p, what, f);
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
        self.changed.push((anchor - 1, self.events));
        self.events += 1;
        for (o, (bo, ws)) in b.iter_mut().zip(weight.chunks_mut(per)).enumerate() {
            let (s, nb) = f(o, *bo);
            ws.iter_mut().for_each(|w| *w *= s);
            *bo = nb;
        }
        Ok(Poly::identity(anchor))
    }

    /// A per-channel affine map that cannot fold into the layer before it (it follows an add, a
    /// pooling or an activation, or that layer's output is read elsewhere, as in a
    /// pre-activation residual block's BatchNormalization): its own layer, a 1×1 convolution
    /// (a dense layer on vectors) with one weight per channel on the diagonal.
    fn per_channel_layer(
        &mut self,
        ctx: &Ctx,
        p: Poly,
        what: &str,
        f: &dyn Fn(usize, f64) -> (f64, f64),
    ) -> Result<Poly, OnnxError> {
        let p = self.current(ctx, p)?;
        let p = if p.nonlinear() {
            self.emit_activation(ctx, p)?;
            Poly::identity(self.cur())
        } else {
            p
        };
        let shape = self.anchor_shape(&p);
        let ch = shape.first().copied().unwrap_or(0);
        if ch == 0 || ch > MAX_DIAGONAL {
            return Err(ctx.err(format!(
                "{what} does not follow a linear layer, and its {ch} channels are too many for a \
                 per-channel layer of its own (at most {MAX_DIAGONAL})"
            )));
        }
        // y_o = s_o·(k·t + c) + t_o, with (s_o, s_o·c + t_o) = f(o, c).
        let mut weight = vec![0.0; ch * ch];
        let mut bias = Vec::with_capacity(ch);
        for o in 0..ch {
            let (s, b) = f(o, p.cst());
            weight[o * ch + o] = s * p.lin();
            bias.push(b);
        }
        let layer = match shape.len() {
            3 => Layer::Conv2d(Conv2d {
                in_channels: ch,
                out_channels: ch,
                kernel: [1, 1],
                stride: [1, 1],
                padding: [0, 0],
                weight,
                bias: Some(bias),
            }),
            1 => Layer::Dense(Dense {
                in_features: ch,
                out_features: ch,
                weight,
                bias: Some(bias),
            }),
            _ => {
                return Err(ctx.err(format!(
                    "{what} on a tensor of per-item shape {shape:?} cannot be a layer of its own"
                )))
            }
        };
        self.push_layer(ctx, layer)?;
        self.notes.push(format!(
            "{what} ({}) does not directly follow a linear layer whose output nothing else \
             reads: it is its own per-channel layer {} ({})",
            ctx.label,
            self.cur() - 1,
            self.layers.last().map_or("?", Layer::op_name)
        ));
        Ok(Poly::identity(self.cur()))
    }

    /// The per-channel values of a constant broadcast against an activation of per-item shape
    /// `item` (numpy rules with the batch axis in front), if it varies along channels only.
    pub(super) fn channel_vector(
        &self,
        ctx: &Ctx,
        k: &Const,
        item: &[usize],
    ) -> Result<Vec<f64>, OnnxError> {
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

    /// A float weight tensor of the expected rank.
    pub(super) fn weight(
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

    pub(super) fn opt_bias(
        &mut self,
        ctx: &Ctx,
        i: usize,
        out: usize,
    ) -> Result<Option<Vec<f64>>, OnnxError> {
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

    pub(super) fn conv(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
    pub(super) fn fold_input_affine(
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
    pub(super) fn push_linear(&mut self, ctx: &Ctx, layer: Layer) -> Result<(), OnnxError> {
        self.push_layer(ctx, layer)?;
        let a = self.cur();
        self.set_poly(ctx, Poly::identity(a))
    }

    /// Appends a Dense layer with weights `[out, in]` (row-major) on the polynomial `p`.
    pub(super) fn dense(
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

    pub(super) fn gemm(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn matmul(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn batchnorm(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
        let before = self.layers.len();
        let r = self.fold_channelwise(ctx, p, "BatchNormalization", &|o, b| {
            (s[o], (b - mean[o]) * s[o] + beta[o])
        })?;
        // (A BatchNormalization that became a layer of its own has its own note.)
        if self.layers.len() == before {
            self.notes.push(format!(
                "folded BatchNormalization ({}) into layer {} ({})",
                ctx.label,
                self.cur() - 1,
                self.layers.last().map_or("?", Layer::op_name)
            ));
        }
        self.set_poly(ctx, r)
    }
}
