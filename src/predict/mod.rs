//! Stage 3, the prediction half of the original `train.py`: load the best checkpoint,
//! preprocess the test frames as the training frames (resize to the network's input,
//! 96 x 96 for the tutorial's; standardise with the TRAINING mean and std), predict in
//! batches without gradients, and write `imgs_mask_test.npy` (float32 (N, h, w, 1) at
//! the input size) and `preds/{id}_pred.png` (uint8 prob * 255).
//!
//! The original recomputed the training statistics at predict time; nerveseg reads them
//! from the checkpoint, and asks for `--mean/--std` or `--stats-from` when a checkpoint
//! (such as the original Keras `weights.h5`) has none. Model-ready float32
//! (N, h, w, 1) arrays are fed as they are, as Keras's `model.predict` does.

pub mod ensemble;
pub mod folder;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::nn::VarStore;
use tch::{Device, Kind, TchError, Tensor};

use crate::data::npy::{Dtype, NpyReader, NpyWriter};
use crate::dataset::{self, Stats};
use crate::frame::FrameSize;
use crate::interrupt;
use crate::keras::{self, KerasFile, LoadReport};
use crate::libtorch::{explain, Advice};
use crate::model::{self, UNet, UNetConfig};

/// A U-Net with weights from a Keras file, ready to run.
pub struct Loaded {
    pub vs: VarStore,
    pub net: UNet,
    pub cfg: UNetConfig,
    pub file: KerasFile,
    pub report: LoadReport,
}

/// Reads a Keras weight file, checks every shape, and builds the U-Net of its width on
/// `device`, to run as `speed` says.
pub fn load(
    path: &Path,
    device: Device,
    allow_partial: bool,
    speed: model::Speed,
) -> Result<Loaded> {
    model::check_device(device)?;
    let file = keras::read(path)?;
    let mut loaded = keras::load(&file, device, allow_partial)?;
    loaded.net.set_speed(&loaded.vs, speed).map_err(|e| {
        explain(
            e,
            "laying out the weights",
            device,
            Advice::BaseWidth(loaded.cfg.base_width),
        )
    })?;
    let r = &loaded.report;
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
        vs: loaded.vs,
        net: loaded.net,
        cfg: loaded.cfg,
        file,
        report: loaded.report,
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
    /// The statistics to use with `file`'s weights (a network of input `input`);
    /// refused when they cannot standardise (a std that is not positive and finite).
    pub fn resolve(&self, file: &KerasFile, input: FrameSize, quiet: bool) -> Result<Stats> {
        match self {
            StatsSource::Given(s) => s.checked("--mean and --std"),
            StatsSource::From(p) => {
                let mut r = NpyReader::open(p)?;
                let frames = dataset::preprocess_frames(&mut r, "stats", input, quiet)?;
                dataset::stats(&frames).checked(&format!("statistics of {}", p.display()))
            }
            StatsSource::Stored => match (file.meta.mean, file.meta.std) {
                (Some(mean), Some(std)) => Stats { mean, std }
                    .checked(&format!("the statistics stored in {}", file.path.display())),
                _ => bail!(
                    "{} stores no training mean/std (an original Keras file?): pass --mean and \
                     --std, or --stats-from imgs_train.npy",
                    file.path.display()
                ),
            },
        }
    }
}

/// Probabilities for `images` ([N, 1, h, w] on any device), in batches, without
/// gradients; returns N * h * w values. Stops at an interrupt between batches; a
/// libtorch failure (out of memory) is an error naming the batch.
pub fn probabilities(
    net: &UNet,
    images: &Tensor,
    batch: usize,
    device: Device,
    quiet: bool,
) -> Result<Vec<f32>> {
    Ok(predictions(net, images, batch, device, quiet)?.0)
}

/// The probability maps of `images`, as [`probabilities`], and with a presence head the
/// head's probability of each image.
pub fn predictions(
    net: &UNet,
    images: &Tensor,
    batch: usize,
    device: Device,
    quiet: bool,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let n = images.size().first().copied().unwrap_or(0);
    let pb = crate::progress::bar(n as u64, "predict", quiet);
    let pixels: i64 = images.size().iter().skip(2).product();
    let mut out = Vec::with_capacity((n * pixels) as usize);
    let mut heads = net.has_head().then(|| Vec::with_capacity(n as usize));
    let host = |t: Tensor| -> Result<Tensor, TchError> {
        t.f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_contiguous()?
            .f_view([-1])
    };
    let mut s = 0;
    while s < n {
        interrupt::check()?;
        let b = (batch as i64).min(n - s);
        let (y, h) = tch::no_grad(|| -> Result<(Tensor, Option<Tensor>), TchError> {
            let x = images.f_narrow(0, s, b)?.f_to_device(device)?;
            let out = net.forward(&x)?;
            let (mask, head) = (out.mask, out.presence);
            let head = match head {
                Some(logits) => Some(host(logits.f_sigmoid()?)?),
                None => None,
            };
            Ok((host(mask)?, head))
        })
        .map_err(|e| {
            let what = format!("prediction of images {}..{}", s + 1, s + b);
            explain(e, &what, device, Advice::BatchSize(batch))
        })?;
        out.extend(Vec::<f32>::try_from(&y).context("copying predictions from the device")?);
        if let (Some(all), Some(h)) = (heads.as_mut(), h) {
            all.extend(Vec::<f32>::try_from(&h).context("copying predictions from the device")?);
        }
        s += b;
        pb.inc(b as u64);
    }
    pb.finish_and_clear();
    Ok((out, heads))
}

/// What `predict` reads and writes.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    /// One checkpoint, or several whose probabilities are averaged.
    pub weights: Vec<PathBuf>,
    /// Also predict the horizontally flipped frames and average.
    pub tta: bool,
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

/// What `predict` did.
#[derive(Clone, Debug)]
pub struct PredictReport {
    pub images: usize,
    pub weights: Vec<PathBuf>,
    pub tta: bool,
    pub out: PathBuf,
    /// The presence heads' probabilities, when the checkpoints have heads.
    pub presence: Option<PathBuf>,
    /// The presence gate asked for, and how many frames it emptied.
    pub gated: Option<(crate::presence::Gate, usize)>,
}

/// "w.h5", "the mean of a.h5 and b.h5", with " and its flips" for test-time flips.
pub fn describe_models(weights: &[PathBuf], tta: bool) -> String {
    let names: Vec<String> = weights.iter().map(|w| w.display().to_string()).collect();
    let mut s = match names.as_slice() {
        [one] => one.clone(),
        [rest @ .., last] => format!("the mean of {} and {last}", rest.join(", ")),
        [] => String::new(),
    };
    if tta {
        s.push_str(" with horizontal flips");
    }
    s
}

impl fmt::Display for PredictReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "predicted {} with {} -> {}",
            crate::words::count(self.images, "image", "images"),
            describe_models(&self.weights, self.tta),
            self.out.display()
        )?;
        if let Some(p) = &self.presence {
            write!(f, " (presence head: {})", p.display())?;
        }
        if let Some((gate, emptied)) = &self.gated {
            write!(
                f,
                "; {gate} judged {emptied} of {} empty: their maps are 0",
                crate::words::count(self.images, "frame", "frames")
            )?;
        }
        Ok(())
    }
}

/// Runs prediction: the probabilities first, then the pictures.
pub fn predict(cfg: &PredictConfig) -> Result<PredictReport> {
    let reader = NpyReader::open(&cfg.images)?;
    let frames = match (reader.dtype, reader.shape.as_slice()) {
        (Dtype::F32, [_, _, _, 1]) => false,
        (Dtype::U8, [_, _, _]) => {
            FrameSize::of_frames(&reader)?;
            true
        }
        _ => bail!(
            "{}: expected uint8 frames (N, H, W) or a model-ready float32 array \
             (N, h, w, 1) at the network's input size, found {} of shape {:?}",
            cfg.images.display(),
            reader.dtype.name(),
            reader.shape
        ),
    };
    let models = ensemble::Ensemble::load(
        &ensemble::EnsembleConfig {
            weights: cfg.weights.clone(),
            tta: cfg.tta,
            device: cfg.device,
            speed: cfg.speed,
            batch_size: cfg.batch_size,
            allow_partial: cfg.allow_partial,
        },
        frames.then_some(&cfg.stats),
        cfg.quiet,
    )?;
    crate::presence::check_head(cfg.rule.presence, models.has_heads(), &cfg.weights)?;
    let map = models.map_size();
    if !frames {
        ready_size(&cfg.images, &reader.shape, &models)?;
    }
    // The output is opened first, so an unwritable place fails before the work; its
    // rows come once every batch is predicted.
    let n = reader.shape[0];
    let (h, w) = (map.height as u64, map.width as u64);
    let mut writer = NpyWriter::<f32>::create(&cfg.out, &[n, h, w, 1])?;
    let nothing = |_: Option<&str>| format!("{} was not written", cfg.out.display());
    let (probs, ids) = if frames {
        // The ids only name pictures; read them first so a bad file fails before the work.
        let pictures = cfg.png_dir.is_some() || cfg.overlays.is_some();
        let ids = if pictures {
            read_ids(&cfg.ids, n)?
        } else {
            Vec::new()
        };
        // Each input size the networks take reads the frames once more (the file is
        // streamed, not held whole).
        let small = |size: FrameSize| {
            let mut r = NpyReader::open(&cfg.images)?;
            interrupt::keeping(
                dataset::preprocess_frames(&mut r, "resize", size, cfg.quiet),
                nothing,
            )
        };
        let probs = interrupt::keeping(models.frames_with_heads(small, cfg.quiet), nothing)?;
        (probs, ids)
    } else {
        let x = reader.read_all::<f32>()?;
        let t = dataset::to_nchw(&x, map).map_err(|e| {
            explain(
                e,
                "reading the model-ready images",
                Device::Cpu,
                Advice::None,
            )
        })?;
        let probs = interrupt::keeping(models.ready_with_heads(&t, cfg.quiet), nothing)?;
        (probs, Vec::new())
    };
    let ((mut probs, heads), presence_out) = (probs, crate::presence::scores_path(&cfg.out));
    // A frame the gate judges empty gets the empty mask in every output.
    let gated = cfg.rule.presence.map(|gate| {
        let emptied =
            crate::presence::empty_gated(gate, &mut probs, map.pixels(), heads.as_deref());
        (gate, emptied)
    });
    let mut presence_writer = match &heads {
        Some(h) => Some(NpyWriter::<f32>::create(
            &presence_out,
            &[h.len() as u64, 1],
        )?),
        None => None,
    };
    for row in probs.chunks(map.pixels()) {
        writer.push_row(row)?;
    }
    interrupt::keeping(interrupt::check(), nothing)?;
    writer.finish()?;
    match (presence_writer.as_mut(), &heads) {
        (Some(w), Some(h)) => {
            for p in h {
                w.push_row(std::slice::from_ref(p))?;
            }
        }
        _ if presence_out.exists() => {
            // An earlier prediction's scores must not pass for this one's.
            std::fs::remove_file(&presence_out)
                .with_context(|| format!("removing the stale {}", presence_out.display()))?;
        }
        _ => {}
    }
    if let Some(w) = presence_writer {
        w.finish()?;
    }
    let written = |inner: Option<&str>| {
        format!(
            "{} was written; {}",
            cfg.out.display(),
            inner.unwrap_or("the pictures were not")
        )
    };
    if let Some(dir) = &cfg.png_dir {
        interrupt::keeping(
            crate::pictures::write_pred_pngs(dir, &ids, &probs, map),
            written,
        )?;
    }
    if let Some(dir) = &cfg.overlays {
        let limit = cfg.limit.unwrap_or(ids.len()).min(ids.len());
        interrupt::keeping(
            crate::pictures::write_overlays(
                dir,
                &cfg.images,
                &ids[..limit],
                &probs,
                map,
                cfg.truth_dir.as_deref(),
                &cfg.rule,
            ),
            written,
        )?;
    }
    Ok(PredictReport {
        images: n as usize,
        weights: cfg.weights.clone(),
        tta: cfg.tta,
        out: cfg.out.clone(),
        presence: heads.is_some().then_some(presence_out),
        gated,
    })
}

/// Checks that model-ready arrays (N, h, w, 1) have the input size of every network of
/// the ensemble.
fn ready_size(path: &Path, shape: &[u64], models: &ensemble::Ensemble) -> Result<()> {
    for m in &models.members {
        let input = m.loaded.cfg.input;
        let (h, w) = (input.height as u64, input.width as u64);
        if shape[1..3] != [h, w] {
            bail!(
                "{}: expected uint8 frames (N, H, W) or a model-ready float32 array \
                 (N, {h}, {w}, 1), found float32 of shape {shape:?}: {} takes {input}",
                path.display(),
                m.loaded.file.path.display()
            );
        }
    }
    Ok(())
}

/// Reads int32 ids and checks there is one per image.
fn read_ids(path: &Path, n: u64) -> Result<Vec<i32>> {
    let r = NpyReader::open(path).context("the test ids name the PNGs; pass --ids")?;
    r.expect(Dtype::I32, &[Some(n)])?;
    r.read_all::<i32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of the wrong shape reaching the network (the seam a file cannot reach:
    /// `predict` checks shapes first) comes back as a one-line libtorch error.
    #[test]
    fn a_libtorch_failure_in_a_batch_is_an_error() {
        let vs = VarStore::new(Device::Cpu);
        let net = model::unet(&vs.root(), &UNetConfig::width(2)).unwrap();
        let x = Tensor::zeros([3, 2, 96, 96], (Kind::Float, Device::Cpu));
        let e = probabilities(&net, &x, 2, Device::Cpu, true).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with("libtorch failed during prediction of images 1..2: "),
            "{msg}"
        );
        assert!(msg.contains("to have 1 channels"), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
}
