//! `evaluate`'s flags: a checkpoint on its validation split, or a submission.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nerveseg::evaluate::{self, EvalConfig, Report};

use super::shared::{default_weights, models, MaskRuleArgs, RunArgs, StatsArgs};

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Checkpoint to score on the validation split (of the first, with several). Give it
    /// more than once for an ensemble: the probabilities are averaged.
    #[arg(long, value_name = "FILE", default_values_os_t = [default_weights()], action = clap::ArgAction::Append)]
    pub weights: Vec<PathBuf>,
    /// Also predict each frame flipped left to right (flipped back), and average: test-time
    /// augmentation. With several --weights, every checkpoint does.
    #[arg(long)]
    pub tta: bool,
    /// Score a cv run's out-of-fold probabilities (OUT/oof.npy) against every mask of
    /// --masks instead of a checkpoint: with --sweep, the threshold and minimum size
    /// chosen on all the frames.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ensemble", "submission"])]
    pub oof: Option<PathBuf>,
    /// Every fold of a `nerveseg cv` run (DIR/fold-I/weights.h5), averaged: instead of
    /// --weights.
    #[arg(long, value_name = "DIR", conflicts_with = "weights")]
    pub ensemble: Option<PathBuf>,
    /// Prepared training frames; the last --validation-split share is scored. Or a
    /// FOLDER of frames (PNG, JPEG, TIFF, BMP) with --masks a folder of their masks,
    /// paired and read as `prepare` does, every frame scored.
    #[arg(long, value_name = "FILE|DIR", default_value_os_t = EvalConfig::default().images)]
    pub images: PathBuf,
    /// Prepared training masks; a folder of masks for a folder of --images; with
    /// --submission, a folder of {id}_mask.tif.
    #[arg(long, value_name = "PATH", default_value_os_t = EvalConfig::default().masks)]
    pub masks: PathBuf,
    /// With folders: the label of the nerve in palette or label masks, as prepare's.
    #[arg(long, value_name = "K")]
    pub mask_class: Option<u8>,
    /// With folders of frames of several sizes: resize them all to this one first, as
    /// prepare's --size (the Dice is then at this size).
    #[arg(long, value_name = "HxW")]
    pub size: Option<nerveseg::frame::FrameSize>,
    /// Score this submission CSV against the masks folder, as Kaggle would.
    #[arg(long, value_name = "FILE")]
    pub submission: Option<PathBuf>,
    /// With --submission: score a test id without a row as an empty prediction (as
    /// Kaggle's scorer would) instead of refusing the file.
    #[arg(long, requires = "submission")]
    pub allow_missing: bool,
    /// Share of the samples, from the end, that was held out for validation. Default: the
    /// split the checkpoint was trained with (its fold, for a --folds run; 0.2 when it
    /// does not say).
    #[arg(long, value_name = "FRACTION")]
    pub validation_split: Option<f64>,
    /// The group of each frame, for a checkpoint trained with --folds (default:
    /// imgs_groups_train.txt beside --images).
    #[arg(long, value_name = "FILE")]
    pub groups: Option<PathBuf>,
    /// Try thresholds and min sizes and report the best pair by the competition metric.
    #[arg(long)]
    pub sweep: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub rule: MaskRuleArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

impl EvaluateArgs {
    pub fn into_config(self, quiet: bool) -> Result<EvalConfig> {
        let weights = models(self.weights, self.ensemble.as_deref())?;
        Ok(EvalConfig {
            ensemble: self.run.ensemble(weights, self.tta, false),
            images: self.images,
            masks: self.masks,
            validation_split: self.validation_split,
            groups: self.groups,
            rule: self.rule.rule(),
            stats: self.stats.source(),
            sweep: self.sweep,
            trained_on: false,
            quiet,
        })
    }

    /// Folders of frames and masks, prepared into `dir` as `prepare` would: the arrays
    /// to score instead, every frame of them.
    fn prepare_folders(&mut self, dir: &std::path::Path, quiet: bool) -> Result<()> {
        let report = nerveseg::data::folder::prepare(&nerveseg::data::folder::FolderConfig {
            images: self.images.clone(),
            masks: self.masks.clone(),
            test_images: None,
            out: dir.to_owned(),
            mask_class: self.mask_class,
            size: self.size,
            groups: None,
            quiet: true,
        })?;
        if !quiet {
            for note in &report.notes {
                println!("{note}");
            }
        }
        self.images = dir.join("imgs_train.npy");
        self.masks = dir.join("imgs_mask_train.npy");
        self.validation_split.get_or_insert(1.0);
        Ok(())
    }

    /// Scores and returns the table or the JSON line.
    pub fn run(mut self, quiet: bool) -> Result<String> {
        let folders = tempfile::tempdir()?;
        if self.images.is_dir() && self.submission.is_none() && self.oof.is_none() {
            self.prepare_folders(folders.path(), quiet || self.json)?;
        } else if self.mask_class.is_some() || self.size.is_some() {
            anyhow::bail!("--mask-class and --size are for folders of --images and --masks");
        }
        let json = self.json;
        let submission = self.submission.clone();
        let oof = self.oof.clone();
        let allow_missing = self.allow_missing;
        let cfg = self.into_config(quiet)?;
        let report = match submission {
            Some(csv) => Report {
                scores: evaluate::score_submission(&csv, &cfg.masks, allow_missing)?,
                dice_coef: None,
                rule: cfg.rule,
                sweep: Vec::new(),
                split: None,
                fold: None,
                other_data: None,
            },
            None => match &oof {
                Some(file) => evaluate::evaluate_oof(&cfg, file)?.report(cfg.rule),
                None => evaluate::evaluate(&cfg)?.report(cfg.rule),
            },
        };
        Ok(if json {
            report.to_json()
        } else {
            report.to_string()
        })
    }
}
