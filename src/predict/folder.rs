//! `predict --images DIR --out-dir DIR`: masks for a folder of a user's frames (or one
//! image file), each at the frame's own size. Every file in DIR is read as a frame (PNG, JPEG, TIFF or BMP,
//! any size; colour made gray as `prepare` does), resized to the network's input,
//! standardised with
//! the checkpoint's statistics and predicted in batches; each probability map is enlarged
//! back to its frame's size under the mask rule and written as `{stem}_mask.png` (0/255),
//! with `predictions.csv` (one row per file) written last.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use rayon::prelude::*;

use super::ensemble::EnsembleConfig;
use super::StatsSource;
use crate::data::decode::{self, Gray};
use crate::data::folder::listing::{self, Entry};
use crate::frame::FrameSize;
use crate::interrupt;
use crate::segment::{Segmentation, Segmenter, SegmenterConfig};
use crate::submission::MaskRule;

/// The CSV written beside the masks.
pub const PREDICTIONS_CSV: &str = "predictions.csv";

/// What `predict` on a folder reads and writes.
#[derive(Clone, Debug)]
pub struct FolderPredictConfig {
    /// The checkpoints and how they run.
    pub ensemble: EnsembleConfig,
    pub images: PathBuf,
    pub out_dir: PathBuf,
    /// Folder for `{stem}_overlay.png`.
    pub overlays: Option<PathBuf>,
    pub stats: StatsSource,
    pub rule: MaskRule,
    /// A file that is not a readable image is a warning and a row, not an error.
    pub skip_bad: bool,
    pub quiet: bool,
}

/// What `predict` on a folder did.
#[derive(Clone, Debug)]
pub struct FolderPredictReport {
    pub images: usize,
    pub with_nerve: usize,
    /// Frames that could not be read (with --skip-bad): each has a row with its error.
    pub skipped: usize,
    /// Files whose names are not of images, left alone as `prepare` leaves them.
    pub others: Vec<String>,
    pub out_dir: PathBuf,
}

impl fmt::Display for FolderPredictReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} ({} with a nerve) and {} to {}",
            crate::words::count(self.images, "mask", "masks"),
            self.with_nerve,
            PREDICTIONS_CSV,
            self.out_dir.display()
        )?;
        if self.skipped > 0 {
            let files = crate::words::count(self.skipped, "file", "files");
            write!(
                f,
                "; skipped {files} that could not be read (see {PREDICTIONS_CSV})"
            )?;
        }
        if !self.others.is_empty() {
            let files =
                crate::words::count_verb(self.others.len(), "file", "files", "that is", "that are");
            let names = listing::some_of(&self.others);
            write!(f, "; skipped {files} not PNG, JPEG, TIFF or BMP: {names}")?;
        }
        Ok(())
    }
}

/// One row of `predictions.csv`.
struct Row {
    name: String,
    result: Result<(usize, f32), String>,
}

/// The output name of a frame's mask.
pub(crate) fn mask_name(stem: &str) -> String {
    format!("{stem}_mask.png")
}

/// Runs prediction on a folder. A failure removes the output folders this command
/// created, when they are still empty.
pub fn predict_folder(cfg: &FolderPredictConfig) -> Result<FolderPredictReport> {
    let outputs = std::iter::once(&cfg.out_dir).chain(cfg.overlays.as_ref());
    let created: Vec<PathBuf> = outputs.filter(|d| !d.exists()).cloned().collect();
    let done = predict_into(cfg);
    if done.is_err() {
        for dir in &created {
            let _ = std::fs::remove_dir(dir);
        }
    }
    done
}

fn predict_into(cfg: &FolderPredictConfig) -> Result<FolderPredictReport> {
    refuse_images_folder(cfg)?;
    let (entries, others) = match cfg.images.is_file() {
        true => (vec![listing::entry(&cfg.images)], Vec::new()),
        false => listing::list(&cfg.images)?,
    };
    if entries.is_empty() {
        anyhow::bail!(
            "{}: no PNG, JPEG, TIFF or BMP files to predict",
            cfg.images.display()
        );
    }
    let models = Segmenter::load_quiet(
        &SegmenterConfig {
            ensemble: cfg.ensemble.clone(),
            stats: cfg.stats.clone(),
            rule: cfg.rule,
        },
        cfg.quiet,
    )?;
    for dir in std::iter::once(&cfg.out_dir).chain(cfg.overlays.as_ref()) {
        std::fs::create_dir_all(dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
    }
    // Opened first, so an unwritable place fails before the work; renamed into place
    // once every frame is done.
    let csv_path = cfg.out_dir.join(PREDICTIONS_CSV);
    let mut csv = crate::atomic::AtomicFile::create(&csv_path)?;
    let mut rows = predict_entries(cfg, &models, &entries)?;
    // Skipped files were listed as they came; the CSV follows the folder's order.
    let order: std::collections::HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    rows.sort_by_key(|r| order.get(r.name.as_str()).copied());
    write_csv(&mut csv, &rows).map_err(|e| anyhow!("writing {}: {e}", csv_path.display()))?;
    interrupt::keeping(interrupt::check(), kept(cfg, rows.len()))?;
    csv.commit()?;
    report(cfg, &rows, others, &csv_path)
}

/// Refuses an output folder that is the --images folder.
fn refuse_images_folder(cfg: &FolderPredictConfig) -> Result<()> {
    for dir in std::iter::once(&cfg.out_dir).chain(cfg.overlays.as_ref()) {
        if crate::atomic::same_place(dir, &cfg.images) {
            anyhow::bail!(
                "{} is the --images folder: the masks would be read as frames next time; \
                 choose another --out-dir or --overlays",
                dir.display()
            );
        }
    }
    Ok(())
}

/// What an interrupt kept once `done` masks were written.
fn kept(cfg: &FolderPredictConfig, done: usize) -> impl FnOnce(Option<&str>) -> String + '_ {
    move |_: Option<&str>| {
        format!(
            "{done} masks were written to {}; {PREDICTIONS_CSV} was not",
            cfg.out_dir.display()
        )
    }
}

/// Every entry's row, its mask (and overlay) written, a batch at a time.
fn predict_entries(
    cfg: &FolderPredictConfig,
    models: &Segmenter,
    entries: &[Entry],
) -> Result<Vec<Row>> {
    let pb = crate::progress::bar(entries.len() as u64, "predict", cfg.quiet);
    let mut rows: Vec<Row> = Vec::with_capacity(entries.len());
    for batch in entries.chunks(cfg.ensemble.batch_size.max(1)) {
        interrupt::keeping(interrupt::check(), kept(cfg, rows.len()))?;
        let good = decode(cfg, batch, &mut rows)?;
        if !good.is_empty() {
            let written = predict_frames(cfg, models, &good);
            rows.extend(interrupt::keeping(written, kept(cfg, rows.len()))?);
        }
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    Ok(rows)
}

/// The frames of a batch of entries, decoded in parallel; with --skip-bad, one that
/// cannot be read gets its row (with the error) in `rows` instead.
fn decode<'a>(
    cfg: &FolderPredictConfig,
    batch: &'a [Entry],
    rows: &mut Vec<Row>,
) -> Result<Vec<(&'a Entry, Gray)>> {
    let decoded: Vec<(&Entry, Result<Gray>)> =
        batch.par_iter().map(|e| (e, read_frame(e))).collect();
    let mut good = Vec::new();
    for (e, r) in decoded {
        match r {
            Ok(g) => good.push((e, g)),
            Err(err) if cfg.skip_bad => {
                if !cfg.quiet {
                    eprintln!("nerveseg: warning: skipped {err:#}");
                }
                rows.push(Row {
                    name: e.name.clone(),
                    result: Err(format!("{err:#}")),
                });
            }
            Err(err) => return Err(err.context("pass --skip-bad to predict the other files")),
        }
    }
    Ok(good)
}

/// Segments decoded frames together and writes each one's outputs; their rows.
fn predict_frames(
    cfg: &FolderPredictConfig,
    models: &Segmenter,
    good: &[(&Entry, Gray)],
) -> Result<Vec<Row>> {
    let frames: Vec<(&[u8], FrameSize)> =
        good.iter().map(|(_, g)| (&g.pixels[..], g.size)).collect();
    let segs = models.segment_frames(&frames)?;
    good.par_iter()
        .zip(segs.par_iter())
        .map(|((e, g), s)| write_outputs(cfg, e, g, s))
        .collect()
}

/// The report of the rows; an error when no file could be read.
fn report(
    cfg: &FolderPredictConfig,
    rows: &[Row],
    others: Vec<String>,
    csv_path: &Path,
) -> Result<FolderPredictReport> {
    let ok = rows.iter().filter_map(|r| r.result.as_ref().ok());
    if ok.clone().count() == 0 {
        anyhow::bail!(
            "{}: none of its {} could be read as a frame (each one's error is in {})",
            cfg.images.display(),
            crate::words::count(rows.len(), "image file", "image files"),
            csv_path.display()
        );
    }
    Ok(FolderPredictReport {
        images: ok.clone().count(),
        with_nerve: ok.filter(|(area, _)| *area > 0).count(),
        skipped: rows.iter().filter(|r| r.result.is_err()).count(),
        others,
        out_dir: cfg.out_dir.clone(),
    })
}

fn read_frame(e: &Entry) -> Result<Gray> {
    decode::read_gray(&e.path)
}

/// The full-size mask (and overlay) of one frame, segmented as `seg`, and its row.
fn write_outputs(
    cfg: &FolderPredictConfig,
    e: &Entry,
    g: &Gray,
    seg: &Segmentation,
) -> Result<Row> {
    let img =
        image::GrayImage::from_raw(g.size.width as u32, g.size.height as u32, seg.mask.clone())
            .ok_or_else(|| anyhow!("building the mask of {}", e.name))?;
    let path = cfg.out_dir.join(mask_name(&e.stem));
    crate::atomic::write_with(&path, |w| {
        img.write_to(w, image::ImageFormat::Png)
            .map_err(|err| anyhow!("writing {}: {err}", path.display()))
    })?;
    if let Some(dir) = &cfg.overlays {
        // A colour frame keeps its colour in the picture.
        let picture = match g.converted {
            Some(_) => crate::pictures::draw_outlines(decode::read_rgb(&e.path)?, &seg.mask, None),
            None => crate::pictures::overlay(&g.pixels, g.size, &seg.mask, None),
        };
        crate::pictures::save_rgb(&dir.join(format!("{}_overlay.png", e.stem)), picture)?;
    }
    Ok(Row {
        name: e.name.clone(),
        result: Ok((seg.area, seg.peak())),
    })
}

fn write_csv(w: &mut impl Write, rows: &[Row]) -> Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record([
        "name",
        "nerve_present",
        "area_pixels",
        "max_probability",
        "error",
    ])?;
    for r in rows {
        match &r.result {
            Ok((area, peak)) => out.write_record([
                r.name.as_str(),
                if *area > 0 { "1" } else { "0" },
                &area.to_string(),
                &format!("{peak:.6}"),
                "",
            ])?,
            Err(e) => out.write_record([r.name.as_str(), "", "", "", e.as_str()])?,
        }
    }
    out.flush()?;
    Ok(())
}
