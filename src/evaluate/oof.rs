//! `evaluate --oof cv/oof.npy`: the out-of-fold probabilities of a `cv` run scored
//! against every training mask, so `--sweep` picks the threshold and minimum size on
//! all the frames, each predicted by the model that never saw it.

use std::path::Path;

use anyhow::{bail, Result};

use super::{score, select_frames, EvalConfig, Evaluation};
use crate::data::npy::{Dtype, NpyReader};
use crate::frame::FrameSize;

/// Scores `oof` (float32 (N, h, w, 1)) against `cfg.masks` (uint8 (N, H, W)).
pub fn evaluate_oof(cfg: &EvalConfig, oof: &Path) -> Result<Evaluation> {
    let r = NpyReader::open(oof)?;
    let map = FrameSize::of_maps(&r)?;
    let maps = r.shape[0];
    let probs = r.read_all::<f32>()?;
    let ((truth, n, size), frames) = select_frames(&cfg.masks, |n| (0..n).collect())?;
    if n as u64 != maps || n == 0 {
        bail!(
            "{} holds {maps} probability maps but {} holds {n} masks",
            oof.display(),
            cfg.masks.display()
        );
    }
    // The heads' out-of-fold probabilities, which cv writes beside when its folds have
    // presence heads.
    let heads_path = crate::presence::scores_path(oof);
    let heads = if heads_path.exists() {
        let r = NpyReader::open(&heads_path)?;
        r.expect(Dtype::F32, &[Some(maps), Some(1)])?;
        Some(r.read_all::<f32>()?)
    } else {
        None
    };
    let (scores, dice_coef, sweep) = score(cfg, (&probs, map), heads.as_deref(), &truth, size, n)?;
    Ok(Evaluation {
        scores,
        validation_split: 1.0,
        split_from_checkpoint: false,
        fold: None,
        dice_coef,
        sweep,
        frames,
        probabilities: probs,
        map,
        heads,
        oof: true,
        other_data: None,
    })
}
