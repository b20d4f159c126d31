//! The Kaggle raw layout: `train/{subject}_{n}.tif` paired with `train/{subject}_{n}_mask.tif`,
//! and `test/{id}.tif`. Parses and orders the names and pairs images with masks; two
//! names for one frame (`1_2.tif` and `01_2.tif`) are an error naming both.
//!
//! The original `data.py` took files in directory-listing order; we sort naturally
//! (subject, then image number; test by id) so the output is deterministic.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

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
pub(crate) fn scan_train(dir: &Path) -> Result<Vec<TrainPair>> {
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
pub(crate) fn scan_test(dir: &Path) -> Result<Vec<TestImage>> {
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
