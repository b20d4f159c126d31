//! One or more checkpoints predicting together: each resizes the frames to its own
//! network's input and standardises them with its own statistics, and predicts them,
//! optionally also the horizontally flipped frames (test-time augmentation, flipped back
//! before averaging); the probabilities are the mean over checkpoints (and flips), at
//! the first checkpoint's input size (other sizes' maps resized to it as scikit-image
//! resizes floats). One checkpoint without `--tta` is exactly the single-model
//! prediction: nothing is averaged.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use tch::{Device, Tensor};

use super::{load, Loaded, Predictions, StatsSource};
use crate::dataset::{self, Stats};
use crate::frame::FrameSize;
use crate::keras::KerasFile;
use crate::libtorch::{explain, Advice};
use crate::model::Speed;
use crate::resize::Resizer;

/// A loaded checkpoint and the statistics it standardises with.
pub struct Member {
    pub loaded: Loaded,
    pub stats: Option<Stats>,
}

/// The checkpoints of a prediction and how they are run.
pub struct Ensemble {
    pub members: Vec<Member>,
    /// Also predict the horizontally flipped frames.
    pub tta: bool,
    pub device: Device,
    pub batch_size: usize,
}

/// What an ensemble is made of and how it runs: the part of every command that runs
/// checkpoints (predict, evaluate, cv's scoring, the demo).
#[derive(Clone, Debug)]
pub struct EnsembleConfig {
    /// One checkpoint, or several whose probabilities are averaged.
    pub weights: Vec<PathBuf>,
    /// Also predict the horizontally flipped frames and average.
    pub tta: bool,
    pub device: Device,
    pub speed: Speed,
    /// Frames per forward pass (in evaluate also the batch of Keras's dice_coef).
    pub batch_size: usize,
    /// Load a weight file whose layers do not all match, using what matches by order.
    pub allow_partial: bool,
}

/// The original's: one checkpoint on the CPU, batches of 32, float32 channels-last.
impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            weights: Vec::new(),
            tta: false,
            device: Device::Cpu,
            speed: Speed::default(),
            batch_size: crate::train::TUTORIAL_BATCH,
            allow_partial: false,
        }
    }
}

impl Ensemble {
    /// Loads every checkpoint; `stats` says where each one's statistics come from
    /// (`None`: the inputs are model-ready and need none).
    pub fn load(
        cfg: &EnsembleConfig,
        stats: Option<&StatsSource>,
        quiet: bool,
    ) -> Result<Ensemble> {
        if cfg.weights.is_empty() {
            bail!("no --weights given");
        }
        let mut members = Vec::with_capacity(cfg.weights.len());
        for w in &cfg.weights {
            let loaded = load(w, cfg.device, cfg.allow_partial, cfg.speed)?;
            let stats = match stats {
                Some(s) => Some(s.resolve(&loaded.file, loaded.cfg.input, quiet)?),
                None => None,
            };
            members.push(Member { loaded, stats });
        }
        Ok(Ensemble {
            members,
            tta: cfg.tta,
            device: cfg.device,
            batch_size: cfg.batch_size,
        })
    }

    /// The first checkpoint's file: its run record and frame size speak for the set.
    pub fn first(&self) -> &KerasFile {
        &self.members[0].loaded.file
    }

    /// The input size of the maps the ensemble gives: its first member's.
    pub(crate) fn map_size(&self) -> FrameSize {
        self.members[0].loaded.cfg.input
    }

    /// The predictions of frames, each member's input coming from `frames(size)`: the
    /// uint8 frames resized to `size` (one after another), asked once per size. With the
    /// presence heads' mean probability of each frame when every member has a head.
    pub fn frames(
        &self,
        frames: impl Fn(FrameSize) -> Result<Vec<u8>>,
        quiet: bool,
    ) -> Result<Predictions> {
        let mut small: HashMap<FrameSize, Vec<u8>> = HashMap::new();
        for m in &self.members {
            let size = m.loaded.cfg.input;
            if let std::collections::hash_map::Entry::Vacant(e) = small.entry(size) {
                e.insert(frames(size)?);
            }
        }
        self.average(quiet, |m| {
            let stats = m
                .stats
                .ok_or_else(|| anyhow::anyhow!("no statistics to standardise with"))?;
            let size = m.loaded.cfg.input;
            dataset::standardise(&small[&size], stats, size)
                .map_err(|e| explain(e, "standardising the frames", Device::Cpu, Advice::None))
        })
    }

    /// Whether every member has a presence head.
    pub(crate) fn has_heads(&self) -> bool {
        self.headless().is_none()
    }

    /// The file of the first member without a presence head, if any.
    pub(crate) fn headless(&self) -> Option<&std::path::Path> {
        self.members
            .iter()
            .find(|m| !m.loaded.net.has_head())
            .map(|m| m.loaded.file.path.as_path())
    }

    /// The predictions of model-ready [N, 1, h, w] inputs, fed as they are (every member
    /// must take inputs of that size), with the heads' mean probabilities.
    pub fn ready(&self, x: &Tensor, quiet: bool) -> Result<Predictions> {
        self.average(quiet, |_| Ok(x.shallow_clone()))
    }

    /// The mean of every member's predictions (and of their flipped frames'), at the
    /// first member's map size; the heads' only when every member has one.
    fn average(
        &self,
        quiet: bool,
        input: impl Fn(&Member) -> Result<Tensor>,
    ) -> Result<Predictions> {
        let with_heads = self.has_heads();
        let out_size = self.map_size();
        let mut sum: Option<Predictions> = None;
        let mut count = 0usize;
        let mut add = |mut p: Predictions| {
            if p.size != out_size {
                p.maps = resize_maps(&p.maps, p.size, out_size);
                p.size = out_size;
            }
            if !with_heads {
                p.presence = None;
            }
            count += 1;
            match &mut sum {
                None => sum = Some(p),
                Some(s) => {
                    s.maps.iter_mut().zip(&p.maps).for_each(|(a, b)| *a += b);
                    if let (Some(sh), Some(h)) = (&mut s.presence, &p.presence) {
                        sh.iter_mut().zip(h).for_each(|(a, b)| *a += b);
                    }
                }
            }
        };
        for m in &self.members {
            let x = input(m)?;
            let net = &m.loaded.net;
            add(Predictions::of(
                net,
                &x,
                self.batch_size,
                self.device,
                quiet,
            )?);
            if self.tta {
                let flipped = x
                    .f_flip([3])
                    .map_err(|e| explain(e, "flipping the frames", Device::Cpu, Advice::None))?;
                let mut p = Predictions::of(net, &flipped, self.batch_size, self.device, quiet)?;
                p.maps = unflip(&p.maps, p.size);
                add(p);
            }
        }
        let mut out = sum.ok_or_else(|| anyhow::anyhow!("no checkpoints to predict with"))?;
        if count > 1 {
            let n = count as f32;
            out.maps.iter_mut().for_each(|v| *v /= n);
            if let Some(h) = &mut out.presence {
                h.iter_mut().for_each(|v| *v /= n);
            }
        }
        Ok(out)
    }
}

/// Flips maps of `size` (one after another) back along their width.
fn unflip(p: &[f32], size: FrameSize) -> Vec<f32> {
    p.chunks(size.width)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

/// Resizes maps of `from` (one after another) to `to`.
fn resize_maps(p: &[f32], from: FrameSize, to: FrameSize) -> Vec<f32> {
    let r = Resizer::new(from.height, from.width, to.height, to.width);
    let mut out = vec![0f32; p.len() / from.pixels() * to.pixels()];
    for (src, dst) in p.chunks(from.pixels()).zip(out.chunks_mut(to.pixels())) {
        r.resize_map(src, dst);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::frame::FrameSize;

    #[test]
    fn unflip_reverses_each_row() {
        let size = FrameSize::new(3, 5).unwrap();
        let p: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let u = super::unflip(&p, size);
        assert_eq!(u[0], 4.0);
        assert_eq!(u[5], 9.0);
        assert_eq!(super::unflip(&u, size), p);
    }

    #[test]
    fn maps_of_another_size_are_resized() {
        let from = FrameSize::new(4, 4).unwrap();
        let to = FrameSize::new(2, 2).unwrap();
        let p = [vec![0.5f32; 16], vec![1.0f32; 16]].concat();
        assert_eq!(
            super::resize_maps(&p, from, to),
            [0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
        );
    }
}
