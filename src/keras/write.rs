//! Writing Keras weight files: the tf-keras full-model layout (what `load_weights` and
//! `load_model` read), the `save_weights` layout, or Keras 3's `.weights.h5`, with
//! nerveseg's metadata as extra attributes. Always through a temporary file.

use std::path::Path;

use crate::train::RunOptions;

use anyhow::{anyhow, Context, Result};
use hdf5::types::{FixedAscii, VarLenUnicode};
use tch::nn::VarStore;

use super::config::{keras3_name, model_config};
use super::{
    keras_var_name, to_keras, AdamState, Array, Format, Meta, ATTR_BATCH_SIZE, ATTR_BEST_EPOCH,
    ATTR_BEST_LOSS, ATTR_CALLBACKS, ATTR_EPOCH, ATTR_FINGERPRINT, ATTR_FOLD, ATTR_FOLDS,
    ATTR_FRAME_HEIGHT, ATTR_FRAME_WIDTH, ATTR_LR, ATTR_MEAN, ATTR_NETWORK, ATTR_SAMPLES, ATTR_SEED,
    ATTR_SHUFFLE, ATTR_STD, ATTR_VALIDATION_SPLIT, ATTR_VERSION, ATTR_WIDTH, DATASET_VALIDATION,
    WRITTEN_KERAS_VERSION,
};
use crate::model::UNetConfig;

/// Writes `vs` (a U-Net of `cfg`) to `path` in `format`, atomically: a temporary file in
/// the same folder, renamed into place only once complete, so an interrupted save never
/// destroys the previous file.
pub fn write(
    path: &Path,
    vs: &VarStore,
    cfg: &UNetConfig,
    meta: &Meta,
    format: Format,
) -> Result<()> {
    write_impl(path, vs, cfg, meta, format, None)
}

/// Writes a tf-keras full-model file that also carries Adam's state under
/// `optimizer_weights`, as a Keras ModelCheckpoint file does: what `train --resume` needs.
pub fn write_checkpoint(
    path: &Path,
    vs: &VarStore,
    cfg: &UNetConfig,
    meta: &Meta,
    adam: &AdamState,
) -> Result<()> {
    write_impl(path, vs, cfg, meta, Format::Keras2Model, Some(adam))
}

fn write_impl(
    path: &Path,
    vs: &VarStore,
    cfg: &UNetConfig,
    meta: &Meta,
    format: Format,
    adam: Option<&AdamState>,
) -> Result<()> {
    let dir = crate::atomic::parent_dir(path);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let layers = export_layers(vs, cfg)?;
    let mut out = crate::atomic::AtomicFile::create(path)?;
    let image = (|| -> Result<Vec<u8>> {
        // Built in memory (HDF5's core driver, no backing file) and written by us: HDF5
        // itself, meeting a full disk, crashes when the file is closed.
        let file = hdf5::File::with_options()
            .with_fapl(|p| p.core_filebacked(false))
            .create(out.partial_path())?;
        match format {
            Format::Keras2Model => {
                write_root_attrs(&file, cfg, meta)?;
                write_validation_frames(&file, meta)?;
                let json = model_config(cfg);
                write_str_attr(&file, "model_config", &json)?;
                let mw = file.create_group("model_weights")?;
                write_str_attr(&mw, "keras_version", WRITTEN_KERAS_VERSION)?;
                write_str_attr(&mw, "backend", "tensorflow")?;
                write_keras2_layers(&mw, &layers)?;
                if let Some(adam) = adam {
                    write_adam(&file, adam)?;
                }
            }
            Format::Keras2Weights => {
                write_root_attrs(&file, cfg, meta)?;
                write_keras2_layers(&file, &layers)?;
            }
            Format::Keras3Weights => {
                write_meta_attrs(&file, cfg, meta)?;
                write_keras3_layers(&file, &layers)?;
            }
        }
        let image = file_image(&file)?;
        file.close()?;
        Ok(image)
    })()
    .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut out, &image)?;
    // Checkpoints are what a run leaves: forced to disk before they replace the last one.
    out.commit_synced()?;
    Ok(())
}

/// The bytes of an HDF5 file held in memory.
fn file_image(file: &hdf5::File) -> Result<Vec<u8>> {
    file.flush()?;
    let id = file.id();
    hdf5::sync::sync(|| {
        // SAFETY: `id` is an open file; the first call asks the size, the second fills
        // a buffer of that size; the library lock is held throughout.
        let len = unsafe { hdf5_sys::h5f::H5Fget_file_image(id, std::ptr::null_mut(), 0) };
        anyhow::ensure!(len >= 0, "HDF5 could not give the file's image");
        let mut buf = vec![0u8; len as usize];
        let got =
            unsafe { hdf5_sys::h5f::H5Fget_file_image(id, buf.as_mut_ptr().cast(), buf.len()) };
        anyhow::ensure!(got == len, "HDF5 gave {got} of the file's {len} bytes");
        Ok(buf)
    })
}

/// One layer to write: its name and its weights (Keras name, values in Keras layout).
type ExportLayer = (String, Vec<(&'static str, Array)>);

/// Our weighted layers in Keras creation order (the order the Keras function builds
/// them: for the tutorial conv2d_1..10, then each decoder level's transpose before its
/// two convs), each weight in Keras layout.
fn export_layers(vs: &VarStore, cfg: &UNetConfig) -> Result<Vec<ExportLayer>> {
    let vars = vs.variables();
    let mut out = Vec::new();
    for layer in crate::model::graph(cfg).layers() {
        let mut arrays = Vec::new();
        for v in &layer.vars {
            let name = format!("{}.{}", layer.name, v.tch);
            let t = vars
                .get(&name)
                .ok_or_else(|| anyhow!("the model has no variable {name}"))?;
            arrays.push((v.keras, to_keras(t)?));
        }
        out.push((layer.name, arrays));
    }
    Ok(out)
}

fn write_str_attr(loc: &hdf5::Location, name: &str, value: &str) -> Result<()> {
    let v: VarLenUnicode = value
        .parse()
        .map_err(|e| anyhow!("attribute {name}: {e:?}"))?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&v)?;
    Ok(())
}

/// A list of names as h5py writes `np.array([b'..'])`: fixed-length ASCII.
fn write_str_list(loc: &hdf5::Location, name: &str, values: &[String]) -> Result<()> {
    let v: Vec<FixedAscii<64>> = values
        .iter()
        .map(|s| FixedAscii::from_ascii(s.as_bytes()).map_err(|e| anyhow!("name {s}: {e:?}")))
        .collect::<Result<_>>()?;
    loc.new_attr::<FixedAscii<64>>()
        .shape(v.len())
        .create(name)?
        .write_raw(&v)?;
    Ok(())
}

fn write_meta_attrs(loc: &hdf5::Location, cfg: &UNetConfig, meta: &Meta) -> Result<()> {
    write_str_attr(loc, ATTR_VERSION, env!("CARGO_PKG_VERSION"))?;
    loc.new_attr::<i64>()
        .create(ATTR_WIDTH)?
        .write_scalar(&cfg.base_width)?;
    // The tutorial's network is what a file without the record holds: its checkpoints
    // stay as they were.
    if !cfg.is_tutorial() {
        write_str_attr(loc, ATTR_NETWORK, &cfg.to_json())?;
    }
    if let Some(s) = meta.stats {
        loc.new_attr::<f64>()
            .create(ATTR_MEAN)?
            .write_scalar(&s.mean)?;
        loc.new_attr::<f64>()
            .create(ATTR_STD)?
            .write_scalar(&s.std)?;
    }
    if let Some(e) = meta.epoch {
        loc.new_attr::<i64>().create(ATTR_EPOCH)?.write_scalar(&e)?;
    }
    if let Some(l) = meta.best_val_loss {
        loc.new_attr::<f64>()
            .create(ATTR_BEST_LOSS)?
            .write_scalar(&l)?;
    }
    if let Some(e) = meta.best_epoch {
        loc.new_attr::<i64>()
            .create(ATTR_BEST_EPOCH)?
            .write_scalar(&e)?;
    }
    if let Some(size) = meta.frame_size {
        for (name, v) in [
            (ATTR_FRAME_HEIGHT, size.height),
            (ATTR_FRAME_WIDTH, size.width),
        ] {
            loc.new_attr::<i64>()
                .create(name)?
                .write_scalar(&(v as i64))?;
        }
    }
    if let Some(run) = &meta.run {
        loc.new_attr::<f64>()
            .create(ATTR_VALIDATION_SPLIT)?
            .write_scalar(&run.validation_split)?;
        for (name, v) in [
            (ATTR_SEED, run.seed),
            (ATTR_SHUFFLE, run.shuffle as u64),
            (ATTR_BATCH_SIZE, run.batch_size),
            (ATTR_SAMPLES, run.samples),
        ] {
            loc.new_attr::<u64>().create(name)?.write_scalar(&v)?;
        }
        write_str_attr(loc, ATTR_FINGERPRINT, &run.fingerprint)?;
        if let Some(lr) = run.lr {
            loc.new_attr::<f64>().create(ATTR_LR)?.write_scalar(&lr)?;
        }
        // Absent for the tutorial's run, so its checkpoints stay as they were.
        if run.options != RunOptions::default() {
            write_str_attr(loc, ATTR_CALLBACKS, &run.options.to_string())?;
        }
        if let Some((k, i)) = run.folds {
            for (name, v) in [(ATTR_FOLDS, k), (ATTR_FOLD, i)] {
                loc.new_attr::<u64>().create(name)?.write_scalar(&v)?;
            }
        }
    }
    Ok(())
}

/// The run's validation frames, as a dataset of indices beside the model (Keras reads
/// only what `model_weights` names). None is written when no frame validates.
fn write_validation_frames(file: &hdf5::File, meta: &Meta) -> Result<()> {
    let frames = meta.run.as_ref().and_then(|r| r.validation.as_deref());
    if let Some(v) = frames.filter(|v| !v.is_empty()) {
        file.new_dataset::<u64>()
            .shape(v.len())
            .create(DATASET_VALIDATION)?
            .write_raw(v)?;
    }
    Ok(())
}

fn write_root_attrs(file: &hdf5::File, cfg: &UNetConfig, meta: &Meta) -> Result<()> {
    write_str_attr(file, "keras_version", WRITTEN_KERAS_VERSION)?;
    write_str_attr(file, "backend", "tensorflow")?;
    write_meta_attrs(file, cfg, meta)
}

fn write_dataset(g: &hdf5::Group, name: &str, a: &Array) -> Result<()> {
    g.new_dataset::<f32>()
        .shape(a.shape.as_slice())
        .create(name)?
        .write_raw(&a.data)?;
    Ok(())
}

/// `layer_names`, then one group per layer with `weight_names` and its datasets at
/// `<layer>/<layer>/kernel:0`, `bias:0` (`gamma:0`, .. for BatchNormalization), as
/// tf-keras writes them.
fn write_keras2_layers(g: &hdf5::Group, layers: &[ExportLayer]) -> Result<()> {
    let names: Vec<String> = layers.iter().map(|l| l.0.clone()).collect();
    write_str_list(g, "layer_names", &names)?;
    for (name, weights) in layers {
        let lg = g.create_group(name)?;
        let weight_names: Vec<String> = weights
            .iter()
            .map(|(w, _)| format!("{name}/{w}:0"))
            .collect();
        write_str_list(&lg, "weight_names", &weight_names)?;
        let inner = lg.create_group(name)?;
        for (w, a) in weights {
            write_dataset(&inner, &format!("{w}:0"), a)?;
        }
    }
    Ok(())
}

/// `layers/<name>/vars/0`, `/1`, .. with the names Keras 3 gives in a fresh session
/// (`conv2d`, `conv2d_1`, .., `conv2d_transpose`, ..), which its loader matches.
fn write_keras3_layers(file: &hdf5::File, layers: &[ExportLayer]) -> Result<()> {
    let lg = file.create_group("layers")?;
    for (name, weights) in layers {
        let vars = lg.create_group(&keras3_name(name))?.create_group("vars")?;
        for (i, (_, a)) in weights.iter().enumerate() {
            write_dataset(&vars, &i.to_string(), a)?;
        }
    }
    file.create_group("vars")?;
    Ok(())
}

/// `optimizer_weights` as tf-keras writes it: `iteration:0`, then per variable
/// `Adam/m/<layer>/kernel:0` and `Adam/v/..`, listed in `weight_names`.
fn write_adam(file: &hdf5::File, adam: &AdamState) -> Result<()> {
    let g = file.create_group("optimizer_weights")?;
    g.new_dataset::<i64>()
        .create("iteration:0")?
        .write_scalar(&adam.iterations)?;
    let mut names = vec!["iteration:0".to_owned()];
    for ((name, m), (_, v)) in adam.m.iter().zip(&adam.v) {
        for (which, t) in [("m", m), ("v", v)] {
            let key = format!("Adam/{which}/{}", keras_var_name(name));
            let a = to_keras(t)?;
            let (dir, leaf) = key.rsplit_once('/').unwrap_or(("", &key));
            let parent = ensure_group(&g, dir)?;
            write_dataset(&parent, leaf, &a)?;
            names.push(key);
        }
    }
    write_str_list(&g, "weight_names", &names)
}

/// Opens or creates the nested group `a/b/c` under `g`.
fn ensure_group(g: &hdf5::Group, path: &str) -> Result<hdf5::Group> {
    let mut cur = g.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur = if cur.link_exists(part) {
            cur.group(part)?
        } else {
            cur.create_group(part)?
        };
    }
    Ok(cur)
}
