//! Training, the heart of the original `train.py`: `model.fit(imgs, masks, batch_size=32,
//! epochs=20, shuffle=True, validation_split=0.2, callbacks=[ModelCheckpoint(
//! 'weights.h5', monitor='val_loss', save_best_only=True)])` with Adam(lr=1e-5) and the
//! Dice loss, reporting Keras's own epoch figures.
//!
//! Keras's averaging: the epoch `loss` is the mean of batch losses weighted by batch size,
//! `dice_coef` the plain mean of batch values; the same for the validation pass.
//! Beside the best checkpoint (`weights.h5`) each epoch writes `history.csv` and then
//! `last.h5` (weights, Adam state, epoch, best so far), so `--resume` can continue; every
//! checkpoint records what defines the run (`resume.rs`), and a resume refuses another.

pub mod callbacks;
mod epochs;
pub mod folder;
mod history;
mod options;
pub(crate) mod pass;
mod record;
mod resume;
mod start;

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tch::{Device, TchError, Tensor};

use self::callbacks::Callbacks;
use self::epochs::{Epochs, Progress};
pub use self::history::EpochLog;
pub(crate) use self::history::{format_epoch, read_history, write_history};
pub use self::options::RunOptions;
use self::pass::Pass;
pub use self::resume::setting_differences;
use self::start::{build, weights_source, Start};
use crate::adam::{AdamConfig, KerasAdam};
use crate::dataset::{self, Prepared};
use crate::keras::{self, Meta};
use crate::libtorch::{explain, Advice};
use crate::model;
use crate::split::Split;

pub const BEST: &str = "weights.h5";
pub const LAST: &str = "last.h5";
pub const HISTORY: &str = "history.csv";
/// The tutorial's epochs.
pub const TUTORIAL_EPOCHS: usize = 20;
/// The tutorial's batch size, for training and for prediction.
pub const TUTORIAL_BATCH: usize = 32;

/// Everything `train` needs; defaults are the tutorial's.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub images: PathBuf,
    pub masks: PathBuf,
    pub out_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub adam: AdamConfig,
    pub validation_split: f64,
    pub seed: u64,
    pub shuffle: bool,
    pub device: Device,
    /// Start from these weights (any Keras file) instead of a fresh initialisation.
    pub init_weights: Option<PathBuf>,
    /// Continue the run saved in `out_dir/last.h5`.
    pub resume: bool,
    /// Start afresh in `out_dir` even when it holds another run's files (replacing
    /// them); without it, or `resume`, such a folder is refused.
    pub overwrite: bool,
    /// The network asked for; a checkpoint to start from decides what is not asked, and
    /// must agree with what is.
    pub network: model::NetworkChoice,
    /// The loss to train on (the tutorial's batch Dice by default).
    pub loss: crate::loss::Loss,
    /// Memory layout and compute precision of the forward pass (`--amp` is bf16).
    pub speed: model::Speed,
    /// ReduceLROnPlateau and EarlyStopping on val_loss (none: the tutorial's run).
    pub callbacks: Callbacks,
    /// Validate on one fold of a split by group instead of the last share.
    pub folds: Option<Folds>,
    /// Random flips, rotations, shifts, zooms and jitter of each training batch.
    pub augment: Option<crate::augment::AugmentConfig>,
    /// Train a presence head beside the mask: the weight of its binary cross-entropy
    /// in the loss (`--presence-head`, `--presence-weight`).
    pub presence: Option<f64>,
    pub quiet: bool,
}

/// The tutorial's run (`train.py`): its files, 20 epochs of batches of 32, Adam at
/// 1e-5, the last 0.2 validating, shuffled, seed 0, on the CPU. The command line's
/// defaults are these.
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            images: PathBuf::from(crate::data::IMGS_TRAIN),
            masks: PathBuf::from(crate::data::IMGS_MASK_TRAIN),
            out_dir: PathBuf::from("weights"),
            epochs: TUTORIAL_EPOCHS,
            batch_size: TUTORIAL_BATCH,
            adam: AdamConfig::default(),
            validation_split: 0.2,
            seed: 0,
            shuffle: true,
            device: Device::Cpu,
            init_weights: None,
            resume: false,
            overwrite: false,
            network: model::NetworkChoice::default(),
            loss: crate::loss::Loss::default(),
            speed: model::Speed::default(),
            callbacks: Callbacks::default(),
            folds: None,
            augment: None,
            presence: None,
            quiet: false,
        }
    }
}

/// `--folds K --fold I`: fold `fold` (0-based) of `folds`, by the groups in `groups`
/// (default: `imgs_groups_train.txt` beside the images).
#[derive(Clone, Debug, PartialEq)]
pub struct Folds {
    pub folds: usize,
    pub fold: usize,
    pub groups: Option<PathBuf>,
}

/// How a run ended.
#[derive(Clone, Debug, Default)]
pub struct TrainReport {
    pub history: Vec<EpochLog>,
    pub best_epoch: Option<usize>,
    pub best_val_loss: Option<f64>,
    /// Where the best checkpoint is.
    pub best_path: PathBuf,
    /// The 0-based epoch after which EarlyStopping stopped the run.
    pub stopped_after: Option<usize>,
}

impl fmt::Display for TrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = self.stopped_after {
            writeln!(f, "early stopping after epoch {}", e + 1)?;
        }
        let Some(e) = self.best_epoch else {
            return write!(f, "no epoch to train: the run had already reached --epochs");
        };
        let path = self.best_path.display();
        match self
            .history
            .iter()
            .find(|l| l.epoch == e)
            .and_then(|l| l.val_dice_coef)
        {
            Some(d) => write!(
                f,
                "best epoch {} (val_dice_coef {d:.4}) saved to {path}",
                e + 1
            ),
            None => write!(f, "last epoch {} saved to {path}", e + 1),
        }
    }
}

/// Runs training; returns the history. Errors and interrupts leave the best checkpoint
/// as it was; an interrupt says what was kept.
pub fn train(cfg: &TrainConfig) -> Result<TrainReport> {
    model::check_device(cfg.device)?;
    if !(0.0..1.0).contains(&cfg.validation_split) {
        bail!(
            "--validation-split must be in [0, 1), got {}",
            cfg.validation_split
        );
    }
    // A folder holding another run is refused before anything slow (and again once
    // the folder is locked, in case a run finished there meanwhile).
    claimed(cfg)?;
    // The weights to start from are read and checked before the data, which can take a
    // while to load; they decide the network.
    let source = weights_source(cfg)?;
    let network = network_of(cfg, source.as_ref())?;
    let mut data = dataset::load_training(&cfg.images, &cfg.masks, network.input, cfg.quiet)?;
    let split = record::split_of(cfg, &data, source.as_ref())?;
    arrange(&mut data, &split)?;
    let run = record::run_record(cfg, &data, &split)?;
    let mut start = build(cfg, source, &run, &network)?;
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    let _lock = folder::lock(&cfg.out_dir)?;
    claimed(cfg)?;
    let mut opt = optimizer(cfg, &mut start)?;
    let Prepared {
        images,
        masks,
        stats,
        frame_size,
        samples,
        ..
    } = data;
    // The whole set moves to the device once; batches are gathered there.
    let device = cfg.device;
    let to_device = |t: Tensor, what: &str| {
        t.f_to_device(device)
            .map_err(|e| explain(e, what, device, Advice::None))
    };
    let images = to_device(images, "moving the images to the device")?;
    let masks = to_device(masks, "moving the masks to the device")?;
    let Start {
        vs,
        net,
        cfg: network,
        epoch: first,
        history,
        best,
    } = start;
    let epochs = Epochs {
        cfg,
        pass: Pass {
            net: &net,
            images: &images,
            masks: &masks,
            device,
            batch: cfg.batch_size,
            frame: frame_size.unwrap_or(crate::frame::KAGGLE),
            presence: cfg.presence,
            loss: cfg.loss,
        },
        vs: &vs,
        network: &network,
        meta: Meta {
            stats,
            run: Some(run),
            frame_size,
            ..Default::default()
        },
        n_train: split.train.len(),
        n: samples,
    };
    epochs.run(&mut opt, first, Progress { history, best })
}

/// The network to train: the checkpoint's when starting from one (it must agree with
/// what `cfg` asks), else the one `cfg` asks for.
fn network_of(cfg: &TrainConfig, source: Option<&keras::KerasFile>) -> Result<model::UNetConfig> {
    if let Some(file) = source {
        return start::checkpoint_network(cfg, file);
    }
    let n = cfg.network.fresh(cfg.presence.is_some());
    n.check()?;
    Ok(n)
}

/// Refuses a folder holding another run unless the run resumes or overwrites it.
fn claimed(cfg: &TrainConfig) -> Result<()> {
    match cfg.resume || cfg.overwrite {
        true => Ok(()),
        false => folder::check_unclaimed(&cfg.out_dir),
    }
}

/// Puts the training frames first, then the validation frames, as the passes take
/// them (the first `n_train`), unless they are in that order already.
fn arrange(data: &mut Prepared, split: &Split) -> Result<()> {
    if split.keeps_order() {
        return Ok(());
    }
    let host = |e: TchError| explain(e, "splitting by group", Device::Cpu, Advice::None);
    let order = Tensor::from_slice(&split.layout().iter().map(|&i| i as i64).collect::<Vec<_>>());
    data.images = data.images.f_index_select(0, &order).map_err(host)?;
    data.masks = data.masks.f_index_select(0, &order).map_err(host)?;
    Ok(())
}

/// Adam on the run's weights, laid out for the run's speed; with the state `last.h5`
/// saved when resuming.
fn optimizer(cfg: &TrainConfig, start: &mut Start) -> Result<KerasAdam> {
    let model = Advice::BaseWidth(start.cfg.base_width);
    let on_device = |what: &str, e: TchError| explain(e, what, cfg.device, model);
    start
        .net
        .set_speed(&start.vs, cfg.speed)
        .map_err(|e| on_device("laying out the weights", e))?;
    let mut opt =
        KerasAdam::new(&start.vs, cfg.adam).map_err(|e| on_device("creating Adam's state", e))?;
    if cfg.resume {
        let last = cfg.out_dir.join(LAST);
        let state = keras::read_adam_state(&last, &opt.shapes())?
            .with_context(|| format!("{} holds no optimizer state", last.display()))?;
        opt.load_state(&state)?;
    }
    Ok(opt)
}
