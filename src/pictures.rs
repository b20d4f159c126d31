//! Pictures for people: the original's `preds/{id}_pred.png`, full-size overlays of the
//! predicted (red) and true (green) outlines on the ultrasound frame, and the training
//! curves from `history.csv`. Every PNG is written through a temporary file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::{ImageFormat, RgbImage};
use plotters::prelude::*;

use crate::data::npy::NpyReader;
use crate::data::tiff;
use crate::frame::FrameSize;
use crate::submission::{enlarger, MaskRule};

fn save_png(path: &Path, img: &image::DynamicImage) -> Result<()> {
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

/// `dir/{id}_pred.png`: uint8(prob * 255) of each map of `map` (96 x 96 for the
/// tutorial's network), as the original wrote them.
pub fn write_pred_pngs(dir: &Path, ids: &[i32], probs: &[f32], map: FrameSize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (k, (id, p)) in ids.iter().zip(probs.chunks(map.pixels())).enumerate() {
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

/// A frame of `size` in gray with the outline of the predicted 0/1 mask in red and, when
/// given, of the true one in green.
pub fn overlay(frame: &[u8], size: FrameSize, pred: &[u8], truth: Option<&[u8]>) -> RgbImage {
    let w = size.width;
    let mut img = RgbImage::from_fn(w as u32, size.height as u32, |x, y| {
        let v = frame[y as usize * w + x as usize];
        image::Rgb([v, v, v])
    });
    if let Some(t) = truth {
        for (y, x) in outline(t, size) {
            img.put_pixel(x as u32, y as u32, image::Rgb([40, 220, 40]));
        }
    }
    for (y, x) in outline(pred, size) {
        img.put_pixel(x as u32, y as u32, image::Rgb([240, 30, 30]));
    }
    img
}

/// Writes an RGB picture as PNG through a temporary file.
pub fn save_rgb(path: &Path, img: RgbImage) -> Result<()> {
    save_png(path, &image::DynamicImage::ImageRgb8(img))
}

/// `dir/{id}_overlay.png` for the first `ids.len()` frames of `frames` (uint8
/// (N, H, W)): the frame in gray, the predicted outline in red and, when `truth_dir`
/// holds `{id}_mask.tif` (Kaggle-size frames), the true outline in green.
pub fn write_overlays(
    dir: &Path,
    frames: &Path,
    ids: &[i32],
    probs: &[f32],
    map: FrameSize,
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
    let resizer = enlarger(map, size);
    let mut frame = vec![0u8; size.pixels()];
    let mut truth = vec![0u8; size.pixels()];
    for (k, (id, p)) in ids.iter().zip(probs.chunks(map.pixels())).enumerate() {
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
        let pred = rule.full_mask(p, &resizer);
        let img = overlay(&frame, size, &pred, shown);
        save_rgb(&dir.join(format!("{id}_overlay.png")), img)?;
    }
    Ok(())
}

/// Draws loss and Dice per epoch (train and validation) from a `history.csv` to a PNG.
pub fn plot_history(history: &Path, out: &Path) -> Result<()> {
    let mut r = csv::Reader::from_path(history)
        .with_context(|| format!("opening {}", history.display()))?;
    let headers = r
        .headers()
        .with_context(|| format!("reading {}", history.display()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(ep), Some(dc), Some(ls)) = (col("epoch"), col("dice_coef"), col("loss")) else {
        bail!(
            "{}: not a training history (needs epoch, dice_coef, loss columns)",
            history.display()
        );
    };
    let (vdc, vls) = (col("val_dice_coef"), col("val_loss"));
    let mut rows: Vec<[Option<f64>; 5]> = Vec::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("reading {}", history.display()))?;
        let get = |i: Option<usize>| {
            i.and_then(|i| rec.get(i))
                .and_then(|s| s.parse::<f64>().ok())
        };
        rows.push([
            get(Some(ep)),
            get(Some(dc)),
            get(Some(ls)),
            get(vdc),
            get(vls),
        ]);
    }
    if rows.is_empty() {
        bail!("{}: no epochs to plot", history.display());
    }
    let _ =
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    let (w, h) = (1000u32, 420u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let panels = root.split_evenly((1, 2));
        let last = rows.iter().filter_map(|r| r[0]).fold(0.0, f64::max) + 1.0;
        for (panel, (title, train_i, val_i, sign)) in panels.iter().zip([
            ("Dice coefficient", 1, 3, 1.0),
            ("loss (-dice_coef)", 2, 4, 1.0),
        ]) {
            let values: Vec<f64> = rows
                .iter()
                .flat_map(|r| [r[train_i], r[val_i]])
                .flatten()
                .collect();
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.05).max(1e-3);
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(56)
                .build_cartesian_2d(1.0..last.max(2.0), (lo - pad)..(hi + pad))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .draw()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for (i, color, label) in [(train_i, BLUE, "train"), (val_i, RED, "validation")] {
                let pts: Vec<(f64, f64)> = rows
                    .iter()
                    .filter_map(|r| Some((r[0]? + 1.0, sign * r[i]?)))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let img = RgbImage::from_raw(w, h, buf).context("building the plot picture")?;
    save_png(out, &image::DynamicImage::ImageRgb8(img))
}
