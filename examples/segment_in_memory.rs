//! Segmenting frames held in memory with nerveseg's library: load a checkpoint once,
//! then hand it batches of 8-bit gray frames and get masks and probabilities back,
//! without writing any file in between.
//!
//! ```sh
//! cargo run --release --example segment_in_memory -- weights/weights.h5 frame1.png frame2.png
//! ```
//!
//! Each frame's mask is written beside it as `{stem}_mask.png` (0/255) to show the
//! result; a program would use `Segmentation::mask` directly.

use std::path::Path;

use anyhow::{bail, Context, Result};
use nerveseg::frame::FrameSize;
use nerveseg::segment::Segmenter;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((weights, frames)) = args.split_first().filter(|(_, f)| !f.is_empty()) else {
        bail!("usage: segment_in_memory WEIGHTS.h5 FRAME.png [FRAME.png ...]");
    };
    // Loaded once; every call below reuses it.
    let model = Segmenter::from_weights(weights)?;
    for path in frames {
        let gray = image::open(path)
            .with_context(|| format!("reading {path}"))?
            .to_luma8();
        let size = FrameSize::new(gray.height() as usize, gray.width() as usize)?;
        // A batch of one frame here; several frames of one size go in one buffer.
        let result = model.segment(gray.as_raw(), size)?.remove(0);
        println!(
            "{path}: {} nerve pixels, peak probability {:.3}",
            result.area,
            result.peak()
        );
        let stem = Path::new(path)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy();
        let out = Path::new(path).with_file_name(format!("{stem}_mask.png"));
        image::GrayImage::from_raw(gray.width(), gray.height(), result.mask)
            .context("the mask has the frame's size")?
            .save(&out)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
