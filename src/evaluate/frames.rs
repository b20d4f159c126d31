//! The frames `evaluate` scores, read from the prepared arrays: only those wanted,
//! streaming past the rest.

use std::path::Path;

use anyhow::{bail, Result};

use super::EvalConfig;
use crate::data::npy::NpyReader;
use crate::frame::FrameSize;

/// Frames with their count and size.
type Frames = (Vec<u8>, usize, FrameSize);

/// Reads the frames `wanted(n)` (ascending indices, given the array's length) of a
/// uint8 (N, H, W) array, streaming past the others.
pub(super) fn select_frames(
    path: &Path,
    wanted: impl FnOnce(usize) -> Vec<usize>,
) -> Result<(Frames, Vec<usize>)> {
    let mut r = NpyReader::open(path)?;
    let size = FrameSize::of_frames(&r)?;
    let keep = wanted(r.shape[0] as usize);
    let px = size.pixels();
    let mut out = vec![0u8; keep.len() * px];
    let mut scratch = vec![0u8; px];
    let mut next = 0;
    for (k, &j) in keep.iter().enumerate() {
        while next < j {
            crate::interrupt::check()?;
            r.read_rows(&mut scratch)?;
            next += 1;
        }
        r.read_rows(&mut out[k * px..(k + 1) * px])?;
        next += 1;
    }
    Ok(((out, keep.len(), size), keep))
}

/// The number of frames of a uint8 (N, H, W) array.
pub(super) fn count(path: &Path) -> Result<u64> {
    Ok(NpyReader::open(path)?.shape.first().copied().unwrap_or(0))
}

/// The frames `scored` of the images and of the masks (the same size, at least one),
/// their count and size.
pub(super) fn frames_and_masks(
    cfg: &EvalConfig,
    scored: &[usize],
) -> Result<(Vec<u8>, Vec<u8>, usize, FrameSize)> {
    let ((frames, n, size), _) = select_frames(&cfg.images, |_| scored.to_vec())?;
    let ((truth, n_masks, mask_size), _) = select_frames(&cfg.masks, |_| scored.to_vec())?;
    if mask_size != size {
        bail!(
            "{} holds frames of {size} but {} holds masks of {mask_size}",
            cfg.images.display(),
            cfg.masks.display()
        );
    }
    if n != n_masks || n == 0 {
        bail!(
            "{} and {} give {n} and {n_masks} validation images",
            cfg.images.display(),
            cfg.masks.display()
        );
    }
    Ok((frames, truth, n, size))
}
