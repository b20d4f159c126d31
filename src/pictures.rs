//! Pictures for people: the original's `preds/{id}_pred.png`, full-size overlays of the
//! predicted (red) and true (green) outlines on the ultrasound frame (the training
//! curves are `plot`'s). Every PNG is written through a temporary file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::{ImageFormat, RgbImage};

use crate::data::npy::NpyReader;
use crate::data::tiff;
use crate::frame::FrameSize;
use crate::predict::Predictions;
use crate::submission::{enlarger, MaskRule};

pub(crate) fn save_png(path: &Path, img: &image::DynamicImage) -> Result<()> {
    crate::atomic::write_with(path, |w| {
        img.write_to(w, ImageFormat::Png)
            .with_context(|| format!("writing {}", path.display()))
    })?;
    Ok(())
}

/// A safe point before picture `k` of `n`: an interrupt says how many were written.
fn stop_point(k: usize, n: usize, what: &str, dir: &Path) -> Result<()> {
    crate::interrupt::keeping(crate::interrupt::check(), |_| {
        format!("{k} of {n} {what} were written to {}", dir.display())
    })
}

/// `dir/{id}_pred.png`: uint8(prob * 255) of each map (96 x 96 for the tutorial's
/// network), as the original wrote them.
pub(crate) fn write_pred_pngs(dir: &Path, ids: &[i32], preds: &Predictions) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let map = preds.size;
    for (k, (id, p)) in ids.iter().zip(preds.maps.chunks(map.pixels())).enumerate() {
        stop_point(k, ids.len(), "prediction PNGs", dir)?;
        let bytes: Vec<u8> = p.iter().map(|&v| (v * 255.0) as u8).collect();
        let img = image::GrayImage::from_raw(map.width as u32, map.height as u32, bytes)
            .with_context(|| format!("building a {map} picture"))?;
        save_png(
            &dir.join(format!("{id}_pred.png")),
            &image::DynamicImage::ImageLuma8(img),
        )?;
    }
    Ok(())
}

/// Pixels of a 0/1 mask of `size` that touch a pixel outside it (4-neighbourhood).
fn outline(mask: &[u8], size: FrameSize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let FrameSize { height, width } = size;
    (0..height)
        .flat_map(move |y| (0..width).map(move |x| (y, x)))
        .filter(move |&(y, x)| {
            let on = |yy: usize, xx: usize| mask[yy * width + xx] != 0;
            on(y, x)
                && (y == 0
                    || x == 0
                    || y + 1 == height
                    || x + 1 == width
                    || !on(y - 1, x)
                    || !on(y + 1, x)
                    || !on(y, x - 1)
                    || !on(y, x + 1))
        })
}

/// The Dice of two 0/1 masks, 1 when both are empty (as the competition scores it).
pub fn dice(a: &[u8], b: &[u8]) -> f64 {
    let (mut both, mut total) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        both += (x != 0 && y != 0) as usize;
        total += (x != 0) as usize + (y != 0) as usize;
    }
    if total == 0 {
        1.0
    } else {
        2.0 * both as f64 / total as f64
    }
}

/// What an overlay's caption says: which outline is which, the frame's Dice when the
/// truth is known, and that an empty prediction is one (not a frame left out).
pub(crate) fn caption_of(pred: &[u8], truth: Option<&[u8]>) -> String {
    let empty = !pred.iter().any(|&v| v != 0);
    let predicted = if empty {
        "no nerve predicted"
    } else {
        "red: predicted"
    };
    match truth {
        Some(t) => format!("{predicted}; green: true; Dice {:.2}", dice(pred, t)),
        None => predicted.to_owned(),
    }
}

/// Writes `text` in white on a dark band across the top of `img`.
fn caption(img: &mut RgbImage, text: &str) {
    use plotters::prelude::*;
    let (w, h) = img.dimensions();
    let _ =
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    let px = (h / 28).clamp(10, 22);
    let root = BitMapBackend::with_buffer(img, (w, h)).into_drawing_area();
    let band = Rectangle::new([(0, 0), (w as i32, px as i32 + 8)], BLACK.mix(0.6).filled());
    let font = ("sans-serif", px).into_font().color(&WHITE);
    // A picture without its caption is still the picture: drawing errors are ignored.
    let _ = root.draw(&band);
    let _ = root.draw(&Text::new(text.to_owned(), (5, 4), font));
    let _ = root.present();
}

/// A frame of `size` in gray with the outline of the predicted 0/1 mask in red and, when
/// given, of the true one in green, captioned (see [`caption_of`]).
pub(crate) fn overlay(
    frame: &[u8],
    size: FrameSize,
    pred: &[u8],
    truth: Option<&[u8]>,
) -> RgbImage {
    draw_outlines(gray_to_rgb(frame, size), pred, truth)
}

/// The outlines and caption of [`overlay`] drawn on a picture of the frame in colour
/// (of the frame's size).
pub(crate) fn draw_outlines(mut img: RgbImage, pred: &[u8], truth: Option<&[u8]>) -> RgbImage {
    let size = FrameSize {
        height: img.height() as usize,
        width: img.width() as usize,
    };
    if let Some(t) = truth {
        for (y, x) in outline(t, size) {
            img.put_pixel(x as u32, y as u32, image::Rgb([40, 220, 40]));
        }
    }
    let mut img = outline_in_red(img, pred);
    caption(&mut img, &caption_of(pred, truth));
    img
}

/// The predicted outline's colour.
pub(crate) const RED: [u8; 3] = [240, 30, 30];

/// The outline of the predicted mask `pred` (nonzero: in) drawn in red on `img`, without
/// a caption (a video frame of `stream --overlay`).
pub(crate) fn outline_in_red(mut img: RgbImage, pred: &[u8]) -> RgbImage {
    let size = FrameSize {
        height: img.height() as usize,
        width: img.width() as usize,
    };
    for (y, x) in outline(pred, size) {
        img.put_pixel(x as u32, y as u32, image::Rgb(RED));
    }
    img
}

/// A gray frame of `size` as RGB.
pub(crate) fn gray_to_rgb(frame: &[u8], size: FrameSize) -> RgbImage {
    let w = size.width;
    RgbImage::from_fn(w as u32, size.height as u32, |x, y| {
        let v = frame[y as usize * w + x as usize];
        image::Rgb([v, v, v])
    })
}

/// Writes an RGB picture as PNG through a temporary file.
pub(crate) fn save_rgb(path: &Path, img: RgbImage) -> Result<()> {
    save_png(path, &image::DynamicImage::ImageRgb8(img))
}

/// `dir/{id}_overlay.png` for the first `ids.len()` frames of `frames` (uint8
/// (N, H, W)): the frame in gray, the predicted outline in red and, when `truth_dir`
/// holds `{id}_mask.tif` (Kaggle-size frames), the true outline in green.
pub(crate) fn write_overlays(
    dir: &Path,
    frames: &Path,
    ids: &[i32],
    preds: &Predictions,
    truth_dir: Option<&Path>,
    rule: &MaskRule,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut reader = NpyReader::open(frames)?;
    let size = FrameSize::of_frames(&reader)?;
    if truth_dir.is_some() && size != crate::frame::KAGGLE {
        bail!(
            "{}: frames of {size}; true masks from a folder of {{id}}_mask.tif are read only \
             for Kaggle-size (420 x 580) frames",
            frames.display()
        );
    }
    let resizer = enlarger(preds.size, size);
    let mut frame = vec![0u8; size.pixels()];
    let mut truth = vec![0u8; size.pixels()];
    for (k, id) in ids.iter().enumerate() {
        stop_point(k, ids.len(), "overlays", dir)?;
        reader.read_rows(&mut frame)?;
        let mut shown = None;
        if let Some(t) = truth_dir {
            let path = t.join(format!("{id}_mask.tif"));
            if path.exists() {
                tiff::read_mask(&path, &mut truth)?;
                shown = Some(truth.as_slice());
            }
        }
        let pred = rule
            .full_mask(preds.map(k), preds.presence_of(k), &resizer)
            .unwrap_or_else(|| vec![0u8; resizer.output_len()]);
        let img = overlay(&frame, size, &pred, shown);
        save_rgb(&dir.join(format!("{id}_overlay.png")), img)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_say_which_outline_is_which_and_the_frames_dice() {
        let (a, b, none) = ([1u8, 1, 0, 0], [1u8, 0, 0, 0], [0u8; 4]);
        assert!((dice(&a, &b) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(dice(&none, &none), 1.0);
        assert_eq!(caption_of(&a, None), "red: predicted");
        assert_eq!(
            caption_of(&a, Some(&b)),
            "red: predicted; green: true; Dice 0.67"
        );
        assert_eq!(
            caption_of(&none, Some(&b)),
            "no nerve predicted; green: true; Dice 0.00"
        );
        // The caption is drawn: white letters on the band over a black frame.
        let size = crate::frame::KAGGLE;
        let img = overlay(
            &vec![0u8; size.pixels()],
            size,
            &vec![0u8; size.pixels()],
            None,
        );
        let white = img
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c > 200))
            .count();
        assert!(white > 20, "{white}");
    }
}
