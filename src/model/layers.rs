//! The weights of the graph's layers (`topology.rs`): for each operation that has any,
//! its variables in Keras's order, with their libtorch and Keras names, shapes and
//! initialisers, and the shape Keras stores each in.

use super::topology::{Node, Op};

/// The kinds of layer that hold weights; a file's layers are matched to ours by kind
/// and order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Conv,
    Transpose,
    BatchNorm,
    Dense,
}

impl Kind {
    /// Keras's class name.
    pub fn class(self) -> &'static str {
        match self {
            Kind::Conv => "Conv2D",
            Kind::Transpose => "Conv2DTranspose",
            Kind::BatchNorm => "BatchNormalization",
            Kind::Dense => "Dense",
        }
    }

    pub const ALL: [Kind; 4] = [Kind::Conv, Kind::Transpose, Kind::BatchNorm, Kind::Dense];
}

/// How a variable starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Keras's glorot_uniform with these fans.
    Glorot {
        fan_in: i64,
        fan_out: i64,
    },
    Const(f64),
}

/// One variable of a weighted layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    /// Its VarStore name under the layer (`weight`, `bias`, `running_mean`, ..).
    pub tch: &'static str,
    /// Its Keras name (`kernel`, `bias`, `gamma`, `beta`, `moving_mean`, ..).
    pub keras: &'static str,
    /// libtorch's shape.
    pub shape: Vec<i64>,
    /// Trained by the optimiser (BatchNorm's moving statistics are not).
    pub trainable: bool,
    pub init: Init,
}

/// The shape Keras stores for a libtorch `shape`: 4-D kernels permuted by (2, 3, 1, 0)
/// (Conv2D's (out, in, kh, kw) -> (kh, kw, in, out); Conv2DTranspose's
/// (in, out, kh, kw) -> (kh, kw, out, in)); everything else as it is. The values move
/// the same way in `keras::to_keras` and back in `keras::to_tch`.
pub(crate) fn keras_shape(shape: &[i64]) -> Vec<usize> {
    let s: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    match s.as_slice() {
        &[a, b, c, d] => vec![c, d, b, a],
        _ => s,
    }
}

impl Var {
    /// The shape Keras stores ([`keras_shape`]).
    pub(crate) fn keras_shape(&self) -> Vec<usize> {
        keras_shape(&self.shape)
    }
}

/// A layer with weights, and its variables in Keras's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: String,
    pub kind: Kind,
    pub vars: Vec<Var>,
}

fn var(tch: &'static str, keras: &'static str, shape: Vec<i64>, init: Init) -> Var {
    Var {
        tch,
        keras,
        shape,
        trainable: true,
        init,
    }
}

/// The weights of `op`, or `None` for a layer without.
fn weights(op: &Op) -> Option<(Kind, Vec<Var>)> {
    let zero = Init::Const(0.0);
    Some(match *op {
        Op::Conv { c_in, c_out, k, .. } => {
            let (fan_in, fan_out) = (k * k * c_in, k * k * c_out);
            let glorot = Init::Glorot { fan_in, fan_out };
            (
                Kind::Conv,
                vec![
                    var("weight", "kernel", vec![c_out, c_in, k, k], glorot),
                    var("bias", "bias", vec![c_out], zero),
                ],
            )
        }
        Op::Transpose { c_in, c_out } => {
            // Keras's fans of a transposed kernel are the same two numbers swapped.
            let glorot = Init::Glorot {
                fan_in: 4 * c_out,
                fan_out: 4 * c_in,
            };
            (
                Kind::Transpose,
                vec![
                    var("weight", "kernel", vec![c_in, c_out, 2, 2], glorot),
                    var("bias", "bias", vec![c_out], zero),
                ],
            )
        }
        Op::BatchNorm { c } => {
            let fixed = |tch, keras, v| Var {
                trainable: false,
                ..var(tch, keras, vec![c], Init::Const(v))
            };
            (
                Kind::BatchNorm,
                vec![
                    var("weight", "gamma", vec![c], Init::Const(1.0)),
                    var("bias", "beta", vec![c], zero),
                    fixed("running_mean", "moving_mean", 0.0),
                    fixed("running_var", "moving_variance", 1.0),
                ],
            )
        }
        Op::Dense { c_in } => (
            Kind::Dense,
            vec![
                // (in, out): the same in Keras's layout and ours (features x kernel).
                var(
                    "weight",
                    "kernel",
                    vec![c_in, 1],
                    Init::Glorot {
                        fan_in: c_in,
                        fan_out: 1,
                    },
                ),
                var("bias", "bias", vec![1], zero),
            ],
        ),
        _ => return None,
    })
}

impl Node {
    /// The layer's weights, when it has any.
    pub fn layer(&self) -> Option<Layer> {
        weights(&self.op).map(|(kind, vars)| Layer {
            name: self.name.clone(),
            kind,
            vars,
        })
    }
}
