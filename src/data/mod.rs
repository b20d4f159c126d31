//! Stage 1 of the pipeline, the original `data.py`: read the Kaggle TIFFs and write the
//! `.npy` intermediates (`imgs_train.npy`, `imgs_mask_train.npy`, `imgs_test.npy`,
//! `imgs_id_test.npy`) with the original's dtypes and shapes.
//!
//! TIFFs are decoded in parallel, a chunk at a time, and each chunk is streamed into the
//! output files while the next one is decoded, so memory stays flat whatever the data
//! size. Every output goes to a
//! temporary file first and all are renamed into place only when everything succeeded.

pub mod decode;
pub mod folder;
mod image_error;
pub mod layout;
pub mod lzw;
pub mod npy;
mod pipeline;
pub mod tiff;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};

use self::npy::NpyWriter;
use self::pipeline::{pipelined_into, Frames};
use self::tiff::{HEIGHT, PIXELS, WIDTH};

/// Output file names, as in the original `data.py`.
pub const IMGS_TRAIN: &str = "imgs_train.npy";
pub const IMGS_MASK_TRAIN: &str = "imgs_mask_train.npy";
/// The original `predict.py`'s probabilities of the test frames.
pub const IMGS_MASK_TEST: &str = "imgs_mask_test.npy";
pub const IMGS_TEST: &str = "imgs_test.npy";
pub const IMGS_ID_TEST: &str = "imgs_id_test.npy";
/// Beside them, one line per frame in the arrays' order: its file name, and (training
/// frames) its group, the subject for later patient-wise splits.
pub const IMGS_NAMES_TRAIN: &str = "imgs_names_train.txt";
pub const IMGS_GROUPS_TRAIN: &str = "imgs_groups_train.txt";
pub const IMGS_NAMES_TEST: &str = "imgs_names_test.txt";

/// Frames decoded in parallel before they are written out.
const CHUNK: usize = 64;

/// What `prepare` reads and writes.
#[derive(Clone, Debug)]
pub struct PrepareConfig {
    /// Folder with `train/` and `test/` in the Kaggle layout.
    pub raw: PathBuf,
    /// Folder for the `.npy` files (created if missing).
    pub out: PathBuf,
    pub train: bool,
    pub test: bool,
    pub quiet: bool,
}

/// What `prepare` did.
#[derive(Clone, Debug, Default)]
pub struct PrepareReport {
    pub train_images: usize,
    pub test_images: usize,
    pub written: Vec<PathBuf>,
    /// What was decided on the way (mask rule, conversions, sizes, groups).
    pub notes: Vec<String>,
    pub seconds: f64,
}

impl std::fmt::Display for PrepareReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for n in &self.notes {
            writeln!(f, "{n}")?;
        }
        for p in &self.written {
            writeln!(f, "wrote {}", p.display())?;
        }
        write!(
            f,
            "{} training and {} test images in {:.1} s",
            self.train_images, self.test_images, self.seconds
        )
    }
}

/// Runs the data stage. Either every requested output is written, or none is changed;
/// an interrupt changes none.
pub fn prepare(cfg: &PrepareConfig) -> Result<PrepareReport> {
    crate::interrupt::keeping(prepare_all(cfg), |_| {
        format!(
            "nothing was written; the files in {} are as they were",
            cfg.out.display()
        )
    })
}

fn prepare_all(cfg: &PrepareConfig) -> Result<PrepareReport> {
    let start = Instant::now();
    // List and check every name before reading any pixel.
    let train = if cfg.train {
        Some(layout::scan_train(&cfg.raw.join("train"))?)
    } else {
        None
    };
    let test = if cfg.test {
        Some(layout::scan_test(&cfg.raw.join("test"))?)
    } else {
        None
    };
    if train.is_none() && test.is_none() {
        bail!("nothing to prepare: both the train and the test part were left out");
    }
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", cfg.out.display()))?;

    let mut report = PrepareReport::default();
    let mut out = Outputs::default();
    if let Some(pairs) = &train {
        write_train(cfg, pairs, &mut out)?;
        report.train_images = pairs.len();
    }
    if let Some(images) = &test {
        write_test(cfg, images, &mut out)?;
        report.test_images = images.len();
    }
    // Everything was read without error: only now replace the outputs, all of them or
    // (when a stop was asked for) none.
    crate::interrupt::check()?;
    out.commit(&mut report)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Decodes the training pairs into `imgs_train.npy` and `imgs_mask_train.npy`, with
/// their names and groups beside them.
fn write_train(cfg: &PrepareConfig, pairs: &[layout::TrainPair], out: &mut Outputs) -> Result<()> {
    let n = pairs.len() as u64;
    let mut imgs = NpyWriter::<u8>::create(&cfg.out.join(IMGS_TRAIN), &frame_shape(n))?;
    let mut masks = NpyWriter::<u8>::create(&cfg.out.join(IMGS_MASK_TRAIN), &frame_shape(n))?;
    let pb = crate::progress::bar(n, "train", cfg.quiet);
    pipelined_into(
        pairs.chunks(CHUNK),
        || (Frames::new(2), Frames::new(2)),
        |chunk, frames| {
            frames.decode(chunk, |p, out| {
                let (img, mask) = out.split_at_mut(PIXELS);
                tiff::read_frame(&p.image, img)?;
                tiff::read_mask(&p.mask, mask)
            })
        },
        |frames: &mut Frames| {
            for pair in frames.items() {
                let (img, mask) = pair.split_at(PIXELS);
                imgs.push_row(img)?;
                masks.push_row(mask)?;
            }
            pb.inc(frames.count() as u64);
            Ok(())
        },
    )?;
    pb.finish_and_clear();
    out.npy.extend([imgs, masks]);
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let names: Vec<String> = pairs.iter().filter_map(|p| name(&p.image)).collect();
    let groups: Vec<String> = pairs.iter().map(|p| p.subject.to_string()).collect();
    out.lines
        .push(lines(&cfg.out.join(IMGS_NAMES_TRAIN), &names)?);
    out.lines
        .push(lines(&cfg.out.join(IMGS_GROUPS_TRAIN), &groups)?);
    Ok(())
}

/// Decodes the test images into `imgs_test.npy`, with their ids (`imgs_id_test.npy`)
/// and names beside them.
fn write_test(cfg: &PrepareConfig, images: &[layout::TestImage], out: &mut Outputs) -> Result<()> {
    let n = images.len() as u64;
    let mut imgs = NpyWriter::<u8>::create(&cfg.out.join(IMGS_TEST), &frame_shape(n))?;
    let pb = crate::progress::bar(n, "test", cfg.quiet);
    pipelined_into(
        images.chunks(CHUNK),
        || (Frames::new(1), Frames::new(1)),
        |chunk, frames| frames.decode(chunk, |t, out| tiff::read_frame(&t.path, out)),
        |frames: &mut Frames| {
            for img in frames.items() {
                imgs.push_row(img)?;
            }
            pb.inc(frames.count() as u64);
            Ok(())
        },
    )?;
    pb.finish_and_clear();
    let ids: Vec<i32> = images.iter().map(|t| t.id as i32).collect();
    let mut w = NpyWriter::<i32>::create(&cfg.out.join(IMGS_ID_TEST), &[n])?;
    for id in &ids {
        w.push_row(std::slice::from_ref(id))?;
    }
    out.npy.push(imgs);
    let names: Vec<String> = images
        .iter()
        .filter_map(|t| t.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    out.lines
        .push(lines(&cfg.out.join(IMGS_NAMES_TEST), &names)?);
    out.ids = Some(w);
    Ok(())
}

/// Outputs written but not yet in place.
#[derive(Default)]
struct Outputs {
    npy: Vec<NpyWriter<u8>>,
    ids: Option<NpyWriter<i32>>,
    lines: Vec<crate::atomic::AtomicFile>,
}

impl Outputs {
    /// Renames every output into place.
    fn commit(self, report: &mut PrepareReport) -> Result<()> {
        for w in self.npy {
            report.written.push(w.finish()?);
        }
        if let Some(w) = self.ids {
            report.written.push(w.finish()?);
        }
        for f in self.lines {
            report.written.push(f.commit()?);
        }
        Ok(())
    }
}

/// `lines`, one per line, in a temporary file that the caller renames into place.
fn lines(path: &std::path::Path, lines: &[String]) -> Result<crate::atomic::AtomicFile> {
    use std::io::Write;
    let mut f = crate::atomic::AtomicFile::create(path)?;
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    f.write_all(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(f)
}

fn frame_shape(n: u64) -> [u64; 3] {
    [n, HEIGHT as u64, WIDTH as u64]
}
