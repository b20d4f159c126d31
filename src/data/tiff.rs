//! One 8-bit grayscale 420 x 580 TIFF, read with every property checked before anything
//! is decoded, or written through the atomic writer: LZW-compressed in one strip of 420
//! rows, as the real Kaggle TIFFs are, or uncompressed.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use tiff::decoder::{Decoder, Limits};
use tiff::ColorType;

/// Rows of a Kaggle frame.
pub const HEIGHT: usize = 420;
/// Columns of a Kaggle frame.
pub const WIDTH: usize = 580;
/// Pixels of a Kaggle frame.
pub const PIXELS: usize = HEIGHT * WIDTH;

/// Describes a TIFF colour type the way a person would say it.
struct Kind(ColorType);

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ColorType::Gray(b) => write!(f, "{b}-bit grayscale"),
            ColorType::RGB(b) => write!(f, "{b}-bit RGB"),
            ColorType::RGBA(b) => write!(f, "{b}-bit RGBA"),
            ColorType::GrayA(b) => write!(f, "{b}-bit grayscale with alpha"),
            ColorType::Palette(b) => write!(f, "{b}-bit palette"),
            ColorType::CMYK(b) => write!(f, "{b}-bit CMYK"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The `tiff` crate's limits for one 8-bit frame: no decoded buffer larger than the
/// frame, no compressed strip larger than twice it (LZW can grow noise a little).
fn limits() -> Limits {
    let mut l = Limits::default();
    l.decoding_buffer_size = PIXELS;
    l.intermediate_buffer_size = 2 * PIXELS;
    l
}

/// Checks the strips (or tiles) the IFD lists before any is read: at most one per row,
/// each inside the file and no larger than the decoder may buffer.
fn check_chunks(dec: &mut Decoder<BufReader<File>>, file_len: u64) -> Result<()> {
    use tiff::tags::Tag;
    let (offsets, counts) = match dec.get_chunk_type() {
        tiff::decoder::ChunkType::Strip => (Tag::StripOffsets, Tag::StripByteCounts),
        tiff::decoder::ChunkType::Tile => (Tag::TileOffsets, Tag::TileByteCounts),
    };
    let offsets = dec.get_tag_u64_vec(offsets).context("no strip offsets")?;
    let counts = dec
        .get_tag_u64_vec(counts)
        .context("no strip byte counts")?;
    ensure!(
        offsets.len() == counts.len() && !counts.is_empty() && counts.len() <= HEIGHT,
        "{} chunk offsets and {} byte counts for a frame of {HEIGHT} rows (at most {HEIGHT} \
         strips or tiles, one offset and one count each)",
        offsets.len(),
        counts.len()
    );
    for (i, (&o, &c)) in offsets.iter().zip(&counts).enumerate() {
        let end = o.checked_add(c);
        ensure!(
            end.is_some_and(|e| e <= file_len) && c <= 2 * PIXELS as u64,
            "strip {i} claims {c} bytes at offset {o}, outside the {file_len}-byte file"
        );
    }
    Ok(())
}

/// Reads an 8-bit single-channel 420 x 580 TIFF into `out` (row-major, PIXELS bytes).
/// Sizes are checked before anything is decoded; errors name the file and say what was
/// found.
pub fn read_frame(path: &Path, out: &mut [u8]) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let mut dec = Decoder::new(BufReader::new(file))
        .with_context(|| format!("{}: not a readable TIFF file", path.display()))?
        .with_limits(limits());
    let (w, h) = dec
        .dimensions()
        .with_context(|| format!("{}: not a readable TIFF file", path.display()))?;
    let kind = dec
        .colortype()
        .with_context(|| format!("{}: unsupported TIFF", path.display()))?;
    if kind != ColorType::Gray(8) {
        bail!(
            "{}: image is {}, expected 8-bit single-channel grayscale",
            path.display(),
            Kind(kind)
        );
    }
    if (w as usize, h as usize) != (WIDTH, HEIGHT) {
        bail!(
            "{}: image is {h} rows x {w} columns, expected {HEIGHT} rows x {WIDTH} columns",
            path.display()
        );
    }
    check_chunks(&mut dec, file_len)
        .with_context(|| format!("{}: TIFF is corrupt", path.display()))?;
    dec.read_image_bytes(&mut out[..PIXELS])
        .with_context(|| format!("{}: TIFF is truncated or corrupt", path.display()))?;
    Ok(())
}

/// Reads a mask like [`read_frame`] and checks that it holds only 0 and 255.
pub fn read_mask(path: &Path, out: &mut [u8]) -> Result<()> {
    read_frame(path, out)?;
    // A branch-free pass first (it vectorises); the search for the culprit only on failure.
    let binary = out[..PIXELS]
        .chunks(4096)
        .all(|c| c.iter().fold(true, |ok, &v| ok & ((v == 0) | (v == 255))));
    if binary {
        return Ok(());
    }
    if let Some(v) = out[..PIXELS].iter().find(|&&v| v != 0 && v != 255) {
        bail!(
            "{}: mask holds the value {v}; Kaggle masks hold only 0 and 255",
            path.display()
        );
    }
    Ok(())
}

/// How `write_gray8` stores the pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// As the Kaggle TIFFs: LZW (compression 5), no predictor, one strip.
    #[default]
    Lzw,
    /// Uncompressed (compression 1), one strip.
    None,
}

/// Writes an 8-bit min-is-black grayscale TIFF in one strip of all its rows (as the
/// Kaggle TIFFs: RowsPerStrip 420) through a temporary file.
pub fn write_gray8(
    path: &Path,
    width: usize,
    height: usize,
    data: &[u8],
    compression: Compression,
) -> Result<()> {
    use tiff::encoder::{Compression as C, TiffEncoder};
    crate::atomic::write_with(path, |w| {
        let mut enc = TiffEncoder::new(w)?.with_compression(match compression {
            Compression::Lzw => C::Lzw,
            Compression::None => C::Uncompressed,
        });
        let mut img =
            enc.new_image::<tiff::encoder::colortype::Gray8>(width as u32, height as u32)?;
        img.rows_per_strip(height as u32)?;
        img.write_data(data)
            .with_context(|| format!("writing {}", path.display()))
    })?;
    Ok(())
}
