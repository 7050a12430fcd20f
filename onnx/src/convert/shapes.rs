//! Constant folding of shape chains (Shape, Gather, Slice, Concat, Cast, Constant, ...) and the
//! relabelling ops: Reshape, Flatten, Squeeze / Unsqueeze, Transpose.

use super::*;

impl<'g> Converter<'g> {
    pub(super) fn constant(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn constant_of_shape(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn shape(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn gather(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn slice(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn concat(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
        let mut parts = Vec::new();
        for i in 0..ctx.node.input.len() {
            match self.get(ctx, i)? {
                Some(Value::Const(c)) => parts.push((*c).clone()),
                Some(Value::Act(_)) => {
                    return Err(ctx.unsupported(
                        "Concat of activations (torch.cat) is not supported: layers may add \
                         tensors (residual connections) but not join them",
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

    pub(super) fn cast(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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

    pub(super) fn transpose(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
    pub(super) fn axes(&mut self, ctx: &Ctx) -> Result<Option<Vec<i64>>, OnnxError> {
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

    pub(super) fn squeeze(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
    pub(super) fn reshape_act(
        &mut self,
        ctx: &Ctx,
        p: Poly,
        item: Vec<usize>,
    ) -> Result<(), OnnxError> {
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
        self.set_poly(ctx, Poly::linear(anchor, k, c))
    }

    pub(super) fn reshape(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
    pub(super) fn resolve_item_shape(&self, cur: &[usize], target: &[i64]) -> Option<Vec<usize>> {
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

    pub(super) fn flatten(&mut self, ctx: &Ctx) -> Result<(), OnnxError> {
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
}
