//! Shared test helpers: a small ONNX graph builder over the crate's prost structs, and a float
//! evaluator of the model IR.
#![allow(dead_code)]

pub mod eval;

use prost::Message;
use verinfer_onnx::proto::*;
use verinfer_onnx::{import_bytes, ImportOptions, Imported, OnnxError};

/// An integer attribute.
pub fn ai(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: AT_INT,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: AT_INTS,
        ..Default::default()
    }
}

/// A float attribute.
pub fn af(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: AT_FLOAT,
        ..Default::default()
    }
}

/// A string attribute.
pub fn astr(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: AT_STRING,
        ..Default::default()
    }
}

/// A tensor attribute.
pub fn at(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        t: Some(t),
        r#type: AT_TENSOR,
        ..Default::default()
    }
}

/// A FLOAT tensor stored as little-endian raw bytes (as PyTorch writes it).
pub fn tf(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DT_FLOAT,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An INT64 tensor in `int64_data`.
pub fn ti(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DT_INT64,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: DT_FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| {
                            if d < 0 {
                                Dimension {
                                    dim_value: 0,
                                    dim_param: "batch".into(),
                                }
                            } else {
                                Dimension {
                                    dim_value: d,
                                    dim_param: String::new(),
                                }
                            }
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// A graph under construction: one input named `input`.
pub struct G {
    pub graph: GraphProto,
    pub opset: i64,
    pub meta: Vec<(String, String)>,
    count: usize,
}

impl G {
    /// A graph whose input has shape `dims` (a negative first entry is a symbolic batch).
    pub fn new(dims: &[i64]) -> Self {
        G {
            graph: GraphProto {
                name: "main_graph".into(),
                input: vec![value_info("input", dims)],
                ..Default::default()
            },
            opset: 17,
            meta: vec![("verinfer.input_range".into(), "0,1".into())],
            count: 0,
        }
    }

    /// Adds an initializer.
    pub fn init(&mut self, t: TensorProto) -> &mut Self {
        self.graph.initializer.push(t);
        self
    }

    /// Adds a float initializer with pseudo-random values.
    pub fn weight(&mut self, name: &str, dims: &[i64], seed: u64) -> &mut Self {
        let n = dims.iter().product::<i64>() as usize;
        self.init(tf(name, dims, &vals(n, seed)))
    }

    /// Adds a node named `/{op}_{k}`.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<AttributeProto>,
    ) -> &mut Self {
        let name = format!("/{op}_{}", self.count);
        self.named(&name, op, inputs, output, attrs)
    }

    /// Adds a node with a given name.
    pub fn named(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<AttributeProto>,
    ) -> &mut Self {
        self.count += 1;
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: name.into(),
            op_type: op.into(),
            domain: String::new(),
            attribute: attrs,
        });
        self
    }

    /// A float scalar `Constant` node.
    pub fn scalar(&mut self, output: &str, v: f32) -> &mut Self {
        self.node(
            "Constant",
            &[],
            output,
            vec![at("value", tf("v", &[], &[v]))],
        )
    }

    /// An int64 `Constant` node.
    pub fn consti(&mut self, output: &str, v: &[i64]) -> &mut Self {
        self.node(
            "Constant",
            &[],
            output,
            vec![at("value", ti("v", &[v.len() as i64], v))],
        )
    }

    /// `x.view(x.size(0), -1)` as the TorchScript exporter writes it at opset 13:
    /// Shape → Gather(0) → Unsqueeze(axes input) → Concat([-1]) → Reshape.
    pub fn view_flat(&mut self, src: &str, dst: &str) -> &mut Self {
        let t = |s: &str| format!("{dst}.{s}");
        let (shp, zero, n, ax, n1, m1, shape) = (
            t("shp"),
            t("zero"),
            t("n"),
            t("ax"),
            t("n1"),
            t("m1"),
            t("shape"),
        );
        self.node("Shape", &[src], &shp, vec![])
            .node(
                "Constant",
                &[],
                &zero,
                vec![at("value", ti("v", &[], &[0]))],
            )
            .node("Gather", &[&shp, &zero], &n, vec![ai("axis", 0)])
            .consti(&ax, &[0])
            .node("Unsqueeze", &[&n, &ax], &n1, vec![])
            .consti(&m1, &[-1])
            .node("Concat", &[&n1, &m1], &shape, vec![ai("axis", 0)])
            .node("Reshape", &[src, &shape], dst, vec![])
    }

    /// The model with `output` as the graph output.
    pub fn model(&self, output: &str) -> ModelProto {
        let mut g = self.graph.clone();
        g.output = vec![value_info(output, &[])];
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            producer_name: "pytorch".into(),
            graph: Some(g),
            metadata_props: self
                .meta
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// The encoded model.
    pub fn bytes(&self, output: &str) -> Vec<u8> {
        self.model(output).encode_to_vec()
    }

    /// Imports the model (no external data).
    pub fn import(&self, output: &str) -> Result<Imported, OnnxError> {
        import_bytes(&self.bytes(output), None, &ImportOptions::default())
    }
}

/// Imports and unwraps, printing the error on failure.
pub fn ok(r: Result<Imported, OnnxError>) -> Imported {
    match r {
        Ok(i) => i,
        Err(e) => panic!("import failed: {e}"),
    }
}

/// The error message of a failed import; checks it is one line.
pub fn err(r: Result<Imported, OnnxError>) -> String {
    match r {
        Ok(i) => panic!("import unexpectedly succeeded: {:?}", i.model.layers),
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains('\n'), "multi-line error: {s}");
            s
        }
    }
}
