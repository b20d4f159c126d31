//! `train`'s flags.

use std::path::PathBuf;

use clap::Args;
use nerveseg::adam::AdamConfig;
use nerveseg::augment::AugmentConfig;
use nerveseg::train::callbacks::{Callbacks, PlateauConfig, StopConfig};
use nerveseg::train::{Folds, TrainConfig};
use tch::Device;

use super::network::NetworkArgs;
use super::parse_device;
use super::recipe::{preset, Recipe};
use super::shared::SpeedArgs;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training images: uint8 (N, H, W) frames of one size (Kaggle: 420 x 580) from
    /// `prepare` (resized and standardised here), or model-ready float32 (N, 96, 96, 1).
    #[arg(long, value_name = "FILE", default_value_os_t = TrainConfig::default().images)]
    pub images: PathBuf,
    /// Training masks: uint8 (N, H, W) with 0/255, the images' size, or float32
    /// (N, 96, 96, 1) in [0, 1].
    #[arg(long, value_name = "FILE", default_value_os_t = TrainConfig::default().masks)]
    pub masks: PathBuf,
    /// Folder for weights.h5 (best by val_loss), last.h5 (for --resume) and history.csv.
    #[arg(long, value_name = "DIR", default_value_os_t = TrainConfig::default().out_dir)]
    pub out_dir: PathBuf,
    /// Passes over the training data [default: 20, the tutorial's; 60 with --recipe
    /// modern].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Images per gradient step.
    #[arg(long, value_name = "N", default_value_t = TrainConfig::default().batch_size as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Adam learning rate [default: 1e-5, the tutorial's; 1e-3 with --recipe modern].
    /// The tutorial's rate barely moves a few hundred frames: see the README's ablation.
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,
    /// Adam epsilon, in Keras's form (outside the bias correction); tf-keras's default.
    /// Keras 2.0 (2017) used 1e-8.
    #[arg(long, value_name = "EPS", default_value_t = AdamConfig::default().epsilon)]
    pub adam_epsilon: f64,
    /// Share of the samples, taken from the END in file order, used for validation.
    #[arg(long, value_name = "FRACTION", default_value_t = TrainConfig::default().validation_split)]
    pub validation_split: f64,
    /// Seed for the initial weights and the per-epoch shuffles.
    #[arg(long, value_name = "SEED", default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Keep the training samples in file order (Keras fit(shuffle=False)).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Where to run: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Start from the weights in this Keras file (e.g. the original weights.h5).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub init_weights: Option<PathBuf>,
    /// Continue the interrupted run saved in OUT_DIR/last.h5.
    #[arg(long)]
    pub resume: bool,
    /// Start afresh in OUT_DIR even when it holds another run (its weights.h5, last.h5
    /// and history.csv are replaced); without it such a folder is refused.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(flatten)]
    pub speed: SpeedArgs,
    /// Mixed precision: convolutions in bfloat16 from float32 master weights (faster on
    /// GPUs with tensor cores; on CPUs `nerveseg info` says what it measured on one of the
    /// kind: 1.9x on AVX-512 BF16 without AMX, 0.6x with AMX). Not the Keras parity mode.
    #[arg(long)]
    pub amp: bool,
    /// A preset of the options that measured best on real frames (README, "Beyond the
    /// tutorial" and "The model family"): kaggle = --augment --reduce-lr-on-plateau
    /// --lr-factor 0.5 --lr-patience 5 (at the tutorial's rate: give --lr, e.g. 3e-4 for
    /// a few hundred frames, 1e-4 for Kaggle's thousands); modern = kaggle with --norm
    /// batch --lr 1e-3 --epochs 60. Flags given beside it still set
    /// their own values.
    #[arg(
        long,
        value_name = "NAME",
        value_enum,
        group = "augmenting",
        group = "plateau"
    )]
    pub recipe: Option<Recipe>,
    #[command(flatten)]
    pub callbacks: CallbackArgs,
    #[command(flatten)]
    pub augment: AugmentArgs,
    /// Add a presence head: global average pooling of conv5 and Dense(1, sigmoid) named
    /// `presence`, trained with binary cross-entropy on "the mask is not empty" beside
    /// the Dice loss. The checkpoint stays a Keras file (two outputs); `--presence head`
    /// or `mean` in predict, submit and evaluate use it.
    #[arg(long)]
    pub presence_head: bool,
    /// The weight of the head's binary cross-entropy in the loss (Keras loss_weights).
    #[arg(
        long,
        value_name = "W",
        default_value_t = 1.0,
        requires = "presence_head"
    )]
    pub presence_weight: f64,
    /// Split by group into this many folds and validate on --fold instead of the last
    /// --validation-split share: no group (patient) is on both sides.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(2..))]
    pub folds: Option<u64>,
    /// Which fold validates, 1 to K.
    #[arg(long, value_name = "I", requires = "folds", value_parser = clap::value_parser!(u64).range(1..))]
    pub fold: Option<u64>,
    /// The group of each frame, one per line (default: imgs_groups_train.txt beside
    /// --images, as prepare writes it).
    #[arg(long, value_name = "FILE", requires = "folds")]
    pub groups: Option<PathBuf>,
}

/// Augmentation of each training batch, on the device. Off unless asked for.
#[derive(Debug, Args)]
pub struct AugmentArgs {
    /// Random flip, rotation, shift, zoom, brightness and contrast of every training
    /// batch (images and masks alike; deterministic for --seed).
    #[arg(long, group = "augmenting")]
    pub augment: bool,
    /// No left-right flips.
    #[arg(long, requires = "augmenting")]
    pub aug_no_flip: bool,
    /// Rotation range, +- degrees.
    #[arg(
        long,
        value_name = "DEG",
        default_value_t = AugmentConfig::default().rotate,
        requires = "augmenting"
    )]
    pub aug_rotate: f64,
    /// Shift range, +- pixels of the full frame.
    #[arg(
        long,
        value_name = "PX",
        default_value_t = AugmentConfig::default().shift,
        requires = "augmenting"
    )]
    pub aug_shift: f64,
    /// Zoom range: 1 +- this.
    #[arg(long, value_name = "F", default_value_t = AugmentConfig::default().zoom, requires = "augmenting")]
    pub aug_zoom: f64,
    /// Brightness range, +- standard deviations of the standardised image.
    #[arg(long, value_name = "B", default_value_t = AugmentConfig::default().brightness, requires = "augmenting")]
    pub aug_brightness: f64,
    /// Contrast range: a factor 1 +- this.
    #[arg(long, value_name = "C", default_value_t = AugmentConfig::default().contrast, requires = "augmenting")]
    pub aug_contrast: f64,
}

impl AugmentArgs {
    pub fn config(&self, recipe: Option<Recipe>) -> anyhow::Result<Option<AugmentConfig>> {
        if !self.augment && !preset(recipe).augment {
            return Ok(None);
        }
        let ranges = [
            self.aug_rotate,
            self.aug_shift,
            self.aug_zoom,
            self.aug_brightness,
            self.aug_contrast,
        ];
        if ranges.iter().any(|r| !r.is_finite() || *r < 0.0)
            || self.aug_zoom >= 1.0
            || self.aug_contrast >= 1.0
        {
            anyhow::bail!(
                "augmentation ranges must be 0 or more, and --aug-zoom and --aug-contrast below 1"
            );
        }
        Ok(Some(AugmentConfig {
            flip: !self.aug_no_flip,
            rotate: self.aug_rotate,
            shift: self.aug_shift,
            zoom: self.aug_zoom,
            brightness: self.aug_brightness,
            contrast: self.aug_contrast,
        }))
    }
}

/// Keras's ReduceLROnPlateau and EarlyStopping, monitoring val_loss; defaults are
/// Keras's. Off unless asked for: the tutorial's run uses neither.
#[derive(Debug, Args)]
pub struct CallbackArgs {
    /// Divide the learning rate when val_loss stalls (Keras ReduceLROnPlateau); the rate
    /// of each epoch becomes an lr column in history.csv.
    #[arg(long, group = "plateau")]
    pub reduce_lr_on_plateau: bool,
    /// The rate is multiplied by this on a plateau, below 1 [default: 0.1 as Keras's;
    /// 0.5 with --recipe kaggle].
    #[arg(long, value_name = "F", requires = "plateau")]
    pub lr_factor: Option<f64>,
    /// Epochs without improvement before the rate drops [default: 10 as Keras's; 5 with
    /// --recipe kaggle].
    #[arg(long, value_name = "N", requires = "plateau")]
    pub lr_patience: Option<usize>,
    /// A val_loss lower than the best by more than this is an improvement.
    #[arg(long, value_name = "D", default_value_t = PlateauConfig::default().min_delta, requires = "plateau")]
    pub lr_min_delta: f64,
    /// Epochs to wait after a drop before counting again.
    #[arg(long, value_name = "N", default_value_t = PlateauConfig::default().cooldown, requires = "plateau")]
    pub lr_cooldown: usize,
    /// The rate never drops below this.
    #[arg(long, value_name = "LR", default_value_t = PlateauConfig::default().min_lr, requires = "plateau")]
    pub min_lr: f64,
    /// Stop after this many epochs without a val_loss improvement (Keras EarlyStopping
    /// with this patience).
    #[arg(long, value_name = "PATIENCE")]
    pub early_stopping: Option<usize>,
    /// With --early-stopping: an improvement must beat the best by more than this.
    #[arg(
        long,
        value_name = "D",
        default_value_t = 0.0,
        requires = "early_stopping"
    )]
    pub stop_min_delta: f64,
}

impl CallbackArgs {
    /// The callbacks asked for; `recipe` turns ReduceLROnPlateau on with its own factor
    /// and patience where the flags leave them out.
    pub fn callbacks(&self, recipe: Option<Recipe>) -> Result<Callbacks, String> {
        let preset = preset(recipe).plateau;
        let keras = PlateauConfig::default();
        let (factor, patience) = preset.unwrap_or((keras.factor, keras.patience));
        let factor = self.lr_factor.unwrap_or(factor);
        let patience = self.lr_patience.unwrap_or(patience);
        let on = self.reduce_lr_on_plateau || preset.is_some();
        if on && !(factor > 0.0 && factor < 1.0) {
            return Err(format!("--lr-factor must be in (0, 1), got {factor}"));
        }
        Ok(Callbacks {
            plateau: on.then_some(PlateauConfig {
                factor,
                patience,
                min_delta: self.lr_min_delta,
                cooldown: self.lr_cooldown,
                min_lr: self.min_lr,
            }),
            early_stopping: self.early_stopping.map(|patience| StopConfig {
                patience,
                min_delta: self.stop_min_delta,
            }),
        })
    }
}

impl TrainArgs {
    pub fn into_config(self, quiet: bool) -> anyhow::Result<TrainConfig> {
        let callbacks = self
            .callbacks
            .callbacks(self.recipe)
            .map_err(anyhow::Error::msg)?;
        let preset = preset(self.recipe);
        Ok(TrainConfig {
            images: self.images,
            masks: self.masks,
            out_dir: self.out_dir,
            epochs: self
                .epochs
                .or(preset.epochs)
                .unwrap_or(TrainConfig::default().epochs),
            batch_size: self.batch_size as usize,
            adam: AdamConfig {
                lr: self.lr.or(preset.lr).unwrap_or(AdamConfig::default().lr),
                epsilon: self.adam_epsilon,
                ..Default::default()
            },
            validation_split: self.validation_split,
            seed: self.seed,
            shuffle: !self.no_shuffle,
            device: self.device,
            init_weights: self.init_weights,
            resume: self.resume,
            overwrite: self.overwrite,
            network: self.network.choice(preset.network)?,
            loss: self.network.loss.map(Into::into).unwrap_or_default(),
            speed: self.speed.speed(self.amp),
            callbacks,
            augment: self.augment.config(self.recipe)?,
            presence: self.presence_head.then_some(self.presence_weight),
            folds: match (self.folds, self.fold) {
                (Some(k), None) => anyhow::bail!(
                    "--folds {k} needs --fold I (1 to {k}); `nerveseg cv` trains them all"
                ),
                (Some(k), Some(i)) if i > k => {
                    anyhow::bail!("--fold {i} of --folds {k}: the fold must be 1 to {k}")
                }
                (Some(k), Some(i)) => Some(Folds {
                    folds: k as usize,
                    fold: i as usize - 1,
                    groups: self.groups,
                }),
                _ => None,
            },
            quiet,
        })
    }
}
