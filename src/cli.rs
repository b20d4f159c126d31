//! The command line: one `Args` struct per subcommand, turned into the library's plain
//! config structs. The library never sees clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use nerveseg::data::PrepareConfig;
use nerveseg::synth::SynthConfig;

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
    fn info_parses() {
        assert!(matches!(parse(&["info"]).command, Command::Info));
    }
}
