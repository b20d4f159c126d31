//! The network family, NCHW: the tutorial's U-Net (`get_unet` in the original
//! `train.py`) and its variants, each described by one [`UNetConfig`] and built from the
//! graph that `topology.rs` derives from it.
//!
//! Every weighted layer lives at `root / <Keras 2.0 layer name>` (`conv2d_1` ..
//! `conv2d_19`, `conv2d_transpose_1` .., `batch_normalization_1` .., numbered in the
//! order the Keras function creates them), so a Keras file maps onto the VarStore by
//! kind and order (see `keras/`). Kernels start as Keras's glorot_uniform, biases as
//! zeros (libtorch's defaults differ); BatchNorm as Keras's (gamma 1, beta 0, moving
//! mean 0, moving variance 1).
//!
//! Reference: the tutorial's `get_unet`,
//! <https://github.com/jocicmarko/ultrasound-nerve-segmentation/blob/master/train.py>.

mod layers;
pub mod network;
pub mod topology;
mod unet;

use tch::nn;
use tch::{Device, TchError, Tensor};

pub use self::network::{
    check_input, Activation, NetworkChoice, Norm, UNetConfig, LEVELS, MAX_BASE_WIDTH,
    TUTORIAL_INPUT,
};
pub(crate) use self::topology::graph;
pub use self::topology::{Graph, Kind as LayerKind, Layer, Op, Var, HEAD};
pub use self::unet::{unet, Output, UNet};

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

/// Gives every 4-D variable NHWC strides (shape unchanged), in place: the weights of a
/// channels-last model. Values, names and file formats are unchanged.
pub(crate) fn to_channels_last(vs: &nn::VarStore) -> Result<(), TchError> {
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

/// Fails with a clear message when `device` is a GPU that is not there.
pub(crate) fn check_device(device: Device) -> anyhow::Result<()> {
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
