//! `cv`'s flags and its three ways to run: every fold here one after another, one fold
//! (`--fold I`, a job of a cluster's array), or every fold as child processes, one per
//! device at a time (`--devices`, [`parallel`]). Each ends by collecting the scores,
//! except the single fold, whose siblings may still be training.

mod parallel;

use anyhow::{bail, Result};
use clap::Args;
use nerveseg::cv::{self, CvConfig, FoldRun};
use tch::Device;

use super::parse_device;
use super::train::TrainArgs;
use super::Output;

/// `cv`'s flags: those of `train` (with --folds K), and --devices.
#[derive(Debug, Args)]
#[command(mut_arg("folds", |a| a.help(
    "Cross-validate with this many folds (2 or more), split by group: no group (patient) \
     is on both sides of a fold"
)))]
#[command(mut_arg("fold", |a| a.help(
    "Train only fold I (1 to K), as one job of a cluster's array (README, \
     \"Folds on a cluster\"); `cv` without --fold then collects the scores"
)))]
pub struct CvArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Train the folds in parallel, one child process per listed device at a time
    /// (e.g. cuda:0,cuda:1; a device may be listed twice). Each child is the job `cv
    /// --fold I --device D` with this command's other flags, its output in
    /// OUT/fold-I/train.log; --device is where the scores are then computed. Without it
    /// the folds run one after another on --device.
    #[arg(long, value_name = "DEVICES", value_delimiter = ',', value_parser = parse_device)]
    pub devices: Vec<Device>,
}

/// What `cv` was asked to do.
pub enum CvRun {
    /// Every unfinished fold here, one after another, then the scores.
    All(CvConfig),
    /// One fold (from 0), on --device.
    Fold(CvConfig, usize),
    /// Every unfinished fold in child processes on these devices, then the scores.
    Parallel(CvConfig, Vec<Device>),
}

/// Refuses a CUDA device this machine does not have, before any fold starts.
fn check_devices(devices: &[Device]) -> Result<()> {
    let have = tch::Cuda::device_count() as usize;
    for d in devices {
        if let Device::Cuda(n) = *d {
            if n >= have {
                bail!(
                    "--devices names cuda:{n}, but this machine has {have} CUDA device{} \
                     (see `nerveseg info`)",
                    if have == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(())
}

impl CvArgs {
    pub fn into_run(mut self, quiet: bool) -> Result<CvRun> {
        let Some(k) = self.train.folds.take() else {
            bail!("cv needs --folds K (2 or more)");
        };
        let fold = self.train.fold.take();
        if let Some(i) = fold.filter(|&i| i > k) {
            bail!("--fold {i} of --folds {k}: the fold must be 1 to {k}");
        }
        if fold.is_some() && !self.devices.is_empty() {
            bail!(
                "--fold trains one fold here and --devices trains every fold in child \
                 processes: leave out one of them"
            );
        }
        if self.train.resume {
            bail!("cv resumes interrupted folds by itself: leave out --resume");
        }
        let groups = self.train.groups.take();
        check_devices(&self.devices)?;
        let cfg = CvConfig {
            train: self.train.into_config(quiet)?,
            folds: k as usize,
            groups,
            rule: Default::default(),
        };
        Ok(match fold {
            Some(i) => CvRun::Fold(cfg, i as usize - 1),
            None if self.devices.is_empty() => CvRun::All(cfg),
            None => CvRun::Parallel(cfg, self.devices),
        })
    }
}

/// Runs `cv` as asked.
pub fn run(args: CvArgs, quiet: bool) -> Result<Output> {
    Ok(match args.into_run(quiet)? {
        CvRun::All(c) => {
            let mut report = cv::cv(&c)?;
            if quiet {
                // The scores are the answer; what happened to each fold is a summary.
                report.trained.clear();
            }
            Output::answer(report)
        }
        CvRun::Fold(c, fold) => Output::summary(OneFold(cv::train_fold(&c, fold, c.train.device)?)),
        CvRun::Parallel(c, devices) => {
            parallel::run(&c, &devices)?;
            Output::answer(cv::collect(&c)?)
        }
    })
}

/// A single fold's job, done: what it did, and how the scores are collected.
struct OneFold(FoldRun);

impl std::fmt::Display for OneFold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.0)?;
        write!(
            f,
            "once every fold has finished, `nerveseg cv --folds {}` with the same flags and \
             no --fold writes cv.csv and oof.npy",
            self.0.folds
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn run_of(args: &str) -> CvRun {
        let words = std::iter::once("nerveseg").chain(args.split_whitespace());
        let Command::Cv(a) = Cli::try_parse_from(words).unwrap().command else {
            panic!("not cv")
        };
        a.into_run(true).unwrap()
    }

    /// --fold I is one fold (from 0 in the library) on --device; without it every fold,
    /// here or on --devices. Each fold's own --folds/--fold is set by the library.
    #[test]
    fn cv_runs_one_fold_every_fold_or_children() {
        let CvRun::Fold(c, 1) = run_of("cv --folds 5 --fold 2 --device cpu") else {
            panic!("not fold 2")
        };
        assert_eq!(
            (c.folds, c.train.folds, c.train.device),
            (5, None, Device::Cpu)
        );
        assert!(matches!(run_of("cv --folds 5"), CvRun::All(c) if c.folds == 5));
        let CvRun::Parallel(_, d) = run_of("cv --folds 5 --devices cpu,cpu") else {
            panic!("not parallel")
        };
        assert_eq!(d, [Device::Cpu, Device::Cpu]);
    }
}
