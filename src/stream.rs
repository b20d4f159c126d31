//! `stream`: segmenting a live stream of raw frames. Raw 8-bit gray frames of one size
//! come one after another (standard input, or a file); each one's 0/255 mask (or, with
//! `overlay`, the frame in RGB with the outline drawn) is written and flushed before the
//! next frame is read, so the delay is one frame's. It composes with ffmpeg's rawvideo:
//!
//! ```text
//! ffmpeg -i clip.mp4 -f rawvideo -pix_fmt gray - \
//!   | nerveseg stream --weights weights.h5 --frame-size 420x580 --overlay \
//!   | ffmpeg -f rawvideo -pix_fmt rgb24 -s 580x420 -i - out.mp4
//! ```
//!
//! A short last frame is an error, after every whole frame's output was written.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::frame::FrameSize;
use crate::segment::{Segmenter, SegmenterConfig};

/// What `stream` reads and writes.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// The checkpoints (batch size 1 is used whatever it says), statistics and rule.
    pub segmenter: SegmenterConfig,
    /// The frames' size; `None`: the size the first checkpoint was trained on.
    pub frame_size: Option<FrameSize>,
    /// The raw frames; `None`: standard input.
    pub input: Option<PathBuf>,
    /// Where the masks go; `None`: standard output.
    pub output: Option<PathBuf>,
    /// Replace `output` if it exists (otherwise an existing file is refused).
    pub overwrite: bool,
    /// Write RGB frames with the outline drawn instead of masks.
    pub overlay: bool,
}

/// What a stream did: frames, the time from the first frame's arrival to the last
/// output, and each frame's latency (from its last byte read to its output flushed).
#[derive(Clone, Debug)]
pub struct StreamReport {
    pub frames: usize,
    pub size: FrameSize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl StreamReport {
    /// Frames a second over the whole stream.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency below which a share `q` (0..=1) of the frames came, in ms (nearest
    /// rank); 0 for an empty stream.
    pub fn latency_ms(&self, q: f64) -> f64 {
        let mut v: Vec<f64> = self
            .latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
}

impl fmt::Display for StreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream: {} of {} in {:.2} s ({:.1} frames/s); latency median {:.1} ms, \
             99th percentile {:.1} ms",
            crate::words::count(self.frames, "frame", "frames"),
            self.size,
            self.elapsed.as_secs_f64(),
            self.fps(),
            self.latency_ms(0.5),
            self.latency_ms(0.99)
        )
    }
}

/// Runs the stream as `cfg` says.
pub fn stream(cfg: &StreamConfig) -> Result<StreamReport> {
    if let (Some(i), Some(o)) = (&cfg.input, &cfg.output) {
        if crate::atomic::same_place(i, o) {
            bail!(
                "{} is both --input and --output: the frames would be lost",
                o.display()
            );
        }
    }
    // Opened first: an unwritable place fails before the model loads, and standard
    // output is taken for the masks before libtorch could print on it.
    let (output, out_name) = open_output(cfg)?;
    let mut seg_cfg = cfg.segmenter.clone();
    seg_cfg.ensemble.batch_size = 1;
    let model = Segmenter::load(&seg_cfg)?;
    let size = match cfg.frame_size.or(model.trained_frame_size()) {
        Some(s) => s,
        None => bail!(
            "{} does not say the size of the frames it was trained on: pass --frame-size HxW",
            seg_cfg.ensemble.weights[0].display()
        ),
    };
    let (input, in_name): (Box<dyn Read>, String) = match &cfg.input {
        Some(p) => (
            Box::new(File::open(p).map_err(|e| anyhow!("opening {}: {e}", p.display()))?),
            p.display().to_string(),
        ),
        None => (Box::new(io::stdin().lock()), "standard input".to_owned()),
    };
    let frames = Frames {
        input,
        name: in_name,
        size,
    };
    run(&model, frames, output, &out_name, cfg.overlay)
}

/// Where the masks go, and its name for errors: `--output` (refused if it exists,
/// unless `overwrite`), or standard output. Standard output is duplicated for the masks
/// and file descriptor 1 pointed at standard error, so that nothing else (a C library's
/// verbose log, a stray print) lands among the masks.
fn open_output(cfg: &StreamConfig) -> Result<(Box<dyn Write>, String)> {
    if let Some(p) = &cfg.output {
        let mut open = OpenOptions::new();
        match cfg.overwrite {
            true => open.write(true).create(true).truncate(true),
            false => open.write(true).create_new(true),
        };
        let file = open.open(p).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => anyhow!(
                "{} exists: pass --overwrite to replace it, or choose another --output",
                p.display()
            ),
            _ => anyhow!("creating {}: {e}", p.display()),
        })?;
        return Ok((Box::new(BufWriter::new(file)), p.display().to_string()));
    }
    io::stdout().flush().ok();
    // SAFETY: dup returns a new descriptor that the File below owns alone; dup2 only
    // repoints descriptor 1, which Rust's stdout keeps using as before.
    let fd = unsafe { libc::dup(1) };
    if fd < 0 || unsafe { libc::dup2(2, 1) } < 0 {
        bail!(
            "taking standard output for the masks: {}",
            io::Error::last_os_error()
        );
    }
    let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok((Box::new(BufWriter::new(file)), "standard output".to_owned()))
}

/// Raw frames of one size from a reader.
pub struct Frames<R> {
    pub input: R,
    /// The input's name for errors.
    pub name: String,
    pub size: FrameSize,
}

impl<R: Read> Frames<R> {
    /// Fills `buf` with the next frame: `Ok(false)` at the end of the stream, an error
    /// for a frame cut short (`done` whole frames came before it).
    pub fn next_frame(&mut self, buf: &mut [u8], done: usize) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => bail!("reading {}: {e}", self.name),
            }
        }
        if got == 0 {
            return Ok(false);
        }
        if got < buf.len() {
            bail!(
                "{}: the stream ends inside frame {}: {got} of its {} bytes ({} frames); \
                 the {} before it were segmented and written",
                self.name,
                done + 1,
                buf.len(),
                self.size,
                crate::words::count(done, "whole frame", "whole frames")
            );
        }
        Ok(true)
    }
}

/// Segments every frame of `frames` with `model` and writes each one's mask (or
/// overlay) to `out` as it comes.
pub fn run<R: Read>(
    model: &Segmenter,
    mut frames: Frames<R>,
    mut out: impl Write,
    out_name: &str,
    overlay: bool,
) -> Result<StreamReport> {
    let size = frames.size;
    let mut buf = vec![0u8; size.pixels()];
    let mut latencies = Vec::new();
    let mut first: Option<Instant> = None;
    while frames.next_frame(&mut buf, latencies.len())? {
        crate::interrupt::check()?;
        let t0 = Instant::now();
        first.get_or_insert(t0);
        let s = model
            .segment(&buf, size)
            .with_context(|| {
                format!(
                    "segmenting frame {} of {}",
                    latencies.len() + 1,
                    frames.name
                )
            })?
            .remove(0);
        let bytes = match overlay {
            true => {
                crate::pictures::outline_in_red(crate::pictures::gray_to_rgb(&buf, size), &s.mask)
                    .into_raw()
            }
            false => s.mask,
        };
        match out.write_all(&bytes).and_then(|()| out.flush()) {
            Ok(()) => latencies.push(t0.elapsed()),
            // The reader went away (`| head -c`, ffmpeg with -frames): the stream ends
            // there, as a pipe's writer does.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => bail!("writing {out_name}: {e}"),
        }
    }
    Ok(StreamReport {
        frames: latencies.len(),
        size,
        elapsed: first.map(|t| t.elapsed()).unwrap_or_default(),
        latencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ms: &[u64]) -> StreamReport {
        StreamReport {
            frames: ms.len(),
            size: FrameSize::new(2, 3).unwrap(),
            elapsed: Duration::from_secs(2),
            latencies: ms.iter().map(|&m| Duration::from_millis(m)).collect(),
        }
    }

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let r = report(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(r.latency_ms(0.5), 50.0);
        assert_eq!(r.latency_ms(0.99), 99.0);
        assert_eq!(r.latency_ms(1.0), 100.0);
        assert_eq!(report(&[7]).latency_ms(0.99), 7.0);
        assert_eq!(report(&[]).latency_ms(0.5), 0.0);
        assert_eq!(r.fps(), 50.0);
    }

    #[test]
    fn frames_end_cleanly_or_name_the_short_one() {
        let size = FrameSize::new(2, 3).unwrap();
        let mut f = Frames {
            input: &[1u8; 14][..],
            name: "clip.raw".into(),
            size,
        };
        let mut buf = [0u8; 6];
        assert!(f.next_frame(&mut buf, 0).unwrap());
        assert!(f.next_frame(&mut buf, 1).unwrap());
        let err = f.next_frame(&mut buf, 2).unwrap_err().to_string();
        assert_eq!(
            err,
            "clip.raw: the stream ends inside frame 3: 2 of its 6 bytes (2 x 3 frames); \
             the 2 whole frames before it were segmented and written"
        );
        let mut whole = Frames {
            input: &[1u8; 12][..],
            name: "x".into(),
            size,
        };
        assert!(whole.next_frame(&mut buf, 0).unwrap() && whole.next_frame(&mut buf, 1).unwrap());
        assert!(!whole.next_frame(&mut buf, 2).unwrap());
    }
}
