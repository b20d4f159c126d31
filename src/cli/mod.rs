//! The command line: one `Args` struct per subcommand, each in the file named after it,
//! turned into the library's plain config structs and run. The library never sees clap.

mod bench;
mod cv;
mod data;
mod demo;
mod evaluate;
mod examples;
mod export;
mod keras;
mod network;
mod predict;
mod recipe;
mod shared;
mod stream;
mod submit;
#[cfg(test)]
mod tests;
mod train;

use std::fmt::Display;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use nerveseg::keras::Format;
use tch::Device;

pub use self::bench::BenchArgs;
pub use self::data::{PrepareArgs, SynthArgs};
pub use self::demo::{DemoArgs, PlotArgs};
pub use self::evaluate::EvaluateArgs;
pub use self::keras::{ConvertArgs, InspectArgs};
pub use self::predict::PredictArgs;
pub use self::submit::SubmitArgs;
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
/// Ctrl-C (or SIGTERM) stops any command at its next safe point, keeping every earlier
/// output as it was (exit code 130); a second Ctrl-C stops at once.
#[derive(Debug, Parser)]
#[command(name = "nerveseg", version, long_version = LONG_VERSION, propagate_version = true)]
pub struct Cli {
    /// Print no progress bars or summaries, only errors. RUST_LOG=debug prints more.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// On the CPU, flush denormal floats to zero (as TensorFlow does): long training
    /// runs slow down several times when gradients become tiny. Off by default, the
    /// bit-for-bit run; it may change the last bits.
    #[arg(long, global = true)]
    pub flush_denormals: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether standard output carries the command's data, so the library's progress
    /// lines must not go there (`stream` without --output).
    pub fn stdout_is_data(&self) -> bool {
        matches!(&self.command, Command::Stream(a) if a.output.is_none())
    }

    /// Whether to flush denormals: asked for, or the demo on a CPU (it shows learning in
    /// minutes, and denormal gradients would slow its late epochs several times).
    pub fn flush_denormals(&self) -> bool {
        self.flush_denormals || matches!(&self.command, Command::Demo(d) if !d.device.is_cuda())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write synthetic ultrasound data in the Kaggle layout (train/, test/).
    #[command(after_help = examples::SYNTH)]
    Synth(SynthArgs),
    /// Read the Kaggle TIFFs and write the .npy files of the original data.py.
    #[command(after_help = examples::PREPARE)]
    Prepare(PrepareArgs),
    /// Find near-duplicate frames of one subject whose masks disagree about the nerve
    /// (label noise); with --drop, write the training arrays without them.
    #[command(after_help = examples::CLEAN)]
    Clean(data::CleanArgs),
    /// Train the U-Net as the original train.py: Dice loss, Adam, best checkpoint by val_loss.
    #[command(after_help = examples::TRAIN)]
    Train(TrainArgs),
    /// Cross-validate: train every fold of a split by group into OUT/fold-I/, score each
    /// on its held-out frames, and write OUT/cv.csv and OUT/oof.npy. With --fold I, train
    /// that fold only (a cluster job).
    #[command(after_help = examples::CV)]
    Cv(cv::CvArgs),
    /// Predict the test frames with a checkpoint: imgs_mask_test.npy and preds/{id}_pred.png;
    /// or, for a folder of frames, {stem}_mask.png at each frame's size and predictions.csv.
    #[command(after_help = examples::PREDICT)]
    Predict(PredictArgs),
    /// Write the Kaggle submission.csv from the predicted masks.
    #[command(after_help = examples::SUBMIT)]
    Submit(SubmitArgs),
    /// Score a checkpoint on the validation split, or a submission against true masks.
    #[command(after_help = examples::EVALUATE)]
    Evaluate(EvaluateArgs),
    /// Draw the training curves of a history.csv to a PNG.
    #[command(after_help = examples::PLOT)]
    Plot(PlotArgs),
    /// Run the whole pipeline on synthetic data: synth, prepare, train, evaluate,
    /// predict, submit, plot.
    #[command(after_help = examples::DEMO)]
    Demo(DemoArgs),
    /// Segment a live stream: raw 8-bit gray frames in (standard input or --input), one
    /// 0/255 mask (or, with --overlay, an RGB picture) out per frame, each written before
    /// the next frame is read; frames/s and latency on standard error at the end.
    #[command(after_help = examples::STREAM)]
    Stream(stream::StreamArgs),
    /// Export the network as ONNX (frames to masks, preprocessing inside) or TorchScript
    /// (model.pt, for torch.jit.load), with a JSON file beside it that describes it.
    #[command(after_help = examples::EXPORT)]
    Export(export::ExportArgs),
    /// Rewrite a Keras weight file in another layout (tf-keras model, weights only, Keras 3).
    #[command(after_help = examples::CONVERT)]
    Convert(ConvertArgs),
    /// Show a weight file's format, layers, shapes, parameter count and stored mean/std.
    #[command(after_help = examples::INSPECT)]
    Inspect(InspectArgs),
    /// Show the libtorch build, CUDA/cuDNN devices, CPU threads and HDF5 version.
    #[command(after_help = examples::INFO)]
    Info,
    /// Time one stage in-process and print one JSON line (used by `make bench`).
    #[command(after_help = examples::BENCH)]
    Bench(BenchArgs),
    /// Print a shell completion script: e.g. `nerveseg completions bash >
    /// ~/.local/share/bash-completion/completions/nerveseg`, or for zsh into a folder of
    /// your $fpath as _nerveseg, or for fish into ~/.config/fish/completions/nerveseg.fish.
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What a subcommand has to say when it finishes.
pub enum Output {
    /// A summary of what was done (files written): left out with `--quiet`.
    Summary(Box<dyn Display>),
    /// What the user asked to see (scores, a description): printed even with `--quiet`.
    Answer(Box<dyn Display>),
    /// A summary for standard error, where standard output carries data (`stream`):
    /// left out with `--quiet`.
    Note(Box<dyn Display>),
}

impl Output {
    fn summary(d: impl Display + 'static) -> Output {
        Output::Summary(Box::new(d))
    }
    fn answer(d: impl Display + 'static) -> Output {
        Output::Answer(Box::new(d))
    }
    fn note(d: impl Display + 'static) -> Output {
        Output::Note(Box::new(d))
    }

    /// What to print on stdout, if anything.
    pub fn text(&self, quiet: bool) -> Option<String> {
        match self {
            Output::Summary(_) if quiet => None,
            Output::Note(_) => None,
            Output::Summary(d) | Output::Answer(d) => Some(d.to_string()),
        }
    }

    /// What to print on stderr, if anything.
    pub fn note_text(&self, quiet: bool) -> Option<String> {
        match self {
            Output::Note(d) if !quiet => Some(d.to_string()),
            _ => None,
        }
    }
}

/// The flags that choose a fresh network: `train`, `cv` and `bench` take them; every
/// other command builds the network its checkpoint records.
const NETWORK_FLAGS: [&str; 7] = [
    "--base-width",
    "--input-size",
    "--norm",
    "--activation",
    "--dropout",
    "--loss",
    "--presence-head",
];

/// Parses the command line as clap does, except that a network flag given to a command
/// that reads a checkpoint gets one line saying that the checkpoint decides the network
/// (clap would print its usage line, cut short), and the exit status 2 of a usage error.
pub fn parse() -> Cli {
    let e = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    if e.kind() == clap::error::ErrorKind::UnknownArgument {
        if let Some(clap::error::ContextValue::String(arg)) =
            e.get(clap::error::ContextKind::InvalidArg)
        {
            let flag = arg.split('=').next().unwrap_or(arg);
            if NETWORK_FLAGS.contains(&flag) {
                eprintln!(
                    "nerveseg: {flag} chooses a fresh network, in train and cv only: the other \
                     commands use the network their checkpoint records (`nerveseg inspect \
                     FILE` shows it)"
                );
                std::process::exit(2);
            }
        }
    }
    e.exit()
}

/// Runs the subcommand.
pub fn run(cli: Cli) -> Result<Output> {
    let quiet = cli.quiet;
    let limit = match &cli.command {
        Command::Prepare(a) => Some(&a.image_limit),
        Command::Predict(a) => Some(&a.image_limit),
        _ => None,
    };
    if let Some(l) = limit {
        nerveseg::data::decode::set_max_side(l.max_side)?;
    }
    Ok(match cli.command {
        Command::Synth(a) => Output::summary(nerveseg::synth::synth(&a.into_config(quiet))?),
        Command::Prepare(a) => Output::summary(match a.into_config(quiet) {
            data::PrepareFrom::Kaggle(c) => nerveseg::data::prepare(&c)?,
            data::PrepareFrom::Folders(c) => nerveseg::data::folder::prepare(&c)?,
        }),
        Command::Clean(a) => Output::answer(nerveseg::clean::clean(&a.into_config(quiet))?),
        Command::Cv(a) => cv::run(a, quiet)?,
        Command::Train(a) => Output::summary(nerveseg::train::train(&a.into_config(quiet)?)?),
        Command::Predict(a) => match a.into_config(quiet)? {
            predict::PredictFrom::Arrays(c) => Output::summary(nerveseg::predict::predict(&c)?),
            predict::PredictFrom::Folder(c) => {
                Output::summary(nerveseg::predict::folder::predict_folder(&c)?)
            }
        },
        Command::Submit(a) => Output::summary(nerveseg::submission::submit(&a.into_config())?),
        Command::Evaluate(a) => Output::answer(a.run(quiet)?),
        Command::Plot(a) => Output::summary(a.run()?),
        Command::Demo(a) => Output::summary(nerveseg::demo::demo(&a.into_config(quiet))?),
        Command::Convert(a) => Output::summary(a.run()?),
        Command::Stream(a) => Output::note(nerveseg::stream::stream(&a.into_config())?),
        Command::Export(a) => Output::summary(a.into_config(quiet)?.run()?),
        Command::Inspect(a) => Output::answer(a.run()?),
        Command::Info => Output::answer(nerveseg::info::Info::collect()),
        Command::Bench(a) => Output::answer(a.run()?),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "nerveseg", &mut script);
            Output::answer(String::from_utf8_lossy(&script).trim_end().to_owned())
        }
    })
}

/// Where to run: `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
pub(crate) fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(Device::Cuda(n)),
            _ => Err(format!(
                "unknown device {s:?}: use auto, cpu, cuda or cuda:N"
            )),
        },
    }
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
