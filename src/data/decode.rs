//! One image file of a user's folder (PNG, JPEG, TIFF or BMP) decoded into 8-bit
//! grayscale for a frame, or into labels for a mask, with its size read and limited
//! before any pixel is decoded.
//!
//! Colour frames become gray as scikit-image's `rgb2gray` makes them (0.2125 R +
//! 0.7154 G + 0.0721 B on values in [0, 1], rounded back to uint8), RGBA after
//! `rgba2rgb` (composited on white); 16-bit frames are scaled as `img_as_ubyte` does
//! (v >> 8). Masks keep their palette indices, so a palette mask's classes can be told
//! apart (the `image` crate would expand them to colours; the `png` crate is asked not
//! to).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use crate::frame::{FrameSize, MAX_SIDE};

/// The most a decoder may allocate for one file: a 16,384 x 16,384 8-bit frame, with
/// room for a 16-bit RGBA one of about 5,000 x 5,000.
const MAX_ALLOC: u64 = 256 << 20;

/// A file may decode to at most this many bytes per byte it holds, plus `SLACK`:
/// deflate (PNG) expands at most about 1,032 times, and real frames far less, so a
/// small file that claims a huge frame is refused before the frame is allocated.
const MAX_RATIO: u64 = 2048;
const SLACK: u64 = 4 << 20;

/// File name extensions read from a folder, lower case.
pub const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "tif", "tiff", "bmp"];

/// Whether a path names a file of a supported kind (by its extension).
pub fn is_supported(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A decoded frame.
pub struct Gray {
    pub size: FrameSize,
    /// Row-major 8-bit pixels.
    pub pixels: Vec<u8>,
    /// What was converted on the way, for a note ("16-bit", "RGB").
    pub converted: Option<&'static str>,
}

/// A decoded mask: one label per pixel.
pub struct Labels {
    pub size: FrameSize,
    pub values: Vec<u8>,
    /// JPEG: values near 0 and 255 are not exact.
    pub lossy: bool,
}

/// The largest side of a frame read from a folder unless `--max-side` says otherwise:
/// an 8,192 x 8,192 8-bit frame decodes in 64 MB (about 0.5 GB at the peak of
/// `prepare`), far above any scanner's frame.
pub const DEFAULT_MAX_SIDE: usize = 8_192;

static MAX_SIDE_NOW: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_SIDE);

/// Sets the largest side of a frame read from here on (`--max-side`), 1 to
/// [`MAX_SIDE`].
pub fn set_max_side(side: usize) -> Result<()> {
    if !(1..=MAX_SIDE).contains(&side) {
        bail!("--max-side {side}: give 1 to {MAX_SIDE} pixels");
    }
    MAX_SIDE_NOW.store(side, Ordering::Relaxed);
    Ok(())
}

fn max_side() -> usize {
    MAX_SIDE_NOW.load(Ordering::Relaxed)
}

fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(max_side() as u32);
    l.max_image_height = Some(max_side() as u32);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

/// Refuses a frame of `w` x `h` pixels with a side over `--max-side`.
fn check_side(path: &Path, format: ImageFormat, (w, h): (usize, usize)) -> Result<()> {
    if w <= max_side() && h <= max_side() {
        return Ok(());
    }
    let kind = image::error::LimitErrorKind::DimensionError;
    let e = image::ImageError::Limits(image::error::LimitError::from_kind(kind));
    Err(explain(path, format, e))
}

/// A decoder's error for `path`, in words (see `image_error`).
fn explain(path: &Path, format: ImageFormat, e: image::ImageError) -> anyhow::Error {
    super::image_error::explain(path, format, e, max_side(), MAX_ALLOC)
}

fn reader(path: &Path) -> Result<ImageReader<BufReader<File>>> {
    // The content decides the format, not the name: a text file named .jpg is "not an
    // image", not a JPEG with bad markers.
    let mut head = [0u8; 32];
    let n = {
        use std::io::Read;
        let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
            }
        }
        n
    };
    if n == 0 {
        bail!("{}: empty file (0 bytes)", path.display());
    }
    let format = match image::guess_format(&head[..n]) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Tiff | ImageFormat::Bmp)) => f,
        _ => bail!(
            "{}: not a PNG, JPEG, TIFF or BMP image (its first bytes say neither)",
            path.display()
        ),
    };
    let mut r = ImageReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    r.set_format(format);
    r.limits(limits());
    Ok(r)
}

/// The size of an image from its header alone.
pub fn dimensions(path: &Path) -> Result<FrameSize> {
    let r = reader(path)?;
    let format = r.format().unwrap_or(ImageFormat::Png);
    let (w, h) = r.into_dimensions().map_err(|e| explain(path, format, e))?;
    check_side(path, format, (w as usize, h as usize))?;
    FrameSize::new(h as usize, w as usize).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Refuses a file whose header claims more decoded bytes than its size can hold.
fn check_claim(path: &Path, (w, h): (u32, u32), decoded: u64) -> Result<()> {
    let held = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if decoded > MAX_ALLOC || decoded > held.saturating_mul(MAX_RATIO) + SLACK {
        bail!(
            "{}: its header claims {h} x {w} pixels ({} MB decoded) in a file of {held} bytes; \
             truncated or damaged?",
            path.display(),
            decoded >> 20
        );
    }
    Ok(())
}

/// The decoded image, its size and its format.
fn decode(path: &Path) -> Result<(DynamicImage, FrameSize, ImageFormat)> {
    use image::ImageDecoder;
    let r = reader(path)?;
    let format = r.format().unwrap_or(ImageFormat::Png);
    let bad = |e: image::ImageError| explain(path, format, e);
    let dec = r.into_decoder().map_err(bad)?;
    check_claim(path, dec.dimensions(), dec.total_bytes())?;
    let img = DynamicImage::from_decoder(dec).map_err(bad)?;
    let size = FrameSize::new(img.height() as usize, img.width() as usize)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((img, size, format))
}

/// A colour frame as 8-bit RGB, for pictures (RGBA on white, as the gray frame is).
pub(crate) fn read_rgb(path: &Path) -> Result<image::RgbImage> {
    let (img, _, _) = decode(path)?;
    Ok(match img {
        DynamicImage::ImageRgba8(_) | DynamicImage::ImageRgba16(_) => {
            let rgba = img.to_rgba8();
            image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let p = rgba.get_pixel(x, y).0;
                let a = p[3] as f64 / 255.0;
                let over = |c: u8| ((1.0 - a) * 255.0 + a * c as f64).round() as u8;
                image::Rgb([over(p[0]), over(p[1]), over(p[2])])
            })
        }
        other => other.to_rgb8(),
    })
}

/// scikit-image's `rgb2gray` of one pixel with channels in [0, 1], back in 0..=255.
fn rgb2gray(r: f64, g: f64, b: f64) -> u8 {
    ((0.2125 * r + 0.7154 * g + 0.0721 * b) * 255.0)
        .round()
        .clamp(0.0, 255.0) as u8
}

/// scikit-image's `rgba2rgb` (on a white background) then `rgb2gray`.
fn rgba2gray(r: f64, g: f64, b: f64, a: f64) -> u8 {
    let over_white = |c: f64| (1.0 - a) + a * c;
    rgb2gray(over_white(r), over_white(g), over_white(b))
}

/// Reads a frame as 8-bit grayscale.
pub fn read_gray(path: &Path) -> Result<Gray> {
    let (img, size, _) = decode(path)?;
    let (pixels, converted): (Vec<u8>, _) = match img {
        DynamicImage::ImageLuma8(i) => (i.into_raw(), None),
        // Gray with alpha: composited on white, as RGBA is.
        DynamicImage::ImageLumaA8(i) => {
            let f = |v: u8| v as f64 / 255.0;
            let px = i
                .pixels()
                .map(|p| rgba2gray(f(p[0]), f(p[0]), f(p[0]), f(p[1])));
            (px.collect(), Some("gray+alpha"))
        }
        DynamicImage::ImageLuma16(i) => (
            i.pixels().map(|p| (p[0] >> 8) as u8).collect(),
            Some("16-bit"),
        ),
        DynamicImage::ImageLumaA16(i) => {
            let f = |v: u16| v as f64 / 65535.0;
            let px = i
                .pixels()
                .map(|p| rgba2gray(f(p[0]), f(p[0]), f(p[0]), f(p[1])));
            (px.collect(), Some("16-bit gray+alpha"))
        }
        DynamicImage::ImageRgb8(i) => {
            let f = |v: u8| v as f64 / 255.0;
            let px = i.pixels().map(|p| rgb2gray(f(p[0]), f(p[1]), f(p[2])));
            (px.collect(), Some("RGB"))
        }
        DynamicImage::ImageRgba8(i) => {
            let f = |v: u8| v as f64 / 255.0;
            let px = i
                .pixels()
                .map(|p| rgba2gray(f(p[0]), f(p[1]), f(p[2]), f(p[3])));
            (px.collect(), Some("RGBA"))
        }
        DynamicImage::ImageRgb16(i) => {
            let f = |v: u16| v as f64 / 65535.0;
            let px = i.pixels().map(|p| rgb2gray(f(p[0]), f(p[1]), f(p[2])));
            (px.collect(), Some("16-bit RGB"))
        }
        DynamicImage::ImageRgba16(i) => {
            let f = |v: u16| v as f64 / 65535.0;
            let px = i
                .pixels()
                .map(|p| rgba2gray(f(p[0]), f(p[1]), f(p[2]), f(p[3])));
            (px.collect(), Some("16-bit RGBA"))
        }
        other => bail!(
            "{}: {:?} pixels are not read; save the frame as 8- or 16-bit gray or RGB",
            path.display(),
            other.color()
        ),
    };
    Ok(Gray {
        size,
        pixels,
        converted,
    })
}

/// Reads a mask as labels: palette PNGs give their palette indices, other files their
/// gray values (16-bit ones scaled to 8 bits unless every value already fits).
pub fn read_labels(path: &Path) -> Result<Labels> {
    if let Some(values) = palette_indices(path)? {
        return Ok(values);
    }
    let (img, size, format) = decode(path)?;
    let lossy = format == ImageFormat::Jpeg;
    let values = match img {
        DynamicImage::ImageLuma16(i) => {
            let raw = i.into_raw();
            let shift = if raw.iter().all(|&v| v <= 255) { 0 } else { 8 };
            raw.iter().map(|&v| (v >> shift) as u8).collect()
        }
        other => read_gray_of(other),
    };
    Ok(Labels {
        size,
        values,
        lossy,
    })
}

fn read_gray_of(img: DynamicImage) -> Vec<u8> {
    match img {
        DynamicImage::ImageLuma8(i) => i.into_raw(),
        other => other.to_luma8().into_raw(),
    }
}

/// The palette indices of an indexed PNG, or `None` for any other file.
fn palette_indices(path: &Path) -> Result<Option<Labels>> {
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Ok(None);
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut dec = png::Decoder::new_with_limits(
        BufReader::new(file),
        png::Limits {
            bytes: MAX_ALLOC as usize,
        },
    );
    dec.set_transformations(png::Transformations::IDENTITY);
    let bad = |e: png::DecodingError| super::image_error::explain_png(path, e);
    let mut r = dec.read_info().map_err(bad)?;
    let info = r.info();
    if info.color_type != png::ColorType::Indexed {
        return Ok(None);
    }
    let (w, h) = (info.width as usize, info.height as usize);
    check_side(path, ImageFormat::Png, (w, h))?;
    let size = FrameSize::new(h, w).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let bits = info.bit_depth as usize;
    check_claim(
        path,
        (info.width, info.height),
        (size.pixels() * bits).div_ceil(8) as u64,
    )?;
    let len = r
        .output_buffer_size()
        .ok_or_else(|| anyhow!("{}: the image is too large to decode", path.display()))?;
    let mut buf = vec![0u8; len];
    let out = r.next_frame(&mut buf).map_err(bad)?;
    let stride = out.line_size;
    let mut values = Vec::with_capacity(size.pixels());
    for row in buf.chunks(stride).take(h) {
        values.extend((0..w).map(|x| {
            let bit = x * bits;
            let byte = row[bit / 8];
            // Packed samples, most significant first (PNG spec 7.2).
            (byte >> (8 - bits - bit % 8)) & ((1u16 << bits) - 1) as u8
        }));
    }
    Ok(Some(Labels {
        size,
        values,
        lossy: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_weights_are_scikit_images() {
        assert_eq!(rgb2gray(1.0, 1.0, 1.0), 255);
        assert_eq!(rgb2gray(1.0, 0.0, 0.0), 54); // 0.2125 * 255 = 54.19
        assert_eq!(rgb2gray(0.0, 1.0, 0.0), 182); // 182.43
        assert_eq!(rgb2gray(0.0, 0.0, 1.0), 18); // 18.39
        assert_eq!(rgba2gray(0.0, 0.0, 0.0, 0.0), 255); // transparent: the white behind
        assert_eq!(rgba2gray(0.2, 0.2, 0.2, 1.0), 51); // opaque gray stays (weights sum to 1)
        assert_eq!(rgba2gray(0.0, 0.0, 0.0, 0.5), 128); // half black over white
    }
}
