//! The Kaggle raw layout: `train/{subject}_{n}.tif` paired with `train/{subject}_{n}_mask.tif`,
//! and `test/{id}.tif`. Parses and orders the names, pairs images with masks, and reads
//! or writes one 8-bit grayscale 420 x 580 TIFF with every property checked.
//!
//! The original `data.py` took files in directory-listing order; we sort naturally
//! (subject, then image number; test by id) so the output is deterministic.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use tiff::decoder::{Decoder, Limits};
use tiff::ColorType;

/// Rows of a Kaggle frame.
pub const HEIGHT: usize = 420;
/// Columns of a Kaggle frame.
pub const WIDTH: usize = 580;
/// Pixels of a Kaggle frame.
pub const PIXELS: usize = HEIGHT * WIDTH;

/// What a file name in `train/` or `test/` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RawName {
    /// `{subject}_{n}.tif`
    TrainImage { subject: u32, n: u32 },
    /// `{subject}_{n}_mask.tif`
    TrainMask { subject: u32, n: u32 },
    /// `{id}.tif`
    Test { id: u32 },
}

impl RawName {
    /// Parses a file name (no folder). `None` when it does not follow the Kaggle pattern.
    pub fn parse(name: &str) -> Option<RawName> {
        let stem = name.strip_suffix(".tif")?;
        let number = |s: &str| -> Option<u32> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let (stem, is_mask) = match stem.strip_suffix("_mask") {
            Some(s) => (s, true),
            None => (stem, false),
        };
        match stem.split_once('_') {
            Some((subject, n)) => {
                let (subject, n) = (number(subject)?, number(n)?);
                Some(if is_mask {
                    RawName::TrainMask { subject, n }
                } else {
                    RawName::TrainImage { subject, n }
                })
            }
            None if !is_mask => Some(RawName::Test { id: number(stem)? }),
            None => None,
        }
    }
}

/// One training sample: its subject, image number and the two files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainPair {
    pub subject: u32,
    pub n: u32,
    pub image: PathBuf,
    pub mask: PathBuf,
}

/// One test image and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestImage {
    pub id: u32,
    pub path: PathBuf,
}

/// The file names of a folder, sorted, without hidden files (`.DS_Store` and the like).
fn list_names(dir: &Path, what: &str) -> Result<Vec<String>> {
    if !dir.is_dir() {
        bail!(
            "{} not found: expected the Kaggle layout ({what}); run `nerveseg synth --out {}` \
             for synthetic data",
            dir.display(),
            dir.parent()
                .map_or_else(|| ".".into(), |p| p.display().to_string())
        );
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            bail!("{}: file name is not UTF-8", entry.path().display());
        };
        if !name.starts_with('.') {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Lists `dir` (a Kaggle `train/` folder) as image/mask pairs ordered by subject, then
/// image number. Every name must follow the pattern and every image must have its mask
/// and every mask its image.
pub fn scan_train(dir: &Path) -> Result<Vec<TrainPair>> {
    use std::collections::BTreeMap;
    let mut images = BTreeMap::new();
    let mut masks = BTreeMap::new();
    for name in list_names(
        dir,
        "train/{subject}_{n}.tif and train/{subject}_{n}_mask.tif",
    )? {
        let (map, key) = match RawName::parse(&name) {
            Some(RawName::TrainImage { subject, n }) => (&mut images, (subject, n)),
            Some(RawName::TrainMask { subject, n }) => (&mut masks, (subject, n)),
            _ => bail!(
                "{}: name does not follow the Kaggle pattern {{subject}}_{{n}}.tif or \
                 {{subject}}_{{n}}_mask.tif",
                dir.join(&name).display()
            ),
        };
        if let Some(other) = map.get(&key) {
            bail!(
                "{} and {} both name subject {} image {}; keep one",
                dir.join(other).display(),
                dir.join(&name).display(),
                key.0,
                key.1
            );
        }
        map.insert(key, name);
    }
    if let Some(((s, n), name)) = masks.iter().find(|(k, _)| !images.contains_key(k)) {
        bail!(
            "{}: mask without its image (expected {})",
            dir.join(name).display(),
            dir.join(format!("{s}_{n}.tif")).display()
        );
    }
    let mut pairs = Vec::with_capacity(images.len());
    for ((subject, n), name) in images {
        let Some(mask) = masks.get(&(subject, n)) else {
            bail!(
                "{}: image without its mask (expected {})",
                dir.join(&name).display(),
                dir.join(format!("{subject}_{n}_mask.tif")).display()
            );
        };
        pairs.push(TrainPair {
            subject,
            n,
            image: dir.join(name),
            mask: dir.join(mask),
        });
    }
    if pairs.is_empty() {
        bail!(
            "{}: no training images ({{subject}}_{{n}}.tif) found",
            dir.display()
        );
    }
    Ok(pairs)
}

/// Lists `dir` (a Kaggle `test/` folder) ordered by id.
pub fn scan_test(dir: &Path) -> Result<Vec<TestImage>> {
    let mut by_id = std::collections::BTreeMap::new();
    for name in list_names(dir, "test/{id}.tif")? {
        let Some(RawName::Test { id }) = RawName::parse(&name) else {
            bail!(
                "{}: name does not follow the Kaggle pattern {{id}}.tif",
                dir.join(&name).display()
            );
        };
        if let Some(other) = by_id.get(&id) {
            bail!(
                "{} and {} both name test image {id}; keep one",
                dir.join(other).display(),
                dir.join(&name).display()
            );
        }
        by_id.insert(id, name);
    }
    let Some((&last, name)) = by_id.last_key_value() else {
        bail!("{}: no test images ({{id}}.tif) found", dir.display());
    };
    if i32::try_from(last).is_err() {
        bail!(
            "{}: id too large for imgs_id_test.npy (int32)",
            dir.join(name).display()
        );
    }
    Ok(by_id
        .into_iter()
        .map(|(id, name)| TestImage {
            id,
            path: dir.join(name),
        })
        .collect())
}

/// Describes a TIFF colour type the way a person would say it.
struct Kind(ColorType);

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ColorType::Gray(b) => write!(f, "{b}-bit grayscale"),
            ColorType::RGB(b) => write!(f, "{b}-bit RGB"),
            ColorType::RGBA(b) => write!(f, "{b}-bit RGBA"),
            ColorType::GrayA(b) => write!(f, "{b}-bit grayscale with alpha"),
            ColorType::Palette(b) => write!(f, "{b}-bit palette"),
            ColorType::CMYK(b) => write!(f, "{b}-bit CMYK"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The `tiff` crate's limits for one 8-bit frame: no decoded buffer larger than the
/// frame, no compressed strip larger than twice it (LZW can grow noise a little).
fn limits() -> Limits {
    let mut l = Limits::default();
    l.decoding_buffer_size = PIXELS;
    l.intermediate_buffer_size = 2 * PIXELS;
    l
}

/// Checks the strips (or tiles) the IFD lists before any is read: at most one per row,
/// each inside the file and no larger than the decoder may buffer.
fn check_chunks(dec: &mut Decoder<BufReader<File>>, file_len: u64) -> Result<()> {
    use tiff::tags::Tag;
    let (offsets, counts) = match dec.get_chunk_type() {
        tiff::decoder::ChunkType::Strip => (Tag::StripOffsets, Tag::StripByteCounts),
        tiff::decoder::ChunkType::Tile => (Tag::TileOffsets, Tag::TileByteCounts),
    };
    let offsets = dec.get_tag_u64_vec(offsets).context("no strip offsets")?;
    let counts = dec
        .get_tag_u64_vec(counts)
        .context("no strip byte counts")?;
    ensure!(
        offsets.len() == counts.len() && !counts.is_empty() && counts.len() <= HEIGHT,
        "{} strip offsets and {} byte counts for {HEIGHT} rows",
        offsets.len(),
        counts.len()
    );
    for (i, (&o, &c)) in offsets.iter().zip(&counts).enumerate() {
        let end = o.checked_add(c);
        ensure!(
            end.is_some_and(|e| e <= file_len) && c <= 2 * PIXELS as u64,
            "strip {i} claims {c} bytes at offset {o}, outside the {file_len}-byte file"
        );
    }
    Ok(())
}

/// Reads an 8-bit single-channel 420 x 580 TIFF into `out` (row-major, PIXELS bytes).
/// Sizes are checked before anything is decoded; errors name the file and say what was
/// found.
pub fn read_frame(path: &Path, out: &mut [u8]) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let mut dec = Decoder::new(BufReader::new(file))
        .with_context(|| format!("{}: not a readable TIFF file", path.display()))?
        .with_limits(limits());
    let (w, h) = dec
        .dimensions()
        .with_context(|| format!("{}: not a readable TIFF file", path.display()))?;
    let kind = dec
        .colortype()
        .with_context(|| format!("{}: unsupported TIFF", path.display()))?;
    if kind != ColorType::Gray(8) {
        bail!(
            "{}: image is {}, expected 8-bit single-channel grayscale",
            path.display(),
            Kind(kind)
        );
    }
    if (w as usize, h as usize) != (WIDTH, HEIGHT) {
        bail!(
            "{}: image is {h} rows x {w} columns, expected {HEIGHT} rows x {WIDTH} columns",
            path.display()
        );
    }
    check_chunks(&mut dec, file_len)
        .with_context(|| format!("{}: TIFF is corrupt", path.display()))?;
    dec.read_image_bytes(&mut out[..PIXELS])
        .with_context(|| format!("{}: TIFF is truncated or corrupt", path.display()))?;
    Ok(())
}

/// Reads a mask like [`read_frame`] and checks that it holds only 0 and 255.
pub fn read_mask(path: &Path, out: &mut [u8]) -> Result<()> {
    read_frame(path, out)?;
    // A branch-free pass first (it vectorises); the search for the culprit only on failure.
    let binary = out[..PIXELS]
        .chunks(4096)
        .all(|c| c.iter().fold(true, |ok, &v| ok & ((v == 0) | (v == 255))));
    if binary {
        return Ok(());
    }
    if let Some(v) = out[..PIXELS].iter().find(|&&v| v != 0 && v != 255) {
        bail!(
            "{}: mask holds the value {v}; Kaggle masks hold only 0 and 255",
            path.display()
        );
    }
    Ok(())
}

/// Writes an 8-bit grayscale TIFF (uncompressed, as Kaggle's) atomically: a temporary
/// file in the same folder, renamed into place.
pub fn write_gray8(path: &Path, width: usize, height: usize, data: &[u8]) -> Result<()> {
    crate::atomic::write_with(path, |w| {
        let mut enc = tiff::encoder::TiffEncoder::new(w)?;
        enc.write_image::<tiff::encoder::colortype::Gray8>(width as u32, height as u32, data)
            .with_context(|| format!("writing {}", path.display()))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kaggle_names() {
        assert_eq!(
            RawName::parse("12_3.tif"),
            Some(RawName::TrainImage { subject: 12, n: 3 })
        );
        assert_eq!(
            RawName::parse("12_3_mask.tif"),
            Some(RawName::TrainMask { subject: 12, n: 3 })
        );
        assert_eq!(RawName::parse("5508.tif"), Some(RawName::Test { id: 5508 }));
        for bad in [
            "12_3.tiff",
            "a_3.tif",
            "12_.tif",
            "_3.tif",
            "12_3_mask",
            "1_2_3.tif",
            "mask.tif",
            "12_mask.tif",
            "12 _3.tif",
            "-1_3.tif",
            "+4.tif",
            ".tif",
        ] {
            assert_eq!(RawName::parse(bad), None, "{bad}");
        }
    }

    fn touch(dir: &Path, names: &[&str]) {
        for n in names {
            std::fs::write(dir.join(n), b"").unwrap();
        }
    }

    #[test]
    fn train_pairs_sort_naturally() {
        let d = tempfile::tempdir().unwrap();
        touch(
            d.path(),
            &[
                "10_1.tif",
                "10_1_mask.tif",
                "2_10.tif",
                "2_10_mask.tif",
                "2_9.tif",
                "2_9_mask.tif",
                ".DS_Store",
            ],
        );
        let order: Vec<(u32, u32)> = scan_train(d.path())
            .unwrap()
            .iter()
            .map(|p| (p.subject, p.n))
            .collect();
        assert_eq!(order, [(2, 9), (2, 10), (10, 1)]);
    }

    #[test]
    fn test_ids_sort_numerically() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["10.tif", "9.tif", "100.tif", "1.tif"]);
        let ids: Vec<u32> = scan_test(d.path()).unwrap().iter().map(|t| t.id).collect();
        assert_eq!(ids, [1, 9, 10, 100]);
    }

    #[test]
    fn two_names_for_one_frame_are_refused() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["1_2.tif", "01_2.tif", "1_2_mask.tif"]);
        let e = format!("{:#}", scan_train(d.path()).unwrap_err());
        assert!(
            e.contains("01_2.tif and") && e.contains("1_2.tif both name subject 1 image 2"),
            "{e}"
        );
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["1_2.tif", "1_2_mask.tif", "1_02_mask.tif"]);
        let e = format!("{:#}", scan_train(d.path()).unwrap_err());
        assert!(e.contains("both name subject 1 image 2"), "{e}");
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["7.tif", "007.tif"]);
        let e = format!("{:#}", scan_test(d.path()).unwrap_err());
        assert!(
            e.contains("007.tif and") && e.contains("both name test image 7"),
            "{e}"
        );
    }

    #[test]
    fn pairing_errors_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["1_1.tif", "1_1_mask.tif", "1_2.tif"]);
        let e = format!("{:#}", scan_train(d.path()).unwrap_err());
        assert!(e.contains("1_2.tif: image without its mask"), "{e}");
        std::fs::remove_file(d.path().join("1_2.tif")).unwrap();
        touch(d.path(), &["1_3_mask.tif"]);
        let e = format!("{:#}", scan_train(d.path()).unwrap_err());
        assert!(e.contains("1_3_mask.tif: mask without its image"), "{e}");
    }
}
