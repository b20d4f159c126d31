//! Stage 3, the prediction half of the original `train.py`: load the best checkpoint,
//! preprocess the test frames as the training frames (resize to 96 x 96, standardise with
//! the TRAINING mean and std), predict in batches without gradients, and write
//! `imgs_mask_test.npy` (float32 (N, 96, 96, 1)) and `preds/{id}_pred.png`
//! (uint8 prob * 255, 96 x 96).
//!
//! The original recomputed the training statistics at predict time; nerveseg reads them
//! from the checkpoint, and asks for `--mean/--std` or `--stats-from` when a checkpoint
//! (such as the original Keras `weights.h5`) has none. Model-ready float32
//! (N, 96, 96, 1) arrays are fed as they are, as Keras's `model.predict` does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

use crate::data::npy::{Dtype, NpyReader, NpyWriter};
use crate::data::tiff::{HEIGHT, WIDTH};
use crate::dataset::{self, Stats, SIDE_PIXELS};
use crate::keras::{self, KerasFile, LoadReport};
use crate::model::{self, UNet, UNetConfig, INPUT_SIZE};

/// A U-Net with weights from a Keras file, ready to run.
pub struct Loaded {
    pub vs: VarStore,
    pub net: UNet,
    pub cfg: UNetConfig,
    pub file: KerasFile,
    pub report: LoadReport,
}

/// Reads a Keras weight file and builds the U-Net of its width on `device`, to run as
/// `speed` says.
pub fn load(
    path: &Path,
    device: Device,
    allow_partial: bool,
    speed: model::Speed,
) -> Result<Loaded> {
    model::check_device(device)?;
    let file = keras::read(path)?;
    let cfg = UNetConfig {
        base_width: file.base_width()?,
    };
    let mut vs = VarStore::new(device);
    let mut net = model::unet(&vs.root(), &cfg);
    let report = keras::apply(&file, &mut vs, allow_partial)?;
    net.set_speed(&vs, speed);
    let r = &report;
    if !r.missing.is_empty() || !r.unused.is_empty() {
        log::warn!(
            "{}: loaded {} layers; not in the file: [{}]; unused from the file: [{}]",
            path.display(),
            r.applied.len(),
            r.missing.join(", "),
            r.unused.join(", ")
        );
    }
    Ok(Loaded {
        vs,
        net,
        cfg,
        file,
        report,
    })
}

/// Where the standardisation statistics come from.
#[derive(Clone, Debug, PartialEq)]
pub enum StatsSource {
    /// The checkpoint's stored mean/std.
    Stored,
    /// Given on the command line.
    Given(Stats),
    /// Recomputed from a training array, as the original did.
    From(PathBuf),
}

impl StatsSource {
    /// The statistics to use with `file`'s weights.
    pub fn resolve(&self, file: &KerasFile, quiet: bool) -> Result<Stats> {
        match self {
            StatsSource::Given(s) => Ok(*s),
            StatsSource::From(p) => {
                let mut r = NpyReader::open(p)?;
                Ok(dataset::stats(&dataset::preprocess_frames(
                    &mut r, "stats", quiet,
                )?))
            }
            StatsSource::Stored => match (file.meta.mean, file.meta.std) {
                (Some(mean), Some(std)) => Ok(Stats { mean, std }),
                _ => bail!(
                    "{} stores no training mean/std (an original Keras file?): pass --mean and \
                     --std, or --stats-from imgs_train.npy",
                    file.path.display()
                ),
            },
        }
    }
}

/// Probabilities for `images` ([N, 1, 96, 96] on any device), in batches, without
/// gradients; returns N * 96 * 96 values.
pub fn probabilities(
    net: &UNet,
    images: &Tensor,
    batch: usize,
    device: Device,
    quiet: bool,
) -> Result<Vec<f32>> {
    let n = images.size()[0];
    let pb = crate::progress::bar(n as u64, "predict", quiet);
    let mut out = Vec::with_capacity(n as usize * SIDE_PIXELS);
    let mut s = 0;
    while s < n {
        let b = (batch as i64).min(n - s);
        let x = images.narrow(0, s, b).to_device(device);
        let y = tch::no_grad(|| net.forward(&x));
        let y = y
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .view([-1]);
        out.extend(Vec::<f32>::try_from(&y).context("copying predictions from the device")?);
        s += b;
        pb.inc(b as u64);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// What `predict` reads and writes.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    pub weights: PathBuf,
    pub images: PathBuf,
    /// Test ids for the PNG names (int32 (N,)); used with uint8 frames.
    pub ids: PathBuf,
    pub out: PathBuf,
    /// Folder for `{id}_pred.png`; `None` writes none.
    pub png_dir: Option<PathBuf>,
    /// Folder for full-size pictures with the predicted outline.
    pub overlays: Option<PathBuf>,
    /// Ground truth `{id}_mask.tif` to draw on the overlays too.
    pub truth_dir: Option<PathBuf>,
    /// At most this many overlays.
    pub limit: Option<usize>,
    pub stats: StatsSource,
    pub rule: crate::submission::MaskRule,
    pub batch_size: usize,
    pub device: Device,
    pub speed: model::Speed,
    /// Load what matches when the file's layers do not all match ours.
    pub allow_partial: bool,
    pub quiet: bool,
}

/// Runs prediction; returns the number of images.
pub fn predict(cfg: &PredictConfig) -> Result<usize> {
    let mut reader = NpyReader::open(&cfg.images)?;
    let side = INPUT_SIZE as u64;
    let frames = match (reader.dtype, reader.shape.as_slice()) {
        (Dtype::F32, [_, h, w, 1]) if *h == side && *w == side => false,
        (Dtype::U8, [_, h, w]) if *h == HEIGHT as u64 && *w == WIDTH as u64 => true,
        _ => bail!(
            "{}: expected uint8 frames (N, {HEIGHT}, {WIDTH}) or a model-ready float32 array \
             (N, 96, 96, 1), found {} of shape {:?}",
            cfg.images.display(),
            reader.dtype.name(),
            reader.shape
        ),
    };
    let loaded = load(&cfg.weights, cfg.device, cfg.allow_partial, cfg.speed)?;
    let images = if frames {
        let stats = cfg.stats.resolve(&loaded.file, cfg.quiet)?;
        // The ids only name pictures; read them first so a bad file fails before the work.
        let pictures = cfg.png_dir.is_some() || cfg.overlays.is_some();
        let ids = if pictures {
            read_ids(&cfg.ids, reader.shape[0])?
        } else {
            Vec::new()
        };
        let small = dataset::preprocess_frames(&mut reader, "resize", cfg.quiet)?;
        let x = dataset::standardise(&small, stats);
        let probs = probabilities(&loaded.net, &x, cfg.batch_size, cfg.device, cfg.quiet)?;
        if let Some(dir) = &cfg.png_dir {
            crate::pictures::write_pred_pngs(dir, &ids, &probs)?;
        }
        if let Some(dir) = &cfg.overlays {
            let limit = cfg.limit.unwrap_or(ids.len()).min(ids.len());
            crate::pictures::write_overlays(
                dir,
                &cfg.images,
                &ids[..limit],
                &probs,
                cfg.truth_dir.as_deref(),
                &cfg.rule,
            )?;
        }
        probs
    } else {
        let x = reader.read_all::<f32>()?;
        let n = x.len() / SIDE_PIXELS;
        let t = Tensor::from_slice(&x).view([n as i64, 1, INPUT_SIZE, INPUT_SIZE]);
        probabilities(&loaded.net, &t, cfg.batch_size, cfg.device, cfg.quiet)?
    };
    let n = images.len() / SIDE_PIXELS;
    let mut writer = NpyWriter::<f32>::create(&cfg.out, &[n as u64, side, side, 1])?;
    for row in images.chunks(SIDE_PIXELS) {
        writer.push_row(row)?;
    }
    writer.finish()?;
    Ok(n)
}

/// Reads int32 ids and checks there is one per image.
fn read_ids(path: &Path, n: u64) -> Result<Vec<i32>> {
    let r = NpyReader::open(path).context("the test ids name the PNGs; pass --ids")?;
    r.expect(Dtype::I32, &[Some(n)])?;
    r.read_all::<i32>()
}
