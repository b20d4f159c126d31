//! Stage 2, the preprocessing inside the original `train.py`: frames resized to the
//! network's input, 96 x 96 for the tutorial (scikit-image semantics, see `resize.rs`) and truncated to uint8; images standardised
//! with the mean and std of all training pixels; masks scaled to [0, 1]; the validation
//! split (the LAST share of the samples, as Keras's `validation_split`); the per-epoch
//! shuffle of the training part.

use std::path::Path;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tch::{TchError, Tensor};

use crate::data::npy::{Dtype, NpyReader};
use crate::frame::FrameSize;
use crate::resize::Resizer;

/// Frames resized per parallel chunk.
const CHUNK: usize = 256;

/// Mean and standard deviation of the preprocessed training pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub mean: f64,
    pub std: f64,
}

impl Stats {
    /// Refuses statistics that cannot standardise: a non-finite mean, or a std that is
    /// not a positive finite number (dividing by it gives infinities or NaN). `source`
    /// says where they came from, for the message.
    pub fn checked(self, source: &str) -> Result<Stats> {
        if !self.mean.is_finite() || !self.std.is_finite() || self.std <= 0.0 {
            bail!(
                "{source}: mean {} and std {} cannot standardise images (the mean must be a \
                 finite number and the std a positive one)",
                self.mean,
                self.std
            );
        }
        Ok(self)
    }
}

/// Reads a uint8 (N, H, W) array of frames of any one size and resizes every frame to
/// `to` (the network's input) in uint8, the original's `preprocess`. Streams the file;
/// frames are resized in parallel.
pub(crate) fn preprocess_frames(
    reader: &mut NpyReader,
    label: &str,
    to: FrameSize,
    quiet: bool,
) -> Result<Vec<u8>> {
    let size = FrameSize::of_frames(reader)?;
    let n = reader.shape[0] as usize;
    let resizer = Resizer::new(size.height, size.width, to.height, to.width);
    let mut out = vec![0u8; n * to.pixels()];
    let pb = crate::progress::bar(n as u64, label, quiet);
    let mut frames = vec![0u8; CHUNK.min(n) * size.pixels()];
    for (chunk_index, dst) in out.chunks_mut(CHUNK * to.pixels()).enumerate() {
        crate::interrupt::check()?;
        let count = dst.len() / to.pixels();
        let src = &mut frames[..count * size.pixels()];
        reader.read_rows(src)?;
        resize_into(&resizer, size, to, src, dst);
        pb.set_position((chunk_index * CHUNK + count) as u64);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// Resizes frames of `size` (row-major, one after another) into uint8 frames of `to` in
/// `dst`, in parallel.
fn resize_into(resizer: &Resizer, size: FrameSize, to: FrameSize, frames: &[u8], dst: &mut [u8]) {
    dst.par_chunks_mut(to.pixels())
        .zip(frames.par_chunks(size.pixels()))
        .for_each(|(o, f)| resizer.resize_u8(f, o));
}

/// The original's preprocessing of frames of `size` already in memory: each resized to
/// `to` and truncated to uint8.
pub(crate) fn resize_frames(frames: &[u8], size: FrameSize, to: FrameSize) -> Vec<u8> {
    let mut out = vec![0u8; frames.len() / size.pixels() * to.pixels()];
    let resizer = Resizer::new(size.height, size.width, to.height, to.width);
    resize_into(&resizer, size, to, frames, &mut out);
    out
}

/// Mean and (population) standard deviation of all pixels, in float64.
pub fn stats(pixels: &[u8]) -> Stats {
    let mut hist = [0u64; 256];
    for &p in pixels {
        hist[p as usize] += 1;
    }
    let n = pixels.len().max(1) as f64;
    let mean = hist
        .iter()
        .enumerate()
        .map(|(v, &c)| v as f64 * c as f64)
        .sum::<f64>()
        / n;
    let var = hist
        .iter()
        .enumerate()
        .map(|(v, &c)| (v as f64 - mean).powi(2) * c as f64)
        .sum::<f64>()
        / n;
    Stats {
        mean,
        std: var.sqrt(),
    }
}

/// (x - mean) / std of frames of `size` as a float32 [N, 1, h, w] tensor.
pub fn standardise(pixels: &[u8], s: Stats, size: FrameSize) -> Result<Tensor, TchError> {
    let (mean, std) = (s.mean as f32, s.std as f32);
    let v: Vec<f32> = pixels
        .par_iter()
        .map(|&p| (p as f32 - mean) / std)
        .collect();
    to_nchw(&v, size)
}

/// Masks of `size` to targets in [0, 1]: float32 / 255, [N, 1, h, w].
pub(crate) fn unit_masks(pixels: &[u8], size: FrameSize) -> Result<Tensor, TchError> {
    let v: Vec<f32> = pixels.par_iter().map(|&p| p as f32 / 255.0).collect();
    to_nchw(&v, size)
}

/// Model-ready values (frames of `size` one after another) as a [N, 1, h, w] tensor.
pub(crate) fn to_nchw(v: &[f32], size: FrameSize) -> Result<Tensor, TchError> {
    let n = (v.len() / size.pixels()) as i64;
    Tensor::f_from_slice(v)?.f_view([n, 1, size.height as i64, size.width as i64])
}

/// A fingerprint of training data: the first 128 bits of the SHA-256 of `parts`, in hex.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Training inputs ready for the network.
pub struct Prepared {
    /// [N, 1, h, w] float32 standardised images at the network's input size.
    pub images: Tensor,
    /// [N, 1, h, w] float32 targets in [0, 1].
    pub masks: Tensor,
    /// N.
    pub samples: usize,
    /// Whether each mask, as the network sees it, holds any nerve (what a split by
    /// group balances).
    pub nerve: Vec<bool>,
    /// The statistics used, when the images were standardised here.
    pub stats: Option<Stats>,
    /// A fingerprint of the samples as the network sees them before standardisation
    /// (the resized uint8 frames and masks, or the float32 arrays as given).
    pub fingerprint: String,
    /// The size of the full frames, when frames (not model-ready arrays) were given.
    pub frame_size: Option<FrameSize>,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Loads the training arrays for a network whose input is `input`: uint8 (N, H, W)
/// frames (the Kaggle's 420 x 580 or any other one size) go through the original's
/// preprocessing; float32 (N, h, w, 1) arrays of the input's size are taken as
/// model-ready, as Keras's `fit` would take them.
pub(crate) fn load_training(
    images: &Path,
    masks: &Path,
    input: FrameSize,
    quiet: bool,
) -> Result<Prepared> {
    let mut ri = NpyReader::open(images)?;
    let mut rm = NpyReader::open(masks)?;
    if ri.shape.first() != rm.shape.first() {
        bail!(
            "{} holds {} images but {} holds {} masks",
            images.display(),
            ri.shape.first().copied().unwrap_or(0),
            masks.display(),
            rm.shape.first().copied().unwrap_or(0)
        );
    }
    let (h, w) = (input.height as u64, input.width as u64);
    if ri.dtype == Dtype::F32 {
        ri.expect(Dtype::F32, &[None, Some(h), Some(w), Some(1)])?;
        rm.expect(Dtype::F32, &[None, Some(h), Some(w), Some(1)])?;
        let x = ri.read_all::<f32>()?;
        let y = rm.read_all::<f32>()?;
        return Ok(Prepared {
            images: to_nchw(&x, input)?,
            masks: to_nchw(&y, input)?,
            samples: x.len() / input.pixels(),
            nerve: crate::split::nerve_present(&y, input.pixels()),
            stats: None,
            fingerprint: fingerprint(&[&f32_bytes(&x), &f32_bytes(&y)]),
            frame_size: None,
        });
    }
    let size = FrameSize::of_frames(&ri)?;
    if FrameSize::of_frames(&rm)? != size {
        bail!(
            "{} holds frames of {size} but {} holds masks of {}",
            images.display(),
            masks.display(),
            FrameSize::of_frames(&rm)?
        );
    }
    let t0 = std::time::Instant::now();
    let imgs = preprocess_frames(&mut ri, "resize", input, quiet)?;
    let msks = preprocess_frames(&mut rm, "masks", input, quiet)?;
    let s = stats(&imgs);
    if !quiet {
        crate::say!(
            "resized {} images and masks to {input} in {:.1} s; mean {:.3}, std {:.3}",
            imgs.len() / input.pixels(),
            t0.elapsed().as_secs_f64(),
            s.mean,
            s.std
        );
    }
    if s.std == 0.0 {
        bail!(
            "{}: every pixel has the same value; nothing to standardise",
            images.display()
        );
    }
    Ok(Prepared {
        images: standardise(&imgs, s, input)?,
        masks: unit_masks(&msks, input)?,
        samples: imgs.len() / input.pixels(),
        nerve: crate::split::nerve_present(&msks, input.pixels()),
        stats: Some(s),
        fingerprint: fingerprint(&[&imgs, &msks]),
        frame_size: Some(size),
    })
}

/// How many samples train when the last `validation_split` of `n` validate (Keras:
/// floor(n * (1 - split))).
pub(crate) fn train_count(n: usize, validation_split: f64) -> usize {
    (n as f64 * (1.0 - validation_split)).floor() as usize
}

/// The order of the training samples in `epoch` (0-based): shuffled from (seed, epoch)
/// alone, so a resumed run repeats the same order.
pub(crate) fn epoch_order(n_train: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<i64> {
    let mut order: Vec<i64> = (0..n_train as i64).collect();
    if shuffle {
        let mut rng =
            Pcg64Mcg::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TUTORIAL_INPUT;

    #[test]
    fn validation_is_the_last_share() {
        assert_eq!(train_count(100, 0.2), 80);
        assert_eq!(train_count(5635, 0.2), 4508);
        assert_eq!(train_count(10, 0.0), 10);
        assert_eq!(train_count(7, 0.2), 5); // floor(5.6)
    }

    #[test]
    fn shuffles_are_permutations_fixed_by_seed_and_epoch() {
        let a = epoch_order(50, 1, 0, true);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<i64>>());
        assert_eq!(a, epoch_order(50, 1, 0, true));
        assert_ne!(a, epoch_order(50, 1, 1, true));
        assert_ne!(a, epoch_order(50, 2, 0, true));
        assert_eq!(epoch_order(5, 1, 3, false), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn statistics_that_cannot_standardise_are_refused() {
        for (mean, std) in [
            (1.0, 0.0),
            (1.0, -2.0),
            (f64::NAN, 1.0),
            (1.0, f64::INFINITY),
        ] {
            let e = Stats { mean, std }.checked("w.h5").unwrap_err().to_string();
            assert!(e.starts_with("w.h5: mean"), "{e}");
        }
        assert!(Stats {
            mean: 0.0,
            std: 1e-3
        }
        .checked("x")
        .is_ok());
    }

    #[test]
    fn fingerprints_see_content_and_boundaries() {
        let a = fingerprint(&[b"ab", b"c"]);
        assert_eq!(a.len(), 32);
        assert_eq!(a, fingerprint(&[b"ab", b"c"]));
        assert_ne!(a, fingerprint(&[b"a", b"bc"]));
        assert_ne!(a, fingerprint(&[b"ab", b"d"]));
    }

    #[test]
    fn stats_are_population_mean_and_std() {
        let s = stats(&[0, 2, 4, 6]);
        assert_eq!(s.mean, 3.0);
        assert!((s.std - 5f64.sqrt()).abs() < 1e-12);
        let t = standardise(&[0, 2, 4, 6].repeat(96 * 96 / 4), s, TUTORIAL_INPUT).unwrap();
        assert_eq!(t.size(), [1, 1, 96, 96]);
        let first = t.view([-1]).double_value(&[0]);
        assert!((first + 3.0 / 5f64.sqrt()).abs() < 1e-6);
    }
}
