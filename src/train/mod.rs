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
pub mod folder;
mod history;
pub(crate) mod pass;
mod resume;
mod start;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tch::{Device, TchError, Tensor};

use self::callbacks::{Callbacks, Schedule};
use self::history::Averages;
pub use self::history::{format_epoch, read_history, write_history, EpochLog};
use self::pass::Pass;
pub use self::resume::setting_differences;
use self::start::{build, weights_source, Start};
use crate::adam::{AdamConfig, KerasAdam};
use crate::dataset::{self, Prepared};
use crate::keras::{self, KerasFile, Meta, RunRecord};
use crate::libtorch::{explain, Advice};
use crate::model;
use crate::split::{Split, SplitRule};

pub const BEST: &str = "weights.h5";
pub const LAST: &str = "last.h5";
pub const HISTORY: &str = "history.csv";
/// The tutorial's epochs.
pub const TUTORIAL_EPOCHS: usize = 20;

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
    let claimed = |cfg: &TrainConfig| match cfg.resume || cfg.overwrite {
        true => Ok(()),
        false => folder::check_unclaimed(&cfg.out_dir),
    };
    claimed(cfg)?;
    // The weights to start from are read and checked before the data, which can take a
    // while to load; they decide the network.
    let source = weights_source(cfg)?;
    let network = match &source {
        Some(file) => start::checkpoint_network(cfg, file)?,
        None => {
            let n = cfg.network.fresh(cfg.presence.is_some());
            n.check()?;
            n
        }
    };
    let mut data = dataset::load_training(&cfg.images, &cfg.masks, network.input, cfg.quiet)?;
    let n = data.samples;
    let split = split_of(cfg, &data, source.as_ref())?;
    if !split.keeps_order() {
        // Training frames first, then the validation frames: the passes take the first
        // n_train.
        let host = |e: TchError| explain(e, "splitting by group", Device::Cpu, Advice::None);
        let order =
            Tensor::from_slice(&split.layout().iter().map(|&i| i as i64).collect::<Vec<_>>());
        data.images = data.images.f_index_select(0, &order).map_err(host)?;
        data.masks = data.masks.f_index_select(0, &order).map_err(host)?;
    }
    let n_train = split.train.len();
    if n_train == 0 || (cfg.validation_split > 0.0 && n_train == n) {
        bail!(
            "{n} samples cannot be split with --validation-split {}",
            cfg.validation_split
        );
    }
    let run = RunRecord {
        validation_split: cfg.validation_split,
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        batch_size: cfg.batch_size as u64,
        samples: n as u64,
        fingerprint: data.fingerprint.clone(),
        callbacks: options(cfg),
        folds: cfg.folds.as_ref().map(|f| (f.folds as u64, f.fold as u64)),
        lr: Some(cfg.adam.lr),
        validation: Some(split.validation.iter().map(|&i| i as u64).collect()),
    };
    if cfg.callbacks != Callbacks::default() && n_train == n {
        bail!("--reduce-lr-on-plateau and --early-stopping watch val_loss: they need a --validation-split above 0");
    }
    let mut start = build(cfg, source, &run, &network)?;
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    let _lock = folder::lock(&cfg.out_dir)?;
    claimed(cfg)?;
    let device = cfg.device;
    let model = Advice::BaseWidth(start.cfg.base_width);
    let on_device = |what: &str, e: TchError| explain(e, what, device, model);
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
    let Prepared {
        images,
        masks,
        stats,
        frame_size,
        ..
    } = data;
    // The whole set moves to the device once; batches are gathered there.
    let to_device = |t: Tensor| t.f_to_device(device);
    let data = |what: &str, e: TchError| explain(e, what, device, Advice::None);
    let images = to_device(images).map_err(|e| data("moving the images to the device", e))?;
    let masks = to_device(masks).map_err(|e| data("moving the masks to the device", e))?;
    let meta_base = Meta {
        mean: stats.map(|s| s.mean),
        std: stats.map(|s| s.std),
        run: Some(run),
        frame_size,
        ..Default::default()
    };
    let Start {
        vs,
        net,
        cfg: ucfg,
        epoch: first_epoch,
        mut history,
        mut best,
    } = start;
    let best_path = cfg.out_dir.join(BEST);
    let last_path = cfg.out_dir.join(LAST);

    // The callbacks' state: replayed over the epochs already run when resuming.
    let mut schedule = Schedule::new(&cfg.callbacks, cfg.adam.lr);
    for log in &history {
        schedule.end_epoch(log.epoch, log.val_loss);
    }
    let pass = Pass {
        net: &net,
        images: &images,
        masks: &masks,
        device,
        batch: cfg.batch_size,
        frame: frame_size.unwrap_or(crate::frame::KAGGLE),
        presence: cfg.presence,
        loss: cfg.loss,
    };
    for epoch in first_epoch..cfg.epochs {
        if schedule.stopped_after.is_some() {
            break;
        }
        if schedule.schedules_lr() {
            opt.set_lr(schedule.lr);
        }
        let t0 = Instant::now();
        let avg = pass
            .train_epoch(&mut opt, n_train, cfg, epoch)
            .map_err(|e| crate::interrupt::keep(e, |_| interrupted(cfg, &history, best)))?;
        let val = if n_train < n {
            Some(
                pass.validate(n_train, n, epoch)
                    .map_err(|e| crate::interrupt::keep(e, |_| interrupted(cfg, &history, best)))?,
            )
        } else {
            None
        };
        let log = EpochLog {
            epoch,
            loss: avg.loss(),
            dice_coef: avg.dice(),
            val_loss: val.as_ref().map(Averages::loss),
            val_dice_coef: val.as_ref().map(Averages::dice),
            lr: schedule.schedules_lr().then_some(schedule.lr),
            seconds: t0.elapsed().as_secs_f64(),
        };
        if let Some(v) = log.val_loss.filter(|v| !v.is_finite()) {
            bail!(
                "the validation loss became {v} at epoch {}; stopped. The best checkpoint {} is \
                 as it was",
                epoch + 1,
                best_path.display()
            );
        }
        // ModelCheckpoint(save_best_only): only when val_loss improves; every epoch
        // without validation.
        let improved = match (log.val_loss, best) {
            (Some(v), Some((_, b))) => v < b,
            _ => true,
        };
        if improved {
            best = Some((epoch, log.val_loss.unwrap_or(log.loss)));
            let meta = Meta {
                epoch: Some(epoch as i64 + 1),
                ..meta_base.clone()
            };
            keras::write(&best_path, &vs, &ucfg, &meta, keras::Format::Keras2Model)?;
        }
        history.push(log);
        // The history first: a crash before last.h5 then leaves a row too many, which a
        // resume drops, never a row too few.
        write_history(&cfg.out_dir.join(HISTORY), &history)?;
        let meta = Meta {
            epoch: Some(epoch as i64 + 1),
            best_val_loss: best.map(|b| b.1),
            best_epoch: best.map(|b| b.0 as i64 + 1),
            ..meta_base.clone()
        };
        keras::write_checkpoint(&last_path, &vs, &ucfg, &meta, &opt.state())?;
        if !cfg.quiet {
            println!("{}", format_epoch(&log, cfg.epochs, improved));
        }
        let lr = schedule.lr;
        let stop = schedule.end_epoch(epoch, log.val_loss);
        if schedule.lr != lr && !cfg.quiet {
            println!(
                "reduce lr on plateau: learning rate {lr:e} -> {:e}",
                schedule.lr
            );
        }
        if stop && !cfg.quiet {
            println!("early stopping: no val_loss improvement for the last epochs");
        }
    }
    Ok(TrainReport {
        history,
        best_epoch: best.map(|b| b.0),
        best_val_loss: best.map(|b| b.1),
        best_path,
        stopped_after: schedule.stopped_after,
    })
}

/// The run's split: the one `last.h5` stored, when resuming it with the same rule and
/// samples, else the one the command's rule makes of the training set. (A resume that
/// differs is refused later, naming the difference.)
fn split_of(cfg: &TrainConfig, data: &Prepared, source: Option<&KerasFile>) -> Result<Split> {
    let rule = match &cfg.folds {
        Some(f) => SplitRule::Fold {
            folds: f.folds,
            fold: f.fold,
            seed: cfg.seed,
        },
        None => SplitRule::LastShare(cfg.validation_split),
    };
    let n = data.samples;
    let stored = source
        .filter(|_| cfg.resume)
        .and_then(|f| f.meta.run.as_ref())
        .filter(|r| r.samples == n as u64 && SplitRule::of_run(r) == rule)
        .and_then(|r| r.validation.as_deref());
    let split = match stored {
        Some(v) => Split::stored(rule, n, v)
            .with_context(|| format!("{}", cfg.out_dir.join(LAST).display()))?,
        None => {
            let groups = cfg.folds.as_ref().and_then(|f| f.groups.as_deref());
            let path = crate::split::groups_path(&cfg.images, groups);
            let of = || Ok((crate::split::read_groups(&path, n)?, data.nerve.clone()));
            Split::make(rule, n, Box::new(of))?
        }
    };
    if let (SplitRule::Fold { folds, fold, .. }, false) = (rule, cfg.quiet) {
        println!(
            "fold {} of {folds}: {} frames train, {} validate",
            fold + 1,
            split.train.len(),
            split.validation.len(),
        );
    }
    Ok(split)
}

/// The options beyond the tutorial's run, as flags ("" for none): callbacks,
/// augmentation, the presence head and the loss.
fn options(cfg: &TrainConfig) -> String {
    let aug = cfg.augment.map(|a| a.describe()).unwrap_or_default();
    let head = cfg
        .presence
        .map(|w| format!("--presence-head --presence-weight {w}"))
        .unwrap_or_default();
    let loss = match cfg.loss {
        crate::loss::Loss::Dice => String::new(),
        l => format!("--loss {}", l.name()),
    };
    [cfg.callbacks.describe(), aug, head, loss]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What an interrupted run kept, and how to continue it.
fn interrupted(cfg: &TrainConfig, history: &[EpochLog], best: Option<(usize, f64)>) -> String {
    match best {
        Some((e, _)) if !history.is_empty() => format!(
            "the best checkpoint {} (epoch {}) is intact. Run the same command with --resume \
             to continue from epoch {}",
            cfg.out_dir.join(BEST).display(),
            e + 1,
            history.len() + 1
        ),
        _ => format!(
            "no epoch finished; {} holds nothing new",
            cfg.out_dir.display()
        ),
    }
}
