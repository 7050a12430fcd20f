//! A shape-aware, streaming reader of JSON inputs: nested arrays of numbers (optionally inside
//! `{"input": ...}`) parsed straight into `f64`s against the model's input shape.
//!
//! Building a `serde_json::Value` first costs about a hundred bytes per array and number: an
//! 8 MB body of `[[0],[0],…]` became some 200 MB before its shape was even looked at, and a
//! server receiving a few dozen such bodies at once ran into gigabytes. Here nothing but the
//! numbers is stored, and the shape is checked while reading: the first number fixes the
//! nesting depth (one item, or a batch of items), each array is refused as soon as it has one
//! entry too many, and the batch as soon as it passes its limit. A wrong body therefore fails
//! after reading only as far as its first mistake, and a right one costs 8 bytes per value.

use crate::files::InputBatch;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Why a JSON input was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapedError {
    /// Not valid JSON (syntax, truncation, a number out of range, nesting over serde_json's
    /// limit).
    #[error("not valid JSON: {0}")]
    Syntax(String),
    /// Valid JSON that is not an input at all (no `input` field, two of them, a scalar).
    #[error("{0}")]
    NotInput(String),
    /// Nested arrays of the wrong shape, ragged, or holding something else than numbers.
    #[error("{0}")]
    Shape(String),
    /// More batch items than allowed.
    #[error("a batch of more than {max} items is over the limit")]
    BatchTooLarge {
        /// The limit.
        max: usize,
    },
}

/// Where the nested arrays may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// A bare array or `{"input": <array>}` (input files).
    Either,
    /// Only `{"input": <array>}` (request bodies).
    Object,
    /// A bare array, `{"input": <array>}`, or a labelled sample set `{"images": <array>,
    /// "labels": [...]}` such as `models/digits/test_set.json` (calibration data).
    Samples,
}

impl Wrapper {
    /// The object fields that may hold the arrays.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Wrapper::Either | Wrapper::Object => &["input"],
            Wrapper::Samples => &["input", "images"],
        }
    }
}

/// Parses `bytes` as an input for per-item shape `shape`, with or without a leading batch
/// dimension; at most `max_batch` items.
pub fn parse(
    bytes: &[u8],
    shape: &[usize],
    wrapper: Wrapper,
    max_batch: usize,
) -> Result<InputBatch, ShapedError> {
    let mut st = State {
        shape,
        max_batch,
        rank: None,
        batch: 1,
        values: Vec::new(),
        path: Vec::new(),
        failure: None,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Top {
        st: &mut st,
        wrapper,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (result, st.failure) {
        // (An unbatched item is one item: over a limit of 0 too.)
        (Ok(()), _) if st.batch > max_batch => Err(ShapedError::BatchTooLarge { max: max_batch }),
        (Ok(()), _) => Ok(InputBatch {
            batch: st.batch,
            values: st.values,
        }),
        // Our own refusals travel through serde as custom errors; the kind is kept aside.
        (Err(_), Some(failure)) => Err(failure),
        (Err(e), None) => Err(ShapedError::Syntax(e.to_string())),
    }
}

struct State<'a> {
    shape: &'a [usize],
    max_batch: usize,
    /// Nesting depth of the numbers, known from the first number on.
    rank: Option<usize>,
    batch: usize,
    values: Vec<f64>,
    /// Indices of the arrays being read, outermost first (for messages).
    path: Vec<usize>,
    failure: Option<ShapedError>,
}

impl State<'_> {
    fn fail<E: de::Error>(&mut self, failure: ShapedError) -> E {
        let e = E::custom(&failure);
        self.failure = Some(failure);
        e
    }

    fn shape_error<E: de::Error>(&mut self, msg: String) -> E {
        self.fail(ShapedError::Shape(msg))
    }

    fn expected(&self) -> String {
        format!(
            "the model expects {:?} or [batch, {}]",
            self.shape,
            self.shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// Whether the input carries a batch dimension (known once the rank is).
    fn batched(&self) -> bool {
        self.rank == Some(self.shape.len() + 1)
    }

    /// The length the array at `depth` must have, once the rank is known (`None`: the batch,
    /// any length up to the limit).
    fn expected_len(&self, depth: usize) -> Option<usize> {
        self.rank?;
        if self.batched() {
            depth
                .checked_sub(1)
                .and_then(|d| self.shape.get(d).copied())
        } else {
            self.shape.get(depth).copied()
        }
    }

    fn number<E: de::Error>(&mut self, depth: usize, x: f64) -> Result<(), E> {
        match self.rank {
            None if depth == self.shape.len() || depth == self.shape.len() + 1 => {
                self.rank = Some(depth)
            }
            None => {
                let msg = format!(
                    "input has numbers at nesting depth {depth}; {}",
                    self.expected()
                );
                return Err(self.shape_error(msg));
            }
            Some(r) if r != depth => {
                let msg = format!("value at {:?} is a number, expected an array", self.path);
                return Err(self.shape_error(msg));
            }
            Some(_) => {}
        }
        self.values.push(x);
        Ok(())
    }

    fn other<E: de::Error>(&mut self, depth: usize, what: &str) -> E {
        let wanted = if self.rank.is_some_and(|r| depth == r) {
            "a number"
        } else {
            "an array"
        };
        let msg = format!("value at {:?} is {what}, expected {wanted}", self.path);
        self.shape_error(msg)
    }
}

/// The whole document: the arrays, or an object with an `input` field.
struct Top<'s, 'a> {
    st: &'s mut State<'a>,
    wrapper: Wrapper,
}

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

const NOT_INPUT: &str = "expected a JSON object {\"input\": <nested arrays>}";

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("nested arrays of numbers, or an object with an \"input\" field")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        if self.wrapper == Wrapper::Object {
            return Err(self.st.fail(ShapedError::NotInput(NOT_INPUT.into())));
        }
        Level {
            st: self.st,
            depth: 0,
        }
        .visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Option<String> = None;
        let fields = self.wrapper.fields();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !fields.contains(&key.as_ref()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if let Some(first) = &seen {
                // Readers disagree on which of two fields wins: refuse rather than pick.
                let msg = if *first == key {
                    format!("the object has two \"{key}\" fields")
                } else {
                    format!("the object has both \"{first}\" and \"{key}\" fields")
                };
                return Err(self.st.fail(ShapedError::NotInput(msg)));
            }
            seen = Some(key.into_owned());
            map.next_value_seed(Level {
                st: self.st,
                depth: 0,
            })?;
        }
        if seen.is_some() {
            Ok(())
        } else {
            let msg = match self.wrapper {
                Wrapper::Object => NOT_INPUT.to_string(),
                Wrapper::Either => {
                    "expected nested arrays of numbers, or an object with an \"input\" field"
                        .to_string()
                }
                Wrapper::Samples => "expected nested arrays of numbers, or an object with an \
                                     \"input\" or \"images\" field"
                    .to_string(),
            };
            Err(self.st.fail(ShapedError::NotInput(msg)))
        }
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.st.fail(ShapedError::NotInput(NOT_INPUT.into())))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.st.fail(ShapedError::NotInput(NOT_INPUT.into())))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.st.fail(ShapedError::NotInput(NOT_INPUT.into())))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.st.fail(ShapedError::NotInput(NOT_INPUT.into())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.st.fail(ShapedError::NotInput(NOT_INPUT.into())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.st.fail(ShapedError::NotInput(NOT_INPUT.into())))
    }
}

/// One value at nesting `depth` of the arrays (0: the outermost array).
struct Level<'s, 'a> {
    st: &'s mut State<'a>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Level<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("nested arrays of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (st, depth) = (self.st, self.depth);
        if st.rank.is_some_and(|r| depth >= r) {
            return Err(st.other(depth, "an array"));
        }
        if depth > st.shape.len() {
            let msg = format!(
                "arrays nested deeper than the input shape allows; {}",
                st.expected()
            );
            return Err(st.shape_error(msg));
        }
        let mut n = 0usize;
        loop {
            st.path.push(n);
            let more = seq.next_element_seed(Level {
                st: &mut *st,
                depth: depth + 1,
            })?;
            st.path.pop();
            if more.is_none() {
                break;
            }
            n += 1;
            if let Some(len) = st.expected_len(depth) {
                if n > len {
                    let msg = format!(
                        "ragged array at {:?}: more than the {len} entries expected",
                        st.path
                    );
                    return Err(st.shape_error(msg));
                }
            } else if depth == 0 && st.batched() && n > st.max_batch {
                return Err(st.fail(ShapedError::BatchTooLarge { max: st.max_batch }));
            }
        }
        if n == 0 {
            let msg = if depth == 0 {
                "the input batch is empty".to_string()
            } else {
                format!("empty array at {:?}", st.path)
            };
            return Err(st.shape_error(msg));
        }
        if let Some(len) = st.expected_len(depth) {
            if n != len {
                let msg = format!(
                    "ragged array at {:?}: {n} entries where {len} were expected",
                    st.path
                );
                return Err(st.shape_error(msg));
            }
        } else if depth == 0 {
            st.batch = n;
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<(), E> {
        self.st.number(self.depth, x)
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<(), E> {
        self.st.number(self.depth, x as f64)
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<(), E> {
        self.st.number(self.depth, x as f64)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.st.other(self.depth, "a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.st.other(self.depth, "a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.st.other(self.depth, "null"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.st.other(self.depth, "an object"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn go(s: &str, shape: &[usize]) -> Result<InputBatch, ShapedError> {
        parse(s.as_bytes(), shape, Wrapper::Either, 4)
    }

    #[test]
    fn shapes_and_refusals() {
        let b = go("[[1, 2], [3, 4]]", &[2, 2]).unwrap();
        assert_eq!((b.batch, b.values), (1, vec![1.0, 2.0, 3.0, 4.0]));
        let b = go("{\"x\": [1], \"input\": [[1, 2], [3, 4]]}", &[2]).unwrap();
        assert_eq!((b.batch, b.values.len()), (2, 4));
        let shape = |s: &str, sh: &[usize]| match go(s, sh) {
            Err(ShapedError::Shape(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert!(shape("[[1, 2], [3, 4]]", &[1, 2, 2]).contains("expects [1, 2, 2]"));
        assert!(shape("[[1, 2], [3]]", &[2]).contains("ragged"));
        assert!(shape("[[1, 2, 3]]", &[2]).contains("ragged"));
        assert!(shape("[[1, \"x\"]]", &[2]).contains("a string"));
        assert!(shape("[[1, [2]]]", &[2]).contains("an array, expected a number"));
        assert!(shape("[[[1]], 2]", &[1, 1]).contains("a number, expected an array"));
        assert!(shape("[]", &[2]).contains("empty"));
        assert!(shape("[[[[[[", &[2]).contains("deeper"));
        assert!(matches!(go("[1, 2", &[2]), Err(ShapedError::Syntax(_))));
        assert!(matches!(go("[1e999]", &[1]), Err(ShapedError::Syntax(_))));
        assert!(matches!(go("[1] x", &[1]), Err(ShapedError::Syntax(_))));
        assert!(matches!(
            go("{\"input\": 3}", &[1]),
            Err(ShapedError::Shape(_))
        ));
        assert!(matches!(go("{}", &[1]), Err(ShapedError::NotInput(_))));
        assert!(matches!(
            go("{\"input\": [1], \"input\": [2]}", &[1]),
            Err(ShapedError::NotInput(_))
        ));
        assert!(matches!(
            parse(b"[1]", &[1], Wrapper::Object, 4),
            Err(ShapedError::NotInput(_))
        ));
        assert_eq!(
            go("[[1], [2], [3], [4], [5]]", &[1]),
            Err(ShapedError::BatchTooLarge { max: 4 })
        );
    }

    #[test]
    fn sample_sets_hold_images() {
        let samples = |s: &str| parse(s.as_bytes(), &[2], Wrapper::Samples, usize::MAX);
        let b = samples("{\"source\": \"x\", \"images\": [[1, 2], [3, 4]], \"labels\": [0, 1]}")
            .unwrap();
        assert_eq!((b.batch, b.values), (2, vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(samples("[[1, 2]]").unwrap().batch, 1);
        assert_eq!(samples("{\"input\": [1, 2]}").unwrap().batch, 1);
        let e = samples("{\"input\": [1, 2], \"images\": [1, 2]}").unwrap_err();
        assert!(
            e.to_string().contains("both \"input\" and \"images\""),
            "{e}"
        );
        let e = samples("{\"labels\": [1]}").unwrap_err();
        assert!(e.to_string().contains("\"images\" field"), "{e}");
        // Elsewhere "images" is just another field.
        assert!(matches!(
            go("{\"images\": [[1, 2]]}", &[2]),
            Err(ShapedError::NotInput(_))
        ));
    }

    #[test]
    fn a_wrong_shape_stops_at_the_first_number() {
        // The body the issue measured: refused at its first number, nothing stored.
        let mut body = String::from("{\"input\": [[0]");
        for _ in 0..100_000 {
            body.push_str(",[0]");
        }
        body.push_str("]}");
        let e = parse(body.as_bytes(), &[1, 8, 8], Wrapper::Object, 64).unwrap_err();
        assert!(
            matches!(&e, ShapedError::Shape(m) if m.contains("depth 2")),
            "{e:?}"
        );
    }
}
