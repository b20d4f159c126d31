//! Deciding "is there a nerve" apart from the mask. The competition scores an empty
//! prediction on an empty frame 1 and any pixel there 0, so a frame judged empty gets
//! an empty mask whatever its map says. The judgement is a probability from one of:
//! - `mask`: the predicted map itself, the mean of its [`top_k`] most confident pixels
//!   (high only when a nerve-sized patch is confident: area and peak in one number);
//! - `head`: the presence head of a checkpoint trained with `--presence-head`;
//! - `mean`: the mean of the two.
//!
//! A frame is kept when its probability is at least the threshold.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The pixels a `mask` presence averages of a map of `pixels`: 1% of the map, a small
/// nerve (92 of the tutorial's 96 x 96).
pub(crate) fn top_k(pixels: usize) -> usize {
    pixels / 100
}

/// Where the presence probability comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The mean of the map's most confident 1% of pixels.
    Mask,
    /// The checkpoint's presence head.
    Head,
    /// The mean of head and mask.
    Mean,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Mask => "mask",
            Source::Head => "head",
            Source::Mean => "mean",
        }
    }

    /// Whether it needs the presence head's probabilities.
    pub(crate) fn needs_head(self) -> bool {
        self != Source::Mask
    }
}

/// Frames whose presence probability is below `threshold` get an empty mask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate {
    pub source: Source,
    pub threshold: f64,
}

impl fmt::Display for Gate {
    /// As the flags that ask for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--presence {} --presence-threshold {}",
            self.source.name(),
            self.threshold
        )
    }
}

/// The `mask` presence probability of one map.
pub(crate) fn from_map(map: &[f32]) -> f32 {
    let k = top_k(map.len()).max(1);
    let mut v: Vec<f32> = map
        .iter()
        .map(|p| if p.is_nan() { 0.0 } else { *p })
        .collect();
    let cut = v.len() - k;
    v.select_nth_unstable_by(cut, f32::total_cmp);
    v[cut..].iter().sum::<f32>() / k as f32
}

/// The probability `source` gives a frame with map `map` and head probability `head`
/// (`None` without a head: then only `mask` has one).
pub fn probability(source: Source, map: &[f32], head: Option<f32>) -> Option<f32> {
    match (source, head) {
        (Source::Mask, _) => Some(from_map(map)),
        (Source::Head, Some(h)) => Some(h),
        (Source::Mean, Some(h)) => Some(0.5 * (h + from_map(map))),
        (_, None) => None,
    }
}

impl Gate {
    /// Whether a frame keeps its mask; a frame without the probability the gate needs
    /// keeps it (callers check that the head's scores exist before gating on them).
    pub fn keeps(&self, map: &[f32], head: Option<f32>) -> bool {
        probability(self.source, map, head).is_none_or(|p| p as f64 >= self.threshold)
    }
}

/// Zeroes the maps of the frames that `gate` judges empty, so that every picture and
/// array made from them shows the empty mask: `maps` holds one map of `pixels` values
/// per frame, `heads` the heads' probabilities (one per frame) when there are heads.
/// Returns how many frames it emptied.
pub(crate) fn empty_gated(
    gate: Gate,
    maps: &mut [f32],
    pixels: usize,
    heads: Option<&[f32]>,
) -> usize {
    let mut emptied = 0;
    for (k, map) in maps.chunks_mut(pixels.max(1)).enumerate() {
        if !gate.keeps(map, heads.map(|h| h[k])) {
            map.fill(0.0);
            emptied += 1;
        }
    }
    emptied
}

/// Where `predict` writes the heads' probabilities beside its maps `masks`, and where
/// `submit` looks for them: imgs_mask_test.npy -> imgs_presence_test.npy, else
/// `{stem}_presence.npy`. float32 (N, 1), in the maps' order.
pub fn scores_path(masks: &Path) -> PathBuf {
    let name = masks.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let file = if name == crate::data::IMGS_MASK_TEST {
        "imgs_presence_test.npy".to_owned()
    } else {
        format!("{}_presence.npy", name.trim_end_matches(".npy"))
    };
    masks.with_file_name(file)
}

/// Refuses a gate on the presence head when a checkpoint has none: `headless` is the
/// first checkpoint without a head, if any.
pub(crate) fn check_head(gate: Option<Gate>, headless: Option<&Path>) -> Result<()> {
    match (gate, headless) {
        (Some(g), Some(path)) if g.source.needs_head() => bail!(
            "--presence {} needs checkpoints trained with --presence-head, and {} has no \
             presence head: use --presence mask",
            g.source.name(),
            path.display()
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_probability_is_the_mean_of_the_top_one_percent() {
        let mut map = vec![0.1f32; 96 * 96];
        assert!((from_map(&map) - 0.1).abs() < 1e-6);
        // A confident patch of exactly top_k pixels gives its probability...
        for p in map.iter_mut().take(top_k(96 * 96)) {
            *p = 0.9;
        }
        assert!((from_map(&map) - 0.9).abs() < 1e-6);
        // ...a single confident pixel hardly counts.
        let mut one = vec![0.0f32; 96 * 96];
        one[17] = 1.0;
        assert!((from_map(&one) - 1.0 / top_k(96 * 96) as f32).abs() < 1e-6);
    }

    #[test]
    fn a_gate_empties_exactly_the_frames_below_its_threshold() {
        let gate = Gate {
            source: Source::Head,
            threshold: 0.4,
        };
        let map = vec![0.0f32; 96 * 96];
        let heads = [0.1f32, 0.39, 0.4, 0.41, 0.9];
        let kept: Vec<bool> = heads.iter().map(|&h| gate.keeps(&map, Some(h))).collect();
        assert_eq!(kept, [false, false, true, true, true]);
        let mean = Gate {
            source: Source::Mean,
            threshold: 0.5,
        };
        let mut map = vec![0.0f32; 96 * 96];
        map.iter_mut().take(top_k(96 * 96)).for_each(|p| *p = 0.6);
        assert!(mean.keeps(&map, Some(0.42)) && !mean.keeps(&map, Some(0.38)));
        assert_eq!(gate.to_string(), "--presence head --presence-threshold 0.4");
    }
}
