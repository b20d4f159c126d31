//! `clean`: label noise in the training set. Near-identical frames of one subject (group)
//! whose masks disagree about the nerve cannot both be right. Each frame becomes a
//! small thumbnail (block means on a 32 x 32 grid, standardised), two frames are near
//! duplicates when the distance 1 - r (r: the correlation of their thumbnails) is
//! under a threshold (all pairs when no two frames share a group), and every such
//! pair whose masks disagree about presence is reported with its names, distance and
//! mask areas. `--drop` writes a copy of the
//! training arrays without both frames of each pair ([`write`]); `--noise` scores the
//! pairs against the label noise `synth` recorded.

mod write;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::data::npy::{Dtype, NpyReader};

/// Thumbnail side: 32 x 32 block means (16 x 16 could not tell a repeat from another
/// frame of the same subject on synthetic data: the anatomy dominates).
pub const THUMB: usize = 32;
/// The default largest distance (1 - correlation) of a near duplicate.
pub const DEFAULT_THRESHOLD: f64 = 0.02;

/// What `clean` reads and writes.
#[derive(Clone, Debug)]
pub struct CleanConfig {
    pub images: PathBuf,
    pub masks: PathBuf,
    /// Groups file; default: imgs_groups_train.txt beside the images, or one group.
    pub groups: Option<PathBuf>,
    pub threshold: f64,
    /// `synth`'s label_noise.csv, to score the pairs found against.
    pub noise: Option<PathBuf>,
    /// Write the cleaned arrays (both frames of each pair dropped) into this folder.
    pub drop_to: Option<PathBuf>,
    pub quiet: bool,
}

/// Two frames of one group that look alike but disagree about the nerve.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub distance: f64,
    pub area_a: usize,
    pub area_b: usize,
}

/// Precision and recall of the pairs against synth's record.
#[derive(Clone, Debug, PartialEq)]
pub struct Against {
    pub record: PathBuf,
    /// Pairs that hold a recorded noisy frame.
    pub true_pairs: usize,
    /// Recorded noisy frames in some pair, of all recorded.
    pub found: usize,
    pub recorded: usize,
}

/// What `clean` found (and wrote).
#[derive(Clone, Debug)]
pub struct CleanReport {
    pub names: Vec<String>,
    pub frames: usize,
    pub groups: usize,
    pub threshold: f64,
    /// Near-duplicate pairs, agreeing or not.
    pub near: usize,
    pub pairs: Vec<Pair>,
    pub against: Option<Against>,
    /// The folder written with --drop and the frames it kept.
    pub written: Option<(PathBuf, usize)>,
}

impl fmt::Display for CleanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.pairs.is_empty() {
            writeln!(
                f,
                "{:<24} {:<24} {:>8} {:>7} {:>7}",
                "frame", "near duplicate", "distance", "area", "area"
            )?;
        }
        for p in &self.pairs {
            writeln!(
                f,
                "{:<24} {:<24} {:>8.4} {:>7} {:>7}",
                self.names[p.a], self.names[p.b], p.distance, p.area_a, p.area_b
            )?;
        }
        write!(
            f,
            "{} frames in {} group{}: {} near-duplicate pairs (distance < {}), {} of them \
             disagree about the nerve",
            self.frames,
            self.groups,
            if self.groups == 1 { "" } else { "s" },
            self.near,
            self.threshold,
            self.pairs.len()
        )?;
        if let Some(a) = &self.against {
            let precision = a.true_pairs as f64 / self.pairs.len().max(1) as f64;
            let recall = a.found as f64 / a.recorded.max(1) as f64;
            write!(
                f,
                "\nagainst {}: precision {precision:.3} ({} of {} pairs hold a recorded \
                 noisy frame), recall {recall:.3} ({} of {} noisy frames found)",
                a.record.display(),
                a.true_pairs,
                self.pairs.len(),
                a.found,
                a.recorded
            )?;
        }
        if let Some((dir, kept)) = &self.written {
            write!(
                f,
                "\nwrote {kept} of {} frames (both frames of each pair dropped) to {}",
                self.frames,
                dir.display()
            )?;
        }
        Ok(())
    }
}

/// The standardised 32 x 32 block means of one (h, w) frame; None for a flat frame.
pub(crate) fn thumbnail(frame: &[u8], h: usize, w: usize) -> Option<Vec<f32>> {
    let mut t = vec![0f64; THUMB * THUMB];
    for (i, cell) in t.iter_mut().enumerate() {
        let (r, c) = (i / THUMB, i % THUMB);
        let (r0, r1) = (r * h / THUMB, ((r + 1) * h / THUMB).max(r * h / THUMB + 1));
        let (c0, c1) = (c * w / THUMB, ((c + 1) * w / THUMB).max(c * w / THUMB + 1));
        let mut sum = 0u64;
        for y in r0..r1.min(h) {
            sum += frame[y * w + c0..(c1.min(w)) + y * w]
                .iter()
                .map(|&v| v as u64)
                .sum::<u64>();
        }
        *cell = sum as f64 / ((r1.min(h) - r0) * (c1.min(w) - c0)).max(1) as f64;
    }
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    let sd = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / t.len() as f64).sqrt();
    (sd > 1e-9).then(|| t.iter().map(|v| ((v - mean) / sd) as f32).collect())
}

/// 1 - the correlation of two standardised thumbnails (0 alike, 1 unrelated).
pub fn distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    1.0 - dot / a.len() as f64
}

/// A frame's thumbnail (None: a flat frame, never a duplicate).
type Thumb = Option<Vec<f32>>;

/// Thumbnails and mask areas of every frame, read a chunk at a time.
fn read_frames(cfg: &CleanConfig) -> Result<(Vec<Thumb>, Vec<usize>)> {
    let mut images = NpyReader::open(&cfg.images)?;
    images.expect(Dtype::U8, &[None, None, None])?;
    let mut masks = NpyReader::open(&cfg.masks)?;
    masks.expect(
        Dtype::U8,
        &images.shape.iter().map(|&d| Some(d)).collect::<Vec<_>>(),
    )?;
    let (n, h, w) = (
        images.shape[0] as usize,
        images.shape[1] as usize,
        images.shape[2] as usize,
    );
    let pb = crate::progress::bar(n as u64, "thumbnails", cfg.quiet);
    let chunk = (64 << 20) / (h * w).max(1);
    let (mut thumbs, mut areas) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut buf = Vec::new();
    let mut done = 0;
    while done < n {
        crate::interrupt::check()?;
        let k = chunk.clamp(1, n - done);
        buf.resize(k * h * w, 0u8);
        images.read_rows(&mut buf)?;
        thumbs.extend(buf.chunks(h * w).map(|f| thumbnail(f, h, w)));
        masks.read_rows(&mut buf)?;
        areas.extend(
            buf.chunks(h * w)
                .map(|m| m.iter().filter(|&&v| v != 0).count()),
        );
        done += k;
        pb.inc(k as u64);
    }
    pb.finish_and_clear();
    Ok((thumbs, areas))
}

/// The names prepare wrote beside the images, or frame numbers.
fn names(images: &Path, n: usize) -> Vec<String> {
    let path = crate::atomic::parent_dir(images).join(crate::data::IMGS_NAMES_TRAIN);
    match std::fs::read_to_string(&path) {
        Ok(t) if t.lines().count() == n => t.lines().map(str::to_owned).collect(),
        _ => (0..n).map(|i| format!("frame {i}")).collect(),
    }
}

/// Finds the conflicting near duplicates, scores them, and writes the cleaned copy.
pub fn clean(cfg: &CleanConfig) -> Result<CleanReport> {
    if !(cfg.threshold > 0.0 && cfg.threshold < 1.0) {
        bail!("--threshold must be between 0 and 1, got {}", cfg.threshold);
    }
    if let Some(out) = &cfg.drop_to {
        write::check_out(out, &cfg.images)?;
    }
    let (thumbs, areas) = read_frames(cfg)?;
    let n = thumbs.len();
    let groups_file = crate::split::groups_path(&cfg.images, cfg.groups.as_deref());
    let mut groups = if cfg.groups.is_some() || groups_file.exists() {
        crate::split::read_groups(&groups_file, n)?
    } else {
        vec![String::new(); n]
    };
    // A set without subjects (each frame its own group): compare every pair.
    if n > 1 && groups.iter().collect::<HashSet<_>>().len() == n {
        groups = vec![String::new(); n];
    }
    let mut by_group: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        by_group.entry(g).or_default().push(i);
    }
    let (mut near, mut pairs) = (0, Vec::new());
    for frames in by_group.values() {
        for (k, &a) in frames.iter().enumerate() {
            let Some(ta) = &thumbs[a] else { continue };
            for &b in &frames[k + 1..] {
                let Some(tb) = &thumbs[b] else { continue };
                let d = distance(ta, tb);
                if d >= cfg.threshold {
                    continue;
                }
                near += 1;
                if (areas[a] > 0) != (areas[b] > 0) {
                    let (area_a, area_b) = (areas[a], areas[b]);
                    pairs.push(Pair {
                        a,
                        b,
                        distance: d,
                        area_a,
                        area_b,
                    });
                }
            }
        }
    }
    let names = names(&cfg.images, n);
    let against = match &cfg.noise {
        Some(record) => Some(score(record, &names, &pairs)?),
        None => None,
    };
    let written = match &cfg.drop_to {
        Some(out) => {
            let drop: HashSet<usize> = pairs.iter().flat_map(|p| [p.a, p.b]).collect();
            let file = crate::split::read_groups(&groups_file, n).ok();
            let kept = write::without(cfg, file.as_deref().unwrap_or(&groups), &drop, out)?;
            Some((out.clone(), kept))
        }
        None => None,
    };
    Ok(CleanReport {
        names,
        frames: n,
        groups: by_group.len(),
        threshold: cfg.threshold,
        near,
        pairs,
        against,
        written,
    })
}

/// Precision and recall of `pairs` against synth's label_noise.csv.
fn score(record: &Path, names: &[String], pairs: &[Pair]) -> Result<Against> {
    let text = std::fs::read_to_string(record)
        .map_err(|e| anyhow!("reading {}: {e}", record.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some("image,repeats,mask") {
        bail!(
            "{}: not a label_noise.csv written by synth",
            record.display()
        );
    }
    let noisy: HashSet<&str> = lines.filter_map(|l| l.split(',').next()).collect();
    let is_noisy = |i: usize| noisy.contains(names[i].as_str());
    let true_pairs = pairs
        .iter()
        .filter(|p| is_noisy(p.a) || is_noisy(p.b))
        .count();
    let found: HashSet<usize> = pairs
        .iter()
        .flat_map(|p| [p.a, p.b])
        .filter(|&i| is_noisy(i))
        .collect();
    Ok(Against {
        record: record.to_owned(),
        true_pairs,
        found: found.len(),
        recorded: noisy.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_zero_for_a_copy_two_for_a_negative_and_ignores_gain() {
        let (h, w) = (40, 52);
        let f: Vec<u8> = (0..h * w)
            .map(|i| ((i * 37 + i / w * 11) % 200) as u8)
            .collect();
        let t = thumbnail(&f, h, w).unwrap();
        assert!(distance(&t, &t).abs() < 1e-6);
        let neg: Vec<u8> = f.iter().map(|&v| 255 - v).collect();
        assert!((distance(&t, &thumbnail(&neg, h, w).unwrap()) - 2.0).abs() < 1e-6);
        let brighter: Vec<u8> = f.iter().map(|&v| v / 2 + 40).collect();
        assert!(distance(&t, &thumbnail(&brighter, h, w).unwrap()) < 1e-3);
        assert!(thumbnail(&vec![9u8; h * w], h, w).is_none());
        // Frames smaller than the grid still work (each cell at least one pixel).
        assert!(thumbnail(&f[..10 * 12], 10, 12).is_some());
    }
}
