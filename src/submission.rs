//! Stage 4, the original `submission.py`, corrected: sort by id, threshold each
//! probability map (96 x 96 for the tutorial's network) at 0.5, enlarge to 420 rows x 580 columns with scikit-image's resize
//! (bilinear, no blur when enlarging), threshold again at 0.5, drop masks with fewer than
//! 10 pixels, run-length encode, and write `submission.csv` (`img,pixels`).
//!
//! Not copied from the original: it resized to (580, 420), a transposed and distorted
//! mask, and read row 0 of each channels-last mask instead of the mask. Its "count every
//! pixel above 0 after the resize" is kept as an option (`keep_above_zero`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use rayon::prelude::*;

use crate::data::npy::{Dtype, NpyReader};
use crate::frame::FrameSize;
use crate::predict::Predictions;
use crate::resize::Resizer;

/// What `submit` reads and writes; defaults are the tutorial's.
#[derive(Clone, Debug)]
pub struct SubmitConfig {
    pub masks: PathBuf,
    pub ids: PathBuf,
    pub out: PathBuf,
    pub rule: MaskRule,
    /// The frames' size, to which the masks are enlarged (Kaggle: 420 x 580).
    pub size: FrameSize,
}

/// How a probability map becomes a full-size binary mask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskRule {
    /// A pixel of the map (96 x 96 for the tutorial's network) is in the mask when its
    /// probability is above this.
    pub threshold: f64,
    /// Masks with fewer full-size pixels are written empty.
    pub min_size: usize,
    /// Keep every pixel above 0 after enlarging (the original's dilation) instead of
    /// thresholding at 0.5 again.
    pub keep_above_zero: bool,
    /// Frames judged to hold no nerve get an empty mask (off: the original's rule).
    pub presence: Option<crate::presence::Gate>,
}

impl Default for MaskRule {
    fn default() -> Self {
        MaskRule {
            threshold: 0.5,
            min_size: 10,
            keep_above_zero: false,
            presence: None,
        }
    }
}

impl MaskRule {
    /// The full-size 0/1 mask (the resizer's output size, row-major) of one probability
    /// map, or `None` when it is empty (nothing above the threshold, fewer than
    /// `min_size` pixels, or judged empty by the presence gate, which may use `head`, the
    /// presence head's probability of the frame).
    pub(crate) fn full_mask(
        &self,
        probs: &[f32],
        head: Option<f32>,
        resizer: &Resizer,
    ) -> Option<Vec<u8>> {
        if self.presence.is_some_and(|g| !g.keeps(probs, head)) {
            return None;
        }
        let small: Vec<u8> = probs
            .iter()
            .map(|&p| (p as f64 > self.threshold) as u8)
            .collect();
        if !small.contains(&1) {
            return None;
        }
        let mut full = vec![0u8; resizer.output_len()];
        let cut = if self.keep_above_zero { 0.0 } else { 0.5 };
        resizer.resize_binary(&small, cut, &mut full);
        let count = full.iter().filter(|&&v| v != 0).count();
        (count > 0 && count >= self.min_size).then_some(full)
    }
}

/// The enlargement from the network's maps of `map` (96 x 96 for the tutorial's) to
/// frames of `size` (Kaggle: 420 x 580).
pub(crate) fn enlarger(map: FrameSize, size: FrameSize) -> Resizer {
    Resizer::new(map.height, map.width, size.height, size.width)
}

/// Kaggle's run-length encoding of a row-major `height` x `width` 0/1 mask: pixels are
/// numbered from 1 down each column, then column by column; pairs "start length".
pub(crate) fn rle_encode(mask: &[u8], height: usize, width: usize) -> String {
    // Only the bounding box of the mask can hold pixels: visit it in Kaggle's order.
    let rows: Vec<usize> = (0..height)
        .filter(|&y| mask[y * width..(y + 1) * width].contains(&1))
        .collect();
    let (Some(&y0), Some(&y1)) = (rows.first(), rows.last()) else {
        return String::new();
    };
    let (mut x0, mut x1) = (width, 0);
    for &y in &rows {
        let row = &mask[y * width..(y + 1) * width];
        x0 = x0.min(row.iter().position(|&v| v != 0).unwrap_or(width));
        x1 = x1.max(row.iter().rposition(|&v| v != 0).unwrap_or(0));
    }
    let mut out = String::new();
    let mut run: Option<(usize, usize)> = None; // 1-based start, length
    let flush = |out: &mut String, (start, len): (usize, usize)| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{start} {len}"));
    };
    for x in x0..=x1 {
        for y in y0..=y1 {
            if mask[y * width + x] == 0 {
                continue;
            }
            let k = x * height + y + 1;
            run = match run {
                Some((start, len)) if start + len == k => Some((start, len + 1)),
                Some(r) => {
                    flush(&mut out, r);
                    Some((k, 1))
                }
                None => Some((k, 1)),
            };
        }
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

/// Reads the predictions (float32 (N, h, w, 1) maps and, when `presence` asks for them,
/// the presence head's probabilities beside them) and their int32 (N,) ids.
pub(crate) fn read_predictions(
    masks: &Path,
    ids: &Path,
    presence: bool,
) -> Result<(Predictions, Vec<i32>)> {
    let m = NpyReader::open(masks)?;
    FrameSize::of_maps(&m)?;
    let r = NpyReader::open(ids)?;
    r.expect(Dtype::I32, &[None])?;
    if m.shape[0] != r.shape[0] {
        bail!(
            "{} holds {} masks but {} holds {} ids",
            masks.display(),
            m.shape[0],
            ids.display(),
            r.shape[0]
        );
    }
    let ids_v = r.read_all::<i32>()?;
    let mut sorted = ids_v.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        bail!("{}: id {} appears more than once", ids.display(), w[0]);
    }
    Ok((Predictions::read(masks, presence)?, ids_v))
}

/// The run-length codes of the predictions taken in `order`, each enlarged to `size`
/// under `rule`; in parallel.
pub fn encode(
    preds: &Predictions,
    order: &[usize],
    rule: &MaskRule,
    size: FrameSize,
) -> Vec<String> {
    let resizer = enlarger(preds.size, size);
    order
        .par_iter()
        .map(
            |&i| match rule.full_mask(preds.map(i), preds.presence_of(i), &resizer) {
                Some(full) => rle_encode(&full, size.height, size.width),
                None => String::new(),
            },
        )
        .collect()
}

/// Refuses a gate on the presence head's probabilities when `predict` wrote none beside
/// the maps `masks`.
fn check_heads(
    masks: &Path,
    preds: &Predictions,
    gate: Option<crate::presence::Gate>,
) -> Result<()> {
    match gate {
        Some(g) if g.source.needs_head() && preds.presence.is_none() => bail!(
            "--presence {} needs {}, which predict writes beside {} when the checkpoint has \
             a presence head (train --presence-head); or use --presence mask",
            g.source.name(),
            crate::presence::scores_path(masks).display(),
            masks.display()
        ),
        _ => Ok(()),
    }
}

/// What `submit` wrote.
#[derive(Clone, Debug)]
pub struct SubmitReport {
    pub out: PathBuf,
    pub rows: usize,
    pub nonempty: usize,
}

impl std::fmt::Display for SubmitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} ({} rows, {} with a mask)",
            self.out.display(),
            self.rows,
            self.nonempty
        )
    }
}

/// Writes the submission.
pub fn submit(cfg: &SubmitConfig) -> Result<SubmitReport> {
    crate::interrupt::keeping(write_submission(cfg), |_| {
        format!("{} was not written", cfg.out.display())
    })
}

fn write_submission(cfg: &SubmitConfig) -> Result<SubmitReport> {
    let t0 = std::time::Instant::now();
    let needs_head = cfg.rule.presence.is_some_and(|g| g.source.needs_head());
    let (preds, ids) = read_predictions(&cfg.masks, &cfg.ids, needs_head)?;
    check_heads(&cfg.masks, &preds, cfg.rule.presence)?;
    log::info!(
        "read {} masks in {:.3} s",
        ids.len(),
        t0.elapsed().as_secs_f64()
    );
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i]);
    let t0 = std::time::Instant::now();
    crate::interrupt::check()?;
    let rows = encode(&preds, &order, &cfg.rule, cfg.size);
    crate::interrupt::check()?;
    log::info!(
        "encoded {} masks in {:.3} s",
        rows.len(),
        t0.elapsed().as_secs_f64()
    );
    crate::atomic::write_with(&cfg.out, |w| {
        w.write_all(b"img,pixels\n")?;
        for (&i, rle) in order.iter().zip(&rows) {
            writeln!(w, "{},{rle}", ids[i])?;
        }
        Ok(())
    })?;
    Ok(SubmitReport {
        out: cfg.out.clone(),
        rows: rows.len(),
        nonempty: rows.iter().filter(|r| !r.is_empty()).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TUTORIAL_INPUT;

    #[test]
    fn rle_is_column_major_from_one() {
        // 3 rows x 2 columns: column-major numbering 1 4 / 2 5 / 3 6.
        let m = [
            1, 0, //
            1, 1, //
            0, 1,
        ];
        assert_eq!(rle_encode(&m, 3, 2), "1 2 5 2");
        assert_eq!(rle_encode(&[0; 6], 3, 2), "");
        // A run that wraps from the bottom of one column to the top of the next.
        let m = [
            0, 1, //
            0, 0, //
            1, 0,
        ];
        assert_eq!(rle_encode(&m, 3, 2), "3 2");
        assert_eq!(rle_encode(&[1; 6], 3, 2), "1 6");
    }

    #[test]
    fn small_masks_are_dropped() {
        let r = enlarger(TUTORIAL_INPUT, crate::frame::KAGGLE);
        let mut probs = vec![0f32; 96 * 96];
        probs[40 * 96 + 40] = 0.9; // one 96 x 96 pixel: about 4 x 6 full-size pixels
        let rule = MaskRule::default();
        let full = rule.full_mask(&probs, None, &r).unwrap_or_default();
        let n = full.iter().filter(|&&v| v == 1).count();
        let kept = MaskRule {
            min_size: 1,
            ..rule
        }
        .full_mask(&probs, None, &r)
        .unwrap_or_default();
        let k = kept.iter().filter(|&&v| v == 1).count();
        assert!(k > 0 && k < 40, "{k}");
        assert_eq!(n, if k < 10 { 0 } else { k });
        let wide = MaskRule {
            min_size: 1,
            keep_above_zero: true,
            ..rule
        }
        .full_mask(&probs, None, &r)
        .unwrap_or_default();
        assert!(wide.iter().filter(|&&v| v == 1).count() > k);
    }

    #[test]
    fn threshold_is_strict() {
        let r = enlarger(TUTORIAL_INPUT, crate::frame::KAGGLE);
        let probs = vec![0.5f32; 96 * 96];
        assert!(MaskRule::default()
            .full_mask(&probs, None, &r)
            .unwrap_or_default()
            .iter()
            .all(|&v| v == 0));
    }
}
