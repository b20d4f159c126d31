//! Scores on labelled data, side by side: the Keras batch `dice_coef` that training
//! prints, and the competition metric (mean over images of Dice at full size on binary
//! masks, 1 when both are empty), plus how well "nerve present" is detected. Scores a
//! checkpoint on the validation split, or a submission file against ground-truth masks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde_json::json;
use tch::{Device, Tensor};

use crate::data::npy::{Dtype, NpyReader};
use crate::data::tiff::{self, HEIGHT, PIXELS, WIDTH};
use crate::dataset::{self, SIDE, SIDE_PIXELS};
use crate::predict::{self, StatsSource};
use crate::submission::{enlarger, MaskRule};

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
}

/// Decodes one Kaggle run-length string into a row-major 420 x 580 0/1 mask.
pub fn rle_decode(rle: &str) -> Result<Vec<u8>> {
    let nums: Vec<usize> = rle
        .split_whitespace()
        .map(|s| {
            s.parse::<usize>()
                .with_context(|| format!("{s:?} is not a pixel number"))
        })
        .collect::<Result<_>>()?;
    if nums.len() % 2 != 0 {
        bail!("an odd count of numbers in a run-length string");
    }
    let mut mask = vec![0u8; PIXELS];
    for pair in nums.chunks(2) {
        let (start, len) = (pair[0], pair[1]);
        if start == 0 || start - 1 + len > PIXELS {
            bail!("run {start} {len} lies outside the 420 x 580 frame");
        }
        for k in start - 1..start - 1 + len {
            let (col, row) = (k / HEIGHT, k % HEIGHT);
            mask[row * WIDTH + col] = 1;
        }
    }
    Ok(mask)
}

/// Scores a submission CSV against `truth_dir/{id}_mask.tif`, as Kaggle would.
pub fn score_submission(csv_path: &Path, truth_dir: &Path) -> Result<Scores> {
    if !truth_dir.is_dir() {
        bail!(
            "{} is not a folder: to score a submission, pass --masks with the folder of true \
             {{id}}_mask.tif files (e.g. raw/test_masks from `synth --test-masks`)",
            truth_dir.display()
        );
    }
    let mut r = csv::Reader::from_path(csv_path)
        .with_context(|| format!("opening {}", csv_path.display()))?;
    let headers = r
        .headers()
        .with_context(|| format!("reading {}", csv_path.display()))?
        .clone();
    if headers.iter().collect::<Vec<_>>() != ["img", "pixels"] {
        bail!(
            "{}: expected the header img,pixels, found {:?}",
            csv_path.display(),
            headers
        );
    }
    let mut rows = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("reading {}", csv_path.display()))?;
        let id = rec.get(0).unwrap_or("").to_owned();
        let rle = rec.get(1).unwrap_or("").to_owned();
        rows.push((line + 2, id, rle));
    }
    let ids: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    if let Some(id) = duplicate_ids(&ids) {
        bail!("{}: id {id} appears more than once", csv_path.display());
    }
    let per_image: Vec<(usize, usize, f64)> = rows
        .par_iter()
        .map(|(line, id, rle)| {
            let pred = rle_decode(rle)
                .with_context(|| format!("{} line {line} (id {id})", csv_path.display()))?;
            let mut truth = vec![0u8; PIXELS];
            tiff::read_mask(&truth_dir.join(format!("{id}_mask.tif")), &mut truth)?;
            let count = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
            Ok((count(&pred), count(&truth), dice(&pred, &truth)))
        })
        .collect::<Result<_>>()?;
    Ok(Scores::from_images(&per_image))
}

/// What `evaluate` on the validation split reads.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    pub weights: PathBuf,
    pub images: PathBuf,
    pub masks: PathBuf,
    pub validation_split: f64,
    pub rule: MaskRule,
    pub stats: StatsSource,
    pub batch_size: usize,
    pub device: Device,
    pub speed: crate::model::Speed,
    pub sweep: bool,
    pub quiet: bool,
}

/// The outcome of evaluating a checkpoint.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub scores: Scores,
    /// Keras's val_dice_coef: the plain mean of per-batch Dice at 96 x 96.
    pub dice_coef: f64,
    /// (threshold, min size, kaggle_dice) for every pair tried, when sweeping.
    pub sweep: Vec<(f64, usize, f64)>,
}

/// Reads the last `n - skip` frames of a uint8 (N, 420, 580) array.
fn tail_frames(path: &Path, split: f64) -> Result<(Vec<u8>, usize)> {
    let mut r = NpyReader::open(path)?;
    r.expect(Dtype::U8, &[None, Some(HEIGHT as u64), Some(WIDTH as u64)])?;
    let n = r.shape[0] as usize;
    let skip = dataset::train_count(n, split);
    let mut scratch = vec![0u8; PIXELS];
    for _ in 0..skip {
        r.read_rows(&mut scratch)?;
    }
    let mut out = vec![0u8; (n - skip) * PIXELS];
    r.read_rows(&mut out)?;
    Ok((out, n - skip))
}

/// Evaluates a checkpoint on the validation split of the prepared training arrays.
pub fn evaluate(cfg: &EvalConfig) -> Result<Evaluation> {
    if !(cfg.validation_split > 0.0 && cfg.validation_split <= 1.0) {
        bail!("--validation-split must be in (0, 1] to have images to score");
    }
    let loaded = predict::load(&cfg.weights, cfg.device, false, cfg.speed)?;
    let stats = cfg.stats.resolve(&loaded.file, cfg.quiet)?;
    let (frames, n) = tail_frames(&cfg.images, cfg.validation_split)?;
    let (truth, n_masks) = tail_frames(&cfg.masks, cfg.validation_split)?;
    if n != n_masks || n == 0 {
        bail!(
            "{} and {} give {n} and {n_masks} validation images",
            cfg.images.display(),
            cfg.masks.display()
        );
    }
    let x = dataset::standardise(&dataset::resize_frames(&frames), stats);
    let y = dataset::unit_masks(&dataset::resize_frames(&truth));
    let probs = predict::probabilities(&loaded.net, &x, cfg.batch_size, cfg.device, cfg.quiet)?;
    // Keras's val_dice_coef: batch Dice, plain mean over batches.
    let p = Tensor::from_slice(&probs).view([n as i64, 1, SIDE as i64, SIDE as i64]);
    let mut batch_dice = Vec::new();
    let mut s = 0;
    while s < n {
        let b = cfg.batch_size.min(n - s);
        let d = crate::loss::dice_coef(
            &y.narrow(0, s as i64, b as i64),
            &p.narrow(0, s as i64, b as i64),
        );
        batch_dice.push(d.double_value(&[]));
        s += b;
    }
    let dice_coef = batch_dice.iter().sum::<f64>() / batch_dice.len() as f64;

    let up = enlarger();
    let score_rule = |rule: &MaskRule| -> Vec<(usize, usize, f64)> {
        (0..n)
            .into_par_iter()
            .map(|i| {
                let pred = rule.full_mask(&probs[i * SIDE_PIXELS..(i + 1) * SIDE_PIXELS], &up);
                let t = &truth[i * PIXELS..(i + 1) * PIXELS];
                let count = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
                (count(&pred), count(t), dice(&pred, t))
            })
            .collect()
    };
    let scores = Scores::from_images(&score_rule(&cfg.rule));
    let mut sweep = Vec::new();
    if cfg.sweep {
        for threshold in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
            // One resize per threshold; the size rule only empties masks.
            let raw = score_rule(&MaskRule {
                threshold,
                min_size: 0,
                ..cfg.rule
            });
            for min_size in [0usize, 10, 500, 1000, 2000, 3000, 4000, 5000, 6000] {
                let kept: Vec<(usize, usize, f64)> = raw
                    .iter()
                    .map(|&(p, t, d)| {
                        if p > 0 && p < min_size {
                            (0, t, if t == 0 { 1.0 } else { 0.0 })
                        } else {
                            (p, t, d)
                        }
                    })
                    .collect();
                sweep.push((threshold, min_size, Scores::from_images(&kept).kaggle_dice));
            }
        }
    }
    Ok(Evaluation {
        scores,
        dice_coef,
        sweep,
    })
}

/// The best (threshold, min size, score) of a sweep by the competition metric.
pub fn best_of(sweep: &[(f64, usize, f64)]) -> Option<(f64, usize, f64)> {
    sweep.iter().copied().fold(None, |best, s| match best {
        Some(b) if b.2 >= s.2 => Some(b),
        _ => Some(s),
    })
}

/// One JSON object: the competition metric under `kaggle_dice`, Keras's under `dice_coef`.
pub fn to_json(
    scores: &Scores,
    dice_coef: Option<f64>,
    rule: &MaskRule,
    sweep: &[(f64, usize, f64)],
) -> String {
    let mut v = json!({
        "images": scores.images,
        "kaggle_dice": scores.kaggle_dice,
        "dice_coef": dice_coef,
        "threshold": rule.threshold,
        "min_size": rule.min_size,
        "keep_above_zero": rule.keep_above_zero,
        "detection": {
            "precision": scores.precision(),
            "recall": scores.recall(),
            "tp": scores.tp, "fp": scores.fp, "fn": scores.fn_, "tn": scores.tn,
        },
    });
    if let Some((t, m, k)) = best_of(sweep) {
        let grid: Vec<_> = sweep
            .iter()
            .map(|(t, m, k)| json!({"threshold": t, "min_size": m, "kaggle_dice": k}))
            .collect();
        v["sweep"] =
            json!({"best": {"threshold": t, "min_size": m, "kaggle_dice": k}, "grid": grid});
    }
    v.to_string()
}

/// A table for people.
pub fn to_table(
    scores: &Scores,
    dice_coef: Option<f64>,
    rule: &MaskRule,
    sweep: &[(f64, usize, f64)],
) -> String {
    let mut s = format!("images: {}\n", scores.images);
    if let Some(d) = dice_coef {
        s += &format!("dice_coef (Keras, batch Dice at 96 x 96):  {d:.4}\n");
    }
    s += &format!(
        "kaggle_dice (mean per image, full size):   {:.4}\n",
        scores.kaggle_dice
    );
    s += &format!(
        "nerve present: precision {:.3}, recall {:.3} (tp {}, fp {}, fn {}, tn {})\n",
        scores.precision(),
        scores.recall(),
        scores.tp,
        scores.fp,
        scores.fn_,
        scores.tn
    );
    s += &format!(
        "rule: threshold {}, min size {}{}",
        rule.threshold,
        rule.min_size,
        if rule.keep_above_zero {
            ", keep above zero"
        } else {
            ""
        }
    );
    if let Some((t, m, k)) = best_of(sweep) {
        s += &format!("\nsweep: best kaggle_dice {k:.4} at --threshold {t} --min-size {m}");
    }
    s
}

/// The first id listed twice (it would count twice in the score).
fn duplicate_ids(ids: &[String]) -> Option<String> {
    let mut seen = HashMap::new();
    ids.iter()
        .find(|id| seen.insert(id.as_str(), ()).is_some())
        .cloned()
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
    fn decode_inverts_encode() {
        let mut m = vec![0u8; PIXELS];
        for y in 100..140 {
            for x in 200..260 {
                m[y * WIDTH + x] = 1;
            }
        }
        m[0] = 1;
        m[PIXELS - 1] = 1;
        let rle = crate::submission::rle_encode(&m, HEIGHT, WIDTH);
        assert!(rle.starts_with("1 1 "));
        assert_eq!(rle_decode(&rle).unwrap(), m);
        assert!(rle_decode("1").is_err());
        assert!(rle_decode("243600 2").is_err());
        assert!(rle_decode("0 1").is_err());
    }

    #[test]
    fn detection_counts() {
        let s = Scores::from_images(&[(5, 5, 0.8), (5, 0, 0.0), (0, 5, 0.0), (0, 0, 1.0)]);
        assert_eq!((s.tp, s.fp, s.fn_, s.tn), (1, 1, 1, 1));
        assert!((s.kaggle_dice - 0.45).abs() < 1e-12);
        assert_eq!(s.precision(), 0.5);
    }
}
