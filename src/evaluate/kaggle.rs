//! A submission CSV read and scored as Kaggle would, refusing what Kaggle refuses. Every
//! number in it is untrusted: ids and run-length pairs are parsed strictly (digits only,
//! overflow checked), every run must lie inside the 420 x 580 frame and come after the
//! previous one, and the rows must be exactly the test ids: a duplicate, a row for an id
//! without a true mask, or a test id without a row is an error (`--allow-missing` scores
//! a missing row as an empty prediction, as Kaggle's scorer would).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;

use super::{dice, Scores};
use crate::data::tiff::{self, HEIGHT, PIXELS, WIDTH};

/// A non-negative decimal integer of ASCII digits only, without a sign or leading zeros.
fn strict_number(s: &str, what: &str) -> Result<u64> {
    ensure!(
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
        "{what} {s:?} is not a whole number"
    );
    ensure!(
        s == "0" || !s.starts_with('0'),
        "{what} {s:?} has leading zeros"
    );
    s.parse::<u64>()
        .with_context(|| format!("{what} {s:?} is too large"))
}

/// Decodes one Kaggle run-length string into a row-major 420 x 580 0/1 mask. Pixels are
/// numbered from 1 down each column; runs must be non-empty, inside the frame and in
/// increasing order without overlap.
pub fn rle_decode(rle: &str) -> Result<Vec<u8>> {
    let mut mask = vec![0u8; PIXELS];
    let mut tokens = rle.split_ascii_whitespace();
    let mut next_free = 1u64; // the first pixel a run may start at
    while let Some(a) = tokens.next() {
        let Some(b) = tokens.next() else {
            bail!("an odd count of numbers in a run-length string");
        };
        let start = strict_number(a, "run start")?;
        let len = strict_number(b, "run length")?;
        ensure!(start >= 1, "run {start} {len}: pixels are numbered from 1");
        ensure!(len >= 1, "run {start} {len} is empty");
        let end = start
            .checked_add(len - 1)
            .filter(|&e| e <= PIXELS as u64)
            .with_context(|| {
                format!("run {start} {len} lies outside the {HEIGHT} x {WIDTH} frame")
            })?;
        ensure!(
            start >= next_free,
            "run {start} {len} starts before the previous run ends (runs must be sorted and \
             must not overlap)"
        );
        for k in start - 1..end {
            let (col, row) = (k as usize / HEIGHT, k as usize % HEIGHT);
            mask[row * WIDTH + col] = 1;
        }
        next_free = end + 1;
    }
    Ok(mask)
}

/// The true masks: `{id}_mask.tif` in `dir`, by id. Other files are not masks and are
/// left alone; two names for one id are an error.
fn truth_masks(dir: &Path) -> Result<BTreeMap<u64, PathBuf>> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder: to score a submission, pass --masks with the folder of true \
             {{id}}_mask.tif files (e.g. raw/test_masks from `synth --test-masks`)",
            dir.display()
        );
    }
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix("_mask.tif"))
        else {
            continue;
        };
        if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // `01_mask.tif` is id 1 too: caught as a second name below.
        let Ok(id) = stem.parse::<u64>() else {
            continue;
        };
        if let Some(other) = out.insert(id, path.clone()) {
            bail!(
                "{} and {} are both the mask of test id {id}; keep one",
                other.display(),
                path.display()
            );
        }
    }
    if out.is_empty() {
        bail!(
            "{}: no {{id}}_mask.tif files to score against",
            dir.display()
        );
    }
    Ok(out)
}

/// One row of a submission: its line, id and run-length string.
struct Row {
    line: usize,
    id: u64,
    rle: String,
}

/// Reads the rows of a submission, checking the header and every id.
fn read_rows(csv_path: &Path, truth: &BTreeMap<u64, PathBuf>) -> Result<Vec<Row>> {
    let path = csv_path.display();
    let mut r = csv::Reader::from_path(csv_path).with_context(|| format!("opening {path}"))?;
    let headers = r
        .headers()
        .with_context(|| format!("reading {path}"))?
        .clone();
    if headers.iter().collect::<Vec<_>>() != ["img", "pixels"] {
        bail!("{path}: expected the header img,pixels, found {headers:?}");
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut lines = BTreeMap::new();
    for rec in r.records() {
        crate::interrupt::check()?;
        let rec = rec.with_context(|| format!("reading {path}"))?;
        let line = rec.position().map_or(rows.len() + 2, |p| p.line() as usize);
        let field = |i: usize| rec.get(i).unwrap_or("");
        let id = strict_number(field(0), "id").with_context(|| format!("{path} line {line}"))?;
        if let Some(first) = lines.insert(id, line) {
            bail!("{path}: id {id} appears more than once (lines {first} and {line})");
        }
        if !truth.contains_key(&id) {
            bail!(
                "{path} line {line}: id {id} is not a test id (no {id}_mask.tif among the true \
                 masks)"
            );
        }
        rows.push(Row {
            line,
            id,
            rle: field(1).to_owned(),
        });
    }
    Ok(rows)
}

/// Scores a submission CSV against `truth_dir/{id}_mask.tif`, as Kaggle would. With
/// `allow_missing`, a test id without a row is scored as an empty prediction.
pub fn score_submission(csv_path: &Path, truth_dir: &Path, allow_missing: bool) -> Result<Scores> {
    let truth = truth_masks(truth_dir)?;
    let rows = read_rows(csv_path, &truth)?;
    let missing: Vec<u64> = {
        let have: std::collections::HashSet<u64> = rows.iter().map(|r| r.id).collect();
        truth
            .keys()
            .filter(|id| !have.contains(id))
            .copied()
            .collect()
    };
    if !missing.is_empty() && !allow_missing {
        let shown: Vec<String> = missing.iter().take(5).map(u64::to_string).collect();
        bail!(
            "{}: {} of the {} test ids in {} have no row (e.g. {}); Kaggle rejects such a \
             file (--allow-missing scores them as empty predictions)",
            csv_path.display(),
            missing.len(),
            truth.len(),
            truth_dir.display(),
            shown.join(", ")
        );
    }
    let preds: BTreeMap<u64, &Row> = rows.iter().map(|r| (r.id, r)).collect();
    let count = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
    let per_image: Vec<(usize, usize, f64)> = truth
        .par_iter()
        .map(|(id, mask_path)| {
            crate::interrupt::check()?;
            let pred = match preds.get(id) {
                Some(row) => rle_decode(&row.rle).with_context(|| {
                    format!("{} line {} (id {id})", csv_path.display(), row.line)
                })?,
                None => vec![0u8; PIXELS],
            };
            let mut t = vec![0u8; PIXELS];
            tiff::read_mask(mask_path, &mut t)?;
            Ok((count(&pred), count(&t), dice(&pred, &t)))
        })
        .collect::<Result<_>>()?;
    Ok(Scores::from_images(&per_image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode() {
        let mut m = vec![0u8; PIXELS];
        for y in 100..140 {
            for x in 200..260 {
                m[y * WIDTH + x] = 1;
            }
        }
        m[0] = 1;
        m[PIXELS - 1] = 1;
        let rle = crate::submission::rle_encode(&m, HEIGHT, WIDTH);
        assert!(rle.starts_with("1 1 "));
        assert_eq!(rle_decode(&rle).unwrap(), m);
        assert_eq!(rle_decode("").unwrap(), vec![0u8; PIXELS]);
        assert_eq!(rle_decode("243600 1").unwrap()[PIXELS - 1], 1);
    }

    #[test]
    fn hostile_runs_are_refused() {
        for (rle, why) in [
            ("1", "odd count"),
            ("243600 2", "outside the 420 x 580 frame"),
            ("0 1", "numbered from 1"),
            ("5 0", "is empty"),
            ("1 18446744073709551615", "outside the 420 x 580 frame"),
            ("18446744073709551615 5", "outside the 420 x 580 frame"),
            ("1 99999999999999999999", "too large"),
            ("10 5 3 2", "starts before the previous run ends"),
            ("10 5 14 2", "starts before the previous run ends"),
            ("+3 2", "not a whole number"),
            ("3 -2", "not a whole number"),
            ("03 2", "leading zeros"),
            ("1.5 2", "not a whole number"),
        ] {
            let e = rle_decode(rle).unwrap_err().to_string();
            assert!(e.contains(why), "{rle:?}: {e}");
        }
        // Runs that touch are fine: 10..14 then 15..16.
        assert!(rle_decode("10 5 15 2").is_ok());
    }

    #[test]
    fn ids_are_strict() {
        assert_eq!(strict_number("5508", "id").unwrap(), 5508);
        for bad in ["", " 1", "1 ", "01", "-1", "1e3", "0x10"] {
            assert!(strict_number(bad, "id").is_err(), "{bad:?}");
        }
    }
}
