//! Segmenting frames held in memory, for programs: load a model once, then turn
//! batches of 8-bit gray frames into masks and probabilities without any file. The same
//! path as `predict` on a folder and `submit`: each frame resized to the network's input
//! as scikit-image's `preserve_range` resize does (truncated to uint8), standardised
//! with the checkpoint's statistics, predicted, and its map enlarged back to the frame's
//! size under the mask rule.
//!
//! ```no_run
//! use nerveseg::frame::FrameSize;
//! use nerveseg::segment::Segmenter;
//!
//! # fn main() -> anyhow::Result<()> {
//! let model = Segmenter::from_weights("weights/weights.h5")?;
//! let size = FrameSize::new(420, 580)?;
//! let frames = vec![0u8; 2 * size.pixels()]; // two frames, one after the other
//! for s in model.segment(&frames, size)? {
//!     println!("nerve: {} pixels (peak probability {:.2})", s.area, s.peak());
//! }
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use rayon::prelude::*;

use crate::frame::FrameSize;
use crate::predict::{Ensemble, EnsembleConfig, StatsSource};
use crate::resize::Resizer;
use crate::submission::{enlarger, MaskRule};

/// What a [`Segmenter`] is made of: the checkpoints and how they run, where the
/// standardisation statistics come from, and the rule that makes masks.
#[derive(Clone, Debug)]
pub struct SegmenterConfig {
    pub ensemble: EnsembleConfig,
    pub stats: StatsSource,
    pub rule: MaskRule,
}

impl SegmenterConfig {
    /// One checkpoint with the original's settings: the CPU, float32, its stored
    /// statistics, the submission's rule (threshold 0.5, at least 10 pixels).
    pub fn new(weights: impl Into<PathBuf>) -> SegmenterConfig {
        SegmenterConfig {
            ensemble: EnsembleConfig {
                weights: vec![weights.into()],
                ..Default::default()
            },
            stats: StatsSource::Stored,
            rule: MaskRule::default(),
        }
    }
}

/// One frame's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Segmentation {
    /// The mask at the frame's size, row-major: 255 in the nerve, 0 elsewhere.
    pub mask: Vec<u8>,
    /// Pixels in the mask.
    pub area: usize,
    /// The network's probabilities at its input size ([`Segmentation::map_size`]),
    /// row-major.
    pub probabilities: Vec<f32>,
    pub map_size: FrameSize,
    /// With presence heads, their mean probability that the frame holds a nerve.
    pub presence: Option<f32>,
}

impl Segmentation {
    /// The highest probability of the map.
    pub fn peak(&self) -> f32 {
        self.probabilities.iter().copied().fold(0f32, f32::max)
    }
}

/// Loaded checkpoints ready to segment frames.
pub struct Segmenter {
    models: Ensemble,
    rule: MaskRule,
}

impl Segmenter {
    /// Loads the checkpoints of `cfg`; refuses a presence rule without presence heads
    /// where the rule needs them.
    pub fn load(cfg: &SegmenterConfig) -> Result<Segmenter> {
        Segmenter::load_quiet(cfg, true)
    }

    /// [`Segmenter::load`], with progress bars unless `quiet` (statistics recomputed
    /// from a training array take a while).
    pub(crate) fn load_quiet(cfg: &SegmenterConfig, quiet: bool) -> Result<Segmenter> {
        let models = Ensemble::load(&cfg.ensemble, Some(&cfg.stats), quiet)?;
        crate::presence::check_head(cfg.rule.presence, models.headless())?;
        Ok(Segmenter {
            models,
            rule: cfg.rule,
        })
    }

    /// One checkpoint with the original's settings ([`SegmenterConfig::new`]).
    pub fn from_weights(weights: impl AsRef<Path>) -> Result<Segmenter> {
        Segmenter::load(&SegmenterConfig::new(weights.as_ref()))
    }

    /// The size of the probability maps (the first checkpoint's input).
    pub fn map_size(&self) -> FrameSize {
        self.models.map_size()
    }

    /// The size of the frames the first checkpoint was trained on, when it says.
    pub fn trained_frame_size(&self) -> Option<FrameSize> {
        self.models.first().meta.frame_size
    }

    /// Segments `frames`: whole frames of `size`, one after another (row-major 8-bit
    /// gray). Refuses a buffer that is not a whole number of frames.
    pub fn segment(&self, frames: &[u8], size: FrameSize) -> Result<Vec<Segmentation>> {
        let n = size.pixels();
        if n == 0 || frames.len() % n != 0 {
            bail!(
                "{} bytes are not whole frames of {size} ({n} bytes each)",
                frames.len()
            );
        }
        let views: Vec<(&[u8], FrameSize)> = frames.chunks(n).map(|f| (f, size)).collect();
        self.segment_frames(&views)
    }

    /// Segments frames of any sizes together.
    pub(crate) fn segment_frames(
        &self,
        frames: &[(&[u8], FrameSize)],
    ) -> Result<Vec<Segmentation>> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        // One frame (a stream) stays on this thread: handing it to rayon's pool makes
        // its threads compete with libtorch's, which cost a stream 5 ms a frame.
        let parallel = frames.len() > 1;
        let small = |to: FrameSize| -> Result<Vec<u8>> {
            let resize = |&(pixels, size): &(&[u8], FrameSize)| {
                let mut out = vec![0u8; to.pixels()];
                Resizer::new(size.height, size.width, to.height, to.width)
                    .resize_u8(pixels, &mut out);
                out
            };
            Ok(match parallel {
                true => frames.par_iter().flat_map_iter(resize).collect(),
                false => frames.iter().flat_map(resize).collect(),
            })
        };
        let preds = self.models.frames(small, true)?;
        let rule = self.rule;
        let one = |(k, &(_, size)): (usize, &(&[u8], FrameSize))| {
            let probs = preds.map(k);
            let head = preds.presence_of(k);
            let mask: Vec<u8> = match rule.full_mask(probs, head, &enlarger(preds.size, size)) {
                Some(full) => full.iter().map(|&v| v * 255).collect(),
                None => vec![0u8; size.pixels()],
            };
            Segmentation {
                area: mask.iter().filter(|&&v| v != 0).count(),
                mask,
                probabilities: probs.to_vec(),
                map_size: preds.size,
                presence: head,
            }
        };
        Ok(match parallel {
            true => frames.par_iter().enumerate().map(one).collect(),
            false => frames.iter().enumerate().map(one).collect(),
        })
    }
}
