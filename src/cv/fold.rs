//! One fold of a cross-validation: its training settings (the template's, into
//! `OUT/fold-I`), whether it finished before, the check that a fold already there is this
//! cross-validation's, and its training. `cv --folds K --fold I` runs exactly this, so
//! the folds of one cross-validation can be trained as separate jobs (a cluster's job
//! array) into one OUT: each touches only its own `OUT/fold-I/`, which `train` locks.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use tch::Device;

use super::{fold_dir, CvConfig};
use crate::train::{self, Folds, TrainConfig, TrainReport};

/// `OUT/fold-I/finished`: the fold's training ended (it holds `epochs N`). Written after
/// the last checkpoint, so a fold that has it is complete.
const FINISHED: &str = "finished";

/// Whether fold `fold` (from 0) of the cross-validation in `out` finished.
pub fn finished(out: &Path, fold: usize) -> bool {
    fold_dir(out, fold).join(FINISHED).exists()
}

/// Whether fold `fold` finished before and is kept (not with `--overwrite`).
fn kept(cfg: &CvConfig, fold: usize) -> bool {
    !cfg.train.overwrite && finished(&cfg.train.out_dir, fold)
}

/// The folds (from 0) that a run of `cfg` would train: all but the kept ones.
pub fn to_train(cfg: &CvConfig) -> Vec<usize> {
    (0..cfg.folds).filter(|&f| !kept(cfg, f)).collect()
}

/// The training of fold `fold` (from 0): the template's, into `OUT/fold-I`.
fn fold_config(cfg: &CvConfig, fold: usize) -> TrainConfig {
    let dir = fold_dir(&cfg.train.out_dir, fold);
    TrainConfig {
        resume: !cfg.train.overwrite && dir.join(train::LAST).exists(),
        out_dir: dir,
        folds: Some(Folds {
            folds: cfg.folds,
            fold,
            groups: cfg.groups.clone(),
        }),
        ..cfg.train.clone()
    }
}

/// Refuses an OUT that holds another cross-validation: a fold, finished or not, whose
/// checkpoint records other settings, or that finished after other epochs. Without
/// this, `cv` would keep another run's finished folds beside this one's.
pub fn check_same_cv(cfg: &CvConfig) -> Result<()> {
    (0..cfg.folds).try_for_each(|fold| check_fold(cfg, fold))
}

/// [`check_same_cv`] for fold `fold` (from 0) alone: a single-fold job looks at its own
/// folder only, as its siblings may be writing theirs.
fn check_fold(cfg: &CvConfig, fold: usize) -> Result<()> {
    if cfg.train.overwrite {
        return Ok(());
    }
    let t = fold_config(cfg, fold);
    let last = t.out_dir.join(train::LAST);
    if !last.exists() {
        return Ok(());
    }
    let file = crate::keras::read(&last)?;
    let mut diff = match &file.meta.run {
        Some(saved) => train::setting_differences(saved, &t),
        None => vec!["a run that recorded no settings".to_owned()],
    };
    let marker = std::fs::read_to_string(t.out_dir.join(FINISHED)).unwrap_or_default();
    let done: Option<usize> = marker
        .trim()
        .strip_prefix("epochs ")
        .and_then(|e| e.parse().ok());
    if let Some(done) = done.filter(|&d| d != t.epochs) {
        diff.push(format!("--epochs {} (the fold finished {done})", t.epochs));
    }
    if !diff.is_empty() {
        anyhow::bail!(
            "{} holds another cross-validation: fold {} differs: {}. Pass --overwrite to \
             train every fold again, or choose another --out-dir",
            cfg.train.out_dir.display(),
            fold + 1,
            diff.join("; ")
        );
    }
    Ok(())
}

/// What [`train_fold`] did with one fold.
#[derive(Clone, Debug)]
pub struct FoldRun {
    /// From 0.
    pub fold: usize,
    pub folds: usize,
    /// `OUT/fold-I`.
    pub dir: PathBuf,
    pub outcome: FoldOutcome,
}

#[derive(Clone, Debug)]
pub enum FoldOutcome {
    /// It had finished before: nothing was trained.
    Kept,
    /// Trained to the end here; `resumed` when an interrupted run went on.
    Trained { report: TrainReport, resumed: bool },
}

impl fmt::Display for FoldRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fold {} of {}", self.fold + 1, self.folds)?;
        match &self.outcome {
            FoldOutcome::Kept => write!(f, ": finished before, kept in {}", self.dir.display()),
            FoldOutcome::Trained { report, resumed } => {
                let how = if *resumed { " (resumed)" } else { "" };
                write!(f, "{how}: {report}")
            }
        }
    }
}

/// Trains fold `fold` (from 0) on `device` unless it finished before; resumes it when
/// it was interrupted. A fold checkpoint already there must be this cross-validation's.
pub fn train_fold(cfg: &CvConfig, fold: usize, device: Device) -> Result<FoldRun> {
    check_fold(cfg, fold)?;
    train_checked(cfg, fold, device)
}

/// [`train_fold`] for a fold [`check_same_cv`] has passed.
pub(super) fn train_checked(cfg: &CvConfig, fold: usize, device: Device) -> Result<FoldRun> {
    let t = TrainConfig {
        device,
        ..fold_config(cfg, fold)
    };
    let run = |outcome| FoldRun {
        fold,
        folds: cfg.folds,
        dir: t.out_dir.clone(),
        outcome,
    };
    if kept(cfg, fold) {
        return Ok(run(FoldOutcome::Kept));
    }
    // A marker left by an earlier run (this one has --overwrite) would keep this fold
    // as finished if this training were interrupted.
    let marker = t.out_dir.join(FINISHED);
    if marker.exists() {
        std::fs::remove_file(&marker)
            .map_err(|e| anyhow!("removing the earlier {}: {e}", marker.display()))?;
    }
    let report = crate::interrupt::keeping(train::train(&t), |_| {
        format!(
            "every finished fold is kept, and fold {} goes on from its last finished epoch \
             in {}: run the same command again",
            fold + 1,
            t.out_dir.display()
        )
    })?;
    crate::atomic::write_with(&marker, |w| {
        writeln!(w, "epochs {}", cfg.train.epochs)?;
        Ok(())
    })?;
    Ok(run(FoldOutcome::Trained {
        report,
        resumed: t.resume,
    }))
}
