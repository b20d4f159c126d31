//! A user's folders of frames: the image files in natural order ("2.png" before
//! "10.png"), images paired with masks by file stem (`x.png` with `x.png` or
//! `x_mask.png`). Every problem with the names is found before any pixel is read.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::data::decode;

/// One image file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    /// The file name, `0001.png`.
    pub name: String,
    /// The name without its extension, `0001`.
    pub stem: String,
}

/// One image file as an entry of its own.
pub fn entry(path: &Path) -> Entry {
    let name = |s: Option<&std::ffi::OsStr>| s.map(|s| s.to_string_lossy().into_owned());
    Entry {
        path: path.to_owned(),
        name: name(path.file_name()).unwrap_or_default(),
        stem: name(path.file_stem()).unwrap_or_default(),
    }
}

/// Compares names as people do: runs of digits by their value.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (run(a), run(b));
                let trim = |s: &[u8]| {
                    let z = s.iter().take_while(|&&c| c == b'0').count();
                    s[z..].to_vec()
                };
                let (da, db) = (trim(&a[..na]), trim(&b[..nb]));
                let o = da
                    .len()
                    .cmp(&db.len())
                    .then_with(|| da.cmp(&db))
                    .then(na.cmp(&nb));
                if o != Ordering::Equal {
                    return o;
                }
                (a, b) = (&a[na..], &b[nb..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

/// "a, b, c and 4 more".
pub(crate) fn some_of(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// The image files of `dir` (PNG, JPEG, TIFF, BMP by extension) in natural order, and
/// the names of the other files, which are skipped. Two files with one stem
/// (`a.png`, `a.jpg`) are an error naming both.
pub fn list(dir: &Path) -> Result<(Vec<Entry>, Vec<String>)> {
    list_files(dir)
}

fn list_files(dir: &Path) -> Result<(Vec<Entry>, Vec<String>)> {
    let read = std::fs::read_dir(dir)
        .with_context(|| format!("listing {} (is it a folder of images?)", dir.display()))?;
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for e in read {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        if name.chars().any(char::is_control) {
            bail!(
                "{}: the file name {name:?} holds a control character; rename it",
                dir.display()
            );
        }
        if !decode::is_supported(&path) {
            skipped.push(name);
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        entries.push(Entry { path, name, stem });
    }
    entries.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    skipped.sort_by(|a, b| natural_cmp(a, b));
    let mut by_stem: HashMap<&str, &str> = HashMap::new();
    for e in &entries {
        if let Some(other) = by_stem.insert(&e.stem, &e.name) {
            bail!(
                "{}: {other} and {} are two images with one name; keep one",
                dir.display(),
                e.name
            );
        }
    }
    Ok((entries, skipped))
}

/// Pairs every image with its mask: `x.*` with `x.*` or `x_mask.*` in the masks. An
/// image without a mask, a mask without an image and an image with two masks are one
/// error that names them. When `images` and `masks` come from one folder, the masks are
/// its `_mask` files.
pub fn pair(
    images: Vec<Entry>,
    masks: Vec<Entry>,
    one_folder: bool,
) -> Result<Vec<(Entry, Entry)>> {
    let (images, masks) = if one_folder {
        images.into_iter().partition(|e| !e.stem.ends_with("_mask"))
    } else {
        (images, masks)
    };
    let (found, orphans) = masks_by_image(&images, masks);
    let mut lonely = Vec::new();
    let mut doubled = Vec::new();
    let mut pairs = Vec::with_capacity(images.len());
    for (img, mut ms) in images.into_iter().zip(found) {
        match ms.len() {
            0 => lonely.push(img.name),
            1 => pairs.push((img, ms.remove(0))),
            _ => doubled.push(format!(
                "{} ({})",
                img.name,
                ms.iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
    }
    refuse_unpaired(&lonely, &orphans, &doubled)?;
    Ok(pairs)
}

/// The masks of each of `images` (the mask of `x` is `x_mask` or `x`), and the names of
/// the masks of no image.
fn masks_by_image(images: &[Entry], masks: Vec<Entry>) -> (Vec<Vec<Entry>>, Vec<String>) {
    let index: HashMap<String, usize> = images
        .iter()
        .enumerate()
        .map(|(i, e)| (e.stem.clone(), i))
        .collect();
    let mut found: Vec<Vec<Entry>> = vec![Vec::new(); images.len()];
    let mut orphans = Vec::new();
    for m in masks {
        let base = m
            .stem
            .strip_suffix("_mask")
            .filter(|b| index.contains_key(*b));
        match base.or(index.contains_key(&m.stem).then_some(m.stem.as_str())) {
            Some(b) => {
                let i = index[b];
                found[i].push(m);
            }
            None => orphans.push(m.name),
        }
    }
    (found, orphans)
}

/// One error naming the images without a mask (`lonely`), the masks without an image
/// (`orphans`) and the images with two masks (`doubled`), when there are any.
fn refuse_unpaired(lonely: &[String], orphans: &[String], doubled: &[String]) -> Result<()> {
    let problems: Vec<String> = [
        (lonely, "image", "images", "no mask"),
        (orphans, "mask", "masks", "no image"),
        (doubled, "image", "images", "two masks"),
    ]
    .into_iter()
    .filter(|(names, ..)| !names.is_empty())
    .map(|(names, one, many, what)| {
        format!(
            "{} {what}: {}",
            crate::words::count_verb(names.len(), one, many, "has", "have"),
            some_of(names)
        )
    })
    .collect();
    if !problems.is_empty() {
        bail!(
            "{} (an image x.png pairs with the mask x.png or x_mask.png, in any of the \
             formats)",
            problems.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<Entry> {
        names
            .iter()
            .map(|n| Entry {
                path: PathBuf::from(n),
                name: n.to_string(),
                stem: n.rsplit_once('.').map_or(*n, |p| p.0).to_owned(),
            })
            .collect()
    }

    #[test]
    fn names_sort_naturally() {
        let mut v = vec![
            "10.png", "2.png", "a10b.png", "a2b.png", "02.png", "1_10.png", "1_9.png",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["1_9.png", "1_10.png", "2.png", "02.png", "10.png", "a2b.png", "a10b.png"]
        );
    }

    #[test]
    fn pairs_by_stem_with_or_without_mask_suffix() {
        let p = pair(
            entries(&["a.png", "b.jpg"]),
            entries(&["a_mask.png", "b.png"]),
            false,
        )
        .unwrap();
        assert_eq!(p[0].1.name, "a_mask.png");
        assert_eq!(p[1].1.name, "b.png");
        let p = pair(entries(&["a.png", "a_mask.png"]), Vec::new(), false);
        assert!(p
            .unwrap_err()
            .to_string()
            .contains("2 images have no mask: a.png, a_mask.png"));
        let p = pair(
            entries(&["a.png", "a_mask.png"]),
            entries(&["a.png", "a_mask.png"]),
            true,
        );
        assert_eq!(p.unwrap().len(), 1);
        let e = pair(
            entries(&["a.png", "b.png"]),
            entries(&["a.png", "a_mask.tif", "c.png"]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("1 image has no mask: b.png"), "{e}");
        assert!(e.contains("1 mask has no image: c.png"), "{e}");
        assert!(
            e.contains("1 image has two masks: a.png (a.png and a_mask.tif)"),
            "{e}"
        );
    }
}
