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

/// One chunk's frames, decoded side by side into a buffer that a later chunk reuses:
/// `per` frames an item (an image and its mask, or an image).
struct Frames {
    pixels: Vec<u8>,
    per: usize,
}

impl Frames {
    fn new(per: usize) -> Frames {
        Frames {
            pixels: Vec::new(),
            per,
        }
    }

    /// Decodes each of `items` (in parallel, on the pool) into its frames; the first
    /// failure in `items`' order, whichever thread met it first.
    fn decode<I: Sync>(
        &mut self,
        items: &[I],
        read: impl Fn(&I, &mut [u8]) -> Result<()> + Sync,
    ) -> Result<()> {
        let size = self.per * PIXELS;
        self.pixels.resize(items.len() * size, 0);
        self.pixels
            .par_chunks_mut(size)
            .zip(items.par_iter())
            .map(|(out, item)| read(item, out))
            .collect::<Vec<Result<()>>>()
            .into_iter()
            .collect()
    }

    /// Each item's frames.
    fn items(&self) -> impl Iterator<Item = &[u8]> {
        self.pixels.chunks(self.per * PIXELS)
    }

    /// How many items the last `decode` read.
    fn count(&self) -> usize {
        self.pixels.len() / (self.per * PIXELS)
    }
}

/// Runs `read` on each chunk into one of two buffers (made by `buffers`) and `write` on
/// it in order, reading chunk k + 1 (in parallel, on the pool) into the other buffer
/// while chunk k is written (on one thread), so the disk writes and the TIFF decoding
/// overlap and no frame is allocated twice. Stops at the first error.
fn pipelined_into<C: Send, B: Send>(
    mut chunks: impl Iterator<Item = C>,
    buffers: impl FnOnce() -> (B, B),
    read: impl Fn(C, &mut B) -> Result<()> + Sync,
    mut write: impl FnMut(&mut B) -> Result<()> + Send,
) -> Result<()> {
    let Some(first) = chunks.next() else {
        return Ok(());
    };
    let (mut pending, mut spare) = buffers();
    read(first, &mut pending)?;
    for c in chunks {
        crate::interrupt::check()?;
        let (written, next) = rayon::join(|| write(&mut pending), || read(c, &mut spare));
        written?;
        next?;
        std::mem::swap(&mut pending, &mut spare);
    }
    write(&mut pending)
}

/// [`pipelined_into`] for chunks whose results are made anew each time (frames of any
/// size).
fn pipelined<C: Send, T: Send>(
    chunks: impl Iterator<Item = C>,
    read: impl Fn(C) -> Result<T> + Sync,
    mut write: impl FnMut(T) -> Result<()> + Send,
) -> Result<()> {
    pipelined_into(
        chunks,
        || (None, None),
        |c, slot| {
            *slot = Some(read(c)?);
            Ok(())
        },
        |slot| match slot.take() {
            Some(t) => write(t),
            None => Ok(()),
        },
    )
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

    #[test]
    fn pipelined_into_takes_turns_with_two_buffers() {
        // Each buffer remembers how often it was filled: chunks alternate between the two.
        let mut seen = Vec::new();
        pipelined_into(
            0..7,
            || ((0, 0), (1, 0)),
            |c, buf: &mut (i32, i32)| {
                buf.1 = c;
                Ok(())
            },
            |buf| {
                seen.push(*buf);
                Ok(())
            },
        )
        .unwrap();
        let chunks: Vec<i32> = seen.iter().map(|b| b.1).collect();
        let buffers: Vec<i32> = seen.iter().map(|b| b.0).collect();
        assert_eq!(chunks, (0..7).collect::<Vec<_>>());
        assert_eq!(buffers, [0, 1, 0, 1, 0, 1, 0]);
    }
}
