//! The U-Net as ONNX nodes, layer by layer from the family's one graph
//! (`model::topology::graph`), with the weights of a loaded checkpoint as constants.
//! Inference only: dropout passes its input on, BatchNormalization uses the moving
//! statistics (it stays an op; runtimes fold it into the convolution themselves).

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use tch::Tensor;

use super::builder::{Attr, Graph};
use crate::model::topology::{graph, Act, Op, BN_EPSILON};
use crate::model::UNetConfig;

/// The network's outputs as value names: the mask's probabilities (N, 1, h, w) and, with
/// a presence head, its probabilities (N, 1).
pub(crate) struct Outputs {
    pub mask: String,
    pub head: Option<String>,
}

/// A checkpoint's variables as float32 constants of the graph, each made once however
/// many passes read it (TTA's second pass shares the first's).
pub(crate) struct Weights<'a> {
    vars: &'a HashMap<String, Tensor>,
    made: HashMap<String, String>,
}

impl<'a> Weights<'a> {
    /// The variables of a VarStore, by name.
    pub fn new(vars: &'a HashMap<String, Tensor>) -> Weights<'a> {
        Weights {
            vars,
            made: HashMap::new(),
        }
    }

    /// The constant holding a layer's variable `var`.
    fn get(&mut self, g: &mut Graph, layer: &str, var: &str) -> Result<String> {
        let key = format!("{layer}.{var}");
        if let Some(name) = self.made.get(&key) {
            return Ok(name.clone());
        }
        let t = self
            .vars
            .get(&key)
            .ok_or_else(|| anyhow!("the network has no variable {key}"))?;
        let a = crate::keras::tensor_array(t).map_err(|e| anyhow!("reading {key}: {e}"))?;
        let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
        let name = g.f32s(&key.replace('.', "_"), &dims, &a.data);
        self.made.insert(key, name.clone());
        Ok(name)
    }
}

fn activation(g: &mut Graph, x: String, act: Act) -> String {
    match act {
        Act::Linear => x,
        Act::Relu => g.op("Relu", &[&x], vec![]),
        Act::Elu => g.op("Elu", &[&x], vec![("alpha", Attr::Float(1.0))]),
        Act::Sigmoid => g.op("Sigmoid", &[&x], vec![]),
    }
}

/// Appends the network `cfg` with `weights` reading the standardised frames `input`,
/// float32 (N, 1, h, w).
pub(crate) fn network(
    g: &mut Graph,
    cfg: &UNetConfig,
    weights: &mut Weights,
    input: &str,
) -> Result<Outputs> {
    let topology = graph(cfg);
    let mut values: Vec<String> = Vec::with_capacity(topology.nodes.len());
    for node in &topology.nodes {
        let x = |k: usize| values[node.inputs[k]].clone();
        let name = node.name.as_str();
        let y = match node.op {
            Op::Input => input.to_owned(),
            Op::Conv { k, act, .. } => {
                let (w, b) = (
                    weights.get(g, name, "weight")?,
                    weights.get(g, name, "bias")?,
                );
                let pad = k / 2;
                let attrs = vec![
                    ("kernel_shape", Attr::Ints(vec![k, k])),
                    ("pads", Attr::Ints(vec![pad; 4])),
                    ("strides", Attr::Ints(vec![1, 1])),
                ];
                let conv = g.op("Conv", &[&x(0), &w, &b], attrs);
                activation(g, conv, act)
            }
            Op::BatchNorm { .. } => {
                let vars: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
                    .iter()
                    .map(|v| weights.get(g, name, v))
                    .collect::<Result<_>>()?;
                let inputs: Vec<&str> = std::iter::once(values[node.inputs[0]].as_str())
                    .chain(vars.iter().map(String::as_str))
                    .collect();
                let eps = ("epsilon", Attr::Float(BN_EPSILON as f32));
                g.op("BatchNormalization", &inputs, vec![eps])
            }
            Op::Activation(act) => activation(g, x(0), act),
            Op::Dropout(_) => x(0),
            Op::Pool => {
                let two = || Attr::Ints(vec![2, 2]);
                g.op(
                    "MaxPool",
                    &[&x(0)],
                    vec![("kernel_shape", two()), ("strides", two())],
                )
            }
            Op::Transpose { .. } => {
                let (w, b) = (
                    weights.get(g, name, "weight")?,
                    weights.get(g, name, "bias")?,
                );
                let two = || Attr::Ints(vec![2, 2]);
                g.op(
                    "ConvTranspose",
                    &[&x(0), &w, &b],
                    vec![("kernel_shape", two()), ("strides", two())],
                )
            }
            Op::Concat => g.op("Concat", &[&x(0), &x(1)], vec![("axis", Attr::Int(1))]),
            Op::GlobalPool => {
                let pooled = g.op("GlobalAveragePool", &[&x(0)], vec![]);
                g.op("Flatten", &[&pooled], vec![("axis", Attr::Int(1))])
            }
            Op::Dense { .. } => {
                let (w, b) = (
                    weights.get(g, name, "weight")?,
                    weights.get(g, name, "bias")?,
                );
                let logits = g.op("MatMul", &[&x(0), &w], vec![]);
                let logits = g.op("Add", &[&logits, &b], vec![]);
                g.op("Sigmoid", &[&logits], vec![])
            }
        };
        values.push(y);
    }
    Ok(Outputs {
        mask: values[topology.mask].clone(),
        head: topology.head.map(|h| values[h].clone()),
    })
}
