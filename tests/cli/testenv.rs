//! A temporary folder and a way to run the binary in it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct TestEnv {
    dir: tempfile::TempDir,
}

/// What a run of the binary printed and how it ended.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> String {
        assert!(
            self.output.status.success(),
            "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// Asserts failure with a one-line error on stderr that contains every `needle`.
    pub fn fails_with(&self, needles: &[&str]) -> String {
        let err = self.stderr();
        assert!(
            !self.output.status.success(),
            "expected failure, got success\nstdout:\n{}",
            self.stdout()
        );
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
        }
        assert!(!err.contains("panicked"), "the binary panicked:\n{err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "error is not one line:\n{err}"
        );
        err
    }
}

/// The test process does not take HDF5's file lock either: a child spawned by another
/// thread inherits the locks of files this process has open (no O_CLOEXEC) and keeps
/// them after this process closed the file, so reopening it here would fail with
/// "unable to lock file" (errno 11). Set once, before the tests open any file.
pub fn no_hdf5_locks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE"));
}

impl TestEnv {
    pub fn new() -> TestEnv {
        no_hdf5_locks();
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `nerveseg ARGS`, to run in the temporary folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nerveseg"));
        // HDF5 opens files with a flock and without O_CLOEXEC, so a child that another
        // test thread spawns while this process holds a file open inherits the lock and
        // keeps it for its whole run; a nerveseg started meanwhile then fails with
        // "unable to lock file" (errno 11). The tests' children do not lock.
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env("HDF5_USE_FILE_LOCKING", "FALSE");
        c
    }

    /// `nerveseg ARGS` started with stdout and stderr piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running nerveseg")
    }

    /// Runs `nerveseg ARGS` in the temporary folder.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("running nerveseg");
        Run { output }
    }

    /// A small synthetic raw folder at `raw/`.
    pub fn synth_small(&self, subjects: u32, per_subject: u32, test: u32) {
        self.run(&[
            "synth",
            "--out",
            "raw",
            "--subjects",
            &subjects.to_string(),
            "--per-subject",
            &per_subject.to_string(),
            "--test",
            &test.to_string(),
            "--seed",
            "3",
        ])
        .ok();
    }

    /// `synth` into `out`: `subjects` x 40 training frames, one test frame, with a
    /// label-noise rate of `rate`.
    pub fn synth_noisy(&self, out: &str, subjects: u32, rate: &str) {
        let subjects = subjects.to_string();
        self.run(&[
            "synth",
            "-q",
            "--out",
            out,
            "--subjects",
            &subjects,
            "--per-subject",
            "40",
            "--test",
            "1",
            "--label-noise",
            rate,
        ])
        .ok();
    }

    /// Every file under the folder (recursively) with its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.dir.path(), &mut |p| {
            let rel = p.strip_prefix(self.dir.path()).unwrap().to_owned();
            out.insert(rel, std::fs::read(p).unwrap());
        });
        out
    }

    /// Partial files (`NAME.partial-PID-N`) anywhere under the folder.
    pub fn partial_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(self.dir.path(), &mut |p| {
            if p.to_string_lossy().contains(".partial-") {
                out.push(p.to_owned());
            }
        });
        out
    }

    /// Runs `nerveseg ARGS`, expecting it to refuse: a one-line error holding every
    /// needle, no panic, no partial file left, and every file in the folder exactly as
    /// it was. Returns stderr.
    pub fn refuses(&self, args: &[&str], needles: &[&str]) -> String {
        self.refusal(args, needles, || self.run(args))
    }

    /// As [`TestEnv::refuses`], and returns the run's peak memory in MiB too.
    pub fn refuses_within(&self, args: &[&str], needles: &[&str], limit_mib: f64) -> (String, f64) {
        let mut peak = 0.0;
        let err = self.refusal(args, needles, || {
            let (run, p) = self.run_peak(args);
            peak = p;
            run
        });
        assert!(peak < limit_mib, "{args:?}: peak memory {peak:.0} MiB");
        (err, peak)
    }

    fn refusal(&self, args: &[&str], needles: &[&str], run: impl FnOnce() -> Run) -> String {
        let before = self.snapshot();
        let err = run().fails_with(needles);
        assert_eq!(self.partial_files(), Vec::<PathBuf>::new(), "{args:?}");
        let after = self.snapshot();
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "{args:?} changed the folder"
        );
        for (p, bytes) in &before {
            assert!(after[p] == *bytes, "{args:?} changed {}", p.display());
        }
        err
    }

    /// Runs `nerveseg ARGS` and returns the run with the peak resident memory of the
    /// process in MiB (from wait4's rusage: this child alone, not the test's others).
    // The child is reaped by wait4 below, which Child::wait cannot give the rusage of.
    #[allow(clippy::zombie_processes)]
    pub fn run_peak(&self, args: &[&str]) -> (Run, f64) {
        let mut child = self.spawn(args);
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                r.read_to_end(&mut v).unwrap();
                v
            })
        };
        let out = drain(Box::new(child.stdout.take().unwrap()));
        let err = drain(Box::new(child.stderr.take().unwrap()));
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
        assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
        use std::os::unix::process::ExitStatusExt;
        let output = Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        };
        // ru_maxrss is in KiB on Linux.
        (Run { output }, usage.ru_maxrss as f64 / 1024.0)
    }

    /// Runs `nerveseg ARGS`, killing it and failing the test if it has not ended after
    /// `seconds` (for inputs that once made it hang).
    pub fn run_deadline(&self, args: &[&str], seconds: u64) -> Run {
        let mut child = self.spawn(args);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{args:?} still running after {seconds} s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Run {
            output: child.wait_with_output().unwrap(),
        }
    }

    /// `prepare --train-only` from `raw` into `out`, quietly.
    pub fn prepare_train(&self, raw: &str, out: &str) {
        self.run(&["prepare", "-q", "--raw", raw, "--out", out, "--train-only"])
            .ok();
    }

    /// The most memory a refused input may cost: the binary's own start-up (libtorch
    /// loaded) plus 200 MiB.
    pub fn memory_limit_mib(&self) -> f64 {
        let (run, peak) = self.run_peak(&["--version"]);
        run.ok();
        peak + 200.0
    }

    /// Names of the files in a folder, sorted.
    pub fn names(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Calls `f` on every file under `dir`.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}
