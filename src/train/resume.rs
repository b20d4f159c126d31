//! What `--resume` may continue: only the run that wrote `last.h5`. The checkpoint
//! records what defines a run (validation split, seed, shuffle, batch size, the number
//! and a fingerprint of the samples); a command that differs in any of them would train
//! a different run from the middle of this one (another split mixes validation frames
//! into training), so it is refused, saying which.

use anyhow::{bail, Result};

use super::RunOptions;
use crate::keras::{KerasFile, RunRecord};

/// The differences between the run a checkpoint records and the one asked for, as a
/// user would read them.
fn differences(saved: &RunRecord, asked: &RunRecord) -> Vec<String> {
    let mut out = Vec::new();
    if saved.validation_split != asked.validation_split {
        out.push(format!(
            "--validation-split {} (the run used {})",
            asked.validation_split, saved.validation_split
        ));
    }
    if saved.seed != asked.seed {
        out.push(format!(
            "--seed {} (the run used {})",
            asked.seed, saved.seed
        ));
    }
    if saved.shuffle != asked.shuffle {
        let say = |s: bool| if s { "shuffled" } else { "--no-shuffle" };
        out.push(format!(
            "{} (the run was {})",
            say(asked.shuffle),
            say(saved.shuffle)
        ));
    }
    if saved.batch_size != asked.batch_size {
        out.push(format!(
            "--batch-size {} (the run used {})",
            asked.batch_size, saved.batch_size
        ));
    }
    if saved.samples != asked.samples || saved.fingerprint != asked.fingerprint {
        out.push(format!(
            "other training samples ({} with fingerprint {}; the run had {} with {})",
            asked.samples, asked.fingerprint, saved.samples, saved.fingerprint
        ));
    }
    if saved.folds != asked.folds {
        let say = |f: Option<(u64, u64)>| match f {
            Some((k, i)) => format!("--folds {k} --fold {}", i + 1),
            None => "the last-share split".to_owned(),
        };
        out.push(format!(
            "{} (the run used {})",
            say(asked.folds),
            say(saved.folds)
        ));
    }
    if saved.options != asked.options {
        let say = |o: &RunOptions| match o.to_string() {
            s if s.is_empty() => "none of augmentation, callbacks or a presence head".to_owned(),
            s => s,
        };
        out.push(format!(
            "{} (the run used {})",
            say(&asked.options),
            say(&saved.options)
        ));
    }
    out
}

/// The settings in which `cfg` differs from the run `saved` records, the data left
/// aside (checked only once it is loaded): for `cv`, which keeps the folds it finished.
pub fn setting_differences(saved: &RunRecord, cfg: &super::TrainConfig) -> Vec<String> {
    let asked = RunRecord {
        validation_split: cfg.validation_split,
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        batch_size: cfg.batch_size as u64,
        samples: saved.samples,
        fingerprint: saved.fingerprint.clone(),
        options: RunOptions::of(cfg),
        folds: cfg.folds.as_ref().map(|f| (f.folds as u64, f.fold as u64)),
        lr: saved.lr,
        validation: saved.validation.clone(),
    };
    differences(saved, &asked)
}

/// Refuses to resume `last` (the run's last checkpoint) with a run that differs.
pub(crate) fn check_same_run(last: &KerasFile, asked: &RunRecord) -> Result<()> {
    let path = last.path.display();
    let Some(saved) = &last.meta.run else {
        bail!(
            "{path} does not record its training run (written by an older nerveseg?), so a \
             resume cannot be checked; start a new run without --resume"
        );
    };
    let diff = differences(saved, asked);
    if !diff.is_empty() {
        bail!(
            "{path}: --resume continues the same run only, and this command differs: {}. \
             Resume with the run's settings, or start a new run in another --out-dir",
            diff.join("; ")
        );
    }
    Ok(())
}

/// The epochs the checkpoint has finished (its stored epoch, 1-based).
pub fn epoch(last: &KerasFile) -> Result<usize> {
    match last.meta.epoch {
        Some(e) if e >= 1 => Ok(e as usize),
        other => bail!(
            "{}: the stored epoch is {}; cannot resume from it",
            last.path.display(),
            other.map_or_else(|| "missing".to_owned(), |e| e.to_string())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunRecord {
        RunRecord {
            validation_split: 0.2,
            seed: 3,
            shuffle: true,
            batch_size: 4,
            samples: 12,
            fingerprint: "ab".into(),
            options: RunOptions::default(),
            folds: None,
            lr: Some(1e-5),
            validation: Some(vec![10, 11]),
        }
    }

    #[test]
    fn every_difference_is_named() {
        assert!(differences(&run(), &run()).is_empty());
        let other = RunRecord {
            validation_split: 0.1,
            seed: 4,
            shuffle: false,
            batch_size: 8,
            samples: 12,
            fingerprint: "cd".into(),
            options: RunOptions::parse("--early-stopping 3").unwrap(),
            folds: Some((5, 1)),
            lr: Some(1e-4),
            validation: None,
        };
        let d = differences(&run(), &other);
        assert_eq!(
            d,
            [
                "--validation-split 0.1 (the run used 0.2)",
                "--seed 4 (the run used 3)",
                "--no-shuffle (the run was shuffled)",
                "--batch-size 8 (the run used 4)",
                "other training samples (12 with fingerprint cd; the run had 12 with ab)",
                "--folds 5 --fold 2 (the run used the last-share split)",
                "--early-stopping 3 --stop-min-delta 0 (the run used none of augmentation, callbacks or a presence head)",
            ]
        );
    }
}
