//! `cv --folds K`: every fold of a split by group trained into `OUT/fold-I/`, then each
//! fold's checkpoint scored on its own held-out frames: `OUT/cv.csv` (best epoch,
//! val_dice_coef, kaggle_dice per fold) and `OUT/oof.npy`, the out-of-fold probability
//! of every training frame. A fold that finished keeps its files (`OUT/fold-I/finished`);
//! an interrupted one continues with `--resume`, so running `cv` again goes on where it
//! stopped. Folds run one after another on the run's device, or, with `--devices`, one
//! per device at a time in child processes ([`parallel`]).

pub mod parallel;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use tch::Device;

use crate::evaluate::{self, EvalConfig};
use crate::predict::EnsembleConfig;
use crate::submission::MaskRule;
use crate::train::{self, Folds, TrainConfig};

/// What `cv` runs: `train` is the template of every fold (its out_dir is OUT).
#[derive(Clone, Debug)]
pub struct CvConfig {
    pub train: TrainConfig,
    pub folds: usize,
    pub groups: Option<PathBuf>,
    pub rule: MaskRule,
    /// One child process per device instead of one fold after another here.
    pub parallel: Option<parallel::Parallel>,
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

/// What `cv` wrote.
#[derive(Clone, Debug)]
pub struct CvReport {
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

const FINISHED: &str = "finished";

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

/// Whether fold `fold` finished before and is kept (not with `--overwrite`).
fn kept(cfg: &CvConfig, fold: usize) -> bool {
    !cfg.train.overwrite && fold_dir(&cfg.train.out_dir, fold).join(FINISHED).exists()
}

/// The training of fold `fold` (from 0): the template's, into `OUT/fold-I`.
fn fold_config(cfg: &CvConfig, fold: usize) -> TrainConfig {
    let dir = fold_dir(&cfg.train.out_dir, fold);
    TrainConfig {
        resume: !cfg.train.overwrite && dir.join(train::LAST).exists(),
        out_dir: dir,
        folds: Some(Folds {
            folds: cfg.folds,
            fold,
            groups: cfg.groups.clone(),
        }),
        ..cfg.train.clone()
    }
}

/// Refuses an OUT that holds another cross-validation: a fold, finished or not, whose
/// checkpoint records other settings, or that finished after other epochs. Without
/// this, `cv` would keep another run's finished folds beside this one's.
fn check_same_cv(cfg: &CvConfig) -> Result<()> {
    if cfg.train.overwrite {
        return Ok(());
    }
    for fold in 0..cfg.folds {
        let t = fold_config(cfg, fold);
        let last = t.out_dir.join(train::LAST);
        if !last.exists() {
            continue;
        }
        let file = crate::keras::read(&last)?;
        let mut diff = match &file.meta.run {
            Some(saved) => train::setting_differences(saved, &t),
            None => vec!["a run that recorded no settings".to_owned()],
        };
        let marker = std::fs::read_to_string(t.out_dir.join(FINISHED)).unwrap_or_default();
        let done: Option<usize> = marker
            .trim()
            .strip_prefix("epochs ")
            .and_then(|e| e.parse().ok());
        if let Some(done) = done.filter(|&d| d != t.epochs) {
            diff.push(format!("--epochs {} (the fold finished {done})", t.epochs));
        }
        if !diff.is_empty() {
            anyhow::bail!(
                "{} holds another cross-validation: fold {} differs: {}. Pass --overwrite to \
                 train every fold again, or choose another --out-dir",
                cfg.train.out_dir.display(),
                fold + 1,
                diff.join("; ")
            );
        }
    }
    Ok(())
}

/// Trains fold `fold` (from 0) on `device` unless it finished before; resumes it when
/// it was interrupted. A `cv --devices` child runs exactly this.
pub fn train_fold(cfg: &CvConfig, fold: usize, device: Device) -> Result<()> {
    if kept(cfg, fold) {
        if !cfg.train.quiet {
            println!("fold {}: finished before, kept", fold + 1);
        }
        return Ok(());
    }
    let t = TrainConfig {
        device,
        ..fold_config(cfg, fold)
    };
    let (dir, resume) = (t.out_dir.clone(), t.resume);
    if !cfg.train.quiet {
        println!(
            "fold {} of {}{}",
            fold + 1,
            cfg.folds,
            if resume { ": resuming" } else { "" }
        );
    }
    train::train(&t)?;
    crate::atomic::write_with(&dir.join(FINISHED), |w| {
        writeln!(w, "epochs {}", cfg.train.epochs)?;
        Ok(())
    })?;
    Ok(())
}

/// Runs every fold, scores each, and writes `cv.csv` and `oof.npy`.
pub fn cv(cfg: &CvConfig) -> Result<CvReport> {
    let out = &cfg.train.out_dir;
    check_same_cv(cfg)?;
    std::fs::create_dir_all(out).map_err(|e| anyhow!("creating {}: {e}", out.display()))?;
    let _lock = train::folder::lock(out)?;
    match &cfg.parallel {
        None => {
            for fold in 0..cfg.folds {
                train_fold(cfg, fold, cfg.train.device)?;
            }
        }
        Some(p) => {
            let todo = (0..cfg.folds).filter(|&f| !kept(cfg, f)).collect();
            parallel::run(cfg, p, todo)?;
        }
    }

    let mut rows = Vec::new();
    // Every fold's network has the same input size (one command trains them all).
    let mut oof: Option<(Vec<f32>, crate::frame::FrameSize)> = None;
    // The presence heads' out-of-fold probabilities, when the folds have heads.
    let mut oof_heads: Option<Vec<f32>> = None;
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
        let px = ev.map.pixels();
        let (all, _) = oof.get_or_insert_with(|| (vec![0f32; n * px], ev.map));
        for (k, &frame) in ev.frames.iter().enumerate() {
            all[frame * px..(frame + 1) * px]
                .copy_from_slice(&ev.probabilities[k * px..(k + 1) * px]);
        }
        if let Some(h) = &ev.heads {
            let all = oof_heads.get_or_insert_with(|| vec![0f32; n]);
            for (k, &frame) in ev.frames.iter().enumerate() {
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
    let oof_path = out.join("oof.npy");
    let (probs, map) = oof.unwrap_or((Vec::new(), crate::model::TUTORIAL_INPUT));
    let n = (probs.len() / map.pixels()) as u64;
    let shape = [n, map.height as u64, map.width as u64, 1];
    crate::data::npy::write(&oof_path, &shape, &probs)?;
    let heads_path = crate::presence::scores_path(&oof_path);
    match &oof_heads {
        Some(h) => {
            crate::data::npy::write(&heads_path, &[n, 1], h)?;
        }
        None if heads_path.exists() => std::fs::remove_file(&heads_path)
            .map_err(|e| anyhow!("removing the stale {}: {e}", heads_path.display()))?,
        None => {}
    }
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
        rows,
        csv: csv_path,
        oof: oof_path,
    })
}
