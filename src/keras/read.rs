//! Reading Keras weight files: detects the layout (tf-keras model or weights, Keras 2.0
//! names, Keras 3 `.weights.h5`) and lists the weighted layers in creation order with
//! their shapes (`listing.rs`). Values are read later, and only after every shape was
//! checked against the U-Net (`load.rs`): a file's shapes are its claims, and nothing is
//! allocated for them before they are known to be the tutorial's.
//!
//! h5py and Keras store strings in several HDF5 types (variable-length UTF-8 or ASCII,
//! fixed-length bytes), so every string is read whichever way it was written.

use std::path::Path;

use crate::train::RunOptions;

use anyhow::{anyhow, bail, ensure, Context, Result};
use hdf5::types::{FixedAscii, VarLenAscii, VarLenUnicode};

use super::declared::KerasConfig;
use super::listing::{read_keras2, read_keras3};
use super::{
    keras_var_name, shape_str, AdamState, Array, Declared, FileLayer, Format, KerasFile, Meta,
    RunRecord, Stored, ATTR_BATCH_SIZE, ATTR_BEST_EPOCH, ATTR_BEST_LOSS, ATTR_CALLBACKS,
    ATTR_EPOCH, ATTR_FINGERPRINT, ATTR_FOLD, ATTR_FOLDS, ATTR_FRAME_HEIGHT, ATTR_FRAME_WIDTH,
    ATTR_LR, ATTR_MEAN, ATTR_NETWORK, ATTR_SAMPLES, ATTR_SEED, ATTR_SHUFFLE, ATTR_STD,
    ATTR_VALIDATION_SPLIT, DATASET_VALIDATION,
};
use crate::model::UNetConfig;

/// Reads a string attribute whatever way it was stored (fixed-length bytes as h5py
/// writes `np.bytes_`, or variable-length as h5py writes `str`).
fn read_str_attr(loc: &hdf5::Location, name: &str) -> Result<Option<String>> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    if attr.size() != 1 {
        return Ok(None);
    }
    if let Ok(s) = attr.read_scalar::<VarLenUnicode>() {
        return Ok(Some(s.as_str().to_owned()));
    }
    if let Ok(s) = attr.read_scalar::<VarLenAscii>() {
        return Ok(Some(s.as_str().to_owned()));
    }
    if let Ok(s) = attr.read_scalar::<FixedAscii<1024>>() {
        return Ok(Some(s.as_str().to_owned()));
    }
    Ok(None)
}

fn read_f64_attr(loc: &hdf5::Location, name: &str) -> Option<f64> {
    loc.attr(name).ok()?.read_scalar::<f64>().ok()
}

fn read_i64_attr(loc: &hdf5::Location, name: &str) -> Option<i64> {
    loc.attr(name).ok()?.read_scalar::<i64>().ok()
}

fn read_u64_attr(loc: &hdf5::Location, name: &str) -> Option<u64> {
    loc.attr(name).ok()?.read_scalar::<u64>().ok()
}

/// The training run a nerveseg checkpoint records, when it records one.
fn read_run(root: &hdf5::Group) -> Result<Option<RunRecord>> {
    let Some(validation_split) = read_f64_attr(root, ATTR_VALIDATION_SPLIT) else {
        return Ok(None);
    };
    let u = |name: &str| read_u64_attr(root, name).ok_or_else(|| anyhow!("no {name} attribute"));
    let samples = u(ATTR_SAMPLES)?;
    Ok(Some(RunRecord {
        validation_split,
        seed: u(ATTR_SEED)?,
        shuffle: u(ATTR_SHUFFLE)? != 0,
        batch_size: u(ATTR_BATCH_SIZE)?,
        samples,
        fingerprint: read_str_attr(root, ATTR_FINGERPRINT)?
            .ok_or_else(|| anyhow!("no {ATTR_FINGERPRINT} attribute"))?,
        options: {
            let flags = read_str_attr(root, ATTR_CALLBACKS)?.unwrap_or_default();
            RunOptions::parse(&flags)
                .map_err(|e| anyhow!("{ATTR_CALLBACKS} '{flags}' is not a run's options: {e}"))?
        },
        lr: read_f64_attr(root, ATTR_LR),
        validation: read_validation_frames(root, samples)?,
        folds: match (
            read_u64_attr(root, ATTR_FOLDS),
            read_u64_attr(root, ATTR_FOLD),
        ) {
            (Some(k), Some(i)) if k >= 2 && i < k => Some((k, i)),
            (None, None) => None,
            _ => bail!("{ATTR_FOLDS} and {ATTR_FOLD} do not describe a fold"),
        },
    }))
}

/// The run's validation frames (of its `samples`), when the file stores them.
fn read_validation_frames(root: &hdf5::Group, samples: u64) -> Result<Option<Vec<u64>>> {
    let Ok(d) = root.dataset(DATASET_VALIDATION) else {
        return Ok(None);
    };
    if d.ndim() != 1 || d.size() as u64 > samples {
        bail!(
            "{DATASET_VALIDATION} holds {:?} values: not a list of at most {samples} frames",
            d.shape()
        );
    }
    let frames = d
        .read_raw::<u64>()
        .map_err(|e| anyhow!("{DATASET_VALIDATION} is not a list of frame indices: {e}"))?;
    Ok(Some(frames))
}

/// Reads the layout, layer list, shapes and metadata of a Keras weight file of any
/// supported layout; no weight values.
pub fn read(path: &Path) -> Result<KerasFile> {
    read_inner(path).with_context(|| format!("reading Keras weights {}", path.display()))
}

/// Opens `path` as HDF5 after checking it starts like one.
fn open_hdf5(path: &Path) -> Result<hdf5::File> {
    if !path.is_file() {
        bail!("file not found");
    }
    let mut magic = [0u8; 8];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let n = f.read(&mut magic)?;
        ensure!(n == 8 && &magic == b"\x89HDF\r\n\x1a\n", "not an HDF5 file");
    }
    hdf5::File::open(path).map_err(|e| anyhow!("not a readable HDF5 file (truncated?): {e}"))
}

fn read_inner(path: &Path) -> Result<KerasFile> {
    // Strings are read from here on: the global heaps they live in are checked first.
    // (Weights and Adam's moments are plain numbers, read without the heap.)
    if path.is_file() {
        super::heap::check_global_heaps(path)?;
    }
    let file = open_hdf5(path)?;
    let root: &hdf5::Group = &file;
    let keras_version = read_str_attr(root, "keras_version")?;
    let meta = Meta {
        stats: read_f64_attr(root, ATTR_MEAN)
            .zip(read_f64_attr(root, ATTR_STD))
            .map(|(mean, std)| crate::dataset::Stats { mean, std }),
        epoch: read_i64_attr(root, ATTR_EPOCH),
        best_val_loss: read_f64_attr(root, ATTR_BEST_LOSS),
        best_epoch: read_i64_attr(root, ATTR_BEST_EPOCH),
        run: read_run(root).context("the checkpoint's record of its training run")?,
        // For information only: a value that is not a size is not kept.
        frame_size: match (
            read_i64_attr(root, ATTR_FRAME_HEIGHT),
            read_i64_attr(root, ATTR_FRAME_WIDTH),
        ) {
            (Some(h), Some(w)) if h > 0 && w > 0 => {
                crate::frame::FrameSize::new(h as usize, w as usize).ok()
            }
            _ => None,
        },
    };
    let config = read_str_attr(root, "model_config")?
        .as_deref()
        .and_then(KerasConfig::parse);
    let declared = match read_str_attr(root, ATTR_NETWORK)? {
        Some(json) => Declared::Record(
            UNetConfig::from_json(&json)
                .with_context(|| format!("the network it records ({ATTR_NETWORK})"))?,
        ),
        None => config.clone().map_or(Declared::Nothing, Declared::Config),
    };
    let (format, group) = if root.link_exists("model_weights") {
        (Format::Keras2Model, file.group("model_weights")?)
    } else if root.attr("layer_names").is_ok() {
        (Format::Keras2Weights, file.group("/")?)
    } else if root.link_exists("layers") {
        let layers = read_keras3(&file)?;
        return Ok(KerasFile {
            path: path.to_owned(),
            format: Format::Keras3Weights,
            keras_version,
            layers,
            meta,
            declared,
        });
    } else {
        bail!("an HDF5 file without Keras weights (no model_weights group, no layer_names attribute, no layers group)");
    };
    let layers = read_keras2(&group, config.as_ref())?;
    Ok(KerasFile {
        path: path.to_owned(),
        format,
        keras_version,
        layers,
        meta,
        declared,
    })
}

/// Reads one float32 dataset after checking it still has the `shape` it was checked
/// for (the file may have changed since it was listed).
fn read_checked(file: &hdf5::File, at: &Stored, shape: &[usize]) -> Result<Array> {
    let ds = file
        .dataset(&at.dataset)
        .with_context(|| format!("opening {}", at.dataset))?;
    let found = ds.shape();
    ensure!(
        found == shape,
        "{} has shape {}, expected {}",
        at.dataset,
        shape_str(&found),
        shape_str(shape)
    );
    let data = ds
        .read_raw::<f32>()
        .with_context(|| format!("reading {}", at.dataset))?;
    ensure!(
        data.len() == shape.iter().product::<usize>(),
        "{}: {} values for shape {}",
        at.dataset,
        data.len(),
        shape_str(shape)
    );
    Ok(Array {
        shape: shape.to_vec(),
        data,
    })
}

impl KerasFile {
    /// Reads the weights of each of `layers` (layers of this file whose shapes were
    /// checked), each layer's in the order `names` gives for it (Keras names).
    pub fn read_values(&self, layers: &[(&FileLayer, Vec<&str>)]) -> Result<Vec<Vec<Array>>> {
        (|| -> Result<Vec<Vec<Array>>> {
            let file = open_hdf5(&self.path)?;
            layers
                .iter()
                .map(|(l, names)| {
                    names
                        .iter()
                        .map(|n| {
                            let at = l
                                .var(n)
                                .ok_or_else(|| anyhow!("layer {} has no {n}", l.name))?;
                            read_checked(&file, at, &at.shape)
                        })
                        .collect()
                })
                .collect()
        })()
        .with_context(|| format!("reading Keras weights {}", self.path.display()))
    }
}

/// Reads the Adam state nerveseg saved with `write_checkpoint` (`optimizer_weights`,
/// tf-keras's layout) for the variables `vars` (VarStore name and libtorch shape), each
/// checked against its variable's shape before it is read. `None` when the file has none.
pub fn read_adam_state(path: &Path, vars: &[(String, Vec<i64>)]) -> Result<Option<AdamState>> {
    (|| -> Result<Option<AdamState>> {
        let file = open_hdf5(path)?;
        let Ok(g) = file.group("optimizer_weights") else {
            return Ok(None);
        };
        let iterations = g.dataset("iteration:0")?.read_scalar::<i64>()?;
        ensure!(iterations >= 0, "a negative step count {iterations}");
        let mut state = AdamState {
            iterations,
            m: Vec::new(),
            v: Vec::new(),
        };
        for (name, shape) in vars {
            let keras_shape = crate::model::topology::keras_shape(shape);
            for (which, out) in [("m", &mut state.m), ("v", &mut state.v)] {
                let key = format!("Adam/{which}/{}", keras_var_name(name));
                let at = Stored {
                    dataset: format!("optimizer_weights/{key}"),
                    shape: keras_shape.clone(),
                };
                let a = read_checked(&file, &at, &keras_shape)?;
                let t = super::to_tch(&a)?;
                out.push((name.clone(), t));
            }
        }
        Ok(Some(state))
    })()
    .with_context(|| format!("reading the optimizer state in {}", path.display()))
}
