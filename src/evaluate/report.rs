//! What `evaluate` prints: a table for people, or one JSON object with the competition
//! metric under `kaggle_dice` and Keras's under `dice_coef`.

use std::fmt;

use serde_json::json;

use super::Scores;
use crate::submission::MaskRule;

/// The scores of one evaluation and how they were made.
#[derive(Clone, Debug)]
pub struct Report {
    pub scores: Scores,
    /// Keras's val_dice_coef, for a checkpoint scored on its validation split.
    pub dice_coef: Option<f64>,
    pub rule: MaskRule,
    /// (threshold, min size, kaggle_dice) for every pair tried, when sweeping.
    pub sweep: Vec<(f64, usize, f64)>,
    /// The validation split scored, and whether it was the checkpoint's.
    pub split: Option<(f64, bool)>,
    /// (K, I 0-based) when the checkpoint's fold by group was scored instead.
    pub fold: Option<(u64, u64)>,
}

/// The best (threshold, min size, score) of a sweep by the competition metric.
pub fn best_of(sweep: &[(f64, usize, f64)]) -> Option<(f64, usize, f64)> {
    sweep.iter().copied().fold(None, |best, s| match best {
        Some(b) if b.2 >= s.2 => Some(b),
        _ => Some(s),
    })
}

impl Report {
    /// One JSON object.
    pub fn to_json(&self) -> String {
        let (scores, rule) = (&self.scores, &self.rule);
        let mut v = json!({
            "images": scores.images,
            "kaggle_dice": scores.kaggle_dice,
            "dice_coef": self.dice_coef,
            "threshold": rule.threshold,
            "min_size": rule.min_size,
            "keep_above_zero": rule.keep_above_zero,
            "detection": {
                "precision": scores.precision(),
                "recall": scores.recall(),
                "tp": scores.tp, "fp": scores.fp, "fn": scores.fn_, "tn": scores.tn,
            },
        });
        if let Some((k, i)) = self.fold {
            v["fold"] = json!({"fold": i + 1, "folds": k});
        } else if let Some((split, _)) = self.split {
            v["validation_split"] = json!(split);
        }
        if let Some((t, m, k)) = best_of(&self.sweep) {
            let grid: Vec<_> = self
                .sweep
                .iter()
                .map(|(t, m, k)| json!({"threshold": t, "min_size": m, "kaggle_dice": k}))
                .collect();
            v["sweep"] =
                json!({"best": {"threshold": t, "min_size": m, "kaggle_dice": k}, "grid": grid});
        }
        v.to_string()
    }
}

/// A table for people.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scores, rule) = (&self.scores, &self.rule);
        writeln!(f, "images: {}", scores.images)?;
        if let Some((k, i)) = self.fold {
            writeln!(
                f,
                "validation: fold {} of {k} by group (the checkpoint's)",
                i + 1
            )?;
        } else if let Some((split, from_checkpoint)) = self.split {
            writeln!(
                f,
                "validation split: the last {}% of the samples{}",
                split * 100.0,
                if from_checkpoint {
                    " (the checkpoint's)"
                } else {
                    ""
                }
            )?;
        }
        if let Some(d) = self.dice_coef {
            writeln!(f, "dice_coef (Keras, batch Dice at 96 x 96):  {d:.4}")?;
        }
        writeln!(
            f,
            "kaggle_dice (mean per image, full size):   {:.4}",
            scores.kaggle_dice
        )?;
        writeln!(
            f,
            "nerve present: precision {:.3}, recall {:.3} (tp {}, fp {}, fn {}, tn {})",
            scores.precision(),
            scores.recall(),
            scores.tp,
            scores.fp,
            scores.fn_,
            scores.tn
        )?;
        write!(
            f,
            "rule: threshold {}, min size {}{}",
            rule.threshold,
            rule.min_size,
            if rule.keep_above_zero {
                ", keep above zero"
            } else {
                ""
            }
        )?;
        if let Some((t, m, k)) = best_of(&self.sweep) {
            write!(
                f,
                "\nsweep: best kaggle_dice {k:.4} at --threshold {t} --min-size {m}"
            )?;
        }
        Ok(())
    }
}
