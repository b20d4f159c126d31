//! A network of the family declared once, as the graph Keras would build: its layers in
//! the order the Keras function creates them, each with its Keras name, operation and
//! inputs. The builder and the forward pass (`model/mod.rs`), the Keras `model_config`
//! (`keras/config.rs`) and the shape checks of a file being loaded (`keras/load.rs`)
//! all read this graph, so a file is checked against exactly what would be built.
//!
//! The tutorial's network (`UNetConfig::default()`) is exactly `get_unet`:
//! <https://github.com/jocicmarko/ultrasound-nerve-segmentation/blob/master/train.py>.
//! Its variants change the convolution unit (Conv2D, then BatchNormalization and an
//! Activation layer when normalised), add a SpatialDropout2D after each encoder level,
//! and a presence head on the bottleneck, as `tests/fixtures/keras/unet_variants.py`
//! builds them in tf-keras.
//!
//! The weights each layer holds are in `layers.rs`.

use std::collections::HashMap;

pub(crate) use super::layers::keras_shape;
pub use super::layers::{Init, Kind, Layer, Var};
use super::network::{Activation, Norm, UNetConfig, LEVELS};

/// The presence head's Dense layer (`train --presence-head`), after the U-Net's layers.
pub const HEAD: &str = "presence";

/// The activation a layer applies to its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Linear,
    Relu,
    Elu,
    Sigmoid,
}

impl Act {
    /// Keras's name of it.
    pub fn name(self) -> &'static str {
        match self {
            Act::Linear => "linear",
            Act::Relu => "relu",
            Act::Elu => "elu",
            Act::Sigmoid => "sigmoid",
        }
    }
}

impl From<Activation> for Act {
    fn from(a: Activation) -> Act {
        match a {
            Activation::Relu => Act::Relu,
            Activation::Elu => Act::Elu,
        }
    }
}

/// What one layer does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// The input, one channel.
    Input,
    /// Conv2D, k x k, stride 1, 'same' padding, with a bias and an activation.
    Conv {
        c_in: i64,
        c_out: i64,
        k: i64,
        act: Act,
    },
    /// BatchNormalization over the channels (Keras's momentum 0.99, epsilon 1e-3).
    BatchNorm { c: i64 },
    /// An Activation layer.
    Activation(Act),
    /// SpatialDropout2D: whole channels dropped in training.
    Dropout(f64),
    /// MaxPooling2D, 2 x 2.
    Pool,
    /// Conv2DTranspose, 2 x 2, stride 2, with a bias.
    Transpose { c_in: i64, c_out: i64 },
    /// Concatenation of the inputs along the channels, in order.
    Concat,
    /// GlobalAveragePooling2D.
    GlobalPool,
    /// Dense(1, sigmoid) from `c_in` features.
    Dense { c_in: i64 },
}

/// Keras's momentum and epsilon of BatchNormalization (its defaults).
pub const BN_MOMENTUM: f64 = 0.99;
pub const BN_EPSILON: f64 = 1e-3;

/// One layer of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Its Keras 2.0 name (`conv2d_1`, `batch_normalization_3`, ..), also its VarStore path.
    pub name: String,
    pub op: Op,
    /// The layers it reads, by index.
    pub inputs: Vec<usize>,
}

/// The whole network: layers in creation order, and which ones are the outputs.
#[derive(Clone, Debug)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// The mask's layer (the 1x1 sigmoid convolution).
    pub mask: usize,
    /// The presence head's Dense layer.
    pub head: Option<usize>,
    /// The bottleneck's output (what the presence head pools).
    pub bottleneck: usize,
}

/// Creates the layers with Keras 2.0's names: per class a counter from 1.
struct Builder {
    nodes: Vec<Node>,
    counts: HashMap<&'static str, usize>,
}

impl Builder {
    fn add(&mut self, prefix: &'static str, op: Op, inputs: Vec<usize>) -> usize {
        let n = self.counts.entry(prefix).or_insert(0);
        *n += 1;
        let name = format!("{prefix}_{n}");
        self.named(name, op, inputs)
    }

    fn named(&mut self, name: String, op: Op, inputs: Vec<usize>) -> usize {
        self.nodes.push(Node { name, op, inputs });
        self.nodes.len() - 1
    }

    /// One convolution unit: Conv2D with the activation, or, normalised, a linear
    /// Conv2D, BatchNormalization and an Activation layer.
    fn unit(&mut self, cfg: &UNetConfig, x: usize, c_in: i64, c_out: i64) -> usize {
        let act = Act::from(cfg.activation);
        match cfg.norm {
            Norm::None => self.add("conv2d", conv(c_in, c_out, 3, act), vec![x]),
            Norm::Batch => {
                let c = self.add("conv2d", conv(c_in, c_out, 3, Act::Linear), vec![x]);
                let n = self.add("batch_normalization", Op::BatchNorm { c: c_out }, vec![c]);
                self.add("activation", Op::Activation(act), vec![n])
            }
        }
    }

    fn double(&mut self, cfg: &UNetConfig, x: usize, c_in: i64, c_out: i64) -> usize {
        let a = self.unit(cfg, x, c_in, c_out);
        self.unit(cfg, a, c_out, c_out)
    }
}

fn conv(c_in: i64, c_out: i64, k: i64, act: Act) -> Op {
    Op::Conv {
        c_in,
        c_out,
        k,
        act,
    }
}

/// The graph of `cfg` in Keras creation order. For the tutorial: conv2d_1..10 with a
/// pooling after each pair but the last; per decoder level the transposed convolution,
/// the concatenation (up-sampled, skip) and two convolutions; conv2d_19; then the head.
pub(crate) fn graph(cfg: &UNetConfig) -> Graph {
    let w = cfg.base_width;
    let mut b = Builder {
        nodes: Vec::new(),
        counts: HashMap::new(),
    };
    let mut x = b.add("input", Op::Input, Vec::new());
    let mut c_in = 1;
    let mut skips = Vec::new();
    for level in 0..LEVELS {
        let c = w << level;
        x = b.double(cfg, x, c_in, c);
        if cfg.dropout > 0.0 {
            x = b.add("spatial_dropout2d", Op::Dropout(cfg.dropout), vec![x]);
        }
        c_in = c;
        if level + 1 < LEVELS {
            skips.push((x, c));
            x = b.add("max_pooling2d", Op::Pool, vec![x]);
        }
    }
    let bottleneck = x;
    while let Some((skip, c)) = skips.pop() {
        let up = b.add(
            "conv2d_transpose",
            Op::Transpose { c_in, c_out: c },
            vec![x],
        );
        let cat = b.add("concatenate", Op::Concat, vec![up, skip]);
        x = b.double(cfg, cat, 2 * c, c);
        c_in = c;
    }
    let mask = b.add("conv2d", conv(c_in, 1, 1, Act::Sigmoid), vec![x]);
    let head = cfg.presence_head.then(|| {
        let pooled = b.add("global_average_pooling2d", Op::GlobalPool, vec![bottleneck]);
        let c_in = w << (LEVELS - 1);
        b.named(HEAD.to_owned(), Op::Dense { c_in }, vec![pooled])
    });
    Graph {
        nodes: b.nodes,
        mask,
        head,
        bottleneck,
    }
}

impl Graph {
    /// The layers with weights, in creation order (the order their variables are made,
    /// so the same seed gives the same initial weights).
    pub fn layers(&self) -> Vec<Layer> {
        self.nodes.iter().filter_map(Node::layer).collect()
    }

    /// The number of layers of each Keras class (`Conv2D`, `InputLayer`, ..).
    pub(crate) fn class_counts(&self) -> HashMap<&'static str, usize> {
        let mut out = HashMap::new();
        for n in &self.nodes {
            *out.entry(class_name(&n.op)).or_insert(0) += 1;
        }
        out
    }
}

/// The Keras class of a layer.
pub(crate) fn class_name(op: &Op) -> &'static str {
    match op {
        Op::Input => "InputLayer",
        Op::Conv { .. } => "Conv2D",
        Op::BatchNorm { .. } => "BatchNormalization",
        Op::Activation(_) => "Activation",
        Op::Dropout(_) => "SpatialDropout2D",
        Op::Pool => "MaxPooling2D",
        Op::Transpose { .. } => "Conv2DTranspose",
        Op::Concat => "Concatenate",
        Op::GlobalPool => "GlobalAveragePooling2D",
        Op::Dense { .. } => "Dense",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameSize;

    fn names(g: &Graph) -> Vec<&str> {
        g.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn the_graph_is_the_tutorials_unet() {
        let g = graph(&UNetConfig::default());
        let l = g.layers();
        assert_eq!(l.len(), 23);
        let params: i64 = l
            .iter()
            .flat_map(|l| &l.vars)
            .map(|v| v.shape.iter().product::<i64>())
            .sum();
        assert_eq!(params, 7_759_521);
        let n = names(&g);
        assert_eq!(n.len(), 1 + 19 + 4 + 4 + 4);
        assert_eq!(
            &n[..4],
            ["input_1", "conv2d_1", "conv2d_2", "max_pooling2d_1"]
        );
        assert_eq!(
            &n[14..19],
            [
                "conv2d_10",
                "conv2d_transpose_1",
                "concatenate_1",
                "conv2d_11",
                "conv2d_12"
            ]
        );
        assert_eq!(n.last(), Some(&"conv2d_19"));
        // The first concatenation reads the up-sampling, then conv4 (conv2d_8).
        let cat = &g.nodes[16];
        assert_eq!(cat.inputs, [15, 11]);
        assert_eq!(g.nodes[11].name, "conv2d_8");
        let t1 = &l[10];
        assert_eq!(t1.name, "conv2d_transpose_1");
        assert_eq!(t1.vars[0].shape, [512, 256, 2, 2]);
        assert_eq!(t1.vars[0].keras_shape(), [2, 2, 256, 512]);
        assert_eq!(l[11].vars[0].shape, [256, 512, 3, 3]);
        assert_eq!(l[22].vars[0].shape, [1, 32, 1, 1]);
        assert_eq!(g.head, None);
    }

    #[test]
    fn variants_add_layers_where_keras_does() {
        let cfg = UNetConfig {
            base_width: 4,
            input: FrameSize::new(64, 80).unwrap(),
            norm: Norm::Batch,
            activation: Activation::Elu,
            dropout: 0.1,
            presence_head: true,
        };
        let g = graph(&cfg);
        let n = names(&g);
        assert_eq!(
            &n[..9],
            [
                "input_1",
                "conv2d_1",
                "batch_normalization_1",
                "activation_1",
                "conv2d_2",
                "batch_normalization_2",
                "activation_2",
                "spatial_dropout2d_1",
                "max_pooling2d_1"
            ]
        );
        let counts = g.class_counts();
        assert_eq!(counts["BatchNormalization"], 18);
        assert_eq!(counts["Activation"], 18);
        assert_eq!(counts["SpatialDropout2D"], 5);
        assert_eq!(counts["Conv2D"], 19);
        // The head pools the bottleneck's dropout output, 64 channels.
        assert_eq!(g.nodes[g.bottleneck].name, "spatial_dropout2d_5");
        let head = &g.nodes[g.head.unwrap()];
        assert_eq!(head.op, Op::Dense { c_in: 64 });
        let bn = &g.layers()[1];
        assert_eq!(bn.kind, Kind::BatchNorm);
        let keras: Vec<&str> = bn.vars.iter().map(|v| v.keras).collect();
        assert_eq!(keras, ["gamma", "beta", "moving_mean", "moving_variance"]);
        assert!(!bn.vars[2].trainable);
        if let Op::Conv { act, .. } = g.nodes[1].op {
            assert_eq!(act, Act::Linear);
        }
    }
}
