//! A decoder's error as one line a user can act on, naming the file: "damaged PNG (bad
//! checksum in its image data)" rather than the decoder's debug text, the frame's size
//! beside the limit it broke, "truncated" for a file that ends early.

use std::path::Path;

use anyhow::anyhow;
use image::error::{ImageError, LimitErrorKind};
use image::ImageFormat;

/// The format's usual name.
fn name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Bmp => "BMP",
        _ => "image",
    }
}

/// What a PNG chunk holds, for "bad checksum in its ...".
fn chunk(kind: &str) -> String {
    match kind {
        "IDAT" => "image data".to_owned(),
        "IHDR" => "header".to_owned(),
        "PLTE" => "palette".to_owned(),
        other => format!("{other} chunk"),
    }
}

/// The decoder's own words, without its "Format error decoding Png: " preamble and
/// with a PNG checksum error said plainly.
fn decoding(format: ImageFormat, text: &str) -> String {
    if let Some(at) = text.find("CRC error") {
        let kind = text[at..]
            .split("type: ")
            .nth(1)
            .map(|t| {
                t.chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect::<String>()
            })
            .filter(|t| t.len() == 4);
        let what = kind.map_or_else(|| "a chunk".to_owned(), |k| chunk(&k));
        return format!("damaged {} (bad checksum in its {what})", name(format));
    }
    let rest = text
        .split_once(": ")
        .map_or(text, |(_, r)| r)
        .trim_end_matches('.');
    format!("damaged {} ({rest})", name(format))
}

/// `e`, met decoding `path` as `format`, as one line naming the file. `max_side` and
/// `max_bytes` are the limits the decoder was given.
pub(crate) fn explain(
    path: &Path,
    format: ImageFormat,
    e: ImageError,
    max_side: usize,
    max_bytes: u64,
) -> anyhow::Error {
    let what = match &e {
        ImageError::Decoding(_) => decoding(format, &e.to_string()),
        ImageError::Limits(l) => match l.kind() {
            LimitErrorKind::DimensionError => {
                let size = image::image_dimensions(path)
                    .map(|(w, h)| format!("a frame of {h} x {w} pixels"))
                    .unwrap_or_else(|_| "a frame".to_owned());
                format!(
                    "{size}, over the limit of {max_side} pixels a side (--max-side raises it, \
                     up to {})",
                    crate::frame::MAX_SIDE
                )
            }
            LimitErrorKind::InsufficientMemory => format!(
                "decoding it would take more than the {} MB a frame may use",
                max_bytes >> 20
            ),
            _ => e.to_string(),
        },
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("truncated {} (the file ends early)", name(format))
        }
        _ => e.to_string(),
    };
    anyhow!("{}: {what}", path.display())
}

/// The `png` crate's error (palette masks are read with it), as [`explain`] says it.
pub(crate) fn explain_png(path: &Path, e: png::DecodingError) -> anyhow::Error {
    let what = match &e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated PNG (the file ends early)".to_owned()
        }
        _ => decoding(ImageFormat::Png, &format!("Format error decoding Png: {e}")),
    };
    anyhow!("{}: {what}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::decode::{read_gray, read_labels, set_max_side, DEFAULT_MAX_SIDE};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 7 + y * 3) as u8]))
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    fn palette_png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = ::png::Encoder::new(&mut out, w, h);
        enc.set_color(::png::ColorType::Indexed);
        enc.set_depth(::png::BitDepth::Eight);
        enc.set_palette(vec![0, 0, 0, 255, 0, 0, 0, 255, 0]);
        let mut writer = enc.write_header().unwrap();
        let data: Vec<u8> = (0..w * h).map(|i| (i % 3) as u8).collect();
        writer.write_image_data(&data).unwrap();
        drop(writer);
        out
    }

    fn error_of(bytes: &[u8], read: fn(&Path) -> anyhow::Result<()>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.png");
        std::fs::write(&path, bytes).unwrap();
        let e = format!("{:#}", read(&path).unwrap_err());
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        e.split_once(": ").unwrap().1.to_owned()
    }

    fn gray(p: &Path) -> anyhow::Result<()> {
        read_gray(p).map(|_| ())
    }

    fn labels(p: &Path) -> anyhow::Result<()> {
        read_labels(p).map(|_| ())
    }

    #[test]
    fn files_that_are_empty_damaged_or_too_large_are_said_plainly() {
        assert_eq!(error_of(b"", gray), "empty file (0 bytes)");
        // One bit of the image data flipped: the stream is corrupt. One bit of its
        // checksum flipped: the png crate, reading a palette mask, says so.
        let flip = |mut bytes: Vec<u8>| {
            let idat = bytes.windows(4).position(|w| w == b"IDAT").unwrap();
            bytes[idat + 6] ^= 0x10;
            bytes
        };
        let e = error_of(&flip(png(40, 30)), gray);
        assert!(
            e.starts_with("damaged PNG (") && !e.contains("Format error"),
            "{e}"
        );
        let mut crc = palette_png(40, 30);
        let idat = crc.windows(4).position(|w| w == b"IDAT").unwrap();
        let len = u32::from_be_bytes(crc[idat - 4..idat].try_into().unwrap()) as usize;
        crc[idat + 4 + len] ^= 0x10;
        assert_eq!(
            error_of(&crc, labels),
            "damaged PNG (bad checksum in its image data)"
        );
        // A valid frame wider than the limit, then read with the limit raised.
        let wide = png(DEFAULT_MAX_SIDE as u32 + 8, 2);
        assert_eq!(
            error_of(&wide, gray),
            format!(
                "a frame of 2 x {} pixels, over the limit of {DEFAULT_MAX_SIDE} pixels a side \
                 (--max-side raises it, up to 16384)",
                DEFAULT_MAX_SIDE + 8
            )
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.png"), &wide).unwrap();
        set_max_side(DEFAULT_MAX_SIDE + 8).unwrap();
        let read = read_gray(&dir.path().join("w.png"));
        set_max_side(DEFAULT_MAX_SIDE).unwrap();
        assert_eq!(read.unwrap().size.width, DEFAULT_MAX_SIDE + 8);
        assert!(set_max_side(16_385).is_err());
    }

    #[test]
    fn a_png_checksum_error_is_said_plainly() {
        let text = "Format error decoding Png: CRC error: expected 0x37a3fe78 have 0x13ea692a \
                    while decoding ChunkType { type: IDAT, critical: true, private: false, \
                    reserved: false, safecopy: false } chunk.";
        assert_eq!(
            decoding(ImageFormat::Png, text),
            "damaged PNG (bad checksum in its image data)"
        );
        assert_eq!(
            decoding(
                ImageFormat::Jpeg,
                "Format error decoding Jpeg: invalid marker."
            ),
            "damaged JPEG (invalid marker)"
        );
    }
}
