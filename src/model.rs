//! The tutorial's U-Net (`get_unet` in the original `train.py`), layer for layer, NCHW.
//!
//! Every weighted layer lives at `root / <Keras 2.0 layer name>` (`conv2d_1` ..
//! `conv2d_19`, `conv2d_transpose_1` .. `conv2d_transpose_4`, numbered in the order the
//! Keras function creates them), so a Keras file maps onto the VarStore by name and
//! order (see `keras.rs`). Kernels start as Keras's glorot_uniform, biases as zeros:
//! libtorch's defaults differ.
//!
//! Reference: the tutorial's `get_unet`,
//! <https://github.com/jocicmarko/ultrasound-nerve-segmentation/blob/master/train.py>.

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Architecture numbers; the defaults are the tutorial's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UNetConfig {
    /// Channels of the first level (32); level k has `base_width << k` channels.
    pub base_width: i64,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig { base_width: 32 }
    }
}

/// Input side in pixels: the tutorial resizes every frame to 96 x 96.
pub const INPUT_SIZE: i64 = 96;

/// The Conv2D layers in Keras creation order, with the base-width multiple of their
/// output channels and their kernel size. `conv2d_19` is the 1x1 sigmoid output.
pub const CONVS: [(&str, i64, i64); 19] = [
    ("conv2d_1", 1, 3), // conv1 = Conv2D(32, (3, 3), activation='relu', padding='same')(inputs)
    ("conv2d_2", 1, 3), // conv1 = Conv2D(32, ...)(conv1)
    ("conv2d_3", 2, 3), // conv2 = Conv2D(64, ...)(pool1)
    ("conv2d_4", 2, 3),
    ("conv2d_5", 4, 3), // conv3 = Conv2D(128, ...)(pool2)
    ("conv2d_6", 4, 3),
    ("conv2d_7", 8, 3), // conv4 = Conv2D(256, ...)(pool3)
    ("conv2d_8", 8, 3),
    ("conv2d_9", 16, 3), // conv5 = Conv2D(512, ...)(pool4)
    ("conv2d_10", 16, 3),
    ("conv2d_11", 8, 3), // conv6 = Conv2D(256, ...)(up6)
    ("conv2d_12", 8, 3),
    ("conv2d_13", 4, 3), // conv7 = Conv2D(128, ...)(up7)
    ("conv2d_14", 4, 3),
    ("conv2d_15", 2, 3), // conv8 = Conv2D(64, ...)(up8)
    ("conv2d_16", 2, 3),
    ("conv2d_17", 1, 3), // conv9 = Conv2D(32, ...)(up9)
    ("conv2d_18", 1, 3),
    ("conv2d_19", 0, 1), // conv10 = Conv2D(1, (1, 1), activation='sigmoid')(conv9): 1 channel
];

/// The Conv2DTranspose layers in creation order, with the multiple of their output
/// channels: up6 = concatenate([Conv2DTranspose(256, (2, 2), strides=(2, 2),
/// padding='same')(conv5), conv4], axis=3), and so on.
pub const TRANSPOSES: [(&str, i64); 4] = [
    ("conv2d_transpose_1", 8),
    ("conv2d_transpose_2", 4),
    ("conv2d_transpose_3", 2),
    ("conv2d_transpose_4", 1),
];

/// How the forward pass runs; none of it changes the weights or the file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speed {
    /// Activations in NHWC memory order (the tensors keep their NCHW shape). Faster
    /// convolutions on CPU (oneDNN) and on tensor-core GPUs; same float32 arithmetic up
    /// to summation order. [`UNet::set_speed`] lays out the weights to match.
    pub channels_last: bool,
    /// Compute the convolutions in bfloat16 from float32 master weights (the `--amp` of
    /// training, the `--bf16` of prediction); the output layer's sigmoid and the loss
    /// stay float32. Not the parity mode: outputs differ from Keras by about 1e-2.
    pub bf16: bool,
}

impl Default for Speed {
    fn default() -> Self {
        Speed {
            channels_last: true,
            bf16: false,
        }
    }
}

impl Speed {
    /// float32 in NCHW order: the layout Keras parity was first checked in.
    pub const PLAIN: Speed = Speed {
        channels_last: false,
        bf16: false,
    };
}

/// The U-Net. Build it with [`unet`].
#[derive(Debug)]
pub struct UNet {
    convs: Vec<nn::Conv2D>,
    ups: Vec<nn::ConvTranspose2D>,
    speed: Speed,
}

/// Keras's glorot_uniform for a kh x kw kernel from `c_in` to `c_out` channels:
/// U(-l, l), l = sqrt(6 / (fan_in + fan_out)), fans = kh*kw*c_in and kh*kw*c_out.
/// The same for Conv2DTranspose, whose fans are the same two numbers swapped.
pub fn glorot_uniform(k: i64, c_in: i64, c_out: i64) -> nn::Init {
    let limit = (6.0 / ((k * k * (c_in + c_out)) as f64)).sqrt();
    nn::Init::Uniform {
        lo: -limit,
        up: limit,
    }
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        padding: k / 2, // 'same' for odd kernels, stride 1
        ws_init: glorot_uniform(k, c_in, c_out),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

/// Conv2DTranspose(2x2, stride 2, 'same'): output exactly twice the input.
fn up(p: nn::Path, c_in: i64, c_out: i64) -> nn::ConvTranspose2D {
    let cfg = nn::ConvTransposeConfig {
        stride: 2,
        ws_init: glorot_uniform(2, c_in, c_out),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv_transpose2d(p, c_in, c_out, 2, cfg)
}

/// Builds the U-Net under `root`, creating the variables in Keras order.
pub fn unet(root: &nn::Path, cfg: &UNetConfig) -> UNet {
    let w = cfg.base_width;
    let channels = |mult: i64| if mult == 0 { 1 } else { w * mult };
    let mut convs = Vec::with_capacity(CONVS.len());
    let mut ups = Vec::with_capacity(TRANSPOSES.len());
    let mut c_in = 1;
    for (i, &(name, mult, k)) in CONVS.iter().enumerate() {
        // After conv2d_10, 12, 14 and 16 comes an up-sampling and a concatenation with
        // the skip connection of the same width: the next conv sees twice the channels.
        if i >= 10 && i % 2 == 0 && i < 18 {
            let (up_name, up_mult) = TRANSPOSES[(i - 10) / 2];
            ups.push(up(root / up_name, c_in, w * up_mult));
            c_in = 2 * w * up_mult;
        }
        let c_out = channels(mult);
        convs.push(conv(root / name, c_in, c_out, k));
        c_in = c_out;
    }
    UNet {
        convs,
        ups,
        speed: Speed::PLAIN,
    }
}

/// Gives every 4-D variable NHWC strides (shape unchanged), in place: the weights of a
/// channels-last model. Values, names and file formats are unchanged.
pub fn to_channels_last(vs: &nn::VarStore) {
    for (_, mut v) in vs.variables() {
        if v.dim() == 4 {
            let nhwc = nhwc(&v.detach());
            tch::no_grad(|| v.set_data(&nhwc));
        }
    }
}

/// The same tensor with NHWC strides: permute, make contiguous, permute back (tch has no
/// memory-format argument).
fn nhwc(xs: &Tensor) -> Tensor {
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// A 3x3 (or 1x1) 'same' convolution of `xs` by layer `c`, in `kind` (float32: the
/// weights as they are; bfloat16: cast copies, so gradients reach the float32 weights).
fn conv_in(c: &nn::Conv2D, xs: &Tensor, kind: Kind) -> Tensor {
    let pad = c.ws.size()[3] / 2;
    let bs = c.bs.as_ref().map(|b| b.to_kind(kind));
    xs.conv2d(
        &c.ws.to_kind(kind),
        bs.as_ref(),
        [1, 1],
        [pad, pad],
        [1, 1],
        1,
    )
}

/// A 2x2 stride-2 transposed convolution by layer `u`, in `kind`.
fn up_in(u: &nn::ConvTranspose2D, xs: &Tensor, kind: Kind) -> Tensor {
    let bs = u.bs.as_ref().map(|b| b.to_kind(kind));
    xs.conv_transpose2d(
        &u.ws.to_kind(kind),
        bs.as_ref(),
        [2, 2],
        [0, 0],
        [0, 0],
        1,
        [1, 1],
    )
}

impl UNet {
    /// Runs the forward pass as `speed` says and lays out the weights in `vs` to match
    /// (NHWC strides for channels-last: [`to_channels_last`]). On CUDA, cuDNN also times
    /// its algorithms once for our few fixed shapes and keeps the fastest (benchmark
    /// mode). Before or after loading weights alike: loading copies values into the
    /// variables and keeps their layout.
    pub fn set_speed(&mut self, vs: &nn::VarStore, speed: Speed) {
        self.speed = speed;
        if speed.channels_last {
            to_channels_last(vs);
        }
        if vs.device().is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
    }

    fn kind(&self) -> Kind {
        if self.speed.bf16 {
            Kind::BFloat16
        } else {
            Kind::Float
        }
    }

    fn conv(&self, i: usize, xs: &Tensor) -> Tensor {
        conv_in(&self.convs[i], xs, self.kind())
    }

    /// Two 3x3 convolutions with ReLU, layers `2i` and `2i + 1`. The ReLUs work in place
    /// (autograd allows it: a convolution's backward does not need its output), saving
    /// an activation-sized buffer and a pass over it each.
    fn double(&self, i: usize, xs: &Tensor) -> Tensor {
        let mut a = self.conv(2 * i, xs);
        let mut b = self.conv(2 * i + 1, &a.relu_());
        b.relu_()
    }

    /// Up-sample `xs` with transposed conv `i`, concatenate with `skip` (that order),
    /// then the two convolutions of decoder level `i`.
    fn decode(&self, i: usize, xs: &Tensor, skip: &Tensor) -> Tensor {
        let up = up_in(&self.ups[i], xs, self.kind());
        self.double(5 + i, &Tensor::cat(&[up, skip.shallow_clone()], 1))
    }
}

impl Module for UNet {
    /// `xs`: [N, 1, 96, 96] standardised images; returns probabilities [N, 1, 96, 96].
    /// Shapes are for the default base width 32.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let xs = xs.to_kind(self.kind());
        let xs = if self.speed.channels_last {
            nhwc(&xs)
        } else {
            xs
        };
        let c1 = self.double(0, &xs); // [N, 32, 96, 96]
        let c2 = self.double(1, &c1.max_pool2d_default(2)); // [N, 64, 48, 48]
        let c3 = self.double(2, &c2.max_pool2d_default(2)); // [N, 128, 24, 24]
        let c4 = self.double(3, &c3.max_pool2d_default(2)); // [N, 256, 12, 12]
        let c5 = self.double(4, &c4.max_pool2d_default(2)); // [N, 512, 6, 6]
        let c6 = self.decode(0, &c5, &c4); // up [N, 256, 12, 12] ++ c4 -> [N, 256, 12, 12]
        let c7 = self.decode(1, &c6, &c3); // [N, 128, 24, 24]
        let c8 = self.decode(2, &c7, &c2); // [N, 64, 48, 48]
        let c9 = self.decode(3, &c8, &c1); // [N, 32, 96, 96]
                                           // One channel: NHWC and NCHW are the same bytes, so the output is plain NCHW.
        let logits = self.conv(18, &c9).to_kind(Kind::Float);
        logits.sigmoid().contiguous() // [N, 1, 96, 96]
    }
}

/// Where to run: `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Device::Cuda(n)),
            _ => Err(format!(
                "unknown device {s:?}: use auto, cpu, cuda or cuda:N"
            )),
        },
    }
}

/// Fails with a clear message when `device` is a GPU that is not there.
pub fn check_device(device: Device) -> anyhow::Result<()> {
    if let Device::Cuda(n) = device {
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count()
        } else {
            0
        };
        if n as i64 >= count {
            anyhow::bail!(
                "device cuda:{n} requested, but {count} CUDA device(s) are available \
                 (see `nerveseg info`); use --device cpu"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_and_shapes_match_keras() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = unet(&vs.root(), &UNetConfig::default());
        let vars = vs.variables();
        let total: i64 = vars.values().map(|t| t.numel() as i64).sum();
        assert_eq!(total, 7_759_521);
        assert_eq!(vars.len(), 2 * (19 + 4));
        assert_eq!(vars["conv2d_1.weight"].size(), [32, 1, 3, 3]);
        assert_eq!(vars["conv2d_10.weight"].size(), [512, 512, 3, 3]);
        assert_eq!(vars["conv2d_transpose_1.weight"].size(), [512, 256, 2, 2]);
        assert_eq!(vars["conv2d_11.weight"].size(), [256, 512, 3, 3]);
        assert_eq!(vars["conv2d_transpose_4.weight"].size(), [64, 32, 2, 2]);
        assert_eq!(vars["conv2d_19.weight"].size(), [1, 32, 1, 1]);
        assert_eq!(vars["conv2d_19.bias"].size(), [1]);
    }

    #[test]
    fn forward_keeps_the_frame_size_and_gives_probabilities() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = unet(&vs.root(), &UNetConfig { base_width: 2 });
        let x = Tensor::randn([2, 1, 96, 96], (tch::Kind::Float, Device::Cpu));
        let y = net.forward(&x);
        assert_eq!(y.size(), [2, 1, 96, 96]);
        let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
        assert!(lo > 0.0 && hi < 1.0, "{lo} {hi}");
    }

    #[test]
    fn init_is_glorot_uniform_with_zero_bias() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = unet(&vs.root(), &UNetConfig::default());
        let vars = vs.variables();
        // conv2d_10: 3x3, 512 -> 512: limit sqrt(6 / (9 * 1024)).
        let w = &vars["conv2d_10.weight"];
        let limit = (6.0f64 / (9.0 * 1024.0)).sqrt();
        let max = w.abs().max().double_value(&[]);
        assert!(max <= limit && max > 0.99 * limit, "{max} vs {limit}");
        // A uniform on [-l, l] has variance l^2 / 3.
        let var = w.var(true).double_value(&[]);
        assert!((var / (limit * limit / 3.0) - 1.0).abs() < 0.01, "{var}");
        // conv2d_transpose_1: 2x2, 512 -> 256.
        let t = &vars["conv2d_transpose_1.weight"];
        let limit_t = (6.0f64 / (4.0 * 768.0)).sqrt();
        let max_t = t.abs().max().double_value(&[]);
        assert!(
            max_t <= limit_t && max_t > 0.99 * limit_t,
            "{max_t} vs {limit_t}"
        );
        for (name, v) in &vars {
            if name.ends_with(".bias") {
                assert_eq!(
                    v.abs().sum(tch::Kind::Double).double_value(&[]),
                    0.0,
                    "{name}"
                );
            }
        }
    }

    /// A small U-Net with fixed varied weights (tests run in parallel and share the global
    /// RNG, so no seeding), scaled so the outputs spread over (0, 1).
    fn random_net(speed: Speed) -> (nn::VarStore, UNet) {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut net = unet(&vs.root(), &UNetConfig { base_width: 4 });
        for (name, mut v) in vs.variables() {
            let n = v.numel() as i64;
            let fan: i64 = v.size().iter().skip(1).product();
            let scale = if name.ends_with(".bias") {
                0.1
            } else {
                1.5 / (fan as f64).sqrt()
            };
            let pattern = (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.7).sin() * scale;
            tch::no_grad(|| v.copy_(&pattern.view(v.size().as_slice())));
        }
        net.set_speed(&vs, speed);
        (vs, net)
    }

    #[test]
    fn channels_last_changes_the_layout_not_the_values() {
        let (plain_vs, plain) = random_net(Speed::PLAIN);
        let (fast_vs, fast) = random_net(Speed::default());
        let w = &fast_vs.variables()["conv2d_2.weight"];
        assert_eq!(w.size(), [4, 4, 3, 3]);
        assert_eq!(w.stride(), [36, 1, 12, 4], "NHWC strides");
        assert!(w.equal(&plain_vs.variables()["conv2d_2.weight"]));
        let x = Tensor::randn([3, 1, 96, 96], (Kind::Float, Device::Cpu));
        let (a, b) = tch::no_grad(|| (plain.forward(&x), fast.forward(&x)));
        assert_eq!(b.size(), [3, 1, 96, 96]);
        assert!(b.is_contiguous());
        let diff = (&a - &b).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{diff}");
        // Not the same thing by accident: the outputs do vary.
        assert!(a.std(true).double_value(&[]) > 0.05);
    }

    #[test]
    fn bf16_is_close_and_returns_float32() {
        let (_vs, plain) = random_net(Speed::PLAIN);
        let (_vs2, half) = random_net(Speed {
            channels_last: true,
            bf16: true,
        });
        let x = Tensor::randn([2, 1, 96, 96], (Kind::Float, Device::Cpu));
        let (a, b) = tch::no_grad(|| (plain.forward(&x), half.forward(&x)));
        assert_eq!(b.kind(), Kind::Float);
        // bfloat16 keeps 8 bits of mantissa: close on average, but not float32-exact.
        let diff = (&a - &b).abs().mean(Kind::Float).double_value(&[]);
        let spread = a.std(true).double_value(&[]);
        assert!(
            diff < 0.1 * spread && diff > 1e-6,
            "{diff} vs spread {spread}"
        );
    }

    #[test]
    fn bf16_gradients_reach_the_float32_weights() {
        let (vs, half) = random_net(Speed {
            channels_last: true,
            bf16: true,
        });
        let x = Tensor::randn([2, 1, 96, 96], (Kind::Float, Device::Cpu));
        half.forward(&x).sum(Kind::Float).backward();
        for (name, v) in vs.variables() {
            assert_eq!(v.kind(), Kind::Float, "{name}");
            let g = v.grad();
            assert!(g.defined() && g.kind() == Kind::Float, "{name}");
            assert!(g.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{name}");
        }
    }

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cpu"), Ok(Device::Cpu));
        assert_eq!(parse_device("cuda"), Ok(Device::Cuda(0)));
        assert_eq!(parse_device("cuda:3"), Ok(Device::Cuda(3)));
        assert!(parse_device("gpu").is_err());
        assert!(parse_device("cuda:x").is_err());
    }
}
