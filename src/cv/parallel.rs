//! `cv --devices A,B`: the folds trained in parallel, one child process per device at a
//! time. A child is this same program with the parent's arguments and two hidden flags
//! naming its fold and device (`--cv-worker-fold I --cv-worker-device D`), so each fold
//! gets a libtorch of its own: its own global seed and its own CUDA context, which
//! threads in one process would share. A fold trained this way equals the same fold
//! trained by a sequential `cv` (tested on the CPU).
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
use tch::Device;

use super::{fold_dir, CvConfig};
use crate::interrupt;

/// The hidden flag that names a child's fold (1 to K).
pub const WORKER_FOLD: &str = "--cv-worker-fold";
/// The hidden flag that names a child's device.
pub const WORKER_DEVICE: &str = "--cv-worker-device";

/// Where the folds run and how to start a child.
#[derive(Clone, Debug)]
pub struct Parallel {
    /// One fold at a time on each; a device may be listed twice.
    pub devices: Vec<Device>,
    /// The arguments the parent was given (after the program name): each child gets
    /// them back, followed by its fold and device.
    pub args: Vec<OsString>,
}

/// A device as `--device` spells it.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".to_owned(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Trains the folds of `todo` (from 0), handing each to the next free device; returns
/// once all finished, or after the running ones stopped when one failed or a stop was
/// asked for.
pub(super) fn run(cfg: &CvConfig, p: &Parallel, todo: Vec<usize>) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| anyhow!("finding this program: {e}"))?;
    let queue = Mutex::new(todo.into_iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for &device in &p.devices {
            let (exe, queue, failures) = (&exe, &queue, &failures);
            s.spawn(move || loop {
                if interrupt::requested() || !failures.lock().unwrap().is_empty() {
                    break;
                }
                let Some(fold) = queue.lock().unwrap().next() else {
                    break;
                };
                if let Err(e) = run_child(cfg, p, exe, fold, device) {
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

/// Runs one child for `fold` on `device` and waits for it.
fn run_child(cfg: &CvConfig, p: &Parallel, exe: &Path, fold: usize, device: Device) -> Result<()> {
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
        .args(&p.args)
        .arg(WORKER_FOLD)
        .arg((fold + 1).to_string())
        .arg(WORKER_DEVICE)
        .arg(&name)
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
