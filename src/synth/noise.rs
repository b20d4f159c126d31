//! Label noise, as the Kaggle training set has it: some frames repeat an earlier frame of
//! the same subject (a little moved, with noise of their own) but disagree about the
//! nerve. A repeat of a frame with a nerve has its mask removed; a repeat of a frame
//! without one shows a barely visible nerve and gets its mask. `synth` records every
//! such frame in `label_noise.csv`, so `clean` can be scored against it.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::scene::{mix, Repeat};

/// The default share of training frames that are noisy repeats: a few percent, as the
/// near-duplicates with conflicting masks that Kaggle entrants found.
pub const DEFAULT_RATE: f64 = 0.03;

/// The file in synth's output folder that lists the noisy frames.
pub const RECORD: &str = "label_noise.csv";

/// Which frames of one subject repeat another: entry n - 1 is the frame (from 1) that
/// frame n repeats. Frame 1 never does, nor two frames in a row, and the source is the
/// frame before; each subject draws from its own stream, so the plan is the same
/// whatever the thread count.
pub(crate) fn plan(seed: u64, subject: u32, frames: u32, rate: f64) -> Vec<Option<u32>> {
    let mut rng = Pcg64Mcg::seed_from_u64(mix(mix(seed, 5), subject as u64));
    let mut out: Vec<Option<u32>> = Vec::with_capacity(frames as usize);
    for n in 1..=frames {
        let draw = rng.random::<f64>();
        let previous_noisy = out.last().is_some_and(|p| p.is_some());
        out.push((n > 1 && !previous_noisy && draw < rate).then_some(n - 1));
    }
    out
}

/// How frame `n` of `subject` differs from the frame it repeats: a motion under two
/// pixels and a seed for its own noise.
pub fn repeat(seed: u64, subject: u32, n: u32) -> Repeat {
    let seed = mix(mix(seed, 6), mix(subject as u64, n as u64));
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Repeat {
        seed: mix(seed, 1),
        dx: rng.random_range(-1.5..1.5),
        dy: rng.random_range(-1.5..1.5),
    }
}

/// One noisy frame, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Noisy {
    pub subject: u32,
    pub n: u32,
    pub source: u32,
    /// Whether its mask gained a nerve (true) or lost one (false).
    pub added: bool,
}

/// Writes `label_noise.csv`: image, the image it repeats, and what happened to the mask.
pub(crate) fn write_record(path: &Path, noisy: &[Noisy]) -> Result<()> {
    crate::atomic::write_with(path, |w| {
        writeln!(w, "image,repeats,mask")?;
        for x in noisy {
            let what = if x.added { "added" } else { "removed" };
            writeln!(
                w,
                "{}_{}.tif,{}_{}.tif,{what}",
                x.subject, x.n, x.subject, x.source
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_about_the_rate_and_repeats_the_frame_before() {
        let mut noisy = 0;
        for subject in 1..=40 {
            let p = plan(3, subject, 120, 0.05);
            assert_eq!(p.len(), 120);
            assert_eq!(p[0], None);
            for (i, s) in p.iter().enumerate() {
                if let Some(s) = s {
                    assert_eq!(*s as usize, i, "frame {} repeats the one before", i + 1);
                    assert_eq!(p[i - 1], None, "no two noisy frames in a row");
                    noisy += 1;
                }
            }
            assert_eq!(p, plan(3, subject, 120, 0.05));
        }
        let share = noisy as f64 / 4800.0;
        assert!((0.035..0.065).contains(&share), "share {share}");
        assert!(plan(3, 1, 120, 0.0).iter().all(Option::is_none));
    }
}
