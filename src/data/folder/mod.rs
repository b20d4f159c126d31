//! `prepare --images DIR --masks DIR [--test-images DIR]`: a user's own frames (PNG,
//! JPEG, TIFF or BMP, any one size, or resized to `--size`) into the same `.npy` files
//! the Kaggle path writes, plus the frame names and groups beside them.
//!
//! Names are listed and paired, and every header's size read, before any pixel is
//! decoded; frames are then decoded in parallel a chunk at a time and streamed out, and
//! every output is renamed into place only when all of them succeeded.

pub mod groups;
pub mod listing;
pub mod masks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use rayon::prelude::*;

use self::groups::GroupSource;
use self::listing::Entry;
use self::masks::Rule;
use super::npy::NpyWriter;
use super::{decode, Outputs, PrepareReport, CHUNK};
use crate::frame::FrameSize;
use crate::resize::Resizer;

/// What `prepare` reads from folders.
#[derive(Clone, Debug)]
pub struct FolderConfig {
    pub images: PathBuf,
    pub masks: PathBuf,
    pub test_images: Option<PathBuf>,
    pub out: PathBuf,
    /// The label of the nerve in palette or label masks.
    pub mask_class: Option<u8>,
    /// Resize every frame to this size (bilinear images, nearest masks).
    pub size: Option<FrameSize>,
    /// `name,group` rows.
    pub groups: Option<PathBuf>,
    pub quiet: bool,
}

/// Runs the data stage on folders. Either every output is written, or none is changed.
pub fn prepare(cfg: &FolderConfig) -> Result<PrepareReport> {
    crate::interrupt::keeping(prepare_all(cfg), |_| {
        format!(
            "nothing was written; the files in {} are as they were",
            cfg.out.display()
        )
    })
}

/// The one size of `entries`' frames (`sizes`, from their headers), or `wanted`; an
/// error listing the sizes found when they differ and no size was asked for.
fn common_size(
    sizes: &[FrameSize],
    entries: &[&Entry],
    wanted: Option<FrameSize>,
    dir: &Path,
) -> Result<FrameSize> {
    let mut found: BTreeMap<FrameSize, (usize, &str)> = BTreeMap::new();
    for (s, e) in sizes.iter().zip(entries) {
        found.entry(*s).or_insert((0, &e.name)).0 += 1;
    }
    if let Some(w) = wanted {
        return Ok(w);
    }
    if found.len() > 1 {
        let list: Vec<String> = found
            .iter()
            .map(|(s, (n, e))| format!("{s} ({n} frames, e.g. {e})"))
            .collect();
        bail!(
            "{}: frames of {} sizes: {}; pass --size HxW to resize them all to one",
            dir.display(),
            found.len(),
            list.join(", ")
        );
    }
    found
        .into_keys()
        .next()
        .ok_or_else(|| anyhow::anyhow!("{}: no PNG, JPEG, TIFF or BMP images", dir.display()))
}

fn sizes_of(entries: &[&Entry]) -> Result<Vec<FrameSize>> {
    in_order(
        entries
            .par_iter()
            .map(|e| decode::dimensions(&e.path))
            .collect(),
    )
}

/// The results of a parallel map, or the error of the first file (in name order) that
/// failed, whichever thread met it first.
fn in_order<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    results.into_iter().collect()
}

/// Decodes one frame at `size`, and says what was converted.
fn frame_at(e: &Entry, size: FrameSize) -> Result<(Vec<u8>, Option<&'static str>)> {
    let g = decode::read_gray(&e.path)?;
    if g.size == size {
        return Ok((g.pixels, g.converted));
    }
    let mut out = vec![0u8; size.pixels()];
    Resizer::new(g.size.height, g.size.width, size.height, size.width)
        .resize_u8(&g.pixels, &mut out);
    Ok((out, g.converted))
}

/// Decodes one mask at `size` as a 0/255 nerve mask, with the rule it was read by.
fn mask_at(m: &Entry, size: FrameSize, class: Option<u8>) -> Result<(Vec<u8>, Rule)> {
    let labels = decode::read_labels(&m.path)?;
    let rule = masks::rule_for(&labels, class, &m.path)?;
    let mask = masks::nerve(&labels.values, rule);
    if labels.size == size {
        return Ok((mask, rule));
    }
    Ok((masks::resize_nearest(&mask, labels.size, size), rule))
}

/// The image files of `dir`, noting the other files it skipped.
fn list_noting(dir: &Path, report: &mut PrepareReport) -> Result<Vec<Entry>> {
    let (entries, skipped) = listing::list(dir)?;
    if !skipped.is_empty() {
        report.notes.push(format!(
            "{}: skipped {} not PNG, JPEG, TIFF or BMP: {}",
            dir.display(),
            crate::words::count_verb(skipped.len(), "file", "files", "that is", "that are"),
            listing::some_of(&skipped)
        ));
    }
    Ok(entries)
}

/// Everything known before a pixel is read: the pairs, their groups, the sizes.
struct Plan {
    pairs: Vec<(Entry, Entry)>,
    groups: Vec<String>,
    source: GroupSource,
    size: FrameSize,
    test: Option<(Vec<Entry>, FrameSize)>,
}

fn plan(cfg: &FolderConfig, report: &mut PrepareReport) -> Result<Plan> {
    let images = list_noting(&cfg.images, report)?;
    let one_folder = same_folder(&cfg.images, &cfg.masks);
    let masks = if one_folder {
        Vec::new()
    } else {
        list_noting(&cfg.masks, report)?
    };
    let pairs = listing::pair(images, masks, one_folder)?;
    let frames: Vec<Entry> = pairs.iter().map(|p| p.0.clone()).collect();
    let (groups, source) = groups::groups(&frames, cfg.groups.as_deref())?;
    let (images, masks): (Vec<&Entry>, Vec<&Entry>) = pairs.iter().map(|(i, m)| (i, m)).unzip();
    let image_sizes = sizes_of(&images)?;
    let mask_sizes = sizes_of(&masks)?;
    for ((i, m), (si, sm)) in pairs.iter().zip(image_sizes.iter().zip(&mask_sizes)) {
        if si != sm {
            bail!(
                "{} is {si} but its mask {} is {sm}",
                i.path.display(),
                m.path.display()
            );
        }
    }
    let size = common_size(&image_sizes, &images, cfg.size, &cfg.images)?;
    note_small(&images, &image_sizes, report);
    let test = match &cfg.test_images {
        Some(dir) => {
            let t = list_noting(dir, report)?;
            let refs: Vec<&Entry> = t.iter().collect();
            let s = common_size(&sizes_of(&refs)?, &refs, cfg.size, dir)?;
            Some((t, s))
        }
        None => None,
    };
    Ok(Plan {
        pairs,
        groups,
        source,
        size,
        test,
    })
}

/// Warns of frames smaller than the tutorial network's input: enlarged to it, they
/// carry little for it to see.
fn note_small(entries: &[&Entry], sizes: &[FrameSize], report: &mut PrepareReport) {
    let input = crate::model::TUTORIAL_INPUT;
    let small: Vec<(&Entry, &FrameSize)> = entries
        .iter()
        .copied()
        .zip(sizes)
        .filter(|(_, s)| s.height < input.height || s.width < input.width)
        .collect();
    if let Some((e, s)) = small.first() {
        let frames = crate::words::count(small.len(), "frame is", "frames are");
        report.notes.push(format!(
            "warning: {frames} smaller than the network's {input} input (e.g. {}, {s}): \
             enlarged, they carry little detail",
            e.name
        ));
    }
}

fn shape(n: usize, s: FrameSize) -> [u64; 3] {
    [n as u64, s.height as u64, s.width as u64]
}

/// How many frames were converted, by what.
type Conversions = BTreeMap<&'static str, usize>;

fn write_train(
    cfg: &FolderConfig,
    plan: &Plan,
    out: &mut Outputs,
    converted: &mut Conversions,
    report: &mut PrepareReport,
) -> Result<()> {
    let (pairs, size) = (&plan.pairs, plan.size);
    let n = pairs.len();
    let mut imgs = NpyWriter::<u8>::create(&cfg.out.join(super::IMGS_TRAIN), &shape(n, size))?;
    let mut msks = NpyWriter::<u8>::create(&cfg.out.join(super::IMGS_MASK_TRAIN), &shape(n, size))?;
    let mut rules: BTreeMap<Rule, usize> = BTreeMap::new();
    let pb = crate::progress::bar(n as u64, "train", cfg.quiet);
    super::pipeline::pipelined(
        pairs.chunks(CHUNK),
        |chunk| {
            let results = chunk
                .par_iter()
                .map(|(i, m)| Ok((frame_at(i, size)?, mask_at(m, size, cfg.mask_class)?)))
                .collect::<Vec<_>>();
            in_order(results)
        },
        |frames| {
            for ((img, note), (mask, rule)) in &frames {
                imgs.push_row(img)?;
                msks.push_row(mask)?;
                *rules.entry(*rule).or_default() += 1;
                if let Some(c) = note {
                    *converted.entry(c).or_default() += 1;
                }
            }
            pb.inc(frames.len() as u64);
            Ok(())
        },
    )?;
    pb.finish_and_clear();
    out.npy.extend([imgs, msks]);
    let names: Vec<String> = pairs.iter().map(|p| p.0.name.clone()).collect();
    out.lines.push(super::lines(
        &cfg.out.join(super::IMGS_NAMES_TRAIN),
        &names,
    )?);
    out.lines.push(super::lines(
        &cfg.out.join(super::IMGS_GROUPS_TRAIN),
        &plan.groups,
    )?);
    report.train_images = n;
    for (rule, count) in &rules {
        report.notes.push(format!("masks: {rule}: {count} masks"));
    }
    report.notes.push(match &plan.source {
        GroupSource::Kaggle => "groups: the subject of each {subject}_{n} name".to_owned(),
        GroupSource::File(p) => format!("groups: from {}", p.display()),
        GroupSource::EachFrame => {
            "groups: none given (--groups FILE.csv); each frame is its own group".to_owned()
        }
    });
    Ok(())
}

fn write_test(
    cfg: &FolderConfig,
    entries: &[Entry],
    size: FrameSize,
    out: &mut Outputs,
    converted: &mut Conversions,
    report: &mut PrepareReport,
) -> Result<()> {
    let n = entries.len();
    let mut w = NpyWriter::<u8>::create(&cfg.out.join(super::IMGS_TEST), &shape(n, size))?;
    let pb = crate::progress::bar(n as u64, "test", cfg.quiet);
    super::pipeline::pipelined(
        entries.chunks(CHUNK),
        |chunk| in_order(chunk.par_iter().map(|e| frame_at(e, size)).collect()),
        |frames| {
            for (img, note) in &frames {
                w.push_row(img)?;
                if let Some(c) = note {
                    *converted.entry(c).or_default() += 1;
                }
            }
            pb.inc(frames.len() as u64);
            Ok(())
        },
    )?;
    pb.finish_and_clear();
    let mut ids = NpyWriter::<i32>::create(&cfg.out.join(super::IMGS_ID_TEST), &[n as u64])?;
    for id in 1..=n as i32 {
        ids.push_row(&[id])?;
    }
    out.npy.push(w);
    out.ids = Some(ids);
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    out.lines
        .push(super::lines(&cfg.out.join(super::IMGS_NAMES_TEST), &names)?);
    report.test_images = n;
    report.notes.push(format!(
        "test frames: {size}; ids 1..{n} in the order of {}",
        super::IMGS_NAMES_TEST
    ));
    Ok(())
}

fn prepare_all(cfg: &FolderConfig) -> Result<PrepareReport> {
    let start = Instant::now();
    let mut report = PrepareReport::default();
    let plan = plan(cfg, &mut report)?;
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", cfg.out.display()))?;
    let mut out = Outputs::default();
    let mut converted = Conversions::new();
    write_train(cfg, &plan, &mut out, &mut converted, &mut report)?;
    if let Some((entries, size)) = &plan.test {
        write_test(cfg, entries, *size, &mut out, &mut converted, &mut report)?;
    }
    report.notes.insert(
        0,
        match cfg.size {
            Some(s) => format!("frames resized to {s} (bilinear images, nearest masks)"),
            None => format!("frames: {}", plan.size),
        },
    );
    for (kind, count) in converted {
        report.notes.push(match kind {
            "16-bit" => format!(
                "{count} 16-bit frames scaled to 8 bits (v >> 8, as scikit-image's img_as_ubyte)"
            ),
            k if k.contains("alpha") || k.contains("RGBA") => format!(
                "{count} {k} frames composited on white (scikit-image's rgba2rgb) and made gray"
            ),
            k => format!("{count} {k} frames made gray with scikit-image's rgb2gray weights"),
        });
    }
    // Everything was read without error: only now replace the outputs.
    crate::interrupt::check()?;
    out.commit(&mut report)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Whether two paths name one folder (the same text, where either does not resolve).
fn same_folder(a: &Path, b: &Path) -> bool {
    crate::atomic::same_place(a, b) || a == b
}
