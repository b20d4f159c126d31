//! `nerveseg inspect`, and the reader's errors for files that are not Keras weights.

use crate::keras_fixtures::keras_fixture;
use crate::testenv::TestEnv;

#[test]
fn inspect_describes_each_layout() {
    let env = TestEnv::new();
    for (name, format) in [
        ("unet_w4_full.h5", "tf-keras full model"),
        ("unet_w4_weights.h5", "weights only"),
        ("unet_w4_keras2.h5", "tf-keras full model"),
        ("unet_w4.weights.h5", "Keras 3 .weights.h5"),
    ] {
        let out = env
            .run(&["inspect", keras_fixture(name).to_str().unwrap()])
            .ok();
        assert!(out.contains(format), "{name}:\n{out}");
        assert!(out.contains("layers (23 with weights"), "{name}:\n{out}");
        assert!(out.contains("parameters: 121653"), "{name}:\n{out}");
        assert!(out.contains("base width: 4"), "{name}:\n{out}");
        assert!(out.contains("mean: not stored"), "{name}:\n{out}");
    }
    let out = env
        .run(&[
            "inspect",
            keras_fixture("unet_w4_keras2.h5").to_str().unwrap(),
        ])
        .ok();
    assert!(
        out.contains("conv2d_transpose_4     Conv2DTranspose  kernel (2, 2, 4, 8)"),
        "{out}"
    );
    assert!(out.contains("keras_version: 2.0.8"), "{out}");
}

#[test]
fn inspect_shows_stored_statistics() {
    let env = TestEnv::new();
    let cfg = nerveseg::model::UNetConfig::width(1);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = nerveseg::model::unet(&vs.root(), &cfg).unwrap();
    let meta = nerveseg::keras::Meta {
        stats: Some(nerveseg::dataset::Stats {
            mean: 100.5,
            std: 50.25,
        }),
        epoch: Some(3),
        ..Default::default()
    };
    nerveseg::keras::write(
        &env.path("w.h5"),
        &vs,
        &cfg,
        &meta,
        nerveseg::keras::Format::Keras2Model,
    )
    .unwrap();
    let out = env.run(&["inspect", "w.h5"]).ok();
    for needle in [
        "mean: 100.5",
        "std: 50.25",
        "epoch: 3",
        "base width: 1",
        "keras_version: 2.",
    ] {
        assert!(out.contains(needle), "{needle}:\n{out}");
    }
}

#[test]
fn not_an_hdf5_file() {
    let env = TestEnv::new();
    std::fs::write(env.path("w.h5"), b"this is text, not HDF5").unwrap();
    env.run(&["inspect", "w.h5"])
        .fails_with(&["reading Keras weights w.h5: not an HDF5 file"]);
}

#[test]
fn a_truncated_file() {
    let env = TestEnv::new();
    let bytes = std::fs::read(keras_fixture("unet_w4_weights.h5")).unwrap();
    std::fs::write(env.path("cut.h5"), &bytes[..bytes.len() / 3]).unwrap();
    env.run(&["inspect", "cut.h5"])
        .fails_with(&["reading Keras weights cut.h5"]);
}

#[test]
fn hdf5_without_keras_weights() {
    let env = TestEnv::new();
    env.run(&["inspect", keras_fixture("not_keras.h5").to_str().unwrap()])
        .fails_with(&["not_keras.h5: an HDF5 file without Keras weights"]);
}

#[test]
fn a_missing_file() {
    TestEnv::new()
        .run(&["inspect", "nowhere.h5"])
        .fails_with(&["nowhere.h5: file not found"]);
}

/// A reader that closes the pipe early (`nerveseg inspect F | head -1`) gets no panic
/// and no error: the command still succeeds.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let env = crate::testenv::TestEnv::new();
    let file = crate::keras_fixtures::keras_fixture("unet_w4_full.h5");
    let mut child = env
        .command(&["inspect", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked") && err.is_empty(), "{err}");
}

/// A checkpoint's run record, and the history beside it, are part of the summary.
#[test]
fn inspect_shows_the_run_that_wrote_a_checkpoint() {
    let env = TestEnv::new();
    env.synth_small(2, 6, 0);
    env.prepare_train("raw", ".");
    let base = ["train", "-q", "--epochs", "2", "--out-dir", "w"];
    env.run(&[&base[..], &crate::train::TINY].concat()).ok();
    let out = env.run(&["inspect", "w/last.h5"]).ok();
    for needle in [
        "epoch: 2",
        "best so far: epoch ",
        "run: validation on the last 20% of the samples; seed 3; shuffled; batch size 4; learning rate 1e-5",
        "run options: none (the tutorial's run)",
        "training data: 12 samples, fingerprint ",
        "history.csv beside it: 2 epochs, best val_dice_coef ",
    ] {
        assert!(out.contains(needle), "{needle}:\n{out}");
    }
}
