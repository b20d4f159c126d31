//! A group (subject) for each of a user's frames, for patient-wise splits: from a
//! `name,group` file, else the subject of Kaggle-style names, else each frame its own.
//! Every problem with the file is found before any pixel is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::listing::{some_of, Entry};

/// Where the groups came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupSource {
    /// Every name is `{subject}_{n}`: the subject.
    Kaggle,
    /// A `name,group` file.
    File(PathBuf),
    /// Nothing says: every frame is its own group.
    EachFrame,
}

/// The subject of a Kaggle-style stem `{subject}_{n}`.
fn kaggle_subject(stem: &str) -> Option<&str> {
    let (s, n) = stem.split_once('_')?;
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    (digits(s) && digits(n)).then_some(s)
}

/// A group for each of `entries`: from `file` (rows `name,group`, the name with or
/// without its extension; a header row `name,group` is skipped) when given, else the
/// Kaggle subject when every name follows the Kaggle pattern, else the frame itself.
pub fn groups(entries: &[Entry], file: Option<&Path>) -> Result<(Vec<String>, GroupSource)> {
    if let Some(path) = file {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_path(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut table: BTreeMap<String, String> = BTreeMap::new();
        for (k, row) in rdr.records().enumerate() {
            let row = row.with_context(|| format!("reading {}", path.display()))?;
            let (Some(name), Some(group), 2) = (row.get(0), row.get(1), row.len()) else {
                bail!("{}: line {}: expected name,group", path.display(), k + 1);
            };
            if k == 0 && name == "name" && group == "group" {
                continue;
            }
            if table.insert(name.to_owned(), group.to_owned()).is_some() {
                bail!("{}: line {}: {name} is listed twice", path.display(), k + 1);
            }
        }
        let mut missing = Vec::new();
        let found: Vec<String> = entries
            .iter()
            .map(|e| {
                table
                    .get(&e.name)
                    .or_else(|| table.get(&e.stem))
                    .cloned()
                    .unwrap_or_else(|| {
                        missing.push(e.name.clone());
                        String::new()
                    })
            })
            .collect();
        if !missing.is_empty() {
            bail!(
                "{}: no group for {} frames: {}",
                path.display(),
                missing.len(),
                some_of(&missing)
            );
        }
        return Ok((found, GroupSource::File(path.to_owned())));
    }
    let subjects: Option<Vec<String>> = entries
        .iter()
        .map(|e| kaggle_subject(&e.stem).map(str::to_owned))
        .collect();
    Ok(match subjects {
        Some(s) if !s.is_empty() => (s, GroupSource::Kaggle),
        _ => (
            entries.iter().map(|e| e.stem.clone()).collect(),
            GroupSource::EachFrame,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::folder::listing::entry;

    fn entries(names: &[&str]) -> Vec<Entry> {
        names.iter().map(|n| entry(Path::new(n))).collect()
    }

    #[test]
    fn groups_come_from_kaggle_names_or_each_frame() {
        let (g, s) = groups(&entries(&["1_1.png", "1_2.png", "12_1.png"]), None).unwrap();
        assert_eq!(
            (g, s),
            (
                vec!["1".into(), "1".into(), "12".into()],
                GroupSource::Kaggle
            )
        );
        let (g, s) = groups(&entries(&["1_1.png", "x.png"]), None).unwrap();
        assert_eq!(
            (g, s),
            (vec!["1_1".into(), "x".into()], GroupSource::EachFrame)
        );
    }

    #[test]
    fn groups_come_from_a_csv_by_name_or_stem() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("g.csv");
        std::fs::write(&csv, "name,group\na.png,p1\nb,p2\n").unwrap();
        let (g, s) = groups(&entries(&["a.png", "b.jpg"]), Some(&csv)).unwrap();
        assert_eq!(
            (g, s),
            (
                vec!["p1".into(), "p2".into()],
                GroupSource::File(csv.clone())
            )
        );
        let e = groups(&entries(&["a.png", "c.png"]), Some(&csv))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("g.csv: no group for 1 frames: c.png"), "{e}");
        std::fs::write(&csv, "a,1\na.png,2\n").unwrap();
        assert_eq!(groups(&entries(&["a.png"]), Some(&csv)).unwrap().0, ["2"]);
        std::fs::write(&csv, "a,1\na,2\n").unwrap();
        let e = groups(&entries(&["a.png"]), Some(&csv))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: a is listed twice"), "{e}");
        std::fs::write(&csv, "a,1,x\n").unwrap();
        let e = groups(&entries(&["a.png"]), Some(&csv))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: expected name,group"), "{e}");
    }
}
