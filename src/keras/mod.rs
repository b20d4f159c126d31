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
//! (Conv2D or Conv2DTranspose) and order, never by name, and every shape is checked.
//! Kernels change layout on the way: Keras Conv2D (kh, kw, in, out) <-> libtorch
//! (out, in, kh, kw); Keras Conv2DTranspose (kh, kw, out, in) <-> libtorch
//! (in, out, kh, kw): the same permutation for both. No spatial flip is needed.
//!
//! Writes the tf-keras full-model layout, with nerveseg's metadata (normalisation
//! mean/std, epoch, base width) as extra root attributes that Keras ignores, or the
//! Keras 3 layout. Writes go to a temporary file that is renamed into place.

mod config;
mod heap;
mod load;
mod read;
mod write;

use std::path::{Path, PathBuf};

use anyhow::Result;
use tch::{Kind, TchError, Tensor};

pub use self::config::{creation_order, keras3_name, model_config};
pub use self::load::{apply, load, Checked, LoadReport, Loaded};
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
    /// Mean and standard deviation of the training pixels, for standardising inputs.
    pub mean: Option<f64>,
    pub std: Option<f64>,
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
    /// The options beyond the tutorial (callbacks, augmentation), as their flags say
    /// them ("" for none, the tutorial's run).
    pub callbacks: String,
    /// `--folds K --fold I` (I 0-based) when the split was by group, not the last share.
    pub folds: Option<(u64, u64)>,
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

/// The Keras name of a VarStore variable: `conv2d_1.weight` -> `conv2d_1/kernel:0`.
pub(crate) fn keras_var_name(var: &str) -> String {
    match var.rsplit_once('.') {
        Some((layer, "weight")) => format!("{layer}/kernel:0"),
        Some((layer, "bias")) => format!("{layer}/bias:0"),
        _ => var.to_owned(),
    }
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
    pub transpose: bool,
    pub kernel: Stored,
    pub bias: Stored,
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
}

pub(crate) fn shape_str(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(usize::to_string).collect();
    format!("({})", dims.join(", "))
}

/// Keras layout -> libtorch layout, for a Conv2D kernel (kh, kw, in, out) -> (out, in, kh, kw)
/// and for a Conv2DTranspose kernel (kh, kw, out, in) -> (in, out, kh, kw) alike.
pub fn kernel_to_tch(a: &Array) -> Result<Tensor, TchError> {
    let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    Tensor::f_from_slice(&a.data)?
        .f_view(dims.as_slice())?
        .f_permute([3, 2, 0, 1])?
        .f_contiguous()
}

/// libtorch layout -> Keras layout (the inverse of [`kernel_to_tch`]).
pub fn kernel_to_keras(t: &Tensor) -> Result<Array> {
    let k = t
        .f_to_device(tch::Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_permute([2, 3, 1, 0])?
        .f_contiguous()?;
    tensor_array(&k)
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

/// A human-readable summary of a weight file: format, layers, shapes, parameters, metadata.
pub fn describe(file: &KerasFile) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "file: {}", file.path.display());
    let _ = writeln!(s, "format: {}", file.format);
    if let Some(v) = &file.keras_version {
        let _ = writeln!(s, "keras_version: {v}");
    }
    let _ = writeln!(
        s,
        "layers ({} with weights, in file order):",
        file.layers.len()
    );
    for l in &file.layers {
        let kind = if l.transpose {
            "Conv2DTranspose"
        } else if l.kernel.shape.len() == 2 {
            "Dense"
        } else {
            "Conv2D"
        };
        let _ = writeln!(
            s,
            "  {:<22} {:<16} kernel {:<18} bias {}",
            l.name,
            kind,
            shape_str(&l.kernel.shape),
            shape_str(&l.bias.shape)
        );
    }
    let _ = writeln!(s, "parameters: {}", file.parameter_count());
    match file.base_width() {
        Ok(w) => {
            let _ = writeln!(s, "base width: {w}");
        }
        Err(e) => {
            let _ = writeln!(s, "base width: unknown ({e:#})");
        }
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "not stored".to_owned(), |x| format!("{x}"));
    let _ = writeln!(s, "mean: {}", opt(file.meta.mean));
    let _ = writeln!(s, "std: {}", opt(file.meta.std));
    if let Some(size) = file.meta.frame_size {
        let _ = writeln!(s, "trained on frames of: {size}");
    }
    let _ = write!(
        s,
        "epoch: {}",
        file.meta
            .epoch
            .map_or_else(|| "not stored".to_owned(), |e| e.to_string())
    );
    s
}
