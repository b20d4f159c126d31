//! Synthetic data in the exact Kaggle layout, since the real frames cannot be shipped.
//!
//! Each frame is an ultrasound-like picture: layered tissue bands with wavy boundaries,
//! depth attenuation, multiplicative speckle, dark (hypoechoic) distractor blobs such as
//! vessels, and, in about 40% of frames, the nerve: an ellipse with a honeycomb of dark
//! fascicles in a bright matrix and a bright rim. Its mean brightness is close to the
//! tissue around it, so no intensity threshold finds it; its shape and texture do.
//! A subject fixes the anatomy (bands, nerve and vessel places); its frames move a little,
//! as a hand-held probe does.
//!
//! A few percent of the training frames (`--label-noise`, 3% by default) are label noise:
//! near repeats of the frame before with the nerve's mask removed or added ([`noise`]).
//!
//! Every frame has its own random stream derived from (seed, subject, frame), so output
//! is the same for a seed whatever the thread count.

pub mod noise;
mod scene;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use self::scene::mix;
pub use self::scene::Subject;
use crate::data::layout::RawName;
use crate::data::tiff::{self, HEIGHT, PIXELS, WIDTH};

/// What `synth` writes.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub out: PathBuf,
    pub subjects: u32,
    pub per_subject: u32,
    pub test: u32,
    pub seed: u64,
    /// Also write the test ground truth to `test_masks/{id}_mask.tif`.
    pub test_masks: bool,
    /// Replace Kaggle-named files already in the output folders.
    pub overwrite: bool,
    /// How the TIFFs are stored (Kaggle's: LZW).
    pub compression: tiff::Compression,
    /// Share of training frames that repeat the frame before with a wrong mask.
    pub label_noise: f64,
    pub quiet: bool,
}

/// What `synth` wrote.
#[derive(Clone, Debug, Default)]
pub struct SynthReport {
    pub out: PathBuf,
    pub train_pairs: usize,
    pub train_with_nerve: usize,
    /// Label-noise frames among the training pairs (listed in `label_noise.csv`).
    pub noisy: usize,
    pub test_images: usize,
    pub seconds: f64,
}

impl std::fmt::Display for SynthReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} training pairs ({} with a nerve, {} label-noise repeats listed in {}) \
             and {} test images to {} in {:.1} s",
            self.train_pairs,
            self.train_with_nerve,
            self.noisy,
            noise::RECORD,
            self.test_images,
            self.out.display(),
            self.seconds
        )
    }
}

/// One file to write.
#[derive(Clone, Copy)]
enum Job {
    Train { subject: u32, n: u32 },
    Test { id: u32 },
}

/// Writes the whole synthetic data set.
pub fn synth(cfg: &SynthConfig) -> Result<SynthReport> {
    let start = std::time::Instant::now();
    if cfg.subjects == 0 || cfg.per_subject == 0 {
        bail!("--subjects and --per-subject must be at least 1");
    }
    if !(0.0..=0.5).contains(&cfg.label_noise) {
        bail!(
            "--label-noise must be between 0 and 0.5, got {}",
            cfg.label_noise
        );
    }
    let world = World::new(cfg)?;
    let mut jobs = Vec::with_capacity((cfg.subjects * cfg.per_subject + cfg.test) as usize);
    for subject in 1..=cfg.subjects {
        jobs.extend((1..=cfg.per_subject).map(|n| Job::Train { subject, n }));
    }
    jobs.extend((1..=cfg.test).map(|id| Job::Test { id }));

    let pb = crate::progress::bar(jobs.len() as u64, "synth", cfg.quiet);
    let done = AtomicUsize::new(0);
    let written = jobs
        .par_iter()
        .map_init(
            || (vec![0u8; PIXELS], vec![0u8; PIXELS]),
            |(img, mask), job| -> Result<(usize, Vec<noise::Noisy>)> {
                crate::interrupt::check()?;
                let (present, noisy) = match *job {
                    Job::Train { subject, n } => world.train(subject, n, img, mask)?,
                    Job::Test { id } => {
                        world.test(id, img, mask)?;
                        (false, None)
                    }
                };
                pb.inc(1);
                done.fetch_add(1, Ordering::Relaxed);
                Ok((present as usize, noisy.into_iter().collect()))
            },
        )
        .try_reduce(
            || (0, Vec::new()),
            |(a, mut x), (b, y)| {
                x.extend(y);
                Ok((a + b, x))
            },
        );
    let (with_nerve, mut noisy) = crate::interrupt::keeping(written, |_| {
        format!(
            "{} of {} frames were written to {}, each one whole; run synth again with \
             --overwrite to start over",
            done.load(Ordering::Relaxed),
            jobs.len(),
            cfg.out.display()
        )
    })?;
    pb.finish_and_clear();
    noisy.sort_by_key(|x| (x.subject, x.n));
    noise::write_record(&cfg.out.join(noise::RECORD), &noisy)?;
    Ok(SynthReport {
        out: cfg.out.clone(),
        train_pairs: (cfg.subjects * cfg.per_subject) as usize,
        train_with_nerve: with_nerve,
        noisy: noisy.len(),
        test_images: cfg.test as usize,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// What every frame is drawn from and written to: the output folders, the subjects and
/// which training frames repeat another with a wrong mask.
struct World<'a> {
    cfg: &'a SynthConfig,
    train_dir: PathBuf,
    test_dir: PathBuf,
    truth_dir: PathBuf,
    subjects: Vec<Subject>,
    /// Test frames come from subjects of their own.
    test_subjects: Vec<Subject>,
    /// Per subject, per frame: the frame it repeats as label noise.
    plans: Vec<Vec<Option<u32>>>,
}

impl<'a> World<'a> {
    /// Makes the output folders ready ([`prepare_dir`]) and the subjects.
    fn new(cfg: &'a SynthConfig) -> Result<World<'a>> {
        let train_dir = cfg.out.join("train");
        let test_dir = cfg.out.join("test");
        let truth_dir = cfg.out.join("test_masks");
        let mut dirs = vec![&train_dir, &test_dir];
        if cfg.test_masks {
            dirs.push(&truth_dir);
        }
        for d in &dirs {
            prepare_dir(d, cfg.overwrite)?;
        }
        let subjects = (1..=cfg.subjects)
            .map(|s| Subject::new(cfg.seed, 0, s as u64))
            .collect();
        // About as many frames each as in train.
        let n_test_subjects = cfg.test.div_ceil(cfg.per_subject).max(1);
        let test_subjects = (1..=n_test_subjects)
            .map(|s| Subject::new(cfg.seed, 1, s as u64))
            .collect();
        let plans = (1..=cfg.subjects)
            .map(|s| noise::plan(cfg.seed, s, cfg.per_subject, cfg.label_noise))
            .collect();
        Ok(World {
            cfg,
            train_dir,
            test_dir,
            truth_dir,
            subjects,
            test_subjects,
            plans,
        })
    }

    fn frame_seed(&self, subject: u32, n: u32) -> u64 {
        mix(mix(self.cfg.seed, 2), mix(subject as u64, n as u64))
    }

    /// Draws and writes training pair `n` of `subject`: whether it shows a nerve, and the
    /// label noise it is, if any.
    fn train(
        &self,
        subject: u32,
        n: u32,
        img: &mut [u8],
        mask: &mut [u8],
    ) -> Result<(bool, Option<noise::Noisy>)> {
        let s = &self.subjects[subject as usize - 1];
        let (present, noisy) = match self.plans[subject as usize - 1][n as usize - 1] {
            None => (s.frame(self.frame_seed(subject, n), img, mask), None),
            Some(source) => {
                let r = noise::repeat(self.cfg.seed, subject, n);
                let added = s.render(self.frame_seed(subject, source), img, mask, Some(&r));
                let noisy = noise::Noisy {
                    subject,
                    n,
                    source,
                    added,
                };
                (added, Some(noisy))
            }
        };
        let dir = &self.train_dir;
        self.write(&dir.join(format!("{subject}_{n}.tif")), img)?;
        self.write(&dir.join(format!("{subject}_{n}_mask.tif")), mask)?;
        Ok((present, noisy))
    }

    /// Draws and writes test image `id`, and its truth when asked for.
    fn test(&self, id: u32, img: &mut [u8], mask: &mut [u8]) -> Result<()> {
        let seed = self.cfg.seed;
        // Scatter ids over the test subjects so id order says nothing.
        let k = mix(mix(seed, 3), id as u64) % self.test_subjects.len() as u64;
        self.test_subjects[k as usize].frame(mix(mix(seed, 4), id as u64), img, mask);
        self.write(&self.test_dir.join(format!("{id}.tif")), img)?;
        if self.cfg.test_masks {
            self.write(&self.truth_dir.join(format!("{id}_mask.tif")), mask)?;
        }
        Ok(())
    }

    fn write(&self, path: &Path, pixels: &[u8]) -> Result<()> {
        tiff::write_gray8(path, WIDTH, HEIGHT, pixels, self.cfg.compression)
    }
}

/// Creates `dir`, refusing to mix new frames with Kaggle-named files already there unless
/// `overwrite`, in which case those files (and only those) are removed first.
fn prepare_dir(dir: &Path, overwrite: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut existing = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if RawName::parse(name).is_some() {
            existing.push(path);
        }
    }
    if existing.is_empty() {
        return Ok(());
    }
    if !overwrite {
        bail!(
            "{} already holds {} Kaggle-named files (e.g. {}); pass --overwrite to replace them \
             or choose another --out",
            dir.display(),
            existing.len(),
            existing[0].display()
        );
    }
    for p in existing {
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}
