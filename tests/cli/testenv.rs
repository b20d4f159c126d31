//! A temporary folder and a way to run the binary in it.

use std::path::PathBuf;
use std::process::{Command, Output};

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

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `nerveseg ARGS` in the temporary folder.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_nerveseg"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .expect("running nerveseg");
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
