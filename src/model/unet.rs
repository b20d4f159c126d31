//! The network built from its graph: the variables made in Keras creation order, and a
//! forward pass that runs the graph's layers in that order. For the tutorial's network
//! it is the same libtorch calls in the same order as `get_unet` (conv, in-place ReLU,
//! pool, transposed conv, concatenation (up, skip)), so its results are unchanged.

use tch::nn;
use tch::{Kind, TchError, Tensor};

use super::network::UNetConfig;
use super::topology::{graph, Act, Init, Op, BN_EPSILON, BN_MOMENTUM};
use super::{nhwc, to_channels_last, Speed};

/// What the network gives for a batch.
#[derive(Debug)]
pub struct Output {
    /// The mask probabilities [N, 1, h, w], float32, contiguous.
    pub mask: Tensor,
    /// Their logits (before the sigmoid), float32.
    pub logits: Tensor,
    /// With a presence head, its logits [N, 1] (float32; the sigmoid of them is the
    /// head's probability).
    pub presence: Option<Tensor>,
}

/// One layer ready to run: what it does, what it reads, its variables.
#[derive(Debug)]
struct Step {
    op: Op,
    inputs: Vec<usize>,
    /// The layer's variables in Keras's order (shared with the VarStore).
    vars: Vec<Tensor>,
    /// Per input: whether this layer is the last to read it (its value is then dropped,
    /// or reused in place by an activation).
    last_reader: Vec<bool>,
}

/// A network of the family. Build it with [`unet`]; every call into libtorch it makes
/// returns libtorch's error instead of panicking.
#[derive(Debug)]
pub struct UNet {
    steps: Vec<Step>,
    mask: usize,
    head: Option<usize>,
    cfg: UNetConfig,
    speed: Speed,
}

/// Keras's glorot_uniform for fans `fan_in` and `fan_out`: U(-l, l),
/// l = sqrt(6 / (fan_in + fan_out)).
pub(crate) fn glorot_uniform(fan_in: i64, fan_out: i64) -> nn::Init {
    let limit = (6.0 / ((fan_in + fan_out) as f64)).sqrt();
    nn::Init::Uniform {
        lo: -limit,
        up: limit,
    }
}

/// Builds the network `cfg` under `root`, creating the variables in Keras order (each
/// layer's, in Keras's order of its weights), as `nn::conv2d` would: the same seed
/// gives the same initial weights.
pub fn unet(root: &nn::Path, cfg: &UNetConfig) -> Result<UNet, TchError> {
    cfg.check().map_err(|e| TchError::Kind(format!("{e:#}")))?;
    let g = graph(cfg);
    let mut last = vec![0usize; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        for &j in &n.inputs {
            last[j] = i;
        }
    }
    let mut steps = Vec::with_capacity(g.nodes.len());
    for (i, node) in g.nodes.iter().enumerate() {
        let mut vars = Vec::new();
        if let Some(layer) = node.layer() {
            let p = root / layer.name.as_str();
            for v in &layer.vars {
                let t = match (v.trainable, v.init) {
                    (true, Init::Glorot { fan_in, fan_out }) => {
                        p.f_var(v.tch, &v.shape, glorot_uniform(fan_in, fan_out))?
                    }
                    (true, Init::Const(c)) => p.f_var(v.tch, &v.shape, nn::Init::Const(c))?,
                    (false, Init::Const(1.0)) => p.f_ones_no_train(v.tch, &v.shape)?,
                    (false, _) => p.f_zeros_no_train(v.tch, &v.shape)?,
                };
                vars.push(t);
            }
        }
        steps.push(Step {
            op: node.op,
            inputs: node.inputs.clone(),
            vars,
            last_reader: node.inputs.iter().map(|&j| last[j] == i).collect(),
        });
    }
    Ok(UNet {
        steps,
        mask: g.mask,
        head: g.head,
        cfg: *cfg,
        speed: Speed::PLAIN,
    })
}

/// A k x k 'same' convolution of `xs` by the weights `w` (kernel, bias), in `kind`
/// (float32: the weights as they are; bfloat16: cast copies, so gradients reach the
/// float32 weights).
fn conv_in(w: &[Tensor], xs: &Tensor, k: i64, kind: Kind) -> Result<Tensor, TchError> {
    let bs = w[1].f_to_kind(kind)?;
    let pad = k / 2;
    xs.f_conv2d(
        &w[0].f_to_kind(kind)?,
        Some(&bs),
        [1, 1],
        [pad, pad],
        [1, 1],
        1,
    )
}

/// A 2x2 stride-2 transposed convolution by the weights `w`, in `kind`.
fn up_in(w: &[Tensor], xs: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
    let bs = w[1].f_to_kind(kind)?;
    xs.f_conv_transpose2d(
        &w[0].f_to_kind(kind)?,
        Some(&bs),
        [2, 2],
        [0, 0],
        [0, 0],
        1,
        [1, 1],
    )
}

/// Applies `act` in place (a ReLU or ELU's backward needs only its output, so autograd
/// allows it; it saves an activation-sized buffer and a pass). The output layers' sigmoid
/// is applied by the caller, which keeps the logits.
fn activate(mut xs: Tensor, act: Act) -> Result<Tensor, TchError> {
    match act {
        Act::Relu => xs.f_relu_(),
        Act::Elu => xs.f_elu_(),
        Act::Linear | Act::Sigmoid => Ok(xs),
    }
}

impl UNet {
    /// Runs the forward pass as `speed` says and lays out the weights in `vs` to match
    /// (NHWC strides for channels-last: [`to_channels_last`]). On CUDA, cuDNN also times
    /// its algorithms once for our few fixed shapes and keeps the fastest (benchmark
    /// mode). Before or after loading weights alike: loading copies values into the
    /// variables and keeps their layout.
    pub fn set_speed(&mut self, vs: &nn::VarStore, speed: Speed) -> Result<(), TchError> {
        self.speed = speed;
        if speed.bf16 && !vs.device().is_cuda() {
            if let Some(warning) = crate::cpu::CpuFeatures::detect().bf16_warning() {
                log::warn!("{warning}");
            }
        }
        if speed.channels_last {
            to_channels_last(vs)?;
        }
        if vs.device().is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        Ok(())
    }

    /// The network's description.
    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    fn kind(&self) -> Kind {
        if self.speed.bf16 {
            Kind::BFloat16
        } else {
            Kind::Float
        }
    }

    /// Whether the model has a presence head.
    pub(crate) fn has_head(&self) -> bool {
        self.head.is_some()
    }

    /// `xs`: [N, 1, h, w] standardised images; the mask probabilities [N, 1, h, w] and,
    /// with a presence head, its logits, in prediction mode. A libtorch failure (a wrong
    /// input shape, out of memory) comes back as its error.
    pub fn forward(&self, xs: &Tensor) -> Result<Output, TchError> {
        self.forward_t(xs, false)
    }

    /// The forward pass; `train` selects training behaviour (batch statistics that also
    /// update the moving ones, dropout), as Keras's `training=True`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Output, TchError> {
        let kind = self.kind();
        let mut values: Vec<Option<Tensor>> = (0..self.steps.len()).map(|_| None).collect();
        for (i, step) in self.steps.iter().enumerate() {
            let y = self.run(step, xs, &mut values, kind, train)?;
            values[i] = Some(y);
            for (&j, &last) in step.inputs.iter().zip(&step.last_reader) {
                if last && j != self.mask {
                    values[j] = None;
                }
            }
        }
        let take = |i: usize, values: &mut Vec<Option<Tensor>>| {
            values[i]
                .take()
                .ok_or_else(|| TchError::Kind(format!("layer {i} has no output")))
        };
        // One channel: NHWC and NCHW are the same bytes, so the output is plain NCHW.
        let logits = take(self.mask, &mut values)?.f_to_kind(Kind::Float)?;
        let mask = logits.f_sigmoid()?.f_contiguous()?;
        let presence = match self.head {
            Some(h) => Some(take(h, &mut values)?),
            None => None,
        };
        Ok(Output {
            mask,
            logits,
            presence,
        })
    }

    /// One layer: its output from its inputs' (taken when it is their last reader and
    /// may work in place).
    fn run(
        &self,
        step: &Step,
        xs: &Tensor,
        values: &mut [Option<Tensor>],
        kind: Kind,
        train: bool,
    ) -> Result<Tensor, TchError> {
        let missing = || TchError::Kind("a layer's input has no value".to_owned());
        if let Op::Activation(act) = step.op {
            let j = step.inputs[0];
            return if step.last_reader[0] {
                activate(values[j].take().ok_or_else(missing)?, act)
            } else {
                let x = values[j].as_ref().ok_or_else(missing)?;
                match act {
                    Act::Relu => x.f_relu(),
                    Act::Elu => x.f_elu(),
                    Act::Linear | Act::Sigmoid => Ok(x.shallow_clone()),
                }
            };
        }
        let input = |k: usize| values[step.inputs[k]].as_ref().ok_or_else(missing);
        let w = &step.vars;
        match step.op {
            Op::Input => {
                let xs = xs.f_to_kind(kind)?;
                if self.speed.channels_last {
                    nhwc(&xs)
                } else {
                    Ok(xs)
                }
            }
            Op::Conv { k, act, .. } => activate(conv_in(w, input(0)?, k, kind)?, act),
            Op::BatchNorm { .. } => input(0)?.f_batch_norm(
                Some(&w[0]),
                Some(&w[1]),
                Some(&w[2]),
                Some(&w[3]),
                train,
                1.0 - BN_MOMENTUM,
                BN_EPSILON,
                true,
            ),
            Op::Dropout(p) => input(0)?.f_feature_dropout(p, train),
            Op::Pool => input(0)?.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
            Op::Transpose { .. } => up_in(w, input(0)?, kind),
            Op::Concat => Tensor::f_cat(&[input(0)?, input(1)?], 1),
            Op::GlobalPool => input(0)?.f_mean_dim([2i64, 3].as_slice(), false, Kind::Float),
            // Dense(1): [N, c] x [c, 1] + b, the logits (the caller applies the sigmoid).
            Op::Dense { .. } => input(0)?.f_matmul(&w[0])?.f_add(&w[1]),
            Op::Activation(_) => Err(missing()),
        }
    }
}
