//! Which frames train and which validate, as data. The tutorial's split is Keras's
//! `validation_split`: the last share of the frames in file order. `--folds K --fold I`
//! is fold I of K split by group (the patient), so no patient is ever on both sides:
//! groups are dealt to folds in a seeded order, largest first, each to the fold that
//! is then furthest below its share of frames and of frames with a nerve.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// How a split was made: what a checkpoint records beside the split itself (which
/// frames validate), so that a checkpoint of an older nerveseg, which recorded only the
/// rule, can make the same split again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SplitRule {
    /// The last `validation_split` share validates (Keras).
    LastShare(f64),
    /// Fold `fold` (0-based) of `folds`, by group, dealt with `seed`.
    Fold {
        folds: usize,
        fold: usize,
        seed: u64,
    },
}

impl fmt::Display for SplitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitRule::LastShare(s) => write!(f, "the last {}% of the frames", s * 100.0),
            SplitRule::Fold { folds, fold, seed } => {
                write!(f, "fold {} of {folds} by group (seed {seed})", fold + 1)
            }
        }
    }
}

impl SplitRule {
    /// The rule a run's record names: its fold, else its last share.
    pub(crate) fn of_run(run: &crate::keras::RunRecord) -> SplitRule {
        match run.folds {
            Some((folds, fold)) => SplitRule::Fold {
                folds: folds as usize,
                fold: fold as usize,
                seed: run.seed,
            },
            None => SplitRule::LastShare(run.validation_split),
        }
    }
}

/// Training and validation frames (indices into the arrays, ascending), and the rule
/// that made them.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub rule: SplitRule,
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
}

/// What a split by group is made from: the group of every frame and whether it holds a
/// nerve. Asked for only when the rule is a fold.
pub type GroupsOf<'a> = dyn FnOnce() -> Result<(Vec<String>, Vec<bool>)> + 'a;

impl Split {
    /// The split `rule` makes of `n` frames: the one place a split is derived.
    /// `groups` is called only for a fold.
    pub fn make(rule: SplitRule, n: usize, groups: Box<GroupsOf<'_>>) -> Result<Split> {
        match rule {
            SplitRule::LastShare(share) => Ok(Split::last_share(n, share)),
            SplitRule::Fold { folds, fold, seed } => {
                let (groups, nerve) = groups()?;
                Split::fold(&groups, &nerve, folds, fold, seed)
            }
        }
    }

    /// The split a checkpoint stored: its validation frames (of `n`); the others train.
    pub fn stored(rule: SplitRule, n: usize, validation: &[u64]) -> Result<Split> {
        let ascending = validation.windows(2).all(|w| w[0] < w[1]);
        if !ascending || validation.last().is_some_and(|&v| v >= n as u64) {
            bail!("its validation frames are not distinct ascending indices of {n} frames");
        }
        let validation: Vec<usize> = validation.iter().map(|&v| v as usize).collect();
        let mut is_val = vec![false; n];
        validation.iter().for_each(|&v| is_val[v] = true);
        let train = (0..n).filter(|&i| !is_val[i]).collect();
        Ok(Split {
            rule,
            train,
            validation,
        })
    }

    /// The split of a run's record over its `n` frames: the validation frames it stored,
    /// or, for a checkpoint of an older nerveseg, the split its rule makes again.
    pub(crate) fn of_run(
        run: &crate::keras::RunRecord,
        n: usize,
        groups: Box<GroupsOf<'_>>,
    ) -> Result<Split> {
        let rule = SplitRule::of_run(run);
        match &run.validation {
            Some(v) => Split::stored(rule, n, v),
            None => Split::make(rule, n, groups),
        }
    }

    /// Keras's `validation_split`: the first floor(n (1 - share)) frames train.
    pub(crate) fn last_share(n: usize, share: f64) -> Split {
        let n_train = crate::dataset::train_count(n, share);
        Split {
            rule: SplitRule::LastShare(share),
            train: (0..n_train).collect(),
            validation: (n_train..n).collect(),
        }
    }

    /// Whether the frames stay in file order (training first, then validation).
    pub(crate) fn keeps_order(&self) -> bool {
        self.train
            .iter()
            .chain(&self.validation)
            .enumerate()
            .all(|(k, &i)| k == i)
    }

    /// The fold of every frame, by group: see the module's documentation.
    pub(crate) fn assign_folds(
        groups: &[String],
        nerve: &[bool],
        folds: usize,
        seed: u64,
    ) -> Result<Vec<usize>> {
        if folds < 2 {
            bail!("--folds must be at least 2, got {folds}");
        }
        if groups.len() != nerve.len() {
            bail!("{} groups for {} frames", groups.len(), nerve.len());
        }
        // (frames, frames with a nerve) of each group, in name order.
        let mut sizes: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (g, &n) in groups.iter().zip(nerve) {
            let e = sizes.entry(g.as_str()).or_default();
            e.0 += 1;
            e.1 += n as usize;
        }
        if sizes.len() < folds {
            bail!(
                "{} groups cannot make {folds} folds that share no group; use --folds {} or fewer",
                sizes.len(),
                sizes.len()
            );
        }
        let mut order: Vec<(&str, (usize, usize))> = sizes.into_iter().collect();
        order.shuffle(&mut Pcg64Mcg::seed_from_u64(seed ^ 0x5EED_F01D));
        // Largest first; the sort is stable, so ties keep the seeded order.
        order.sort_by_key(|g| std::cmp::Reverse(g.1 .0));
        let total = groups.len() as f64;
        let total_nerve = nerve.iter().filter(|&&n| n).count().max(1) as f64;
        let mut load = vec![(0usize, 0usize); folds];
        let mut fold_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (g, (count, with_nerve)) in order {
            // The fold that, given this group, is least over its share of both.
            let cost = |f: usize| {
                let (c, n) = load[f];
                (c + count) as f64 / total + (n + with_nerve) as f64 / total_nerve
            };
            let best = (0..folds)
                .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
                .unwrap_or(0);
            load[best].0 += count;
            load[best].1 += with_nerve;
            fold_of.insert(g, best);
        }
        Ok(groups.iter().map(|g| fold_of[g.as_str()]).collect())
    }

    /// Fold `fold` of `folds` by group: its frames validate, the others train.
    pub fn fold(
        groups: &[String],
        nerve: &[bool],
        folds: usize,
        fold: usize,
        seed: u64,
    ) -> Result<Split> {
        if fold >= folds {
            bail!("--fold must be 1 to {folds}, got {}", fold + 1);
        }
        let of = Split::assign_folds(groups, nerve, folds, seed)?;
        let (validation, train): (Vec<usize>, Vec<usize>) =
            (0..of.len()).partition(|&i| of[i] == fold);
        Ok(Split {
            rule: SplitRule::Fold { folds, fold, seed },
            train,
            validation,
        })
    }

    /// The order in which the frames are laid out for training: the training frames
    /// first, then the validation frames, each ascending.
    pub fn layout(&self) -> Vec<usize> {
        self.train.iter().chain(&self.validation).copied().collect()
    }
}

/// Reads the groups file `prepare` writes beside the arrays (one group per line).
pub(crate) fn read_groups(path: &Path, n: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "reading {}: {e} (prepare writes it beside the arrays; or pass --groups FILE)",
            path.display()
        )
    })?;
    let groups: Vec<String> = text.lines().map(str::to_owned).collect();
    if groups.len() != n {
        bail!("{}: {} groups for {n} frames", path.display(), groups.len());
    }
    if let Some(k) = groups.iter().position(|g| g.is_empty()) {
        bail!("{} line {}: an empty group", path.display(), k + 1);
    }
    Ok(groups)
}

/// The groups file of a run: given, or the one `prepare` writes beside the images.
pub(crate) fn groups_path(images: &Path, given: Option<&Path>) -> PathBuf {
    given
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::atomic::parent_dir(images).join(crate::data::IMGS_GROUPS_TRAIN))
}

/// Whether each mask of `pixels` values (as the network sees them: resized to its
/// input) holds any nerve: the one definition of "nerve present" that a split by group
/// balances.
pub fn nerve_present<T: PartialOrd + Default>(masks: &[T], pixels: usize) -> Vec<bool> {
    masks
        .chunks(pixels.max(1))
        .map(|m| m.iter().any(|v| *v > T::default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 12 patients of 3 to 14 frames, about 40% with a nerve.
    fn patients() -> (Vec<String>, Vec<bool>) {
        let mut groups = Vec::new();
        let mut nerve = Vec::new();
        for p in 0..12usize {
            for f in 0..(3 + (p * 7) % 12) {
                groups.push(format!("p{p}"));
                nerve.push((p + f) % 5 < 2);
            }
        }
        (groups, nerve)
    }

    #[test]
    fn folds_share_no_group_and_cover_every_frame_once() {
        let (groups, nerve) = patients();
        let n = groups.len();
        for k in [2, 3, 5] {
            let mut seen = vec![0; n];
            for i in 0..k {
                let s = Split::fold(&groups, &nerve, k, i, 7).unwrap();
                assert_eq!(s.train.len() + s.validation.len(), n);
                for &v in &s.validation {
                    seen[v] += 1;
                    assert!(
                        s.train.iter().all(|&t| groups[t] != groups[v]),
                        "a group on both sides"
                    );
                }
                assert!(!s.validation.is_empty());
            }
            assert!(seen.iter().all(|&c| c == 1), "{k} folds: {seen:?}");
        }
    }

    #[test]
    fn folds_are_balanced_and_fixed_by_seed() {
        let (groups, nerve) = patients();
        let of = Split::assign_folds(&groups, &nerve, 3, 1).unwrap();
        assert_eq!(of, Split::assign_folds(&groups, &nerve, 3, 1).unwrap());
        let n = groups.len() as f64;
        for f in 0..3 {
            let count = of.iter().filter(|&&x| x == f).count() as f64;
            assert!(
                (count / n - 1.0 / 3.0).abs() < 0.12,
                "fold {f}: {count} of {n}"
            );
        }
        let e = Split::assign_folds(&groups[..4], &nerve[..4], 3, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 groups cannot make 3 folds"), "{e}");
        assert!(Split::fold(&groups, &nerve, 3, 3, 0).is_err());
    }

    #[test]
    fn the_last_share_is_kerass() {
        let s = Split::last_share(10, 0.2);
        assert!(s.keeps_order());
        assert_eq!((s.train, s.validation), ((0..8).collect(), vec![8, 9]));
    }

    #[test]
    fn a_stored_split_is_its_validation_frames_and_the_rest() {
        let rule = SplitRule::LastShare(0.5);
        let s = Split::stored(rule, 6, &[1, 4]).unwrap();
        assert_eq!((s.train, s.validation), (vec![0, 2, 3, 5], vec![1, 4]));
        for bad in [&[4u64, 1][..], &[1, 1], &[6]] {
            let e = Split::stored(rule, 6, bad).unwrap_err().to_string();
            assert!(
                e.contains("not distinct ascending indices of 6 frames"),
                "{e}"
            );
        }
        let (groups, nerve) = patients();
        let fold = SplitRule::Fold {
            folds: 3,
            fold: 1,
            seed: 2,
        };
        let made = Split::make(
            fold,
            groups.len(),
            Box::new(|| Ok((groups.clone(), nerve.clone()))),
        );
        assert_eq!(
            made.unwrap(),
            Split::fold(&groups, &nerve, 3, 1, 2).unwrap()
        );
    }

    #[test]
    fn nerve_present_is_any_positive_value() {
        assert_eq!(nerve_present(&[0u8, 0, 0, 3, 0, 0], 3), [false, true]);
        assert_eq!(nerve_present(&[0f32, 0.5, 0.0, 0.0], 2), [true, false]);
    }
}
