//! What `evaluate` prints: a table for people, or one JSON object with the competition
//! metric under `kaggle_dice` and Keras's under `dice_coef`.

use std::fmt;

use serde_json::json;

use super::sweep::{best_of, SweepPoint};
use super::Scores;
use crate::submission::MaskRule;

/// The scores of one evaluation and how they were made.
#[derive(Clone, Debug)]
pub struct Report {
    pub scores: Scores,
    /// Keras's val_dice_coef, for a checkpoint scored on its validation split.
    pub dice_coef: Option<f64>,
    pub rule: MaskRule,
    /// Every rule tried, when sweeping.
    pub sweep: Vec<SweepPoint>,
    /// The validation split scored, and whether it was the checkpoint's.
    pub split: Option<(f64, bool)>,
    /// (K, I 0-based) when the checkpoint's fold by group was scored instead.
    pub fold: Option<(u64, u64)>,
    /// (samples trained on, frames given) when every frame was scored because the
    /// arrays are not the checkpoint's training data.
    pub other_data: Option<(u64, u64)>,
}

fn gate_json(p: &SweepPoint) -> serde_json::Value {
    match p.presence {
        Some(g) => json!({"source": g.source.name(), "threshold": g.threshold}),
        None => serde_json::Value::Null,
    }
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
        if let Some((trained, given)) = self.other_data {
            v["other_data"] = json!({"trained_samples": trained, "frames": given});
        }
        v["presence"] = match rule.presence {
            Some(g) => json!({"source": g.source.name(), "threshold": g.threshold}),
            None => serde_json::Value::Null,
        };
        v["by_truth"] = json!({
            "empty": {"images": scores.tn + scores.fp, "kaggle_dice": scores.empty_score()},
            "nerve": {"images": scores.tp + scores.fn_, "kaggle_dice": scores.nerve_score()},
        });
        v["detection"]["accuracy"] = json!(scores.accuracy());
        if let Some(b) = best_of(&self.sweep) {
            let point = |p: &SweepPoint| {
                json!({"threshold": p.threshold, "min_size": p.min_size,
                       "presence": gate_json(p), "kaggle_dice": p.kaggle_dice})
            };
            let grid: Vec<_> = self.sweep.iter().map(point).collect();
            let mut best = point(&b);
            best["flags"] = json!(b.flags());
            v["sweep"] = json!({"best": best, "grid": grid});
        }
        v.to_string()
    }
}

/// A table for people.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scores, rule) = (&self.scores, &self.rule);
        writeln!(f, "images: {}", scores.images)?;
        self.write_scored(f)?;
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
            "nerve present: precision {:.3}, recall {:.3}, accuracy {:.3} (tp {}, fp {}, fn {}, tn {})",
            scores.precision(),
            scores.recall(),
            scores.accuracy(),
            scores.tp,
            scores.fp,
            scores.fn_,
            scores.tn
        )?;
        writeln!(
            f,
            "by truth: {} empty frames score {:.4}, {} frames with a nerve {:.4}",
            scores.tn + scores.fp,
            scores.empty_score(),
            scores.tp + scores.fn_,
            scores.nerve_score()
        )?;
        write!(
            f,
            "rule: threshold {}, min size {}{}{}",
            rule.threshold,
            rule.min_size,
            if rule.keep_above_zero {
                ", keep above zero"
            } else {
                ""
            },
            rule.presence
                .map_or_else(String::new, |g| format!(", presence gate {g}"))
        )?;
        if let Some(b) = best_of(&self.sweep) {
            write!(
                f,
                "\nsweep: best kaggle_dice {:.4} with {}",
                b.kaggle_dice,
                b.flags()
            )?;
        }
        Ok(())
    }
}

impl Report {
    /// Which frames were scored: the checkpoint's fold, every frame of other data, or a
    /// validation split; nothing when every frame was scored as asked.
    fn write_scored(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((k, i)) = self.fold {
            writeln!(
                f,
                "validation: fold {} of {k} by group (the checkpoint's)",
                i + 1
            )?;
        } else if let Some((trained, given)) = self.other_data {
            let why = if trained == given {
                format!("these arrays hold {given} samples, but not those it trained on")
            } else {
                format!("it trained on {trained} samples and these arrays hold {given}")
            };
            writeln!(
                f,
                "scored: every frame, since {why}: other data (--validation-split S scores \
                 the last share instead)"
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
        Ok(())
    }
}
