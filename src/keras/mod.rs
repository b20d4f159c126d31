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
mod read;
mod write;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

pub use self::config::{creation_order, keras3_name, model_config};
pub use self::read::{read, read_adam_state};
pub use self::write::{write, write_checkpoint};
use crate::model::{UNetConfig, CONVS, TRANSPOSES};

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

/// The tf-keras version whose layout we write (checked against it by the fixture script).
pub const WRITTEN_KERAS_VERSION: &str = "2.19.0";

/// One array in Keras layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// One weighted layer as the file has it.
#[derive(Clone, Debug)]
pub struct FileLayer {
    /// The layer's name in the file.
    pub name: String,
    pub transpose: bool,
    pub kernel: Array,
    pub bias: Array,
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

/// What [`apply`] did.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// (our layer, the file's layer) pairs that were loaded.
    pub applied: Vec<(String, String)>,
    /// Our layers the file had nothing for.
    pub missing: Vec<String>,
    /// The file's layers nothing of ours took.
    pub unused: Vec<String>,
}

/// Our layer names by kind, in Keras creation order.
fn our_layers() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        CONVS.iter().map(|c| c.0).collect(),
        TRANSPOSES.iter().map(|t| t.0).collect(),
    )
}

/// Keras layout -> libtorch layout, for a Conv2D kernel (kh, kw, in, out) -> (out, in, kh, kw)
/// and for a Conv2DTranspose kernel (kh, kw, out, in) -> (in, out, kh, kw) alike.
pub fn kernel_to_tch(a: &Array) -> Tensor {
    let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&a.data)
        .view(dims.as_slice())
        .permute([3, 2, 0, 1])
        .contiguous()
}

/// libtorch layout -> Keras layout (the inverse of [`kernel_to_tch`]).
pub fn kernel_to_keras(t: &Tensor) -> Result<Array> {
    let k = t
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .permute([2, 3, 1, 0])
        .contiguous();
    tensor_array(&k)
}

pub(crate) fn tensor_array(t: &Tensor) -> Result<Array> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([-1]);
    let data = Vec::<f32>::try_from(&flat)?;
    Ok(Array { shape, data })
}

/// Copies the file's weights into `vs` (a U-Net from `model::unet`), matching layers by
/// kind and order and checking every shape. Anything missing or left over is an error
/// unless `allow_partial`.
pub fn apply(file: &KerasFile, vs: &mut VarStore, allow_partial: bool) -> Result<LoadReport> {
    let path = file.path.display();
    let vars = vs.variables();
    let (convs, ups) = our_layers();
    let theirs_conv: Vec<&FileLayer> = file.layers.iter().filter(|l| !l.transpose).collect();
    let theirs_up: Vec<&FileLayer> = file.layers.iter().filter(|l| l.transpose).collect();
    let mut report = LoadReport::default();
    let mut pairs = Vec::new();
    for (ours, theirs) in [(&convs, &theirs_conv), (&ups, &theirs_up)] {
        for (i, name) in ours.iter().enumerate() {
            match theirs.get(i) {
                Some(l) => pairs.push((*name, *l)),
                None => report.missing.push((*name).to_owned()),
            }
        }
        report
            .unused
            .extend(theirs.iter().skip(ours.len()).map(|l| l.name.clone()));
    }
    if !allow_partial && (!report.missing.is_empty() || !report.unused.is_empty()) {
        bail!(
            "{path}: not the tutorial's U-Net: expected {} Conv2D and {} Conv2DTranspose layers, \
             found {} and {}{}{} (--allow-partial loads what matches)",
            convs.len(),
            ups.len(),
            theirs_conv.len(),
            theirs_up.len(),
            if report.missing.is_empty() {
                String::new()
            } else {
                format!("; missing: {}", report.missing.join(", "))
            },
            if report.unused.is_empty() {
                String::new()
            } else {
                format!("; extra: {}", report.unused.join(", "))
            },
        );
    }
    tch::no_grad(|| -> Result<()> {
        for (ours, theirs) in pairs {
            let w = &vars[&format!("{ours}.weight")];
            let b = &vars[&format!("{ours}.bias")];
            let want_kernel: Vec<usize> = {
                let s = w.size();
                [s[2], s[3], s[1], s[0]]
                    .iter()
                    .map(|&d| d as usize)
                    .collect()
            };
            if theirs.kernel.shape != want_kernel || theirs.bias.shape != [b.size()[0] as usize] {
                bail!(
                    "{path}: layer {} (ours {ours}): kernel {} and bias {}, expected {} and ({}): \
                     a different architecture or width",
                    theirs.name,
                    shape_str(&theirs.kernel.shape),
                    shape_str(&theirs.bias.shape),
                    shape_str(&want_kernel),
                    b.size()[0]
                );
            }
            let mut w = w.shallow_clone();
            let mut b = b.shallow_clone();
            w.copy_(&kernel_to_tch(&theirs.kernel));
            b.copy_(&Tensor::from_slice(&theirs.bias.data));
            report.applied.push((ours.to_owned(), theirs.name.clone()));
        }
        Ok(())
    })?;
    Ok(report)
}

/// Converts any supported file to `format`, keeping nerveseg's metadata.
pub fn convert(input: &Path, output: &Path, format: Format) -> Result<LoadReport> {
    let file = read(input)?;
    let cfg = UNetConfig {
        base_width: file.base_width()?,
    };
    let mut vs = VarStore::new(tch::Device::Cpu);
    let _net = crate::model::unet(&vs.root(), &cfg);
    let report = apply(&file, &mut vs, false)?;
    write(output, &vs, &cfg, &file.meta, format)?;
    Ok(report)
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
    let _ = write!(
        s,
        "epoch: {}",
        file.meta
            .epoch
            .map_or_else(|| "not stored".to_owned(), |e| e.to_string())
    );
    s
}
