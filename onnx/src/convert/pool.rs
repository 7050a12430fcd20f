//! Pooling: AveragePool and global pools as sum-pools with their `1/k` folded onward, spatial
//! reductions, and a trailing Softmax dropped with a note.

use super::*;

impl<'g> Converter<'g> {
    /// Appends a SumPool and sets the output to `k/area · s + c`.
    pub(super) fn sum_pool(
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
        Ok(Poly::linear(self.cur(), k, c))
    }

    /// The window and stride of an AveragePool or MaxPool node (no padding, no dilation).
    fn pool_geometry(
        &self,
        ctx: &Ctx,
        p: &Poly,
        kind: &str,
    ) -> Result<([usize; 2], [usize; 2]), OnnxError> {
        let shape = self.anchor_shape(p);
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
            return Err(ctx.unsupported(format!("padded {kind} pooling; use padding=0")));
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
        Ok((window, stride))
    }

    pub(super) fn avgpool(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let p = self.req_act(ctx, 0)?;
        let (window, stride) = self.pool_geometry(ctx, &p, "average")?;
        let r = self.sum_pool(ctx, p, window, stride, true)?;
        self.set_poly(ctx, r)
    }

    /// MaxPool (or GlobalMaxPool): an exact max-pool layer.
    pub(super) fn maxpool(&mut self, ctx: &Ctx, global: bool) -> Result<(), OnnxError> {
        if ctx.node.output.get(1).is_some_and(|o| !o.is_empty()) {
            return Err(ctx.unsupported("MaxPool's indices output"));
        }
        let p = self.req_act(ctx, 0)?;
        let (window, stride) = if global {
            match self.anchor_shape(&p).as_slice() {
                &[_, h, w] => ([h, w], [h, w]),
                other => {
                    return Err(ctx.err(format!(
                        "expects an image [N, C, H, W], got per-item shape {other:?}"
                    )))
                }
            }
        } else {
            self.pool_geometry(ctx, &p, "max")?
        };
        let layer = Layer::MaxPool(SumPool {
            window,
            stride: (stride != window).then_some(stride),
        });
        self.exact_layer(ctx, p, layer)
    }

    pub(super) fn global_pool(
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

    pub(super) fn reduce(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn softmax(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
