//! Keras HDF5 weight files in and out: the only module that knows Keras.
//!
//! Reads, detecting the layout itself:
//! - tf-keras / Keras 2 full-model files (`model.save`, ModelCheckpoint): `model_weights/`
//!   with `layer_names`, one group per layer with `weight_names`;
//! - weights-only files (`save_weights`): the same groups at the root;
//! - Keras 3 `.weights.h5`: `layers/<name>/vars/0` (kernel) and `/1` (bias).
//!
//! Layer names differ by version (Keras 2.0: `conv2d_1` ..; tf-keras: `conv2d`,
//! `conv2d_1` ..) and by how many models a session built, so layers are matched by kind
//! (Conv2D, Conv2DTranspose, BatchNormalization, Dense) and order, never by name, and
//! every shape is checked. Kernels change layout on the way ([`to_tch`], [`to_keras`]):
//! Keras Conv2D (kh, kw, in, out) <-> libtorch (out, in, kh, kw); Keras Conv2DTranspose
//! (kh, kw, out, in) <-> libtorch (in, out, kh, kw): the same permutation for both. No
//! spatial flip is needed.
//!
//! Which network a file holds comes from nerveseg's record of it, else from the Keras
//! `model_config`, else from the shapes alone (`declared.rs`, `load.rs`).
//!
//! Writes the tf-keras full-model layout, with nerveseg's metadata (normalisation
//! mean/std, epoch, base width, the network) as extra root attributes that Keras
//! ignores, or the Keras 3 layout. Writes go to a temporary file renamed into place.

mod config;
mod declared;
mod describe;
mod heap;
mod listing;
mod load;
mod read;
mod write;

use std::path::{Path, PathBuf};

use anyhow::Result;
use tch::{Kind, TchError, Tensor};

use crate::model::LayerKind;

pub use self::config::model_config;
pub use self::describe::describe;
pub use self::load::{load, Checked, LoadReport, Loaded};
pub use self::read::{read, read_adam_state};
pub use self::write::{write, write_checkpoint};

/// The layouts nerveseg reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// tf-keras / Keras 2 `model.save` or ModelCheckpoint: `model_weights/`.
    Keras2Model,
    /// tf-keras / Keras 2 `save_weights`: layer groups at the root.
    Keras2Weights,
    /// Keras 3 `.weights.h5`: `layers/<name>/vars/<i>`.
    Keras3Weights,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Keras2Model => "Keras 2 / tf-keras full model (model_weights)",
            Format::Keras2Weights => "Keras 2 / tf-keras weights only (save_weights)",
            Format::Keras3Weights => "Keras 3 .weights.h5",
        })
    }
}

/// What nerveseg stores beside the weights (attributes Keras ignores).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// Mean and standard deviation of the training pixels, for standardising inputs
    /// (stored as two attributes; a file with only one of them stores none).
    pub stats: Option<crate::dataset::Stats>,
    /// The epoch (1-based) after which the weights were saved.
    pub epoch: Option<i64>,
    /// Training bookkeeping kept in the resumable state file: the best validation loss
    /// so far and its epoch (1-based).
    pub best_val_loss: Option<f64>,
    pub best_epoch: Option<i64>,
    /// What defines the training run that wrote the checkpoint.
    pub run: Option<RunRecord>,
    /// The size of the frames it was trained on (for information: any size predicts).
    pub frame_size: Option<crate::frame::FrameSize>,
}

/// What a file says of its network beyond its weights' shapes (which say the width,
/// the normalisation and the head).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Declared {
    /// Nothing (a weights-only file of Keras or Keras 3): the tutorial's input size and
    /// activation.
    #[default]
    Nothing,
    /// nerveseg's record of the whole network (`nerveseg_network`).
    Record(crate::model::UNetConfig),
    /// A Keras `model_config`, read.
    Config(declared::KerasConfig),
}

/// What defines a training run, recorded in its checkpoints so that `--resume` can
/// refuse to continue a different run and `evaluate` can score the same validation
/// frames.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub validation_split: f64,
    pub seed: u64,
    pub shuffle: bool,
    pub batch_size: u64,
    /// Number of samples (training and validation) and a fingerprint of their content.
    pub samples: u64,
    pub fingerprint: String,
    /// The options beyond the tutorial (callbacks, augmentation, a presence head, the
    /// loss); stored as the flags that ask for them.
    pub options: crate::train::RunOptions,
    /// `--folds K --fold I` (I 0-based) when the split was by group, not the last share.
    pub folds: Option<(u64, u64)>,
    /// Adam's learning rate at the start (for information: a resume may change it;
    /// `None` in files of older nerveseg).
    pub lr: Option<f64>,
    /// The frames that validated (ascending indices into the arrays): the split itself,
    /// which `evaluate`, `cv` and `--resume` read. `None` in files of older nerveseg
    /// (their split is made again from its rule) and when no frame validated.
    pub validation: Option<Vec<u64>>,
}

/// Adam's state as tf-keras keeps it under `optimizer_weights`: the step count and the
/// first and second moments of every variable, here in libtorch layout and keyed by
/// VarStore name (`conv2d_1.weight`).
#[derive(Debug)]
pub struct AdamState {
    pub iterations: i64,
    pub m: Vec<(String, Tensor)>,
    pub v: Vec<(String, Tensor)>,
}

/// The Keras name of a VarStore variable: `conv2d_1.weight` -> `conv2d_1/kernel:0`,
/// `batch_normalization_1.weight` -> `batch_normalization_1/gamma:0` (our layer names
/// are Keras 2.0's, so the name says the kind).
pub(crate) fn keras_var_name(var: &str) -> String {
    let Some((layer, v)) = var.rsplit_once('.') else {
        return var.to_owned();
    };
    let bn = layer.starts_with("batch_normalization");
    let keras = match (v, bn) {
        ("weight", false) => "kernel",
        ("weight", true) => "gamma",
        ("bias", false) => "bias",
        ("bias", true) => "beta",
        ("running_mean", _) => "moving_mean",
        ("running_var", _) => "moving_variance",
        _ => v,
    };
    format!("{layer}/{keras}:0")
}

pub(crate) const ATTR_MEAN: &str = "nerveseg_mean";
pub(crate) const ATTR_STD: &str = "nerveseg_std";
pub(crate) const ATTR_EPOCH: &str = "nerveseg_epoch";
pub(crate) const ATTR_WIDTH: &str = "nerveseg_base_width";
pub(crate) const ATTR_VERSION: &str = "nerveseg_version";
pub(crate) const ATTR_BEST_LOSS: &str = "nerveseg_best_val_loss";
pub(crate) const ATTR_BEST_EPOCH: &str = "nerveseg_best_epoch";
pub(crate) const ATTR_VALIDATION_SPLIT: &str = "nerveseg_validation_split";
pub(crate) const ATTR_SEED: &str = "nerveseg_seed";
pub(crate) const ATTR_SHUFFLE: &str = "nerveseg_shuffle";
pub(crate) const ATTR_BATCH_SIZE: &str = "nerveseg_batch_size";
pub(crate) const ATTR_SAMPLES: &str = "nerveseg_samples";
pub(crate) const ATTR_FINGERPRINT: &str = "nerveseg_samples_fingerprint";
pub(crate) const ATTR_CALLBACKS: &str = "nerveseg_callbacks";
pub(crate) const ATTR_FOLDS: &str = "nerveseg_folds";
pub(crate) const ATTR_FOLD: &str = "nerveseg_fold";
pub(crate) const ATTR_FRAME_HEIGHT: &str = "nerveseg_frame_height";
pub(crate) const ATTR_FRAME_WIDTH: &str = "nerveseg_frame_width";
pub(crate) const ATTR_NETWORK: &str = "nerveseg_network";
pub(crate) const ATTR_LR: &str = "nerveseg_lr";
/// A dataset, not an attribute: a large set's indices would not fit one.
pub(crate) const DATASET_VALIDATION: &str = "nerveseg_validation_frames";

/// The tf-keras version whose layout we write (checked against it by the fixture script).
pub const WRITTEN_KERAS_VERSION: &str = "2.19.0";

/// One array in Keras layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// One array as a file stores it: the dataset's HDF5 path and the shape it claims
/// (Keras layout). Its values are read only once the shape was checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub dataset: String,
    pub shape: Vec<usize>,
}

/// One weighted layer as the file has it.
#[derive(Clone, Debug)]
pub struct FileLayer {
    /// The layer's name in the file.
    pub name: String,
    pub kind: LayerKind,
    /// Its weights as the file lists them: the Keras name (`kernel`, `gamma`, ..) and
    /// where the values are.
    pub vars: Vec<(String, Stored)>,
}

impl FileLayer {
    /// The weight of Keras name `name` (`kernel`, `bias`, `gamma`, ..).
    pub fn var(&self, name: &str) -> Option<&Stored> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The kernel's shape (empty for a layer without one, as BatchNormalization).
    pub(crate) fn kernel_shape(&self) -> &[usize] {
        self.var("kernel").map_or(&[], |s| s.shape.as_slice())
    }
}

/// A Keras weight file, read.
#[derive(Clone, Debug)]
pub struct KerasFile {
    pub path: PathBuf,
    pub format: Format,
    pub keras_version: Option<String>,
    /// Weighted layers in the file's order.
    pub layers: Vec<FileLayer>,
    pub meta: Meta,
    pub declared: Declared,
}

pub(crate) fn shape_str(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(usize::to_string).collect();
    format!("({})", dims.join(", "))
}

/// Keras layout -> libtorch layout: a Conv2D kernel (kh, kw, in, out) -> (out, in, kh,
/// kw) and a Conv2DTranspose kernel (kh, kw, out, in) -> (in, out, kh, kw) alike (the
/// permutation (3, 2, 0, 1)); every other weight (biases, BatchNorm's, the Dense kernel
/// (in, out)) as it is. The one place the layouts change, both ways.
pub(crate) fn to_tch(a: &Array) -> Result<Tensor, TchError> {
    let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    let t = Tensor::f_from_slice(&a.data)?.f_view(dims.as_slice())?;
    if dims.len() == 4 {
        t.f_permute([3, 2, 0, 1])?.f_contiguous()
    } else {
        Ok(t)
    }
}

/// libtorch layout -> Keras layout (the inverse of [`to_tch`]).
pub(crate) fn to_keras(t: &Tensor) -> Result<Array> {
    if t.dim() == 4 {
        tensor_array(&t.f_permute([2, 3, 1, 0])?)
    } else {
        tensor_array(t)
    }
}

pub(crate) fn tensor_array(t: &Tensor) -> Result<Array> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t
        .f_to_device(tch::Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?
        .f_view([-1])?;
    let data = Vec::<f32>::try_from(&flat)?;
    Ok(Array { shape, data })
}

/// What `convert` wrote.
#[derive(Clone, Debug)]
pub struct ConvertReport {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: Format,
    pub layers: usize,
}

impl std::fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} ({}, {} layers) from {}",
            self.output.display(),
            self.format,
            self.layers,
            self.input.display()
        )
    }
}

/// Converts any supported file to `format`, keeping nerveseg's metadata.
pub fn convert(input: &Path, output: &Path, format: Format) -> Result<ConvertReport> {
    let file = read(input)?;
    let loaded = load(&file, tch::Device::Cpu, false)?;
    crate::interrupt::keeping(crate::interrupt::check(), |_| {
        format!("{} was not written", output.display())
    })?;
    write(output, &loaded.vs, &loaded.cfg, &file.meta, format)?;
    Ok(ConvertReport {
        input: input.to_owned(),
        output: output.to_owned(),
        format,
        layers: loaded.report.applied.len(),
    })
}
