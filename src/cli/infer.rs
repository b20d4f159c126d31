//! Flags of the stages after training (predict, submit, evaluate, plot, demo) and of the
//! Keras file tools (convert, inspect).

use std::path::PathBuf;

use clap::Args;
use nerveseg::dataset::Stats;
use nerveseg::evaluate::EvalConfig;
use nerveseg::keras::Format;
use nerveseg::predict::{PredictConfig, StatsSource};
use nerveseg::submission::{MaskRule, SubmitConfig};
use tch::Device;

use super::{parse_device, parse_format};

/// How the network runs (predict, evaluate).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Images per forward pass (in evaluate also the batch of Keras's dice_coef).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Where to run: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Run the convolutions in bfloat16 (fast on GPUs with tensor cores and CPUs with
    /// AVX-512 BF16); probabilities move by about 1e-2, so not the Keras parity mode.
    #[arg(long)]
    pub bf16: bool,
    #[command(flatten)]
    pub speed: super::train::SpeedArgs,
}

impl RunArgs {
    fn speed(&self) -> nerveseg::model::Speed {
        self.speed.speed(self.bf16)
    }
}

/// How probability maps become full-size masks (submit, evaluate, overlays).
#[derive(Debug, Args)]
pub struct MaskRuleArgs {
    /// A 96 x 96 probability above this is in the mask.
    #[arg(long, value_name = "P", default_value_t = 0.5)]
    pub threshold: f64,
    /// Masks with fewer full-size pixels are written empty.
    #[arg(long, value_name = "PIXELS", default_value_t = 10)]
    pub min_size: usize,
    /// After enlarging, keep every pixel above 0 (the original submission.py's dilation)
    /// instead of thresholding at 0.5 again.
    #[arg(long)]
    pub keep_above_zero: bool,
}

impl MaskRuleArgs {
    fn rule(&self) -> MaskRule {
        MaskRule {
            threshold: self.threshold,
            min_size: self.min_size,
            keep_above_zero: self.keep_above_zero,
        }
    }
}

/// Where the standardisation mean/std come from when the checkpoint has none.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Training pixel mean, for a checkpoint without stored statistics (with --std).
    #[arg(long, value_name = "MEAN", requires = "std")]
    pub mean: Option<f64>,
    /// Training pixel standard deviation (with --mean).
    #[arg(long, value_name = "STD", requires = "mean")]
    pub std: Option<f64>,
    /// Recompute the statistics from this training array, as the original did.
    #[arg(long, value_name = "FILE", conflicts_with = "mean")]
    pub stats_from: Option<PathBuf>,
}

impl StatsArgs {
    fn source(&self) -> StatsSource {
        match (self.mean, self.std, &self.stats_from) {
            (Some(mean), Some(std), _) => StatsSource::Given(Stats { mean, std }),
            (_, _, Some(p)) => StatsSource::From(p.clone()),
            _ => StatsSource::Stored,
        }
    }
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Keras weight file: a nerveseg checkpoint or a Keras file of the tutorial's U-Net.
    #[arg(long, value_name = "FILE", default_value = "weights/weights.h5")]
    pub weights: PathBuf,
    /// Test frames: uint8 (N, 420, 580) from `prepare` (resized and standardised here), or
    /// a model-ready float32 (N, 96, 96, 1) array fed as it is.
    #[arg(long, value_name = "FILE", default_value = "imgs_test.npy")]
    pub images: PathBuf,
    /// Test ids (int32), naming the PNGs and overlays.
    #[arg(long, value_name = "FILE", default_value = "imgs_id_test.npy")]
    pub ids: PathBuf,
    /// Where to write the float32 (N, 96, 96, 1) probabilities.
    #[arg(long, value_name = "FILE", default_value = "imgs_mask_test.npy")]
    pub out: PathBuf,
    /// Folder for {id}_pred.png (uint8 prob * 255, 96 x 96), as the original.
    #[arg(long, value_name = "DIR", default_value = "preds")]
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

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Predicted probabilities, float32 (N, 96, 96, 1).
    #[arg(long, value_name = "FILE", default_value = "imgs_mask_test.npy")]
    pub masks: PathBuf,
    /// Test ids, int32 (N,).
    #[arg(long, value_name = "FILE", default_value = "imgs_id_test.npy")]
    pub ids: PathBuf,
    /// The CSV to write (header img,pixels; one row per id, sorted).
    #[arg(long, value_name = "FILE", default_value = "submission.csv")]
    pub out: PathBuf,
    #[command(flatten)]
    pub rule: MaskRuleArgs,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Checkpoint to score on the validation split.
    #[arg(long, value_name = "FILE", default_value = "weights/weights.h5")]
    pub weights: PathBuf,
    /// Prepared training frames; the last --validation-split share is scored.
    #[arg(long, value_name = "FILE", default_value = "imgs_train.npy")]
    pub images: PathBuf,
    /// Prepared training masks; with --submission, a folder of {id}_mask.tif instead.
    #[arg(long, value_name = "PATH", default_value = "imgs_mask_train.npy")]
    pub masks: PathBuf,
    /// Score this submission CSV against the masks folder, as Kaggle would.
    #[arg(long, value_name = "FILE")]
    pub submission: Option<PathBuf>,
    /// Share of the samples, from the end, that was held out for validation.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2)]
    pub validation_split: f64,
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

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A training history (history.csv written by train).
    #[arg(value_name = "HISTORY", default_value = "weights/history.csv")]
    pub history: PathBuf,
    /// The PNG to write.
    #[arg(long, value_name = "FILE", default_value = "training.png")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for everything the demo writes.
    #[arg(long, value_name = "DIR", default_value = "demo-out")]
    pub out: PathBuf,
    /// Where to train: auto (CUDA when available), cpu, cuda or cuda:N. On CUDA the demo
    /// uses the full original size and settings.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Training subjects (default: 47 on CUDA, 9 on CPU).
    #[arg(long, value_name = "N")]
    pub subjects: Option<u32>,
    /// Epochs (default: 20 on CUDA, 16 on CPU).
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The weight file to read (any supported layout).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// The file to write.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Layout to write: keras2 (tf-keras full-model file, what Keras's load_weights and
    /// load_model read), keras2-weights (save_weights layout) or keras3 (.weights.h5).
    /// Default: keras3 when OUT ends in .weights.h5, else keras2.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The weight file to describe.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl PredictArgs {
    pub fn into_config(self, quiet: bool) -> PredictConfig {
        PredictConfig {
            weights: self.weights,
            images: self.images,
            ids: self.ids,
            out: self.out,
            png_dir: (!self.no_png).then_some(self.png_dir),
            overlays: self.overlays,
            truth_dir: self.truth,
            limit: self.limit,
            stats: self.stats.source(),
            rule: self.rule.rule(),
            batch_size: self.run.batch_size as usize,
            device: self.run.device,
            speed: self.run.speed(),
            allow_partial: self.allow_partial,
            quiet,
        }
    }
}

impl SubmitArgs {
    pub fn into_config(self) -> SubmitConfig {
        SubmitConfig {
            masks: self.masks,
            ids: self.ids,
            out: self.out,
            rule: self.rule.rule(),
        }
    }
}

impl EvaluateArgs {
    pub fn into_config(self, quiet: bool) -> EvalConfig {
        EvalConfig {
            weights: self.weights,
            images: self.images,
            masks: self.masks,
            validation_split: self.validation_split,
            rule: self.rule.rule(),
            stats: self.stats.source(),
            batch_size: self.run.batch_size as usize,
            device: self.run.device,
            speed: self.run.speed(),
            sweep: self.sweep,
            quiet,
        }
    }
}

impl ConvertArgs {
    /// The layout to write: `--format`, else from the output name.
    pub fn format(&self) -> Format {
        self.format.unwrap_or_else(|| {
            if self.output.to_string_lossy().ends_with(".weights.h5") {
                Format::Keras3Weights
            } else {
                Format::Keras2Model
            }
        })
    }
}
