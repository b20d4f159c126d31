//! Scores on labelled data, side by side: the Keras batch `dice_coef` that training
//! prints, and the competition metric (mean over images of Dice at full size on binary
//! masks, 1 when both are empty), plus how well "nerve present" is detected. Scores a
//! checkpoint on the validation split, or a submission file against ground-truth masks
//! (`kaggle.rs`).

mod frames;
mod kaggle;
mod oof;
mod report;
pub mod sweep;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use tch::{Device, TchError, Tensor};

use self::frames::{count, frames_and_masks};
pub use self::kaggle::{rle_decode, score_submission};
pub use self::oof::evaluate_oof;
pub use self::report::Report;
pub use self::sweep::SweepPoint;
use crate::batches::Batches;
use crate::data::npy::NpyReader;
use crate::dataset;
use crate::frame::FrameSize;
use crate::libtorch::{explain, Advice};
use crate::predict::ensemble::{Ensemble, EnsembleConfig};
use crate::predict::{Predictions, StatsSource};
use crate::submission::{enlarger, MaskRule};

/// The validation split when neither the command nor the checkpoint gives one: Keras's
/// `validation_split=0.2` of the original.
pub const DEFAULT_SPLIT: f64 = 0.2;

/// Dice of two binary masks, 1 when both are empty (the competition's rule).
pub fn dice(pred: &[u8], truth: &[u8]) -> f64 {
    let (mut both, mut p, mut t) = (0usize, 0usize, 0usize);
    for (&a, &b) in pred.iter().zip(truth) {
        let (a, b) = (a != 0, b != 0);
        both += (a && b) as usize;
        p += a as usize;
        t += b as usize;
    }
    if p + t == 0 {
        1.0
    } else {
        2.0 * both as f64 / (p + t) as f64
    }
}

/// Competition score and detection counts over a set of images.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores {
    pub images: usize,
    pub kaggle_dice: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
}

impl Scores {
    /// From (pixel counts of prediction, of truth, Dice) per image.
    fn from_images(per_image: &[(usize, usize, f64)]) -> Scores {
        let mut s = Scores {
            images: per_image.len(),
            ..Default::default()
        };
        for &(p, t, d) in per_image {
            s.kaggle_dice += d;
            match (p > 0, t > 0) {
                (true, true) => s.tp += 1,
                (true, false) => s.fp += 1,
                (false, true) => s.fn_ += 1,
                (false, false) => s.tn += 1,
            }
        }
        s.kaggle_dice /= s.images.max(1) as f64;
        s
    }
    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    /// Share of frames whose presence was judged right.
    pub(crate) fn accuracy(&self) -> f64 {
        (self.tp + self.tn) as f64 / self.images.max(1) as f64
    }
    /// The score of the frames without a nerve: each is 1 when predicted empty, else 0.
    pub(crate) fn empty_score(&self) -> f64 {
        self.tn as f64 / (self.tn + self.fp).max(1) as f64
    }
    /// The mean Dice of the frames with a nerve (the rest of the total).
    pub(crate) fn nerve_score(&self) -> f64 {
        let total = self.kaggle_dice * self.images as f64;
        (total - self.tn as f64).max(0.0) / (self.tp + self.fn_).max(1) as f64
    }
}

/// What `evaluate` on the validation split reads.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    /// The checkpoints and how they run.
    pub ensemble: EnsembleConfig,
    pub images: PathBuf,
    pub masks: PathBuf,
    /// The share held out for validation; `None` takes the checkpoint's (else 0.2).
    pub validation_split: Option<f64>,
    /// The groups of a checkpoint trained on a fold (default: beside the images).
    pub groups: Option<PathBuf>,
    pub rule: MaskRule,
    pub stats: StatsSource,
    pub sweep: bool,
    /// The arrays are the ones the checkpoints trained on (`cv` knows): their
    /// fingerprint is not checked again.
    pub trained_on: bool,
    pub quiet: bool,
}

/// The tutorial's: `weights` on the last 0.2 of `imgs_train.npy`, the statistics the
/// checkpoint stored, the original's mask rule.
impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            ensemble: EnsembleConfig::default(),
            images: PathBuf::from(crate::data::IMGS_TRAIN),
            masks: PathBuf::from(crate::data::IMGS_MASK_TRAIN),
            validation_split: None,
            groups: None,
            rule: MaskRule::default(),
            stats: StatsSource::Stored,
            sweep: false,
            trained_on: false,
            quiet: false,
        }
    }
}

/// The outcome of evaluating a checkpoint.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub scores: Scores,
    /// The validation split scored, and whether it came from the checkpoint.
    pub validation_split: f64,
    pub split_from_checkpoint: bool,
    /// (K, I 0-based): the checkpoint's fold was scored instead of a last share.
    pub fold: Option<(u64, u64)>,
    /// Keras's val_dice_coef: the plain mean of per-batch Dice at the maps' size.
    pub dice_coef: f64,
    /// Every rule tried, when sweeping.
    pub sweep: Vec<SweepPoint>,
    /// The frames scored (indices into the arrays), and their predictions in that order
    /// (maps at the network's input size, and the heads' probabilities with heads).
    pub frames: Vec<usize>,
    pub predictions: Predictions,
    /// Out-of-fold probabilities (`--oof`) were scored, every frame, not a checkpoint.
    pub oof: bool,
    /// (samples the checkpoint trained on, frames of --images) when they differ: the
    /// arrays are other data, so every frame was scored.
    pub other_data: Option<(u64, u64)>,
}

/// The group of every frame (from the groups file beside the images) and whether it
/// holds a nerve as a network of `input` sees it: what a checkpoint of an older
/// nerveseg, which did not store its split, makes its fold from again.
fn groups_and_nerve(cfg: &EvalConfig, input: FrameSize) -> Result<(Vec<String>, Vec<bool>)> {
    let mut masks = NpyReader::open(&cfg.masks)?;
    let small = dataset::preprocess_frames(&mut masks, "masks", input, cfg.quiet)?;
    let nerve = crate::split::nerve_present(&small, input.pixels());
    let groups_file = crate::split::groups_path(&cfg.images, cfg.groups.as_deref());
    Ok((crate::split::read_groups(&groups_file, nerve.len())?, nerve))
}

/// Evaluates a checkpoint on the validation split of the prepared training arrays.
pub fn evaluate(cfg: &EvalConfig) -> Result<Evaluation> {
    let models = Ensemble::load(&cfg.ensemble, Some(&cfg.stats), cfg.quiet)?;
    crate::presence::check_head(cfg.rule.presence, models.headless())?;
    let run = models.first().meta.run.clone();
    // Arrays that are not the training data (another count, or the same count with
    // another fingerprint: a test set) are scored whole unless a share is asked for.
    let frames_given = count(&cfg.images)?;
    let masks_given = count(&cfg.masks)?;
    if masks_given != frames_given {
        bail!(
            "{} holds {frames_given} frames but {} holds {masks_given} masks",
            cfg.images.display(),
            cfg.masks.display(),
        );
    }
    let other_data = match (&run, cfg.validation_split) {
        (Some(r), None) if r.samples != frames_given => Some((r.samples, frames_given)),
        (Some(_), None) if cfg.trained_on => None,
        (Some(r), None) => {
            let seen = dataset::load_training(&cfg.images, &cfg.masks, models.map_size(), true)?;
            (seen.fingerprint != r.fingerprint).then_some((r.samples, frames_given))
        }
        _ => None,
    };
    let stored = match other_data {
        Some(_) => Some(1.0),
        None => run.as_ref().map(|r| r.validation_split),
    };
    let split = cfg.validation_split.or(stored).unwrap_or(DEFAULT_SPLIT);
    if !(split > 0.0 && split <= 1.0) {
        bail!("--validation-split must be in (0, 1] to have images to score, got {split}");
    }
    // The checkpoint's own split (a fold, or its last share) on its training data,
    // unless a share is asked for.
    let n = frames_given as usize;
    let (scored, fold) = match (&run, cfg.validation_split, other_data) {
        (Some(r), None, None) => {
            let input = models.map_size();
            let of = || groups_and_nerve(cfg, input);
            let made = crate::split::Split::of_run(r, n, Box::new(of))
                .with_context(|| format!("the split of {}", cfg.ensemble.weights[0].display()))?;
            (made.validation, r.folds)
        }
        _ => (crate::split::Split::last_share(n, split).validation, None),
    };
    let (frames, truth, n, size) = frames_and_masks(cfg, &scored)?;
    let preds = models.frames(
        |to| Ok(dataset::resize_frames(&frames, size, to)),
        cfg.quiet,
    )?;
    let (scores, dice_coef, sweep) = score(cfg, &preds, &truth, size, n)?;
    Ok(Evaluation {
        scores,
        validation_split: split,
        split_from_checkpoint: cfg.validation_split.is_none()
            && stored.is_some()
            && other_data.is_none(),
        fold,
        frames: scored,
        predictions: preds,
        dice_coef,
        sweep,
        oof: false,
        other_data,
    })
}

/// The scores of the predictions `preds` against the full-size masks `truth` (`n`
/// frames of `size`): per image at full size under the rule (and the sweep), and Keras's
/// batch dice_coef at the maps' size.
fn score(
    cfg: &EvalConfig,
    preds: &Predictions,
    truth: &[u8],
    size: FrameSize,
    n: usize,
) -> Result<(Scores, f64, Vec<SweepPoint>)> {
    let host = |what: &str, e: TchError| explain(e, what, Device::Cpu, Advice::None);
    let map = preds.size;
    let y = dataset::unit_masks(&dataset::resize_frames(truth, size, map), map)
        .map_err(|e| host("scaling the masks", e))?;
    let p = dataset::to_nchw(&preds.maps, map).map_err(|e| host("reading the predictions", e))?;
    let dice_coef = batch_dice_coef(&y, &p, n, cfg.ensemble.batch_size)
        .map_err(|e| host("computing dice_coef", e))?;

    let up = enlarger(map, size);
    let pixels = size.pixels();
    let per_frame = |rule: &MaskRule| -> Vec<(usize, usize, f64)> {
        (0..n)
            .into_par_iter()
            .map(|i| {
                let pred = rule
                    .full_mask(preds.map(i), preds.presence_of(i), &up)
                    .unwrap_or_else(|| vec![0u8; pixels]);
                let t = &truth[i * pixels..(i + 1) * pixels];
                let count = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
                (count(&pred), count(t), dice(&pred, t))
            })
            .collect()
    };
    let scores = Scores::from_images(&per_frame(&cfg.rule));
    let sweep = if cfg.sweep {
        sweep::search(&cfg.rule, preds, per_frame)
    } else {
        Vec::new()
    };
    Ok((scores, dice_coef, sweep))
}

impl Evaluation {
    /// What to print, with the `rule` the scores used.
    pub fn report(&self, rule: MaskRule) -> Report {
        Report {
            scores: self.scores,
            dice_coef: Some(self.dice_coef),
            rule,
            sweep: self.sweep.clone(),
            split: (!self.oof).then_some((self.validation_split, self.split_from_checkpoint)),
            fold: self.fold,
            other_data: self.other_data,
        }
    }
}

/// Keras's val_dice_coef: the batch Dice of each batch of `batch`, plain mean over
/// batches.
fn batch_dice_coef(y: &Tensor, p: &Tensor, n: usize, batch: usize) -> Result<f64, TchError> {
    let batches = Batches::range([y, p], 0..n, batch, Device::Cpu);
    let mut batch_dice = Vec::with_capacity(batches.len());
    for pair in batches.iter() {
        let [y, p] = pair?;
        batch_dice.push(crate::loss::dice_coef(&y, &p)?.f_double_value(&[])?);
    }
    Ok(batch_dice.iter().sum::<f64>() / batch_dice.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_is_one_when_both_empty() {
        assert_eq!(dice(&[0, 0, 0], &[0, 0, 0]), 1.0);
        assert_eq!(dice(&[1, 0, 0], &[0, 0, 0]), 0.0);
        assert_eq!(dice(&[1, 1, 0], &[0, 1, 1]), 0.5);
    }

    #[test]
    fn detection_counts() {
        let s = Scores::from_images(&[(5, 5, 0.8), (5, 0, 0.0), (0, 5, 0.0), (0, 0, 1.0)]);
        assert_eq!((s.tp, s.fp, s.fn_, s.tn), (1, 1, 1, 1));
        assert!((s.kaggle_dice - 0.45).abs() < 1e-12);
        assert_eq!(s.precision(), 0.5);
        assert_eq!(s.accuracy(), 0.5);
        assert_eq!(s.empty_score(), 0.5);
        assert!((s.nerve_score() - 0.4).abs() < 1e-12);
    }
}
