//! A small writer of ONNX graphs on the types that build.rs generates from
//! `proto/onnx.proto3` with prost: nodes with one output each, named in order, and
//! constants stored little-endian in `raw_data`. prost encodes the finished model.

#[allow(clippy::all, clippy::pedantic, rustdoc::all, missing_docs)]
pub(crate) mod pb {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use pb::attribute_proto::AttributeType;
use pb::tensor_proto::DataType;
use pb::tensor_shape_proto::{dimension, Dimension};
use pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The ONNX operator set the graph is written for (ONNX 1.12, 2022; onnxruntime 1.12 and
/// later, tract 0.19 and later).
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
pub const IR_VERSION: i64 = 8;

/// An attribute's value.
pub(crate) enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_owned(),
        ..Default::default()
    };
    match value {
        Attr::Int(i) => (a.r#type, a.i) = (AttributeType::Int as i32, i),
        Attr::Ints(v) => (a.r#type, a.ints) = (AttributeType::Ints as i32, v),
        Attr::Float(f) => (a.r#type, a.f) = (AttributeType::Float as i32, f),
    }
    a
}

/// One dimension of a graph input or output: fixed, or named (the batch, `N`).
pub(crate) enum Dim {
    Fixed(i64),
    Named(&'static str),
}

/// A graph input or output: its name, element type and shape.
pub(crate) fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => dimension::Value::DimValue(*v),
                Dim::Named(s) => dimension::Value::DimParam((*s).to_owned()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The nodes and constants of a graph being written.
#[derive(Default)]
pub(crate) struct Graph {
    nodes: Vec<NodeProto>,
    constants: Vec<TensorProto>,
    count: usize,
}

impl Graph {
    fn fresh(&mut self, stem: &str) -> String {
        self.count += 1;
        format!("{stem}_{}", self.count)
    }

    /// Adds `op` reading `inputs`; returns its output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.ops(op, inputs, attrs, 1).swap_remove(0)
    }

    /// Adds `op` with `n` outputs; returns their names.
    pub fn ops(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        n: usize,
    ) -> Vec<String> {
        let outs: Vec<String> = (0..n).map(|_| self.fresh(op)).collect();
        let names: Vec<&str> = outs.iter().map(String::as_str).collect();
        self.op_into(op, inputs, attrs, &names);
        outs
    }

    /// Adds `op` reading `inputs` and writing `outputs` (names the caller chose).
    pub fn op_into(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        outputs: &[&str],
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name: outputs[0].to_owned(),
            op_type: op.to_owned(),
            attribute: attrs.into_iter().map(|(n, v)| attribute(n, v)).collect(),
            ..Default::default()
        });
    }

    fn constant(&mut self, stem: &str, elem: DataType, dims: &[i64], raw: Vec<u8>) -> String {
        let name = self.fresh(stem);
        self.constants.push(TensorProto {
            dims: dims.to_vec(),
            data_type: elem as i32,
            name: name.clone(),
            raw_data: raw,
            ..Default::default()
        });
        name
    }

    /// A float32 constant of shape `dims` (empty: a scalar).
    pub fn f32s(&mut self, stem: &str, dims: &[i64], v: &[f32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(stem, DataType::Float, dims, raw)
    }

    /// A float64 constant.
    pub fn f64s(&mut self, stem: &str, dims: &[i64], v: &[f64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(stem, DataType::Double, dims, raw)
    }

    /// An int64 constant.
    pub fn i64s(&mut self, stem: &str, dims: &[i64], v: &[i64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(stem, DataType::Int64, dims, raw)
    }

    /// A uint8 scalar.
    pub fn u8_scalar(&mut self, stem: &str, v: u8) -> String {
        self.constant(stem, DataType::Uint8, &[], vec![v])
    }

    /// `x` gathered at the indices `at` along `axis`.
    pub fn gather(&mut self, x: &str, at: &[i64], axis: i64) -> String {
        let idx = self.i64s("index", &[at.len() as i64], at);
        self.op("Gather", &[x, &idx], vec![("axis", Attr::Int(axis))])
    }

    /// `x` with its dimension `axis` (of size 1) removed.
    pub fn squeeze(&mut self, x: &str, axis: i64) -> String {
        let axes = self.i64s("axes", &[1], &[axis]);
        self.op("Squeeze", &[x, &axes], vec![])
    }

    /// `x` with a dimension of size 1 inserted at `axis`.
    pub fn unsqueeze(&mut self, x: &str, axis: i64) -> String {
        let axes = self.i64s("axes", &[1], &[axis]);
        self.op("Unsqueeze", &[x, &axes], vec![])
    }

    /// `Cast` of `x` to `to`.
    pub fn cast(&mut self, x: &str, to: DataType) -> String {
        self.op("Cast", &[x], vec![("to", Attr::Int(to as i32 as i64))])
    }

    /// The finished model: this graph between `inputs` and `outputs`.
    pub fn model(
        self,
        name: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
        doc: String,
    ) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "nerveseg".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            doc_string: doc,
            graph: Some(GraphProto {
                node: self.nodes,
                name: name.to_owned(),
                initializer: self.constants,
                input: inputs,
                output: outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
