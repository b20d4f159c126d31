//! `cv --devices A,B`: the folds trained in parallel, one child process per device at a
//! time. A child is the single-fold job a cluster runs: this program with the user's
//! `cv` arguments and `--fold I --device D` (the user's `--device` and `--devices` left
//! out), so each fold gets a libtorch of its own: its own global seed and its own CUDA
//! context, which threads in one process would share. A fold trained this way equals the
//! same fold trained by a sequential `cv` (tested on the CPU). Starting a program with
//! arguments is a command-line matter, so this lives in the binary, not the library.
//!
//! A child writes its output to `OUT/fold-I/train.log` and runs in a process group of
//! its own: a Ctrl-C reaches this process only, which passes one SIGTERM to each child,
//! so every fold stops at its own safe point and resumes on the next `cv`.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use nerveseg::cv::{fold_dir, CvConfig};
use nerveseg::interrupt;
use nerveseg::libtorch::device_name;
use tch::Device;

/// The flags of the parent that a child must not get again: it gets its own device.
const PARENT_ONLY: [&str; 2] = ["--device", "--devices"];

/// A child's arguments: the parent's `args` (after the program name) without
/// [`PARENT_ONLY`] flags and their values, then `--fold I --device D`. clap refuses a
/// flag given twice, and the parent's `--device` is where it scores, not where a fold
/// trains.
fn child_args(args: &[OsString], fold: usize, device: Device) -> Vec<OsString> {
    let mut kept = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let text = a.to_str().unwrap_or("");
        if PARENT_ONLY.contains(&text) {
            it.next();
        } else if !PARENT_ONLY
            .iter()
            .any(|f| text.starts_with(&format!("{f}=")))
        {
            kept.push(a.clone());
        }
    }
    kept.extend([
        "--fold".into(),
        (fold + 1).to_string().into(),
        "--device".into(),
        device_name(device).into(),
    ]);
    kept
}

/// Trains every fold of `cfg` that has not finished, handing each to the next free
/// device; returns once all finished, or after the running ones stopped when one failed
/// or a stop was asked for.
pub fn run(cfg: &CvConfig, devices: &[Device]) -> Result<()> {
    // Every fold is checked here, before any child starts, as `cv` does.
    nerveseg::cv::check_same_cv(cfg)?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    run_folds(cfg, devices, &args, nerveseg::cv::to_train(cfg))
}

/// Trains the folds of `todo` (from 0) in children started with the parent's `args`.
fn run_folds(
    cfg: &CvConfig,
    devices: &[Device],
    args: &[OsString],
    todo: Vec<usize>,
) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| anyhow!("finding this program: {e}"))?;
    let queue = Mutex::new(todo.into_iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for &device in devices {
            let (exe, queue, failures) = (&exe, &queue, &failures);
            s.spawn(move || loop {
                if interrupt::requested() || !failures.lock().unwrap().is_empty() {
                    break;
                }
                let Some(fold) = queue.lock().unwrap().next() else {
                    break;
                };
                if let Err(e) = run_child(cfg, &child_args(args, fold, device), exe, fold, device) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let kept = || {
        "the finished folds are kept and an interrupted one resumes: \
         run the same cv command to continue"
            .to_owned()
    };
    interrupt::keeping(interrupt::check(), |_| kept())?;
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs one child for `fold` on `device` with `args` and waits for it.
fn run_child(
    cfg: &CvConfig,
    args: &[OsString],
    exe: &Path,
    fold: usize,
    device: Device,
) -> Result<()> {
    let dir = fold_dir(&cfg.train.out_dir, fold);
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
    let log = dir.join("train.log");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| anyhow!("opening {}: {e}", log.display()))?;
    let err_file = file
        .try_clone()
        .map_err(|e| anyhow!("opening {}: {e}", log.display()))?;
    let name = device_name(device);
    let say = |what: &str| {
        if !cfg.train.quiet {
            println!("fold {} of {} on {name}: {what}", fold + 1, cfg.folds);
        }
    };
    say(&format!("started (output in {})", log.display()));
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file)
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow!("starting {} for fold {}: {e}", exe.display(), fold + 1))?;
    let status = wait(&mut child)?;
    if status.success() {
        say("finished");
        return Ok(());
    }
    if status.code() == Some(interrupt::EXIT_CODE) && interrupt::requested() {
        say("stopped");
        return Ok(());
    }
    bail!(
        "fold {} on {name} failed ({status}): {}",
        fold + 1,
        last_line(&log)
    )
}

/// Waits for `child`, passing it one SIGTERM once a stop is asked for here.
fn wait(child: &mut std::process::Child) -> Result<ExitStatus> {
    let mut told = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupt::requested() && !told {
            // SAFETY: kill(2) on the pid of a child that has not been waited for.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            told = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last non-empty line of a child's log, for its error (the log names what failed).
fn last_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(l) => format!("{l} (all of its output is in {})", log.display()),
        None => format!("it wrote nothing to {}", log.display()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// A child's arguments name its own fold and device once: the parent's --device and
    /// --devices, in either spelling, are left out, and clap takes what is left as the
    /// single-fold job.
    #[test]
    fn a_child_gets_its_fold_and_device_once() {
        let parent = "-q cv --folds 3 --device cpu --out-dir o --devices cpu,cuda:0 \
                      --device=cpu --devices=cpu --seed 4";
        let parent: Vec<OsString> = parent.split_whitespace().map(OsString::from).collect();
        let child = child_args(&parent, 1, Device::Cuda(0));
        let words: Vec<&str> = child.iter().map(|a| a.to_str().unwrap()).collect();
        let expected = "-q cv --folds 3 --out-dir o --seed 4 --fold 2 --device cuda:0";
        assert_eq!(words.join(" "), expected);
        let cli = Cli::try_parse_from(std::iter::once("nerveseg".into()).chain(child)).unwrap();
        let Command::Cv(a) = cli.command else {
            panic!("not cv")
        };
        assert_eq!((a.train.fold, a.train.device), (Some(2), Device::Cuda(0)));
        assert!(a.devices.is_empty());
    }
}
