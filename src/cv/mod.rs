//! `cv --folds K`: every fold of a split by group trained into `OUT/fold-I/`, then each
//! fold's checkpoint scored on its own held-out frames: `OUT/cv.csv` (best epoch,
//! val_dice_coef, kaggle_dice per fold) and `OUT/oof.npy`, the out-of-fold probability
//! of every training frame. Two steps: training the folds ([`fold`]: one at a time, each
//! on its own, so a cluster can run them as separate jobs) and collecting ([`collect`]:
//! the scores of every finished fold). A fold that finished keeps its files
//! (`OUT/fold-I/finished`); an interrupted one goes on from its last epoch, so running
//! `cv` again goes on where it stopped.

pub mod fold;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::evaluate::{self, EvalConfig};
use crate::predict::{EnsembleConfig, Predictions, PredictionsFile};
use crate::submission::MaskRule;
use crate::train::{self, TrainConfig};

pub use self::fold::{check_same_cv, finished, to_train, train_fold, FoldOutcome, FoldRun};

/// What `cv` runs: `train` is the template of every fold (its out_dir is OUT).
#[derive(Clone, Debug)]
pub struct CvConfig {
    pub train: TrainConfig,
    pub folds: usize,
    pub groups: Option<PathBuf>,
    pub rule: MaskRule,
}

/// One fold's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldRow {
    pub fold: usize,
    pub frames: usize,
    pub best_epoch: Option<i64>,
    pub val_dice_coef: f64,
    pub kaggle_dice: f64,
}

/// What `cv` trained and wrote.
#[derive(Clone, Debug)]
pub struct CvReport {
    /// What happened to each fold's training, when this run trained (`cv`; empty for
    /// [`collect`] alone). Each is a line above the table.
    pub trained: Vec<FoldRun>,
    pub rows: Vec<FoldRow>,
    pub csv: PathBuf,
    pub oof: PathBuf,
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

impl fmt::Display for CvReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for run in &self.trained {
            writeln!(f, "{run}")?;
        }
        writeln!(f, "fold  frames  best epoch  val_dice_coef  kaggle_dice")?;
        for r in &self.rows {
            let e = r
                .best_epoch
                .map_or_else(|| "-".to_owned(), |e| e.to_string());
            writeln!(
                f,
                "{:>4}  {:>6}  {e:>10}  {:>13.4}  {:>11.4}",
                r.fold, r.frames, r.val_dice_coef, r.kaggle_dice
            )?;
        }
        let dice: Vec<f64> = self.rows.iter().map(|r| r.val_dice_coef).collect();
        let kaggle: Vec<f64> = self.rows.iter().map(|r| r.kaggle_dice).collect();
        let ((dm, ds), (km, ks)) = (mean_sd(&dice), mean_sd(&kaggle));
        writeln!(
            f,
            "mean +- sd           {dm:>7.4} +- {ds:.4}  {km:.4} +- {ks:.4}"
        )?;
        write!(f, "wrote {} and {}", self.csv.display(), self.oof.display())
    }
}

/// `OUT/fold-I` (I from 1).
pub fn fold_dir(out: &Path, fold: usize) -> PathBuf {
    out.join(format!("fold-{}", fold + 1))
}

/// The best checkpoints of a cv run (`OUT/fold-I/weights.h5`, in fold order), for
/// `--ensemble OUT`: an error when there is none.
pub fn ensemble_weights(out: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for fold in 0.. {
        let w = fold_dir(out, fold).join(train::BEST);
        if !w.exists() {
            break;
        }
        found.push(w);
    }
    if found.is_empty() {
        anyhow::bail!(
            "{}: no fold-1/{} (is it the --out-dir of a `nerveseg cv` run?)",
            out.display(),
            train::BEST
        );
    }
    Ok(found)
}

/// Trains every fold that has not finished, one after another on the run's device, then
/// collects: scores each fold and writes `cv.csv` and `oof.npy`.
pub fn cv(cfg: &CvConfig) -> Result<CvReport> {
    // Every fold is checked before the first trains: an hour later is too late to
    // learn that fold 3 holds another cross-validation.
    // Checked once: after that every fold is this run's, checked or trained here.
    check_same_cv(cfg)?;
    let trained = (0..cfg.folds)
        .map(|fold| fold::train_checked(cfg, fold, cfg.train.device))
        .collect::<Result<Vec<_>>>()?;
    Ok(CvReport {
        trained,
        ..score_and_write(cfg)?
    })
}

/// Scores every fold of a cross-validation whose folds finished (trained here, by
/// `cv --fold I` jobs, or by `cv --devices`' children) and writes `cv.csv`, `oof.npy`
/// and the table. Refused, naming them, while folds are unfinished.
pub fn collect(cfg: &CvConfig) -> Result<CvReport> {
    let out = &cfg.train.out_dir;
    let missing: Vec<String> = (0..cfg.folds)
        .filter(|&f| !finished(out, f))
        .map(|f| (f + 1).to_string())
        .collect();
    if !missing.is_empty() {
        let (folds, have) = match missing.len() {
            1 => ("fold", "has"),
            _ => ("folds", "have"),
        };
        anyhow::bail!(
            "{}: {folds} {} of {k} {have} not finished: run `nerveseg cv --folds {k} --fold I` \
             for each with the same flags, or `nerveseg cv` without --fold to train them here",
            out.display(),
            missing.join(", "),
            k = cfg.folds,
        );
    }
    check_same_cv(cfg)?;
    score_and_write(cfg)
}

/// Scores the finished folds of `cfg`, all of them this cross-validation's, and writes
/// `cv.csv` and `oof.npy`.
fn score_and_write(cfg: &CvConfig) -> Result<CvReport> {
    // Two collecting runs at once would each write cv.csv and oof.npy.
    let _lock = train::folder::lock(&cfg.train.out_dir)?;
    let scores = score_folds(cfg)?;
    write_outputs(cfg, scores)
}

/// Every fold's figures and the out-of-fold probabilities (maps, and the presence
/// heads' when the folds have heads).
struct Scores {
    rows: Vec<FoldRow>,
    oof: Option<Predictions>,
}

/// Scores each fold's best checkpoint on its own held-out frames.
fn score_folds(cfg: &CvConfig) -> Result<Scores> {
    let out = &cfg.train.out_dir;
    let mut rows = Vec::new();
    // Every fold's network has the same input size and head (one command trains them
    // all), so the first fold's predictions say what the out-of-fold ones hold.
    let mut oof: Option<Predictions> = None;
    for fold in 0..cfg.folds {
        crate::interrupt::check()?;
        let weights = fold_dir(out, fold).join(train::BEST);
        let ev = evaluate::evaluate(&EvalConfig {
            ensemble: EnsembleConfig {
                weights: vec![weights.clone()],
                device: cfg.train.device,
                speed: cfg.train.speed,
                batch_size: cfg.train.batch_size,
                ..Default::default()
            },
            images: cfg.train.images.clone(),
            masks: cfg.train.masks.clone(),
            groups: cfg.groups.clone(),
            rule: cfg.rule,
            trained_on: true,
            quiet: cfg.train.quiet,
            ..Default::default()
        })?;
        let n = crate::data::npy::NpyReader::open(&cfg.train.images)?.shape[0] as usize;
        let p = &ev.predictions;
        let px = p.size.pixels();
        let all = oof.get_or_insert_with(|| Predictions {
            maps: vec![0f32; n * px],
            size: p.size,
            presence: p.presence.as_ref().map(|_| vec![0f32; n]),
        });
        for (k, &frame) in ev.frames.iter().enumerate() {
            all.maps[frame * px..(frame + 1) * px].copy_from_slice(&p.maps[k * px..(k + 1) * px]);
            if let (Some(all), Some(h)) = (all.presence.as_mut(), &p.presence) {
                all[frame] = h[k];
            }
        }
        rows.push(FoldRow {
            fold: fold + 1,
            frames: ev.frames.len(),
            best_epoch: crate::keras::read(&weights)?.meta.epoch,
            val_dice_coef: ev.dice_coef,
            kaggle_dice: ev.scores.kaggle_dice,
        });
    }
    Ok(Scores { rows, oof })
}

/// Writes `oof.npy` (and the heads' `oof_presence.npy`, or removes a stale one) and
/// `cv.csv`.
fn write_outputs(cfg: &CvConfig, scores: Scores) -> Result<CvReport> {
    let Scores { rows, oof } = scores;
    let out = &cfg.train.out_dir;
    let oof_path = out.join("oof.npy");
    let oof = oof.unwrap_or(Predictions {
        maps: Vec::new(),
        size: crate::model::TUTORIAL_INPUT,
        presence: None,
    });
    let n = (oof.maps.len() / oof.size.pixels()) as u64;
    PredictionsFile::create(&oof_path, n, oof.size)?.write(&oof)?;
    let csv_path = out.join("cv.csv");
    crate::atomic::write_with(&csv_path, |w| {
        writeln!(w, "fold,frames,best_epoch,val_dice_coef,kaggle_dice")?;
        for r in &rows {
            let e = r.best_epoch.map_or_else(String::new, |e| e.to_string());
            writeln!(
                w,
                "{},{},{e},{},{}",
                r.fold, r.frames, r.val_dice_coef, r.kaggle_dice
            )?;
        }
        Ok(())
    })?;
    Ok(CvReport {
        trained: Vec::new(),
        rows,
        csv: csv_path,
        oof: oof_path,
    })
}
