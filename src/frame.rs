//! The size of a full frame. The Kaggle frames are 420 rows x 580 columns, but after
//! `prepare` nothing depends on that: every stage takes uint8 (N, H, W) frames of one
//! size, resizes them to the network's 96 x 96 and resizes predictions back to H x W.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};

use crate::data::npy::{Dtype, NpyReader};

/// Rows and columns of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameSize {
    pub height: usize,
    pub width: usize,
}

/// The Kaggle frames' size.
pub const KAGGLE: FrameSize = FrameSize {
    height: 420,
    width: 580,
};

/// The largest side accepted: far above any scanner's frame, small enough that a frame
/// (and its resizing tables) always fits in memory.
pub const MAX_SIDE: usize = 16_384;

impl FrameSize {
    /// A size with both sides in 1..=MAX_SIDE.
    pub fn new(height: usize, width: usize) -> Result<FrameSize> {
        if !(1..=MAX_SIDE).contains(&height) || !(1..=MAX_SIDE).contains(&width) {
            bail!("a frame of {height} x {width} pixels: each side must be 1 to {MAX_SIDE}");
        }
        Ok(FrameSize { height, width })
    }

    pub fn pixels(self) -> usize {
        self.height * self.width
    }

    /// The frame size of a uint8 (N, H, W) array, checked.
    pub(crate) fn of_frames(reader: &NpyReader) -> Result<FrameSize> {
        match (reader.dtype, reader.shape.as_slice()) {
            (Dtype::U8, &[_, h, w]) => FrameSize::new(h as usize, w as usize)
                .map_err(|e| anyhow::anyhow!("{}: {e}", reader.path().display())),
            _ => bail!(
                "{}: expected uint8 frames (N, H, W), found {} of shape {:?}",
                reader.path().display(),
                reader.dtype.name(),
                reader.shape
            ),
        }
    }
}

impl FrameSize {
    /// The size of the maps in a float32 (N, h, w, 1) array of probability maps (or
    /// model-ready frames), checked.
    pub(crate) fn of_maps(reader: &NpyReader) -> Result<FrameSize> {
        match (reader.dtype, reader.shape.as_slice()) {
            (Dtype::F32, &[_, h, w, 1]) => FrameSize::new(h as usize, w as usize)
                .map_err(|e| anyhow::anyhow!("{}: {e}", reader.path().display())),
            _ => bail!(
                "{}: expected a float32 array of shape (N, 96, 96, 1), or (N, h, w, 1) from a \
                 network of another input size, found {} of shape {:?}",
                reader.path().display(),
                reader.dtype.name(),
                reader.shape
            ),
        }
    }
}

impl fmt::Display for FrameSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x {}", self.height, self.width)
    }
}

/// `HxW` (rows x columns), as in `--size 512x512`.
impl FromStr for FrameSize {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<FrameSize, String> {
        let bad = || format!("'{s}' is not a size: write rows x columns, e.g. 420x580");
        let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let side = |v: &str| v.trim().parse::<usize>().map_err(|_| bad());
        FrameSize::new(side(h)?, side(w)?).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_rows_by_columns() {
        assert_eq!("420x580".parse::<FrameSize>().unwrap(), KAGGLE);
        assert_eq!("512X256".parse::<FrameSize>().unwrap().width, 256);
        for bad in ["420", "x580", "0x5", "5x-1", "99999x2", "axb"] {
            assert!(bad.parse::<FrameSize>().is_err(), "{bad}");
        }
        assert_eq!(KAGGLE.to_string(), "420 x 580");
        assert_eq!(KAGGLE.pixels(), 243_600);
    }
}
