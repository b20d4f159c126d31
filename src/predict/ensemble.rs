//! One or more checkpoints predicting together: each standardises the 96 x 96 frames
//! with its own statistics and predicts them, optionally also the horizontally flipped
//! frames (test-time augmentation, flipped back before averaging); the probabilities are
//! the mean over checkpoints (and flips). One checkpoint without `--tta` is exactly the
//! single-model prediction: nothing is averaged.

use std::path::PathBuf;

use anyhow::{bail, Result};
use tch::{Device, Tensor};

use super::{load, predictions, Loaded, StatsSource};
use crate::dataset::{self, Stats};
use crate::keras::KerasFile;
use crate::libtorch::{explain, Advice};
use crate::model::Speed;

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

/// What an ensemble is made of.
#[derive(Clone, Debug)]
pub struct EnsembleConfig {
    pub weights: Vec<PathBuf>,
    pub tta: bool,
    pub device: Device,
    pub speed: Speed,
    pub batch_size: usize,
    pub allow_partial: bool,
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
                Some(s) => Some(s.resolve(&loaded.file, quiet)?),
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

    /// Probabilities of 96 x 96 uint8 frames (one after another), each member
    /// standardising them with its own statistics.
    pub fn frames(&self, small: &[u8], quiet: bool) -> Result<Vec<f32>> {
        Ok(self.frames_with_heads(small, quiet)?.0)
    }

    /// As [`Ensemble::frames`], with the presence heads' mean probability of each frame
    /// when every member has a head.
    pub fn frames_with_heads(
        &self,
        small: &[u8],
        quiet: bool,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        self.average(quiet, |m| {
            let stats = m
                .stats
                .ok_or_else(|| anyhow::anyhow!("no statistics to standardise with"))?;
            dataset::standardise(small, stats)
                .map_err(|e| explain(e, "standardising the frames", Device::Cpu, Advice::None))
        })
    }

    /// Whether every member has a presence head.
    pub fn has_heads(&self) -> bool {
        self.members.iter().all(|m| m.loaded.net.has_head())
    }

    /// Probabilities of model-ready [N, 1, 96, 96] inputs, fed as they are.
    pub fn ready(&self, x: &Tensor, quiet: bool) -> Result<Vec<f32>> {
        Ok(self.ready_with_heads(x, quiet)?.0)
    }

    /// As [`Ensemble::ready`], with the heads' mean probabilities.
    pub fn ready_with_heads(
        &self,
        x: &Tensor,
        quiet: bool,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        self.average(quiet, |_| Ok(x.shallow_clone()))
    }

    fn average(
        &self,
        quiet: bool,
        input: impl Fn(&Member) -> Result<Tensor>,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let with_heads = self.has_heads();
        let mut sum: Option<(Vec<f32>, Vec<f32>)> = None;
        let mut count = 0usize;
        for m in &self.members {
            let x = input(m)?;
            let mut add = |(p, h): (Vec<f32>, Option<Vec<f32>>)| {
                count += 1;
                let h = if with_heads {
                    h.unwrap_or_default()
                } else {
                    Vec::new()
                };
                match &mut sum {
                    None => sum = Some((p, h)),
                    Some((s, sh)) => {
                        s.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
                        sh.iter_mut().zip(&h).for_each(|(a, b)| *a += b);
                    }
                }
            };
            add(predictions(
                &m.loaded.net,
                &x,
                self.batch_size,
                self.device,
                quiet,
            )?);
            if self.tta {
                let flipped = x
                    .f_flip([3])
                    .map_err(|e| explain(e, "flipping the frames", Device::Cpu, Advice::None))?;
                let (p, h) =
                    predictions(&m.loaded.net, &flipped, self.batch_size, self.device, quiet)?;
                add((unflip(&p), h));
            }
        }
        let (mut out, mut heads) = sum.unwrap_or_default();
        if count > 1 {
            let n = count as f32;
            out.iter_mut().for_each(|v| *v /= n);
            heads.iter_mut().for_each(|v| *v /= n);
        }
        Ok((out, with_heads.then_some(heads)))
    }
}

/// Flips 96 x 96 maps (one after another) back along their width.
fn unflip(p: &[f32]) -> Vec<f32> {
    let side = dataset::SIDE;
    p.chunks(side)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unflip_reverses_each_row() {
        let side = crate::dataset::SIDE;
        let p: Vec<f32> = (0..2 * side).map(|v| v as f32).collect();
        let u = super::unflip(&p);
        assert_eq!(u[0], (side - 1) as f32);
        assert_eq!(u[side], (2 * side - 1) as f32);
        assert_eq!(super::unflip(&u), p);
    }
}
