//! `evaluate --oof cv/oof.npy`: the out-of-fold probabilities of a `cv` run scored
//! against every training mask, so `--sweep` picks the threshold and minimum size on
//! all the frames, each predicted by the model that never saw it.

use std::path::Path;

use anyhow::{bail, Result};

use super::frames::select_frames;
use super::{score, EvalConfig, Evaluation};
use crate::predict::Predictions;

/// Scores `oof` (float32 (N, h, w, 1)) against `cfg.masks` (uint8 (N, H, W)).
pub fn evaluate_oof(cfg: &EvalConfig, oof: &Path) -> Result<Evaluation> {
    // The heads' out-of-fold probabilities come too, when cv wrote them beside (its folds
    // had presence heads).
    let preds = Predictions::read(oof, true)?;
    let maps = preds.len();
    let ((truth, n, size), frames) = select_frames(&cfg.masks, |n| (0..n).collect())?;
    if n != maps || n == 0 {
        bail!(
            "{} holds {maps} probability maps but {} holds {n} masks",
            oof.display(),
            cfg.masks.display()
        );
    }
    let (scores, dice_coef, sweep) = score(cfg, &preds, &truth, size, n)?;
    Ok(Evaluation {
        scores,
        validation_split: 1.0,
        split_from_checkpoint: false,
        fold: None,
        dice_coef,
        sweep,
        frames,
        predictions: preds,
        oof: true,
        other_data: None,
    })
}
