//! Constant tensors: decoding `TensorProto` (inline or external data) and the few shape
//! manipulations the constant folder needs.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use crate::proto::{self, TensorProto};

/// Largest number of elements of one decoded tensor.
pub(crate) const MAX_ELEMS: usize = 1 << 28;

/// Largest number of elements of one tensor made by constant folding.
pub(crate) const MAX_FOLD: usize = 1 << 24;

/// The element values of a constant: floating point or integer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    /// Floating-point values (FLOAT, DOUBLE, FLOAT16, BFLOAT16), widened to f64.
    F(Vec<f64>),
    /// Integer values (INT64, INT32, ... BOOL), widened to i64.
    I(Vec<i64>),
}

/// A constant tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

/// The product of `dims`, or `None` on overflow.
pub(crate) fn numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Checks the dimensions of a constant: no dimension above [`MAX_ELEMS`], and an empty tensor
/// must not carry huge dimensions (they would size index lists in the folder).
pub(crate) fn check_dims(dims: &[usize]) -> Result<(), String> {
    let n = numel(dims).filter(|&n| n <= MAX_ELEMS);
    let small = dims.iter().all(|&d| d <= MAX_ELEMS);
    let empty_ok = n != Some(0)
        || dims
            .iter()
            .try_fold(0usize, |sum, &d| sum.checked_add(d))
            .is_some_and(|sum| sum <= 1 << 16);
    if n.is_none() || !small || !empty_ok {
        return Err(format!("shape {dims:?} is too large (limit 2^28 elements)"));
    }
    Ok(())
}

/// Row-major strides of `dims` (`None` on overflow).
fn strides(dims: &[usize]) -> Option<Vec<usize>> {
    let mut s = vec![1usize; dims.len()];
    for a in (0..dims.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1].checked_mul(dims[a + 1])?;
    }
    Some(s)
}

/// Advances a row-major multi-index over `dims`.
fn step(counter: &mut [usize], dims: &[usize]) {
    for a in (0..counter.len()).rev() {
        counter[a] += 1;
        if counter[a] < dims[a] {
            break;
        }
        counter[a] = 0;
    }
}

/// The source offset of every output position (row-major over `out_dims`, `n` of them), given
/// a function of the output multi-index.
fn offsets(out_dims: &[usize], n: usize, off: impl Fn(&[usize]) -> usize) -> Vec<usize> {
    let mut counter = vec![0usize; out_dims.len()];
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(off(&counter));
        step(&mut counter, out_dims);
    }
    v
}

impl Data {
    fn pick(&self, offsets: &[usize]) -> Option<Data> {
        Some(match self {
            Data::F(v) => Data::F(
                offsets
                    .iter()
                    .map(|&o| v.get(o).copied())
                    .collect::<Option<_>>()?,
            ),
            Data::I(v) => Data::I(
                offsets
                    .iter()
                    .map(|&o| v.get(o).copied())
                    .collect::<Option<_>>()?,
            ),
        })
    }
}

impl Const {
    /// A float tensor.
    pub fn floats(dims: Vec<usize>, v: Vec<f64>) -> Self {
        Const {
            dims,
            data: Data::F(v),
        }
    }

    /// An integer tensor.
    pub fn ints(dims: Vec<usize>, v: Vec<i64>) -> Self {
        Const {
            dims,
            data: Data::I(v),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    /// Whether the values are floating point.
    pub fn is_float(&self) -> bool {
        matches!(self.data, Data::F(_))
    }

    /// The values as f64.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            Data::F(v) => v.clone(),
            Data::I(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The values as i64 (floats must be integral).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.data {
            Data::I(v) => Some(v.clone()),
            Data::F(v) => v
                .iter()
                .map(|&x| {
                    (x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e18).then_some(x as i64)
                })
                .collect(),
        }
    }

    /// The single value of a one-element tensor.
    pub fn scalar(&self) -> Option<f64> {
        match &self.data {
            Data::F(v) if v.len() == 1 => v.first().copied(),
            Data::I(v) if v.len() == 1 => v.first().map(|&x| x as f64),
            _ => None,
        }
    }

    /// The same values with another shape (same element count).
    pub fn with_dims(&self, dims: Vec<usize>) -> Self {
        Const {
            dims,
            data: self.data.clone(),
        }
    }

    /// Selects, along every axis, the listed indices (in order): the general form of
    /// `Slice` and `Gather`. `idx[a]` are indices into axis `a`; all must be in range.
    pub fn select(&self, idx: &[Vec<usize>]) -> Option<Const> {
        if idx.len() != self.dims.len() {
            return None;
        }
        for (list, &d) in idx.iter().zip(&self.dims) {
            if list.iter().any(|&i| i >= d) {
                return None;
            }
        }
        let out_dims: Vec<usize> = idx.iter().map(Vec::len).collect();
        let n = numel(&out_dims).filter(|&n| n <= MAX_FOLD)?;
        let st = strides(&self.dims)?;
        let offsets = offsets(&out_dims, n, |counter| {
            counter
                .iter()
                .enumerate()
                .map(|(a, &c)| idx[a][c] * st[a])
                .sum()
        });
        Some(Const {
            dims: out_dims,
            data: self.data.pick(&offsets)?,
        })
    }

    /// Transposes with permutation `perm` (`out.dims[i] = dims[perm[i]]`).
    pub fn transpose(&self, perm: &[usize]) -> Option<Const> {
        let r = self.dims.len();
        if perm.len() != r {
            return None;
        }
        let mut seen = vec![false; r];
        for &p in perm {
            if p >= r || seen[p] {
                return None;
            }
            seen[p] = true;
        }
        let out_dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let n = numel(&out_dims)?;
        let st = strides(&self.dims)?;
        let offsets = offsets(&out_dims, n, |counter| {
            counter
                .iter()
                .enumerate()
                .map(|(i, &c)| c * st[perm[i]])
                .sum()
        });
        Some(Const {
            dims: out_dims,
            data: self.data.pick(&offsets)?,
        })
    }

    /// Concatenates along `axis`; all parts must agree on the other dimensions.
    pub fn concat(parts: &[Const], axis: usize) -> Option<Const> {
        let first = parts.first()?;
        let r = first.dims.len();
        if axis >= r {
            return None;
        }
        for p in parts {
            if p.dims.len() != r
                || p.dims
                    .iter()
                    .enumerate()
                    .any(|(a, &d)| a != axis && d != first.dims[a])
            {
                return None;
            }
        }
        let outer = numel(&first.dims[..axis])?;
        let mut dims = first.dims.clone();
        dims[axis] = parts
            .iter()
            .try_fold(0usize, |s, p| s.checked_add(p.dims[axis]))?;
        numel(&dims).filter(|&n| n <= MAX_FOLD)?;
        let chunk = |p: &Const| numel(&p.dims[axis..]).unwrap_or(0);
        if parts.iter().any(Const::is_float) {
            let vals: Vec<Vec<f64>> = parts.iter().map(Const::to_f64).collect();
            let mut out = Vec::new();
            for o in 0..outer {
                for (p, v) in parts.iter().zip(&vals) {
                    let c = chunk(p);
                    out.extend_from_slice(v.get(o * c..(o + 1) * c)?);
                }
            }
            Some(Const::floats(dims, out))
        } else {
            let mut out = Vec::new();
            for o in 0..outer {
                for p in parts {
                    let c = chunk(p);
                    if let Data::I(v) = &p.data {
                        out.extend_from_slice(v.get(o * c..(o + 1) * c)?);
                    }
                }
            }
            Some(Const::ints(dims, out))
        }
    }
}

/// Numpy-style broadcasting of a binary operation. Integer operands stay integers (`fi`
/// returns `None` on overflow or division by zero); otherwise values are f64 (`ff`).
pub(crate) fn broadcast(
    x: &Const,
    y: &Const,
    ff: impl Fn(f64, f64) -> f64,
    fi: impl Fn(i64, i64) -> Option<i64>,
) -> Option<Const> {
    let r = x.dims.len().max(y.dims.len());
    let pad = |d: &[usize]| {
        let mut v = vec![1usize; r - d.len()];
        v.extend_from_slice(d);
        v
    };
    let (dx, dy) = (pad(&x.dims), pad(&y.dims));
    let mut out = Vec::with_capacity(r);
    for (&a, &b) in dx.iter().zip(&dy) {
        out.push(match (a, b) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => return None,
        });
    }
    let n = numel(&out).filter(|&n| n <= MAX_FOLD)?;
    let bstrides = |d: &[usize]| -> Option<Vec<usize>> {
        let s = strides(d)?;
        Some(
            s.iter()
                .zip(d)
                .map(|(&s, &d)| if d == 1 { 0 } else { s })
                .collect(),
        )
    };
    let (sx, sy) = (bstrides(&dx)?, bstrides(&dy)?);
    let mut counter = vec![0usize; r];
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let ox: usize = counter.iter().zip(&sx).map(|(c, s)| c * s).sum();
        let oy: usize = counter.iter().zip(&sy).map(|(c, s)| c * s).sum();
        pairs.push((ox, oy));
        step(&mut counter, &out);
    }
    match (&x.data, &y.data) {
        (Data::I(u), Data::I(v)) => {
            let mut res = Vec::with_capacity(n);
            for &(i, j) in &pairs {
                res.push(fi(*u.get(i)?, *v.get(j)?)?);
            }
            Some(Const::ints(out, res))
        }
        _ => {
            let (u, v) = (x.to_f64(), y.to_f64());
            let mut res = Vec::with_capacity(n);
            for &(i, j) in &pairs {
                res.push(ff(*u.get(i)?, *v.get(j)?));
            }
            Some(Const::floats(out, res))
        }
    }
}

/// Why a tensor could not be decoded (the caller adds the tensor's name).
pub(crate) type TensorResult<T> = Result<T, String>;

/// Decodes a `TensorProto`, reading external data relative to `base_dir`.
pub(crate) fn decode(t: &TensorProto, base_dir: Option<&Path>) -> TensorResult<Const> {
    let mut dims = Vec::with_capacity(t.dims.len().min(16));
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("negative dimension {d}"))?;
        dims.push(d);
    }
    check_dims(&dims)?;
    let n = numel(&dims).unwrap_or(0);
    let width = match t.data_type {
        proto::DT_FLOAT | proto::DT_INT32 => 4,
        proto::DT_DOUBLE | proto::DT_INT64 => 8,
        proto::DT_FLOAT16 | proto::DT_BFLOAT16 | proto::DT_INT16 | proto::DT_UINT16 => 2,
        proto::DT_INT8 | proto::DT_UINT8 | proto::DT_BOOL => 1,
        other => return Err(format!("unsupported element type {other}")),
    };
    let raw: Option<Vec<u8>> = if t.data_location == proto::LOCATION_EXTERNAL {
        Some(read_external(t, base_dir, n * width)?)
    } else if !t.raw_data.is_empty() {
        Some(t.raw_data.clone())
    } else {
        None
    };
    let data = match raw {
        Some(bytes) => {
            if bytes.len() != n * width {
                return Err(format!(
                    "raw data has {} bytes, expected {} for shape {dims:?}",
                    bytes.len(),
                    n * width
                ));
            }
            from_raw(t.data_type, &bytes)
        }
        None => from_typed(t, n)?,
    };
    Ok(Const { dims, data })
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

fn bf16_to_f64(h: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(h) << 16))
}

fn from_raw(dt: i32, b: &[u8]) -> Data {
    let u16s = || b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let u32s = || {
        b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    };
    let u64s = || {
        b.chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
    };
    match dt {
        proto::DT_FLOAT => Data::F(u32s().map(|u| f64::from(f32::from_bits(u))).collect()),
        proto::DT_DOUBLE => Data::F(u64s().map(f64::from_bits).collect()),
        proto::DT_FLOAT16 => Data::F(u16s().map(half_to_f64).collect()),
        proto::DT_BFLOAT16 => Data::F(u16s().map(bf16_to_f64).collect()),
        proto::DT_INT64 => Data::I(u64s().map(|u| u as i64).collect()),
        proto::DT_INT32 => Data::I(u32s().map(|u| i64::from(u as i32)).collect()),
        proto::DT_INT16 => Data::I(u16s().map(|u| i64::from(u as i16)).collect()),
        proto::DT_UINT16 => Data::I(u16s().map(i64::from).collect()),
        proto::DT_INT8 => Data::I(b.iter().map(|&u| i64::from(u as i8)).collect()),
        // UINT8, BOOL
        _ => Data::I(b.iter().map(|&u| i64::from(u)).collect()),
    }
}

fn from_typed(t: &TensorProto, n: usize) -> TensorResult<Data> {
    let data = match t.data_type {
        proto::DT_FLOAT => Data::F(t.float_data.iter().map(|&x| f64::from(x)).collect()),
        proto::DT_DOUBLE => Data::F(t.double_data.clone()),
        proto::DT_INT64 => Data::I(t.int64_data.clone()),
        proto::DT_FLOAT16 => Data::F(
            t.int32_data
                .iter()
                .map(|&x| half_to_f64(x as u16))
                .collect(),
        ),
        proto::DT_BFLOAT16 => Data::F(
            t.int32_data
                .iter()
                .map(|&x| bf16_to_f64(x as u16))
                .collect(),
        ),
        _ => Data::I(t.int32_data.iter().map(|&x| i64::from(x)).collect()),
    };
    let len = match &data {
        Data::F(v) => v.len(),
        Data::I(v) => v.len(),
    };
    if len != n {
        return Err(format!("has {len} values, expected {n}"));
    }
    Ok(data)
}

/// Checks that an external-data location stays inside the model's directory: relative, no
/// `..`, no root or drive prefix.
pub(crate) fn safe_location(loc: &str) -> bool {
    let p = Path::new(loc);
    !loc.is_empty()
        && !loc.contains('\0')
        && !loc.contains('\\')
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().any(|c| matches!(c, Component::Normal(_)))
}

fn read_external(t: &TensorProto, base_dir: Option<&Path>, expect: usize) -> TensorResult<Vec<u8>> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for kv in &t.external_data {
        match kv.key.as_str() {
            "location" => location = Some(kv.value.as_str()),
            "offset" => {
                offset = kv.value.trim().parse().map_err(|_| {
                    format!(
                        "external data offset '{}' is not a number",
                        kv.value.escape_debug()
                    )
                })?
            }
            "length" => {
                length = Some(kv.value.trim().parse::<u64>().map_err(|_| {
                    format!(
                        "external data length '{}' is not a number",
                        kv.value.escape_debug()
                    )
                })?)
            }
            _ => {}
        }
    }
    let location = location.ok_or("external data without a location")?;
    if !safe_location(location) {
        return Err(format!(
            "external data location '{}' must be a relative path inside the model's directory",
            location.escape_debug()
        ));
    }
    let base = base_dir.ok_or(
        "the data is stored in an external file, which needs the model's directory: \
         import the .onnx file by path",
    )?;
    if let Some(len) = length {
        if len != expect as u64 {
            return Err(format!(
                "external data length {len} does not match the {expect} bytes the shape needs"
            ));
        }
    }
    let path = base.join(location);
    // Symbolic links may still point elsewhere: compare canonical paths.
    let canon_base = base
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", base.display()))?;
    let canon = path
        .canonicalize()
        .map_err(|e| format!("cannot open external data {}: {e}", path.display()))?;
    if !canon.starts_with(&canon_base) {
        return Err(format!(
            "external data {} resolves outside the model's directory",
            path.display()
        ));
    }
    let mut f = crate::open_regular(&canon)
        .map_err(|e| format!("cannot open external data {}: {e}", path.display()))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("cannot seek in {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(expect as u64)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() != expect {
        return Err(format!(
            "external data {} holds {} bytes at offset {offset}, expected {expect}",
            path.display(),
            buf.len()
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_dimensions_of_empty_tensors_are_refused() {
        let huge = i64::MAX as usize;
        assert!(check_dims(&[0, huge, huge, huge]).is_err());
        assert!(check_dims(&[0, 1 << 16]).is_ok());
    }

    #[test]
    fn half_precision() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert_eq!(half_to_f64(0x3800), 0.5);
        assert_eq!(half_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(bf16_to_f64(0x3f80), 1.0);
    }

    #[test]
    fn locations() {
        assert!(safe_location("w.data"));
        assert!(safe_location("sub/w.data"));
        assert!(safe_location("./w.data"));
        assert!(!safe_location("../w.data"));
        assert!(!safe_location("a/../../w.data"));
        assert!(!safe_location("/etc/passwd"));
        assert!(!safe_location("..\\w.data"));
        assert!(!safe_location(""));
        assert!(!safe_location("."));
    }

    #[test]
    fn select_transpose_concat_broadcast() {
        let t = Const::ints(vec![2, 3], vec![0, 1, 2, 3, 4, 5]);
        let s = t.select(&[vec![1], vec![2, 0]]).unwrap();
        assert_eq!(s, Const::ints(vec![1, 2], vec![5, 3]));
        let tr = t.transpose(&[1, 0]).unwrap();
        assert_eq!(tr, Const::ints(vec![3, 2], vec![0, 3, 1, 4, 2, 5]));
        let c = Const::concat(&[t.clone(), t.clone()], 1).unwrap();
        assert_eq!(c.dims, vec![2, 6]);
        assert_eq!(
            c.to_i64().unwrap(),
            vec![0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]
        );
        assert!(t.select(&[vec![2], vec![0]]).is_none());
        let col = Const::ints(vec![2, 1], vec![10, 20]);
        let b = broadcast(&t, &col, |a, b| a + b, i64::checked_add).unwrap();
        assert_eq!(b, Const::ints(vec![2, 3], vec![10, 11, 12, 23, 24, 25]));
        let f = Const::floats(vec![], vec![0.5]);
        let b = broadcast(&t, &f, |a, b| a * b, i64::checked_mul).unwrap();
        assert_eq!(b.to_f64(), vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        assert!(broadcast(&t, &tr, |a, b| a + b, i64::checked_add).is_none());
    }
}
