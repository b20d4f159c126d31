//! `predict`'s flags.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use nerveseg::predict::folder::FolderPredictConfig;
use nerveseg::predict::PredictConfig;

use super::shared::{default_weights, models, ImageLimitArgs, MaskRuleArgs, RunArgs, StatsArgs};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Keras weight file: a nerveseg checkpoint or a Keras file of the tutorial's U-Net.
    /// Give it more than once for an ensemble: the probabilities are averaged.
    #[arg(long, value_name = "FILE", default_values_os_t = [default_weights()], action = clap::ArgAction::Append)]
    pub weights: Vec<PathBuf>,
    /// Also predict each frame flipped left to right (flipped back), and average: test-time
    /// augmentation. With several --weights, every checkpoint does.
    #[arg(long)]
    pub tta: bool,
    /// Every fold of a `nerveseg cv` run (DIR/fold-I/weights.h5), averaged: instead of
    /// --weights.
    #[arg(long, value_name = "DIR", conflicts_with = "weights")]
    pub ensemble: Option<PathBuf>,
    /// Test frames: uint8 (N, H, W) frames of one size (Kaggle: 420 x 580) from `prepare`
    /// (resized and standardised here), or a model-ready float32 (N, 96, 96, 1) array
    /// fed as it is; or a FOLDER of PNG, JPEG, TIFF or BMP frames of any sizes, or one
    /// such image file, which get {stem}_mask.png at their own size and a
    /// predictions.csv in --out-dir.
    #[arg(long, value_name = "FILE|DIR", default_value_os_t = PredictConfig::default().images)]
    pub images: PathBuf,
    /// With a folder or an image file of --images: where {stem}_mask.png (0/255, the
    /// frame's size) and predictions.csv (name, nerve_present, area_pixels,
    /// max_probability, error) go; for one image file, by default the current folder.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// With a folder of --images: a file that is not a readable image becomes a warning
    /// and a row with its error, instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Test ids (int32), naming the PNGs and overlays.
    #[arg(long, value_name = "FILE", default_value_os_t = PredictConfig::default().ids)]
    pub ids: PathBuf,
    /// Where to write the float32 (N, 96, 96, 1) probabilities.
    #[arg(long, value_name = "FILE", default_value_os_t = PredictConfig::default().out)]
    pub out: PathBuf,
    /// Folder for {id}_pred.png (uint8 prob * 255, 96 x 96), as the original.
    #[arg(long, value_name = "DIR", default_value_os_t = PredictConfig::default().png_dir.unwrap_or_default())]
    pub png_dir: PathBuf,
    /// Write no PNGs.
    #[arg(long)]
    pub no_png: bool,
    /// Folder for full-size pictures of each frame with the predicted outline (red).
    #[arg(long, value_name = "DIR")]
    pub overlays: Option<PathBuf>,
    /// Ground-truth {id}_mask.tif folder (e.g. raw/test_masks) to draw in green too.
    #[arg(long, value_name = "DIR", requires = "overlays")]
    pub truth: Option<PathBuf>,
    /// At most this many overlays.
    #[arg(long, value_name = "N", requires = "overlays")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub image_limit: ImageLimitArgs,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub rule: MaskRuleArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Load a weight file whose layers do not all match (missing or extra layers), using
    /// what matches by order; the rest keeps its fresh initialisation.
    #[arg(long)]
    pub allow_partial: bool,
}

/// What `predict` was asked for.
pub enum PredictFrom {
    Arrays(PredictConfig),
    Folder(FolderPredictConfig),
}

impl PredictArgs {
    pub fn into_config(self, quiet: bool) -> Result<PredictFrom> {
        // A missing folder or image (the folder flags say which was meant) is named as
        // missing; a missing array is, by its reader.
        if !self.images.exists() && (self.out_dir.is_some() || self.skip_bad) {
            bail!("--images {}: no such file or folder", self.images.display());
        }
        // One image file: its mask goes to --out-dir, by default here.
        let image = self.images.is_file() && nerveseg::data::decode::is_supported(&self.images);
        // A folder of frames, or one image, not an array.
        if self.images.is_dir() || image {
            let out_dir = match (self.out_dir, image) {
                (Some(dir), _) => dir,
                (None, true) => PathBuf::from("."),
                (None, false) => bail!(
                    "--images {} is a folder: pass --out-dir DIR for its masks",
                    self.images.display()
                ),
            };
            if self.truth.is_some() {
                bail!("--truth reads Kaggle {{id}}_mask.tif files; it does not apply to a folder of --images");
            }
            let weights = models(self.weights, self.ensemble.as_deref())?;
            return Ok(PredictFrom::Folder(FolderPredictConfig {
                ensemble: self.run.ensemble(weights, self.tta, self.allow_partial),
                images: self.images,
                out_dir,
                overlays: self.overlays,
                stats: self.stats.source(),
                rule: self.rule.rule(),
                skip_bad: self.skip_bad,
                quiet,
            }));
        }
        let given: Vec<&str> = [
            ("--out-dir", self.out_dir.is_some()),
            ("--skip-bad", self.skip_bad),
        ]
        .into_iter()
        .filter_map(|(flag, on)| on.then_some(flag))
        .collect();
        if !given.is_empty() {
            bail!(
                "{} {} for a folder or an image file of --images; {} is an array (.npy)",
                given.join(" and "),
                if given.len() == 1 { "is" } else { "are" },
                self.images.display()
            );
        }
        let weights = models(self.weights, self.ensemble.as_deref())?;
        Ok(PredictFrom::Arrays(PredictConfig {
            ensemble: self.run.ensemble(weights, self.tta, self.allow_partial),
            images: self.images,
            ids: self.ids,
            out: self.out,
            png_dir: (!self.no_png).then_some(self.png_dir),
            overlays: self.overlays,
            truth_dir: self.truth,
            limit: self.limit,
            stats: self.stats.source(),
            rule: self.rule.rule(),
            quiet,
        }))
    }
}
