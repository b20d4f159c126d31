//! One interrupt policy, tested with real signals against the binary: the first SIGINT or
//! SIGTERM stops at the next safe point, removes the partial files, leaves every earlier
//! output byte-identical, says what was kept and exits with 130; a second stops at once.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::testenv::TestEnv;

/// Waits until `ready` holds (the work is under way), failing after a minute.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal` (INT or TERM) with the shell's own kill, so no procps is needed.
pub fn signal(child: &Child, signal: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {}", child.id())])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for the child; returns its exit code and stderr.
pub fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// 3,000 training pairs that cost no disk: hard links to one synthetic pair. `prepare`
/// takes a few seconds over them (it writes 1.4 GB).
fn many_pairs(env: &TestEnv) {
    env.synth_small(1, 2, 1);
    std::fs::create_dir_all(env.path("big/train")).unwrap();
    for i in 1..=3000 {
        for (from, to) in [
            ("1_1.tif", format!("1_{i}.tif")),
            ("1_1_mask.tif", format!("1_{i}_mask.tif")),
        ] {
            std::fs::hard_link(
                env.path(&format!("raw/train/{from}")),
                env.path(&format!("big/train/{to}")),
            )
            .unwrap();
        }
    }
}

#[test]
fn prepare_stops_without_touching_the_earlier_arrays() {
    let env = TestEnv::new();
    many_pairs(&env);
    env.prepare_train("raw", "out");
    let before = env.snapshot();
    let child = env.spawn(&["prepare", "--raw", "big", "--out", "out", "--train-only"]);
    wait_for("a partial file", || !env.partial_files().is_empty());
    signal(&child, "INT");
    let (code, err) = finish(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains(
            "nerveseg: interrupted; nothing was written; the files in out are as they were"
        ),
        "{err}"
    );
    assert!(env.partial_files().is_empty(), "{:?}", env.partial_files());
    assert!(env.snapshot() == before, "an earlier output changed");
}

#[test]
fn synth_stops_on_sigterm_with_every_written_frame_whole() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("raw/train")).unwrap();
    std::fs::write(env.path("raw/notes.txt"), "mine").unwrap();
    let child = env.spawn(&[
        "synth",
        "--out",
        "raw",
        "--subjects",
        "20",
        "--per-subject",
        "120",
        "--test",
        "0",
    ]);
    wait_for("synthetic frames", || env.names("raw/train").len() >= 4);
    signal(&child, "TERM");
    let (code, err) = finish(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("frames were written to raw, each one whole"),
        "{err}"
    );
    assert!(env.partial_files().is_empty(), "{:?}", env.partial_files());
    let names = env.names("raw/train");
    assert!(names.len() < 4800, "synth finished before the signal");
    let mut px = vec![0u8; nerveseg::data::tiff::PIXELS];
    for n in names {
        nerveseg::data::tiff::read_frame(&env.path(&format!("raw/train/{n}")), &mut px)
            .unwrap_or_else(|e| panic!("{n}: {e:#}"));
    }
    assert_eq!(std::fs::read(env.path("raw/notes.txt")).unwrap(), b"mine");
}

/// 1,000 model-ready frames predicted one at a time (a few seconds).
fn slow_prediction(env: &TestEnv) -> Vec<String> {
    let n = 1000u64;
    nerveseg::data::npy::write(
        &env.path("x.npy"),
        &[n, 96, 96, 1],
        &vec![0.1f32; n as usize * 96 * 96],
    )
    .unwrap();
    let w = crate::keras_fixtures::keras_fixture("unet_w4_weights.h5");
    [
        "predict",
        "--weights",
        w.to_str().unwrap(),
        "--images",
        "x.npy",
        "--batch-size",
        "1",
        "--device",
        "cpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn predict_stops_between_batches_and_keeps_the_earlier_output() {
    let env = TestEnv::new();
    let args = slow_prediction(&env);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    std::fs::write(env.path("imgs_mask_test.npy"), b"an earlier output").unwrap();
    let before = env.snapshot();
    let child = env.spawn(&args);
    wait_for("the output's partial file", || {
        !env.partial_files().is_empty()
    });
    signal(&child, "INT");
    let (code, err) = finish(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("nerveseg: interrupted; imgs_mask_test.npy was not written"),
        "{err}"
    );
    assert!(env.partial_files().is_empty(), "{:?}", env.partial_files());
    assert!(env.snapshot() == before, "an earlier output changed");
}

#[test]
fn a_second_signal_stops_at_once_and_still_cleans_up() {
    let env = TestEnv::new();
    let args = slow_prediction(&env);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = env.spawn(&args);
    wait_for("the output's partial file", || {
        !env.partial_files().is_empty()
    });
    signal(&child, "INT");
    signal(&child, "INT");
    let (code, err) = finish(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(env.partial_files().is_empty(), "{:?}", env.partial_files());
    assert!(!env.path("imgs_mask_test.npy").exists());
}

#[test]
fn the_demo_says_which_step_it_stopped_in() {
    let env = TestEnv::new();
    let child = env.spawn(&["demo", "--out", "d", "--device", "cpu"]);
    wait_for("the demo's synthetic frames", || {
        env.names("d/raw/train").len() >= 2
    });
    signal(&child, "INT");
    let (code, err) = finish(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("interrupted; the demo stopped during [1/7] synth ("),
        "{err}"
    );
    assert!(env.partial_files().is_empty(), "{:?}", env.partial_files());
}

/// A partial file that a dead run left is removed by the next run that writes the same
/// file; one of a running process is left alone.
#[test]
fn stale_partial_files_of_dead_runs_are_removed() {
    let env = TestEnv::new();
    env.synth_small(1, 2, 1);
    std::fs::create_dir_all(env.path("out")).unwrap();
    // 2147483632 is above Linux's largest pid: no such process.
    let stale = env.path("out/imgs_train.npy.partial-2147483632-0");
    let live = env.path(&format!(
        "out/imgs_train.npy.partial-{}-0",
        std::process::id()
    ));
    std::fs::write(&stale, b"left by a crash").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    env.prepare_train("raw", "out");
    assert!(!stale.exists());
    assert!(live.exists());
}
