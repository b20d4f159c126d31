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
pub mod layout;
pub mod lzw;
pub mod npy;
pub mod tiff;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use rayon::prelude::*;

use self::npy::NpyWriter;
use self::tiff::{HEIGHT, PIXELS, WIDTH};

/// Output file names, as in the original `data.py`.
pub const IMGS_TRAIN: &str = "imgs_train.npy";
pub const IMGS_MASK_TRAIN: &str = "imgs_mask_train.npy";
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
    let mut finished: Vec<NpyWriter<u8>> = Vec::new();
    let mut ids_writer = None;
    let mut lists = Vec::new();
    if let Some(pairs) = &train {
        let n = pairs.len() as u64;
        let mut imgs = NpyWriter::<u8>::create(&cfg.out.join(IMGS_TRAIN), &frame_shape(n))?;
        let mut masks = NpyWriter::<u8>::create(&cfg.out.join(IMGS_MASK_TRAIN), &frame_shape(n))?;
        let pb = crate::progress::bar(n, "train", cfg.quiet);
        pipelined(
            pairs.chunks(CHUNK),
            |chunk| {
                chunk
                    .par_iter()
                    .map(|p| {
                        let mut img = vec![0u8; PIXELS];
                        let mut mask = vec![0u8; PIXELS];
                        tiff::read_frame(&p.image, &mut img)?;
                        tiff::read_mask(&p.mask, &mut mask)?;
                        Ok((img, mask))
                    })
                    .collect::<Vec<Result<_>>>()
                    // The first failure in name order, whichever thread met it first.
                    .into_iter()
                    .collect::<Result<Vec<_>>>()
            },
            |frames| {
                for (img, mask) in &frames {
                    imgs.push_row(img)?;
                    masks.push_row(mask)?;
                }
                pb.inc(frames.len() as u64);
                Ok(())
            },
        )?;
        pb.finish_and_clear();
        report.train_images = pairs.len();
        finished.extend([imgs, masks]);
        let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let names: Vec<String> = pairs.iter().filter_map(|p| name(&p.image)).collect();
        let groups: Vec<String> = pairs.iter().map(|p| p.subject.to_string()).collect();
        lists.push(lines(&cfg.out.join(IMGS_NAMES_TRAIN), &names)?);
        lists.push(lines(&cfg.out.join(IMGS_GROUPS_TRAIN), &groups)?);
    }
    if let Some(images) = &test {
        let n = images.len() as u64;
        let mut imgs = NpyWriter::<u8>::create(&cfg.out.join(IMGS_TEST), &frame_shape(n))?;
        let pb = crate::progress::bar(n, "test", cfg.quiet);
        pipelined(
            images.chunks(CHUNK),
            |chunk| {
                chunk
                    .par_iter()
                    .map(|t| {
                        let mut img = vec![0u8; PIXELS];
                        tiff::read_frame(&t.path, &mut img)?;
                        Ok(img)
                    })
                    .collect::<Vec<Result<_>>>()
                    // The first failure in name order, whichever thread met it first.
                    .into_iter()
                    .collect::<Result<Vec<_>>>()
            },
            |frames| {
                for img in &frames {
                    imgs.push_row(img)?;
                }
                pb.inc(frames.len() as u64);
                Ok(())
            },
        )?;
        pb.finish_and_clear();
        let ids: Vec<i32> = images.iter().map(|t| t.id as i32).collect();
        let mut w = NpyWriter::<i32>::create(&cfg.out.join(IMGS_ID_TEST), &[n])?;
        for id in &ids {
            w.push_row(std::slice::from_ref(id))?;
        }
        report.test_images = images.len();
        finished.push(imgs);
        let names: Vec<String> = images
            .iter()
            .filter_map(|t| t.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        lists.push(lines(&cfg.out.join(IMGS_NAMES_TEST), &names)?);
        ids_writer = Some(w);
    }
    // Everything was read without error: only now replace the outputs, all of them or
    // (when a stop was asked for) none.
    crate::interrupt::check()?;
    for w in finished {
        report.written.push(w.finish()?);
    }
    if let Some(w) = ids_writer {
        report.written.push(w.finish()?);
    }
    for f in lists {
        report.written.push(f.commit()?);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs `read` on each chunk and `write` on its result in order, reading chunk k + 1 (in
/// parallel, on the pool) while chunk k is written (on one thread), so the disk writes
/// and the TIFF decoding overlap. Stops at the first error.
fn pipelined<C: Send, T: Send>(
    mut chunks: impl Iterator<Item = C>,
    read: impl Fn(C) -> Result<T> + Sync,
    mut write: impl FnMut(T) -> Result<()> + Send,
) -> Result<()> {
    let mut pending = match chunks.next() {
        Some(c) => read(c)?,
        None => return Ok(()),
    };
    for c in chunks {
        crate::interrupt::check()?;
        let (written, next) = rayon::join(|| write(pending), || read(c));
        written?;
        pending = next?;
    }
    write(pending)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_keeps_the_order_and_stops_at_the_first_error() {
        let mut seen = Vec::new();
        pipelined(
            (0..10).map(|i| i * 3),
            |c| Ok(vec![c, c + 1, c + 2]),
            |v| {
                seen.extend(v);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());

        // A read error in chunk 4: chunks 0..=3 are written (chunk 3 while chunk 4 was
        // read), nothing after; the error comes back.
        let mut written = Vec::new();
        let err = pipelined(
            0..10,
            |c| {
                if c == 4 {
                    bail!("chunk {c} is bad")
                } else {
                    Ok(c)
                }
            },
            |c| {
                written.push(c);
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "chunk 4 is bad");
        assert_eq!(written, [0, 1, 2, 3]);

        // A write error stops the reading too.
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let err = pipelined(
            0..10,
            |c| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(c)
            },
            |c| if c == 2 { bail!("disk full") } else { Ok(()) },
        )
        .unwrap_err();
        let reads = counter.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(err.to_string(), "disk full");
        assert!(
            reads <= 4,
            "{reads} chunks read after a write failed at chunk 2"
        );
        assert!(pipelined(std::iter::empty::<u8>(), Ok, |_| Ok(())).is_ok());
    }
}
