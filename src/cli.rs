//! The command line: one `Args` struct per subcommand, turned into the library's plain
//! config structs. The library never sees clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use nerveseg::data::PrepareConfig;
use nerveseg::dataset::Stats;
use nerveseg::evaluate::EvalConfig;
use nerveseg::keras::Format;
use nerveseg::predict::{PredictConfig, StatsSource};
use nerveseg::submission::{MaskRule, SubmitConfig};
use nerveseg::synth::SynthConfig;
use nerveseg::train::TrainConfig;
use tch::Device;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (libtorch ",
    env!("NERVESEG_LIBTORCH_VERSION"),
    ")"
);

/// The Keras U-Net tutorial for Kaggle's Ultrasound Nerve Segmentation, on libtorch.
///
/// The pipeline: `synth` (or the Kaggle data) -> `prepare` -> train -> predict -> submit.
#[derive(Debug, Parser)]
#[command(name = "nerveseg", version, long_version = LONG_VERSION, propagate_version = true)]
pub struct Cli {
    /// Print no progress bars or summaries, only errors. RUST_LOG=debug prints more.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write synthetic ultrasound data in the Kaggle layout (train/, test/).
    Synth(SynthArgs),
    /// Read the Kaggle TIFFs and write the .npy files of the original data.py.
    Prepare(PrepareArgs),
    /// Train the U-Net as the original train.py: Dice loss, Adam, best checkpoint by val_loss.
    Train(TrainArgs),
    /// Predict the test frames with a checkpoint: imgs_mask_test.npy and preds/{id}_pred.png.
    Predict(PredictArgs),
    /// Write the Kaggle submission.csv from the predicted masks.
    Submit(SubmitArgs),
    /// Score a checkpoint on the validation split, or a submission against true masks.
    Evaluate(EvaluateArgs),
    /// Draw the training curves of a history.csv to a PNG.
    Plot(PlotArgs),
    /// Run the whole pipeline on synthetic data: synth, prepare, train, evaluate,
    /// predict, submit, plot.
    Demo(DemoArgs),
    /// Rewrite a Keras weight file in another layout (tf-keras model, weights only, Keras 3).
    Convert(ConvertArgs),
    /// Show a weight file's format, layers, shapes, parameter count and stored mean/std.
    Inspect(InspectArgs),
    /// Show the libtorch build, CUDA/cuDNN devices, CPU threads and HDF5 version.
    Info,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Folder to write train/, test/ (and test_masks/) into.
    #[arg(long, value_name = "DIR", default_value = "raw")]
    pub out: PathBuf,
    /// Number of training subjects (patients), as in the Kaggle set.
    #[arg(long, value_name = "N", default_value_t = 47, value_parser = clap::value_parser!(u32).range(1..))]
    pub subjects: u32,
    /// Training images per subject (47 x 120 = 5,640 pairs, Kaggle has 5,635).
    #[arg(long, value_name = "N", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub per_subject: u32,
    /// Number of test images (ids 1..N), as in the Kaggle set.
    #[arg(long, value_name = "N", default_value_t = 5508)]
    pub test: u32,
    /// Random seed; the same seed gives the same files.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub seed: u64,
    /// Also write the test ground truth to test_masks/{id}_mask.tif, so a submission can be scored.
    #[arg(long)]
    pub test_masks: bool,
    /// Replace Kaggle-named files already in the output folders.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Folder in the Kaggle layout: train/{subject}_{n}.tif, train/{subject}_{n}_mask.tif, test/{id}.tif.
    #[arg(long, value_name = "DIR", default_value = "raw")]
    pub raw: PathBuf,
    /// Folder for imgs_train.npy, imgs_mask_train.npy, imgs_test.npy, imgs_id_test.npy.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Only the training part (imgs_train.npy, imgs_mask_train.npy).
    #[arg(long, conflicts_with = "test_only")]
    pub train_only: bool,
    /// Only the test part (imgs_test.npy, imgs_id_test.npy).
    #[arg(long)]
    pub test_only: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training images: uint8 (N, 420, 580) from `prepare` (resized and standardised
    /// here), or model-ready float32 (N, 96, 96, 1).
    #[arg(long, value_name = "FILE", default_value = "imgs_train.npy")]
    pub images: PathBuf,
    /// Training masks: uint8 (N, 420, 580) with 0/255, or float32 (N, 96, 96, 1) in [0, 1].
    #[arg(long, value_name = "FILE", default_value = "imgs_mask_train.npy")]
    pub masks: PathBuf,
    /// Folder for weights.h5 (best by val_loss), last.h5 (for --resume) and history.csv.
    #[arg(long, value_name = "DIR", default_value = "weights")]
    pub out_dir: PathBuf,
    /// Passes over the training data.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub epochs: usize,
    /// Images per gradient step.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Adam learning rate.
    #[arg(long, value_name = "LR", default_value_t = 1e-5)]
    pub lr: f64,
    /// Adam epsilon, in Keras's form (outside the bias correction); tf-keras's default.
    /// Keras 2.0 (2017) used 1e-8.
    #[arg(long, value_name = "EPS", default_value_t = 1e-7)]
    pub adam_epsilon: f64,
    /// Share of the samples, taken from the END in file order, used for validation.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2)]
    pub validation_split: f64,
    /// Seed for the initial weights and the per-epoch shuffles.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
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
    /// Channels of the first level of a fresh model (32 = the tutorial's).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(i64).range(1..))]
    pub base_width: i64,
}

impl TrainArgs {
    pub fn into_config(self, quiet: bool) -> TrainConfig {
        TrainConfig {
            images: self.images,
            masks: self.masks,
            out_dir: self.out_dir,
            epochs: self.epochs,
            batch_size: self.batch_size as usize,
            adam: nerveseg::adam::AdamConfig {
                lr: self.lr,
                epsilon: self.adam_epsilon,
                ..Default::default()
            },
            validation_split: self.validation_split,
            seed: self.seed,
            shuffle: !self.no_shuffle,
            device: self.device,
            init_weights: self.init_weights,
            resume: self.resume,
            base_width: self.base_width,
            quiet,
        }
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
    /// Images per forward pass.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Where to run: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
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
    /// Images per forward pass (also Keras's batch for dice_coef).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Where to run: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
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
    /// Epochs (default: 20 on CUDA, 6 on CPU).
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

fn parse_device(s: &str) -> Result<Device, String> {
    nerveseg::model::parse_device(s)
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "keras2" => Ok(Format::Keras2Model),
        "keras2-weights" => Ok(Format::Keras2Weights),
        "keras3" => Ok(Format::Keras3Weights),
        _ => Err(format!(
            "unknown format {s:?}: use keras2, keras2-weights or keras3"
        )),
    }
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
            batch_size: self.batch_size as usize,
            device: self.device,
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
            batch_size: self.batch_size as usize,
            device: self.device,
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

impl SynthArgs {
    pub fn into_config(self, quiet: bool) -> SynthConfig {
        SynthConfig {
            out: self.out,
            subjects: self.subjects,
            per_subject: self.per_subject,
            test: self.test,
            seed: self.seed,
            test_masks: self.test_masks,
            overwrite: self.overwrite,
            quiet,
        }
    }
}

impl PrepareArgs {
    pub fn into_config(self, quiet: bool) -> PrepareConfig {
        PrepareConfig {
            raw: self.raw,
            out: self.out,
            train: !self.test_only,
            test: !self.train_only,
            quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("nerveseg").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn synth_defaults_are_kaggle_sizes() {
        let Command::Synth(a) = parse(&["synth"]).command else {
            panic!("not synth")
        };
        let c = a.into_config(false);
        assert_eq!(
            (c.subjects, c.per_subject, c.test, c.seed),
            (47, 120, 5508, 0)
        );
        assert_eq!(c.out, PathBuf::from("raw"));
        assert!(!c.test_masks && !c.overwrite);
    }

    #[test]
    fn synth_flags_parse() {
        let cli = parse(&[
            "-q",
            "synth",
            "--out",
            "x",
            "--subjects",
            "2",
            "--per-subject",
            "3",
            "--test",
            "4",
            "--seed",
            "5",
            "--test-masks",
            "--overwrite",
        ]);
        assert!(cli.quiet);
        let Command::Synth(a) = cli.command else {
            panic!("not synth")
        };
        let c = a.into_config(true);
        assert_eq!((c.subjects, c.per_subject, c.test, c.seed), (2, 3, 4, 5));
        assert!(c.test_masks && c.overwrite && c.quiet);
        assert!(Cli::try_parse_from(["nerveseg", "synth", "--subjects", "0"]).is_err());
    }

    #[test]
    fn prepare_flags_parse() {
        let Command::Prepare(a) = parse(&["prepare"]).command else {
            panic!("not prepare")
        };
        let c = a.into_config(false);
        assert_eq!(
            (c.raw, c.out, c.train, c.test),
            ("raw".into(), ".".into(), true, true)
        );
        let Command::Prepare(a) =
            parse(&["prepare", "--raw", "r", "--out", "o", "--train-only"]).command
        else {
            panic!("not prepare")
        };
        let c = a.into_config(false);
        assert_eq!(
            (c.raw, c.out, c.train, c.test),
            ("r".into(), "o".into(), true, false)
        );
        let Command::Prepare(a) = parse(&["prepare", "--test-only"]).command else {
            panic!()
        };
        assert!(!a.into_config(false).train);
        assert!(
            Cli::try_parse_from(["nerveseg", "prepare", "--train-only", "--test-only"]).is_err()
        );
    }

    #[test]
    fn train_defaults_are_the_tutorials() {
        let Command::Train(a) = parse(&["train"]).command else {
            panic!("not train")
        };
        let c = a.into_config(false);
        assert_eq!(
            (c.epochs, c.batch_size, c.adam.lr, c.validation_split),
            (20, 32, 1e-5, 0.2)
        );
        assert_eq!(
            (c.adam.epsilon, c.adam.beta1, c.adam.beta2),
            (1e-7, 0.9, 0.999)
        );
        assert_eq!(
            (c.seed, c.shuffle, c.resume, c.base_width),
            (0, true, false, 32)
        );
        assert_eq!(c.images, PathBuf::from("imgs_train.npy"));
        assert_eq!(c.masks, PathBuf::from("imgs_mask_train.npy"));
        assert_eq!(c.out_dir, PathBuf::from("weights"));
        let Command::Train(a) = parse(&[
            "train",
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--lr",
            "0.001",
            "--adam-epsilon",
            "1e-8",
            "--validation-split",
            "0",
            "--seed",
            "4",
            "--no-shuffle",
            "--device",
            "cpu",
            "--init-weights",
            "w.h5",
            "--out-dir",
            "o",
            "--base-width",
            "8",
        ])
        .command
        else {
            panic!("not train")
        };
        let c = a.into_config(true);
        assert_eq!(
            (c.epochs, c.batch_size, c.adam.lr, c.adam.epsilon),
            (3, 8, 1e-3, 1e-8)
        );
        assert_eq!(
            (c.validation_split, c.seed, c.shuffle, c.device),
            (0.0, 4, false, Device::Cpu)
        );
        assert_eq!(
            (c.init_weights, c.out_dir, c.base_width),
            (Some("w.h5".into()), "o".into(), 8)
        );
        assert!(
            Cli::try_parse_from(["nerveseg", "train", "--resume", "--init-weights", "w.h5"])
                .is_err()
        );
    }

    #[test]
    fn predict_defaults_are_the_original_files() {
        let Command::Predict(a) = parse(&["predict"]).command else {
            panic!("not predict")
        };
        let c = a.into_config(false);
        assert_eq!(c.weights, PathBuf::from("weights/weights.h5"));
        assert_eq!(c.images, PathBuf::from("imgs_test.npy"));
        assert_eq!(c.out, PathBuf::from("imgs_mask_test.npy"));
        assert_eq!(c.batch_size, 32);
        let Command::Predict(a) = parse(&[
            "predict",
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "--weights",
            "w.h5",
        ])
        .command
        else {
            panic!("not predict")
        };
        let c = a.into_config(false);
        assert_eq!(
            (c.device, c.batch_size, c.weights),
            (Device::Cpu, 4, PathBuf::from("w.h5"))
        );
        assert!(Cli::try_parse_from(["nerveseg", "predict", "--device", "tpu"]).is_err());
        assert!(Cli::try_parse_from(["nerveseg", "predict", "--batch-size", "0"]).is_err());
    }

    #[test]
    fn convert_picks_the_format_from_the_name() {
        let Command::Convert(a) = parse(&["convert", "a.h5", "b.weights.h5"]).command else {
            panic!()
        };
        assert_eq!(a.format(), Format::Keras3Weights);
        let Command::Convert(a) = parse(&["convert", "a.weights.h5", "b.h5"]).command else {
            panic!()
        };
        assert_eq!(a.format(), Format::Keras2Model);
        let Command::Convert(a) =
            parse(&["convert", "a.h5", "b.h5", "--format", "keras2-weights"]).command
        else {
            panic!()
        };
        assert_eq!(a.format(), Format::Keras2Weights);
        assert!(
            Cli::try_parse_from(["nerveseg", "convert", "a.h5", "b.h5", "--format", "x"]).is_err()
        );
        assert!(Cli::try_parse_from(["nerveseg", "convert", "a.h5"]).is_err());
    }

    #[test]
    fn inspect_takes_a_file() {
        let Command::Inspect(a) = parse(&["inspect", "w.h5"]).command else {
            panic!()
        };
        assert_eq!(a.file, PathBuf::from("w.h5"));
    }

    #[test]
    fn info_parses() {
        assert!(matches!(parse(&["info"]).command, Command::Info));
    }
}
