//! The epochs of a run, each as Keras's `fit` runs it: train, validate, keep the best
//! checkpoint (ModelCheckpoint(save_best_only) on val_loss), then write `history.csv`
//! and `last.h5`, and let the callbacks change the rate or stop the run.

use std::time::Instant;

use anyhow::{bail, Result};
use tch::nn::VarStore;

use super::callbacks::Schedule;
use super::history::Averages;
use super::pass::Pass;
use super::{format_epoch, write_history, EpochLog, TrainConfig, TrainReport};
use super::{BEST, HISTORY, LAST};
use crate::adam::KerasAdam;
use crate::keras::{self, Meta};
use crate::model::UNetConfig;

/// A run ready for its epochs: the passes over the data on the device and what every
/// checkpoint records.
pub(super) struct Epochs<'a> {
    pub cfg: &'a TrainConfig,
    pub pass: Pass<'a>,
    pub vs: &'a VarStore,
    pub network: &'a UNetConfig,
    /// What every checkpoint records beside its epoch and the best so far.
    pub meta: Meta,
    /// The frames that train come first, then those that validate (`n_train..n`).
    pub n_train: usize,
    pub n: usize,
}

/// Where the run is: the epochs logged and the best (0-based epoch, val_loss) so far.
pub(super) struct Progress {
    pub history: Vec<EpochLog>,
    pub best: Option<(usize, f64)>,
}

impl Epochs<'_> {
    /// Runs the epochs from `first` to `--epochs`, or until EarlyStopping stops them.
    /// Errors and interrupts leave the best checkpoint as it was; an interrupt says what
    /// was kept.
    pub fn run(&self, opt: &mut KerasAdam, first: usize, mut at: Progress) -> Result<TrainReport> {
        let cfg = self.cfg;
        // The callbacks' state: replayed over the epochs already run when resuming.
        let mut schedule = Schedule::new(&cfg.callbacks, cfg.adam.lr);
        for log in &at.history {
            schedule.end_epoch(log.epoch, log.val_loss);
        }
        for epoch in first..cfg.epochs {
            if schedule.stopped_after.is_some() {
                break;
            }
            if schedule.schedules_lr() {
                opt.set_lr(schedule.lr);
            }
            let keep = |e| crate::interrupt::keep(e, |_| interrupted(cfg, &at));
            let log = self
                .measure(opt, epoch, schedule.schedules_lr().then_some(schedule.lr))
                .map_err(keep)?;
            // Only when val_loss improves; every epoch without validation.
            let improved = match (log.val_loss, at.best) {
                (Some(v), Some((_, b))) => v < b,
                _ => true,
            };
            if improved {
                at.best = Some((epoch, log.val_loss.unwrap_or(log.loss)));
                self.write_best(epoch)?;
            }
            let (line, val_loss) = (format_epoch(&log, cfg.epochs, improved), log.val_loss);
            at.history.push(log);
            self.write_last(opt, epoch, &at)?;
            let lr = schedule.lr;
            let stop = schedule.end_epoch(epoch, val_loss);
            if !cfg.quiet {
                crate::say!("{line}");
                if schedule.lr != lr {
                    crate::say!(
                        "reduce lr on plateau: learning rate {lr:e} -> {:e}",
                        schedule.lr
                    );
                }
                if stop {
                    crate::say!("early stopping: no val_loss improvement for the last epochs");
                }
            }
        }
        Ok(TrainReport {
            best_epoch: at.best.map(|b| b.0),
            best_val_loss: at.best.map(|b| b.1),
            history: at.history,
            best_path: cfg.out_dir.join(BEST),
            stopped_after: schedule.stopped_after,
        })
    }

    /// One epoch's training and validation passes, as its log; an error when the
    /// validation loss is not finite.
    fn measure(&self, opt: &mut KerasAdam, epoch: usize, lr: Option<f64>) -> Result<EpochLog> {
        let (cfg, n_train) = (self.cfg, self.n_train);
        let t0 = Instant::now();
        let avg = self.pass.train_epoch(opt, n_train, cfg, epoch)?;
        let val = match n_train < self.n {
            true => Some(self.pass.validate(n_train, self.n, epoch)?),
            false => None,
        };
        let log = EpochLog {
            epoch,
            loss: avg.loss(),
            dice_coef: avg.dice(),
            val_loss: val.as_ref().map(Averages::loss),
            val_dice_coef: val.as_ref().map(Averages::dice),
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        if let Some(v) = log.val_loss.filter(|v| !v.is_finite()) {
            bail!(
                "the validation loss became {v} at epoch {}; stopped. The best checkpoint {} is \
                 as it was",
                epoch + 1,
                cfg.out_dir.join(BEST).display()
            );
        }
        Ok(log)
    }

    /// `weights.h5`: the weights after `epoch` (0-based).
    fn write_best(&self, epoch: usize) -> Result<()> {
        let meta = Meta {
            epoch: Some(epoch as i64 + 1),
            ..self.meta.clone()
        };
        let path = self.cfg.out_dir.join(BEST);
        keras::write(
            &path,
            self.vs,
            self.network,
            &meta,
            keras::Format::Keras2Model,
        )
    }

    /// `history.csv`, then `last.h5` with Adam's state: a crash between them leaves a
    /// row too many, which a resume drops, never a row too few.
    fn write_last(&self, opt: &KerasAdam, epoch: usize, at: &Progress) -> Result<()> {
        let out = &self.cfg.out_dir;
        write_history(&out.join(HISTORY), &at.history)?;
        let meta = Meta {
            epoch: Some(epoch as i64 + 1),
            best_val_loss: at.best.map(|b| b.1),
            best_epoch: at.best.map(|b| b.0 as i64 + 1),
            ..self.meta.clone()
        };
        keras::write_checkpoint(&out.join(LAST), self.vs, self.network, &meta, &opt.state())
    }
}

/// What an interrupted run kept, and how to continue it.
fn interrupted(cfg: &TrainConfig, at: &Progress) -> String {
    match at.best {
        Some((e, _)) if !at.history.is_empty() => format!(
            "the best checkpoint {} (epoch {}) is intact. Run the same command with --resume \
             to continue from epoch {}",
            cfg.out_dir.join(BEST).display(),
            e + 1,
            at.history.len() + 1
        ),
        _ => format!(
            "no epoch finished; {} holds nothing new",
            cfg.out_dir.display()
        ),
    }
}
