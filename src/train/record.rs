//! What a run records of itself, in every checkpoint: the split it made (stored, so
//! nothing makes it again) and the settings that define it (`keras::RunRecord`), which
//! `--resume` and `cv` compare.

use anyhow::{bail, Context, Result};

use super::callbacks::Callbacks;
use super::{RunOptions, TrainConfig, LAST};
use crate::dataset::Prepared;
use crate::keras::{KerasFile, RunRecord};
use crate::split::{Split, SplitRule};

/// What defines the run of `cfg` on `data` with `split`; refused when the split leaves
/// nothing to train on, or nothing to validate that a callback watches.
pub(super) fn run_record(cfg: &TrainConfig, data: &Prepared, split: &Split) -> Result<RunRecord> {
    let (n, n_train) = (data.samples, split.train.len());
    if n_train == 0 || (cfg.validation_split > 0.0 && n_train == n) {
        bail!(
            "{n} samples cannot be split with --validation-split {}",
            cfg.validation_split
        );
    }
    if cfg.callbacks != Callbacks::default() && n_train == n {
        bail!("--reduce-lr-on-plateau and --early-stopping watch val_loss: they need a --validation-split above 0");
    }
    Ok(RunRecord {
        validation_split: cfg.validation_split,
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        batch_size: cfg.batch_size as u64,
        samples: n as u64,
        fingerprint: data.fingerprint.clone(),
        options: RunOptions::of(cfg),
        folds: cfg.folds.as_ref().map(|f| (f.folds as u64, f.fold as u64)),
        lr: Some(cfg.adam.lr),
        validation: Some(split.validation.iter().map(|&i| i as u64).collect()),
    })
}

/// The run's split: the one `last.h5` stored, when resuming it with the same rule and
/// samples, else the one the command's rule makes of the training set. (A resume that
/// differs is refused later, naming the difference.)
pub(super) fn split_of(
    cfg: &TrainConfig,
    data: &Prepared,
    source: Option<&KerasFile>,
) -> Result<Split> {
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
        crate::say!(
            "fold {} of {folds}: {} frames train, {} validate",
            fold + 1,
            split.train.len(),
            split.validation.len(),
        );
    }
    Ok(split)
}
