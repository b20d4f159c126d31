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
mod load;
mod predictions;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::Device;

pub use self::ensemble::Ensemble;
pub use self::ensemble::EnsembleConfig;
pub use self::load::{load, Loaded, StatsSource};
pub use self::predictions::{Predictions, PredictionsFile};
use crate::data::npy::{Dtype, NpyReader};
use crate::dataset;
use crate::frame::FrameSize;
use crate::interrupt;
use crate::libtorch::{explain, Advice};

/// What `predict` reads and writes.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    /// The checkpoints and how they run.
    pub ensemble: EnsembleConfig,
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
    pub quiet: bool,
}

/// The original's `predict.py`: `imgs_test.npy` and its ids in, `imgs_mask_test.npy`
/// and `preds/{id}_pred.png` out, with the checkpoint's statistics.
impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            ensemble: EnsembleConfig::default(),
            images: PathBuf::from(crate::data::IMGS_TEST),
            ids: PathBuf::from(crate::data::IMGS_ID_TEST),
            out: PathBuf::from(crate::data::IMGS_MASK_TEST),
            png_dir: Some(PathBuf::from("preds")),
            overlays: None,
            truth_dir: None,
            limit: None,
            stats: StatsSource::Stored,
            rule: crate::submission::MaskRule::default(),
            quiet: false,
        }
    }
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
pub(crate) fn describe_models(weights: &[PathBuf], tta: bool) -> String {
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

/// Runs prediction: the predictions first, then the pictures.
pub fn predict(cfg: &PredictConfig) -> Result<PredictReport> {
    let (reader, frames) = open_images(&cfg.images)?;
    let models = Ensemble::load(&cfg.ensemble, frames.then_some(&cfg.stats), cfg.quiet)?;
    crate::presence::check_head(cfg.rule.presence, models.headless())?;
    if !frames {
        ready_size(&cfg.images, &reader.shape, &models)?;
    }
    // The output is opened first, so an unwritable place fails before the work; its
    // rows come once every batch is predicted.
    let n = reader.shape[0];
    let file = PredictionsFile::create(&cfg.out, n, models.map_size())?;
    let nothing = |_: Option<&str>| format!("{} was not written", cfg.out.display());
    // The ids only name pictures; read them first so a bad file fails before the work.
    let pictures = cfg.png_dir.is_some() || cfg.overlays.is_some();
    let ids = match frames && pictures {
        true => read_ids(&cfg.ids, n)?,
        false => Vec::new(),
    };
    let mut preds = match frames {
        true => interrupt::keeping(predict_frames(cfg, &models), nothing)?,
        false => interrupt::keeping(predict_ready(reader, &models, cfg.quiet), nothing)?,
    };
    // A frame the gate judges empty gets the empty mask in every output.
    let gated = cfg
        .rule
        .presence
        .map(|gate| (gate, preds.empty_gated(gate)));
    let presence = interrupt::keeping(file.write(&preds), nothing)?;
    write_pictures(cfg, &ids, &preds)?;
    Ok(PredictReport {
        images: n as usize,
        weights: cfg.ensemble.weights.clone(),
        tta: cfg.ensemble.tta,
        out: cfg.out.clone(),
        presence,
        gated,
    })
}

/// Opens the images to predict; says whether they are uint8 frames (else model-ready
/// float32 maps).
fn open_images(path: &Path) -> Result<(NpyReader, bool)> {
    let reader = NpyReader::open(path)?;
    let frames = match (reader.dtype, reader.shape.as_slice()) {
        (Dtype::F32, [_, _, _, 1]) => false,
        (Dtype::U8, [_, _, _]) => {
            FrameSize::of_frames(&reader)?;
            true
        }
        _ => bail!(
            "{}: expected uint8 frames (N, H, W) or a model-ready float32 array \
             (N, h, w, 1) at the network's input size, found {} of shape {:?}",
            path.display(),
            reader.dtype.name(),
            reader.shape
        ),
    };
    Ok((reader, frames))
}

/// The predictions of uint8 frames: each input size the networks take reads the frames
/// once more (the file is streamed, not held whole).
fn predict_frames(cfg: &PredictConfig, models: &Ensemble) -> Result<Predictions> {
    let small = |size: FrameSize| {
        let mut r = NpyReader::open(&cfg.images)?;
        dataset::preprocess_frames(&mut r, "resize", size, cfg.quiet)
    };
    models.frames(small, cfg.quiet)
}

/// The predictions of model-ready float32 (N, h, w, 1) images, fed as they are.
fn predict_ready(reader: NpyReader, models: &Ensemble, quiet: bool) -> Result<Predictions> {
    let x = reader.read_all::<f32>()?;
    let t = dataset::to_nchw(&x, models.map_size()).map_err(|e| {
        explain(
            e,
            "reading the model-ready images",
            Device::Cpu,
            Advice::None,
        )
    })?;
    models.ready(&t, quiet)
}

/// The pictures asked for: `{id}_pred.png` and the overlays.
fn write_pictures(cfg: &PredictConfig, ids: &[i32], preds: &Predictions) -> Result<()> {
    let written = |inner: Option<&str>| {
        format!(
            "{} was written; {}",
            cfg.out.display(),
            inner.unwrap_or("the pictures were not")
        )
    };
    if let Some(dir) = &cfg.png_dir {
        interrupt::keeping(crate::pictures::write_pred_pngs(dir, ids, preds), written)?;
    }
    if let Some(dir) = &cfg.overlays {
        let limit = cfg.limit.unwrap_or(ids.len()).min(ids.len());
        interrupt::keeping(
            crate::pictures::write_overlays(
                dir,
                &cfg.images,
                &ids[..limit],
                preds,
                cfg.truth_dir.as_deref(),
                &cfg.rule,
            ),
            written,
        )?;
    }
    Ok(())
}

/// Checks that model-ready arrays (N, h, w, 1) have the input size of every network of
/// the ensemble.
fn ready_size(path: &Path, shape: &[u64], models: &Ensemble) -> Result<()> {
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
