//! A full disk is an error, not a crash: on a small filesystem that fills up (a 3 MB
//! tmpfs the test mounts), train, export (TorchScript and ONNX), prepare and predict each stop with one line
//! saying "No space left on device", leave no partial file, and keep what was there.
//! Mounting needs root (as CI runs); elsewhere the test says so and checks nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::testenv::TestEnv;
use crate::train::TINY;

/// A mounted tmpfs, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: PathBuf, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(&at).unwrap();
        let opts = format!("size={size}");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(&at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs(at)),
            other => {
                eprintln!(
                    "full_disk: cannot mount a tmpfs here ({other:?}); this test needs root and \
                     checks nothing without it"
                );
                None
            }
        }
    }

    /// Fills the filesystem up to `free` bytes.
    fn fill_leaving(&self, free: u64) {
        let _ = std::fs::remove_file(self.0.join("fill"));
        let avail = available(&self.0);
        let fill = avail.saturating_sub(free);
        std::fs::write(self.0.join("fill"), vec![0u8; fill as usize]).unwrap();
    }

    fn unfill(&self) {
        std::fs::remove_file(self.0.join("fill")).unwrap();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn available(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

/// No `NAME.partial-PID-N` left anywhere under `dir`.
fn no_partials(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        assert!(
            !p.to_string_lossy().contains(".partial-"),
            "{}",
            p.display()
        );
        if p.is_dir() {
            no_partials(&p);
        }
    }
}

fn fails_full(run: crate::testenv::Run) {
    let err = run.fails_with(&["No space left on device"]);
    assert_eq!(run.output.status.code(), Some(1), "{err}");
}

#[test]
fn a_full_disk_is_a_one_line_error() {
    let env = TestEnv::new();
    let Some(fs) = SmallFs::mount(env.path("small"), "3m") else {
        return;
    };
    env.synth_small(2, 6, 2);
    env.run(&["prepare", "-q", "--raw", "raw", "--out", "."])
        .ok();
    // train: the first checkpoint fits; the next epoch's does not, and the run's
    // files stay as the first epoch left them.
    let train = ["train", "-q", "--out-dir", "small/w", "--epochs"];
    env.run(&[&train[..], &["1"], &TINY].concat()).ok();
    let last = std::fs::read(env.path("small/w/last.h5")).unwrap();
    fs.fill_leaving(100_000);
    fails_full(env.run(&[&train[..], &["2", "--resume"], &TINY].concat()));
    assert!(std::fs::read(env.path("small/w/last.h5")).unwrap() == last);
    no_partials(&fs.0);
    // export --torchscript.
    fails_full(env.run(&[
        "export",
        "--torchscript",
        "small/m.pt",
        "--weights",
        "small/w/weights.h5",
    ]));
    assert!(!env.path("small/m.pt").exists());
    no_partials(&fs.0);
    // export --onnx: neither the graph nor its model.json.
    fails_full(env.run(&[
        "export",
        "--onnx",
        "small/m.onnx",
        "--weights",
        "small/w/weights.h5",
        "--frame-size",
        "420x580",
    ]));
    assert!(!env.path("small/m.onnx").exists() && !env.path("small/m.onnx.json").exists());
    no_partials(&fs.0);
    // prepare and predict.
    fails_full(env.run(&["prepare", "-q", "--raw", "raw", "--out", "small/p"]));
    // predict's maps of two test frames take 74 kB.
    fs.fill_leaving(20_000);
    fails_full(env.run(&[
        "predict",
        "-q",
        "--weights",
        "small/w/weights.h5",
        "--device",
        "cpu",
        "--out",
        "small/pred.npy",
        "--png-dir",
        "small/preds",
    ]));
    no_partials(&fs.0);
    // With room again, the same commands work.
    fs.unfill();
    env.run(&[&train[..], &["2", "--resume"], &TINY].concat())
        .ok();
    env.run(&[
        "export",
        "-q",
        "--torchscript",
        "small/m.pt",
        "--weights",
        "small/w/weights.h5",
    ])
    .ok();
}
