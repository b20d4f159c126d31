//! `training.png`: the curves of a `history.csv`. The Dice coefficient, train (blue) and
//! validation (red), per epoch numbered as the log numbers them (from 1, whole numbers
//! only; history.csv keeps Keras's numbering from 0), with a point per epoch on short
//! runs and the epoch whose checkpoint is weights.h5 (the best val_loss) marked in
//! green. The loss gets a panel of its own only when it is not just -dice_coef (the
//! tutorial's loss, which would draw the same curves upside down).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use image::RgbImage;
use plotters::prelude::*;

/// One epoch: its number (from 0), dice_coef, loss, val_dice_coef, val_loss.
type Row = [Option<f64>; 5];
const EPOCH: usize = 0;
const DICE: usize = 1;
const LOSS: usize = 2;
const VAL_DICE: usize = 3;
const VAL_LOSS: usize = 4;

/// Runs of at most this many epochs get a point per epoch.
const MARKED: usize = 40;

const BEST: RGBColor = RGBColor(0, 150, 0);

fn read(history: &Path) -> Result<Vec<Row>> {
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
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("reading {}", history.display()))?;
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i))?.parse::<f64>().ok();
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
    Ok(rows)
}

/// The epoch (from 1) of the lowest val_loss: the one weights.h5 holds.
pub fn best_epoch(rows: &[Row]) -> Option<i32> {
    rows.iter()
        .filter_map(|r| Some((r[EPOCH]?, r[VAL_LOSS]?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(e, _)| e as i32 + 1)
}

/// Whether the loss is another thing than -dice_coef: they differ by more than Keras's
/// two ways of averaging a pass (batch-size-weighted, plain) can make them.
fn loss_differs(rows: &[Row]) -> bool {
    rows.iter()
        .any(|r| matches!((r[LOSS], r[DICE]), (Some(l), Some(d)) if (l + d).abs() > 0.05))
}

/// Draws the curves of `history` to the PNG `out`.
pub fn plot_history(history: &Path, out: &Path) -> Result<()> {
    let rows = read(history)?;
    let _ =
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    let mut panels = vec![("Dice coefficient", DICE, VAL_DICE)];
    if loss_differs(&rows) {
        panels.push(("loss", LOSS, VAL_LOSS));
    }
    let (w, h) = (if panels.len() == 1 { 560u32 } else { 1000 }, 420u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let areas = root.split_evenly((1, panels.len()));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, &rows, panel)?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let img = RgbImage::from_raw(w, h, buf).context("building the plot picture")?;
    crate::pictures::save_png(out, &image::DynamicImage::ImageRgb8(img))
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    rows: &[Row],
    (title, train, val): (&str, usize, usize),
) -> Result<()> {
    let plot_err = |e: DrawingAreaErrorKind<_>| anyhow!("{e}");
    let last = rows.iter().filter_map(|r| r[EPOCH]).fold(0.0, f64::max) as i32 + 1;
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r[train], r[val]])
        .flatten()
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(1..last.max(2), (lo - pad)..(hi + pad))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels((last as usize).clamp(2, 10))
        .x_label_formatter(&|e| e.to_string())
        .draw()
        .map_err(plot_err)?;
    if let Some(best) = best_epoch(rows) {
        chart
            .draw_series(LineSeries::new(
                [(best, lo - pad), (best, hi + pad)],
                BEST.stroke_width(1),
            ))
            .map_err(plot_err)?
            .label(format!("weights.h5: epoch {best}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BEST.stroke_width(2)));
    }
    for (i, color, label) in [(train, BLUE, "train"), (val, RED, "validation")] {
        let pts: Vec<(i32, f64)> = rows
            .iter()
            .filter_map(|r| Some((r[EPOCH]? as i32 + 1, r[i]?)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        if pts.len() <= MARKED {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?;
        }
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_epoch_is_the_lowest_val_loss_numbered_from_one() {
        let row = |e: f64, vl: f64| [Some(e), Some(0.1), Some(-0.1), Some(0.2), Some(vl)];
        let rows = [row(0.0, -0.1), row(1.0, -0.3), row(2.0, -0.2)];
        assert_eq!(best_epoch(&rows), Some(2));
        assert!(!loss_differs(&rows));
        let bce = [[Some(0.0), Some(0.3), Some(0.9), None, None]];
        assert!(loss_differs(&bce) && best_epoch(&bce).is_none());
    }
}
