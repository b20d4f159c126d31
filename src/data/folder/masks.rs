//! Which pixels of a user's mask are nerve. Masks come as 0/255, 0/1, lossy JPEG, or
//! palette and label images; each becomes a 0/255 mask as the Kaggle masks are.
//!
//! Without `--mask-class`, a pixel is nerve when it is >= 128, or == 1 in a lossless
//! mask whose values are all 0 or 1. A lossless mask whose largest value is 2..=127 is a
//! label mask: which label is the nerve cannot be guessed, so it is an error asking for
//! `--mask-class K`. With `--mask-class K`, the nerve is the pixels equal to K.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Result};

use crate::data::decode::Labels;
use crate::frame::FrameSize;

/// The rule one mask was read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    AtLeast128,
    EqualsOne,
    Class(u8),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::AtLeast128 => write!(f, "nerve = pixel >= 128"),
            Rule::EqualsOne => write!(f, "nerve = pixel == 1 (0/1 masks)"),
            Rule::Class(k) => write!(f, "nerve = label {k} (--mask-class {k})"),
        }
    }
}

/// The rule for one decoded mask.
pub(crate) fn rule_for(labels: &Labels, class: Option<u8>, path: &Path) -> Result<Rule> {
    if let Some(k) = class {
        return Ok(Rule::Class(k));
    }
    let max = labels.values.iter().copied().max().unwrap_or(0);
    if max >= 128 || labels.lossy {
        return Ok(Rule::AtLeast128);
    }
    if max <= 1 {
        return Ok(Rule::EqualsOne);
    }
    let mut seen = [false; 256];
    for &v in &labels.values {
        seen[v as usize] = true;
    }
    let values: Vec<String> = (0..256)
        .filter(|&v| seen[v])
        .map(|v| v.to_string())
        .collect();
    bail!(
        "{}: a label mask (values {}, none >= 128): pass --mask-class K to say which label \
         is the nerve",
        path.display(),
        values.join(", ")
    )
}

/// The 0/255 nerve mask of `labels` under `rule`.
pub fn nerve(labels: &[u8], rule: Rule) -> Vec<u8> {
    let on = |v: u8| match rule {
        Rule::AtLeast128 => v >= 128,
        Rule::EqualsOne => v == 1,
        Rule::Class(k) => v == k,
    };
    labels
        .iter()
        .map(|&v| if on(v) { 255 } else { 0 })
        .collect()
}

/// Nearest-neighbour resizing of a mask (scikit-image's order 0: the source pixel whose
/// centre is nearest the target pixel's centre), so it stays 0/255.
pub(crate) fn resize_nearest(src: &[u8], from: FrameSize, to: FrameSize) -> Vec<u8> {
    let map = |n_to: usize, n_from: usize| -> Vec<usize> {
        let scale = n_from as f64 / n_to as f64;
        (0..n_to)
            .map(|i| (((i as f64 + 0.5) * scale) as usize).min(n_from - 1))
            .collect()
    };
    let (rows, cols) = (map(to.height, from.height), map(to.width, from.width));
    let mut out = Vec::with_capacity(to.pixels());
    for &y in &rows {
        let row = &src[y * from.width..(y + 1) * from.width];
        out.extend(cols.iter().map(|&x| row[x]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(values: &[u8], lossy: bool) -> Labels {
        Labels {
            size: FrameSize::new(1, values.len()).unwrap(),
            values: values.to_vec(),
            lossy,
        }
    }

    #[test]
    fn rules_follow_the_values() {
        let p = Path::new("m.png");
        assert_eq!(
            rule_for(&labels(&[0, 255], false), None, p).unwrap(),
            Rule::AtLeast128
        );
        assert_eq!(
            rule_for(&labels(&[0, 1], false), None, p).unwrap(),
            Rule::EqualsOne
        );
        assert_eq!(
            rule_for(&labels(&[0, 0], false), None, p).unwrap(),
            Rule::EqualsOne
        );
        // A JPEG's near-black noise is never a 0/1 mask.
        assert_eq!(
            rule_for(&labels(&[0, 1], true), None, p).unwrap(),
            Rule::AtLeast128
        );
        let e = rule_for(&labels(&[0, 1, 2], false), None, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.png: a label mask (values 0, 1, 2"), "{e}");
        assert_eq!(
            rule_for(&labels(&[0, 2], false), Some(2), p).unwrap(),
            Rule::Class(2)
        );
        assert_eq!(nerve(&[0, 1, 2, 200], Rule::Class(2)), [0, 0, 255, 0]);
        assert_eq!(nerve(&[0, 1, 127, 128], Rule::AtLeast128), [0, 0, 0, 255]);
        assert_eq!(nerve(&[0, 1], Rule::EqualsOne), [0, 255]);
    }

    #[test]
    fn nearest_resizing_picks_centres() {
        let two = FrameSize::new(2, 2).unwrap();
        let four = FrameSize::new(4, 4).unwrap();
        let up = resize_nearest(&[0, 255, 255, 0], two, four);
        assert_eq!(&up[..4], &[0, 0, 255, 255]);
        assert_eq!(&up[12..], &[255, 255, 0, 0]);
        assert_eq!(resize_nearest(&up, four, two), [0, 255, 255, 0]);
    }
}
