//! The command line: one `Args` struct per subcommand, turned into the library's plain
//! config structs. The library never sees clap.

mod bench;
mod infer;
#[cfg(test)]
mod tests;
mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use nerveseg::data::PrepareConfig;
use nerveseg::keras::Format;
use nerveseg::synth::SynthConfig;
use tch::Device;

pub use self::bench::BenchArgs;
pub use self::infer::{
    ConvertArgs, DemoArgs, EvaluateArgs, InspectArgs, PlotArgs, PredictArgs, SubmitArgs,
};
pub use self::train::TrainArgs;

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
    /// Time one stage in-process and print one JSON line (used by `make bench`).
    Bench(BenchArgs),
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

pub(crate) fn parse_device(s: &str) -> Result<Device, String> {
    nerveseg::model::parse_device(s)
}

pub(crate) fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "keras2" => Ok(Format::Keras2Model),
        "keras2-weights" => Ok(Format::Keras2Weights),
        "keras3" => Ok(Format::Keras3Weights),
        _ => Err(format!(
            "unknown format {s:?}: use keras2, keras2-weights or keras3"
        )),
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
