//! The tutorial's U-Net (`get_unet` in the original `train.py`), layer for layer, NCHW.
//!
//! Every weighted layer lives at `root / <Keras 2.0 layer name>` (`conv2d_1` ..
//! `conv2d_19`, `conv2d_transpose_1` .. `conv2d_transpose_4`, numbered in the order the
//! Keras function creates them), so a Keras file maps onto the VarStore by name and
//! order (see `keras/`); the layers are declared once, in `topology.rs`. Kernels start as Keras's glorot_uniform, biases as zeros:
//! libtorch's defaults differ.
//!
//! Reference: the tutorial's `get_unet`,
//! <https://github.com/jocicmarko/ultrasound-nerve-segmentation/blob/master/train.py>.

pub mod topology;

use tch::nn;
use tch::{Device, Kind, TchError, Tensor};

pub use self::topology::{
    head_kernel, layers, Layer, CONVS, HEAD, HEAD_POOL, MAX_BASE_WIDTH, TRANSPOSES,
};

/// Architecture numbers; the defaults are the tutorial's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UNetConfig {
    /// Channels of the first level (32); level k has `base_width << k` channels.
    pub base_width: i64,
    /// A presence head beside the mask (`train --presence-head`): global average pooling
    /// of conv5 (`conv2d_10`), then Dense(1, sigmoid) named `presence`. Off: the
    /// tutorial's model.
    pub presence_head: bool,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig::width(32)
    }
}

impl UNetConfig {
    /// The tutorial's U-Net at base width `w`, without a presence head.
    pub const fn width(w: i64) -> UNetConfig {
        UNetConfig {
            base_width: w,
            presence_head: false,
        }
    }
}

/// Input side in pixels: the tutorial resizes every frame to 96 x 96.
pub const INPUT_SIZE: i64 = 96;

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

/// The weight and bias of one layer (the VarStore's variables, shared).
#[derive(Debug)]
struct Weights {
    ws: Tensor,
    bs: Tensor,
    /// 'same' padding of a stride-1 convolution (k / 2).
    pad: i64,
}

/// The U-Net. Build it with [`unet`]; every call into libtorch it makes returns libtorch's
/// error instead of panicking.
#[derive(Debug)]
pub struct UNet {
    convs: Vec<Weights>,
    ups: Vec<Weights>,
    /// The presence head's Dense kernel (16 w, 1), in Keras's layout, and bias (1).
    head: Option<(Tensor, Tensor)>,
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

/// Keras's glorot_uniform for a Dense kernel: l = sqrt(6 / (fan_in + fan_out)).
fn glorot_dense(c_in: i64, c_out: i64) -> nn::Init {
    let limit = (6.0 / ((c_in + c_out) as f64)).sqrt();
    nn::Init::Uniform {
        lo: -limit,
        up: limit,
    }
}

/// Builds the U-Net under `root`, creating the variables in Keras order (weight, then
/// bias, of each layer of [`layers`]), as `nn::conv2d` would: the same seed gives the
/// same initial weights.
pub fn unet(root: &nn::Path, cfg: &UNetConfig) -> Result<UNet, TchError> {
    if !(1..=MAX_BASE_WIDTH).contains(&cfg.base_width) {
        return Err(TchError::Kind(format!(
            "base width {} is outside 1..={MAX_BASE_WIDTH}",
            cfg.base_width
        )));
    }
    let mut convs = Vec::with_capacity(CONVS.len());
    let mut ups = Vec::with_capacity(TRANSPOSES.len());
    for l in layers(cfg) {
        let p = root / l.name;
        let ws = p.f_var(
            "weight",
            &l.weight_shape(),
            glorot_uniform(l.k, l.c_in, l.c_out),
        )?;
        let bs = p.f_var("bias", &[l.c_out], nn::Init::Const(0.0))?;
        let w = Weights {
            ws,
            bs,
            pad: l.k / 2,
        };
        if l.transpose {
            ups.push(w);
        } else {
            convs.push(w);
        }
    }
    // The head's layer comes after conv2d_19 in the functional model (Keras creates it
    // last), so its variables come last too.
    let head = if cfg.presence_head {
        let p = root / HEAD;
        let [c_in, c_out] = head_kernel(cfg);
        let ws = p.f_var("weight", &[c_in, c_out], glorot_dense(c_in, c_out))?;
        let bs = p.f_var("bias", &[c_out], nn::Init::Const(0.0))?;
        Some((ws, bs))
    } else {
        None
    };
    Ok(UNet {
        convs,
        ups,
        head,
        speed: Speed::PLAIN,
    })
}

/// Gives every 4-D variable NHWC strides (shape unchanged), in place: the weights of a
/// channels-last model. Values, names and file formats are unchanged.
pub fn to_channels_last(vs: &nn::VarStore) -> Result<(), TchError> {
    for (_, mut v) in vs.variables() {
        if v.dim() == 4 {
            let nhwc = nhwc(&v.f_detach()?)?;
            tch::no_grad(|| v.f_set_data(&nhwc))?;
        }
    }
    Ok(())
}

/// The same tensor with NHWC strides: permute, make contiguous, permute back (tch has no
/// memory-format argument).
fn nhwc(xs: &Tensor) -> Result<Tensor, TchError> {
    xs.f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_permute([0, 3, 1, 2])
}

/// A 3x3 (or 1x1) 'same' convolution of `xs` by layer `c`, in `kind` (float32: the
/// weights as they are; bfloat16: cast copies, so gradients reach the float32 weights).
fn conv_in(c: &Weights, xs: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
    let bs = c.bs.f_to_kind(kind)?;
    xs.f_conv2d(
        &c.ws.f_to_kind(kind)?,
        Some(&bs),
        [1, 1],
        [c.pad, c.pad],
        [1, 1],
        1,
    )
}

/// A 2x2 stride-2 transposed convolution by layer `u`, in `kind`.
fn up_in(u: &Weights, xs: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
    let bs = u.bs.f_to_kind(kind)?;
    xs.f_conv_transpose2d(
        &u.ws.f_to_kind(kind)?,
        Some(&bs),
        [2, 2],
        [0, 0],
        [0, 0],
        1,
        [1, 1],
    )
}

/// 2x2 max pooling, stride 2 (Keras's MaxPooling2D(pool_size=(2, 2))).
fn pool(xs: &Tensor) -> Result<Tensor, TchError> {
    xs.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
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

    fn kind(&self) -> Kind {
        if self.speed.bf16 {
            Kind::BFloat16
        } else {
            Kind::Float
        }
    }

    fn conv(&self, i: usize, xs: &Tensor) -> Result<Tensor, TchError> {
        conv_in(&self.convs[i], xs, self.kind())
    }

    /// Two 3x3 convolutions with ReLU, layers `2i` and `2i + 1`. The ReLUs work in place
    /// (autograd allows it: a convolution's backward does not need its output), saving
    /// an activation-sized buffer and a pass over it each.
    fn double(&self, i: usize, xs: &Tensor) -> Result<Tensor, TchError> {
        let mut a = self.conv(2 * i, xs)?;
        let mut b = self.conv(2 * i + 1, &a.f_relu_()?)?;
        b.f_relu_()
    }

    /// Up-sample `xs` with transposed conv `i`, concatenate with `skip` (that order),
    /// then the two convolutions of decoder level `i`.
    fn decode(&self, i: usize, xs: &Tensor, skip: &Tensor) -> Result<Tensor, TchError> {
        let up = up_in(&self.ups[i], xs, self.kind())?;
        self.double(5 + i, &Tensor::f_cat(&[&up, skip], 1)?)
    }

    /// `xs`: [N, 1, 96, 96] standardised images; returns probabilities [N, 1, 96, 96].
    /// A libtorch failure (a wrong input shape, out of memory) comes back as its error.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        Ok(self.forward_with_head(xs)?.0)
    }

    /// Whether the model has a presence head.
    pub fn has_head(&self) -> bool {
        self.head.is_some()
    }

    /// The mask probabilities [N, 1, 96, 96] and, with a presence head, its logits [N, 1]
    /// (float32; the sigmoid of them is the head's probability). Shapes are for the
    /// default base width 32.
    pub fn forward_with_head(&self, xs: &Tensor) -> Result<(Tensor, Option<Tensor>), TchError> {
        let xs = xs.f_to_kind(self.kind())?;
        let xs = if self.speed.channels_last {
            nhwc(&xs)?
        } else {
            xs
        };
        let c1 = self.double(0, &xs)?; // [N, 32, 96, 96]
        let c2 = self.double(1, &pool(&c1)?)?; // [N, 64, 48, 48]
        let c3 = self.double(2, &pool(&c2)?)?; // [N, 128, 24, 24]
        let c4 = self.double(3, &pool(&c3)?)?; // [N, 256, 12, 12]
        let c5 = self.double(4, &pool(&c4)?)?; // [N, 512, 6, 6]
        let c6 = self.decode(0, &c5, &c4)?; // up [N, 256, 12, 12] ++ c4 -> [N, 256, 12, 12]
        let c7 = self.decode(1, &c6, &c3)?; // [N, 128, 24, 24]
        let c8 = self.decode(2, &c7, &c2)?; // [N, 64, 48, 48]
        let c9 = self.decode(3, &c8, &c1)?; // [N, 32, 96, 96]
                                            // One channel: NHWC and NCHW are the same bytes, so the output is plain NCHW.
        let logits = self.conv(18, &c9)?.f_to_kind(Kind::Float)?;
        let mask = logits.f_sigmoid()?.f_contiguous()?; // [N, 1, 96, 96]
        let head = match &self.head {
            // GlobalAveragePooling2D of conv5, then Dense(1): [N, 512] x [512, 1] + b.
            Some((ws, bs)) => {
                let pooled = c5.f_mean_dim([2i64, 3].as_slice(), false, Kind::Float)?;
                Some(pooled.f_matmul(ws)?.f_add(bs)?)
            }
            None => None,
        };
        Ok((mask, head))
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
mod tests;
