//! One 8-bit grayscale 420 x 580 TIFF, read with every property checked before anything
//! is decoded, or written through the atomic writer: LZW-compressed in one strip of 420
//! rows, as the real Kaggle TIFFs are, or uncompressed.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
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
/// each inside the file and no larger than the decoder may buffer. Returns the strip's
/// (offset, byte count) when there is one strip for all rows.
fn check_chunks<R: Read + Seek>(dec: &mut Decoder<R>, file_len: u64) -> Result<Option<(u64, u64)>> {
    use tiff::tags::Tag;
    let strips = dec.get_chunk_type() == tiff::decoder::ChunkType::Strip;
    let (offsets, counts) = if strips {
        (Tag::StripOffsets, Tag::StripByteCounts)
    } else {
        (Tag::TileOffsets, Tag::TileByteCounts)
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
    Ok((strips && offsets.len() == 1).then(|| (offsets[0], counts[0])))
}

/// Files up to this size are read whole and their LZW strip decoded by [`super::lzw`]:
/// the strip (at most twice the frame, as checked) and room for the tags.
const WHOLE: u64 = 2 * PIXELS as u64 + (64 << 10);

/// Reads an 8-bit single-channel 420 x 580 TIFF into `out` (row-major, PIXELS bytes).
/// Sizes are checked before anything is decoded; errors name the file and say what was
/// found.
pub fn read_frame(path: &Path, out: &mut [u8]) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if file_len > WHOLE {
        return decode_frame(path, BufReader::new(file), file_len, None, out);
    }
    let mut bytes = Vec::with_capacity(file_len as usize);
    file.take(WHOLE)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    let len = bytes.len() as u64;
    decode_frame(path, Cursor::new(&bytes[..]), len, Some(&bytes), out)
}

/// The checks and the decode of [`read_frame`], from the file or (`whole`) its bytes.
fn decode_frame<R: Read + Seek>(
    path: &Path,
    reader: R,
    file_len: u64,
    whole: Option<&[u8]>,
    out: &mut [u8],
) -> Result<()> {
    let mut dec = Decoder::new(reader)
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
    let strip = check_chunks(&mut dec, file_len)
        .with_context(|| format!("{}: TIFF is corrupt", path.display()))?;
    let lzw = whole
        .zip(strip)
        .and_then(|(b, strip)| plain_lzw_strip(&mut dec, b, strip));
    if let Some(strip) = lzw {
        if super::lzw::decode(strip, &mut out[..PIXELS]).is_some() {
            return Ok(());
        }
    }
    dec.read_image_bytes(&mut out[..PIXELS])
        .with_context(|| format!("{}: TIFF is truncated or corrupt", path.display()))?;
    Ok(())
}

/// The LZW bytes of a frame's one strip stored as the Kaggle TIFFs are (compression 5,
/// no predictor, min-is-black, the usual fill order), None for any other layout: those
/// are left to the `tiff` crate.
fn plain_lzw_strip<'a, R: Read + Seek>(
    dec: &mut Decoder<R>,
    bytes: &'a [u8],
    (offset, count): (u64, u64),
) -> Option<&'a [u8]> {
    use tiff::tags::Tag;
    let tag = |dec: &mut Decoder<R>, t: Tag, absent: u32| match dec.find_tag_unsigned::<u32>(t) {
        Ok(v) => Some(v.unwrap_or(absent)),
        Err(_) => None,
    };
    let plain = tag(dec, Tag::Compression, 1)? == 5
        && tag(dec, Tag::Predictor, 1)? == 1
        && tag(dec, Tag::PhotometricInterpretation, 0)? == 1
        && tag(dec, Tag::FillOrder, 1)? == 1
        && tag(dec, Tag::RowsPerStrip, u32::MAX)? >= HEIGHT as u32;
    if !plain {
        return None;
    }
    bytes.get(usize::try_from(offset).ok()?..usize::try_from(offset + count).ok()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: usize) -> Vec<u8> {
        let mut state = 1u32 + kind as u32;
        (0..PIXELS)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                match kind {
                    0 => (state >> 24) as u8,
                    1 => 0,
                    _ => ((i % WIDTH) / 3) as u8 ^ ((state >> 29) as u8),
                }
            })
            .collect()
    }

    /// The way every frame was read before the LZW decoder: all by the `tiff` crate.
    fn read_by_the_tiff_crate(path: &Path, out: &mut [u8]) -> Result<()> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        decode_frame(path, BufReader::new(file), len, None, out)
    }

    #[test]
    fn frames_read_as_the_tiff_crate_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        for kind in 0..3 {
            for compression in [Compression::Lzw, Compression::None] {
                let path = dir.path().join(format!("{kind}-{compression:?}.tif"));
                let f = frame(kind);
                write_gray8(&path, WIDTH, HEIGHT, &f, compression).unwrap();
                let (mut fast, mut slow) = (vec![1u8; PIXELS], vec![2u8; PIXELS]);
                read_frame(&path, &mut fast).unwrap();
                read_by_the_tiff_crate(&path, &mut slow).unwrap();
                assert!(fast == f && slow == f, "{kind} {compression:?}");
                // Only the Kaggle layout takes the fast decoder.
                let bytes = std::fs::read(&path).unwrap();
                let mut dec = Decoder::new(Cursor::new(&bytes[..])).unwrap();
                let first = check_chunks(&mut dec, bytes.len() as u64).unwrap().unwrap();
                let strip = plain_lzw_strip(&mut dec, &bytes, first);
                assert_eq!(strip.is_some(), compression == Compression::Lzw);
            }
        }
    }

    #[test]
    fn lzw_in_many_strips_is_the_tiff_crates() {
        use tiff::encoder::{colortype::Gray8, Compression as C, TiffEncoder};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strips.tif");
        let f = frame(2);
        let mut file = File::create(&path).unwrap();
        let mut enc = TiffEncoder::new(&mut file)
            .unwrap()
            .with_compression(C::Lzw);
        let mut img = enc.new_image::<Gray8>(WIDTH as u32, HEIGHT as u32).unwrap();
        img.rows_per_strip(16).unwrap();
        img.write_data(&f).unwrap();
        drop(file);
        let bytes = std::fs::read(&path).unwrap();
        let mut dec = Decoder::new(Cursor::new(&bytes[..])).unwrap();
        assert_eq!(check_chunks(&mut dec, bytes.len() as u64).unwrap(), None);
        let mut out = vec![0u8; PIXELS];
        read_frame(&path, &mut out).unwrap();
        assert!(out == f);
    }

    #[test]
    fn a_damaged_lzw_strip_fails_as_the_tiff_crate_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1_1.tif");
        write_gray8(&path, WIDTH, HEIGHT, &frame(2), Compression::Lzw).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let mut dec = Decoder::new(Cursor::new(&bytes[..])).unwrap();
        let (at, count) = check_chunks(&mut dec, bytes.len() as u64).unwrap().unwrap();
        // All ones in the strip's second half: 12-bit codes 4095, past the table's end.
        let (at, count) = (at as usize, count as usize);
        bytes[at + count / 2..at + count].fill(0xff);
        std::fs::write(&path, &bytes).unwrap();
        let mut out = vec![0u8; PIXELS];
        let fast = read_frame(&path, &mut out).unwrap_err();
        let slow = read_by_the_tiff_crate(&path, &mut out).unwrap_err();
        assert_eq!(format!("{fast:#}"), format!("{slow:#}"));
        assert!(format!("{fast}").contains("1_1.tif: TIFF is truncated or corrupt"));
    }
}
