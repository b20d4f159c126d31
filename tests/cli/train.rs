//! Training: the loss and Keras-form Adam against tf-keras fixtures
//! (tests/fixtures/keras/make_train_fixtures.py), and `nerveseg train` end to end.

use nerveseg::adam::{AdamConfig, KerasAdam};
use nerveseg::keras;
use nerveseg::loss::{dice_coef, dice_loss};
use nerveseg::model::{unet, Speed, UNetConfig};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::keras_fixtures::{keras_fixture, read_f32};
use crate::testenv::TestEnv;

fn tensor(name: &str) -> Tensor {
    let (shape, data) = read_f32(&keras_fixture(name));
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&data).view(dims.as_slice())
}

#[test]
fn dice_coef_equals_keras() {
    let t = tensor("dice_true.npy");
    let p = tensor("dice_pred.npy");
    let (_, want) = read_f32(&keras_fixture("dice_expected.npy"));
    for (c, w) in want.iter().enumerate() {
        let c = c as i64;
        let d = dice_coef(&t.get(c), &p.get(c)).unwrap().double_value(&[]);
        assert!((d - *w as f64).abs() < 1e-6, "case {c}: {d} vs keras {w}");
        let l = dice_loss(&t.get(c), &p.get(c)).unwrap().double_value(&[]);
        assert!((l + *w as f64).abs() < 1e-6, "case {c}: loss {l}");
    }
}

/// Max |ours - keras| over all variables, in libtorch layout.
fn max_weight_diff(vs: &VarStore, keras_file: &str) -> f64 {
    let f = keras::read(&keras_fixture(keras_file)).unwrap();
    let loaded = keras::load(&f, Device::Cpu, false).unwrap();
    assert_eq!(loaded.cfg, UNetConfig::width(4));
    let other = loaded.vs;
    let theirs = other.variables();
    vs.variables()
        .iter()
        .map(|(n, t)| (t - &theirs[n]).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// Both memory layouts train as tf-keras does: channels-last (the default) changes the
/// order of sums only.
#[test]
fn adam_steps_match_tf_keras() {
    adam_steps_match_tf_keras_with(Speed::PLAIN);
    adam_steps_match_tf_keras_with(Speed::default());
}

fn adam_steps_match_tf_keras_with(speed: Speed) {
    let init = keras::read(&keras_fixture("train_init_w4.h5")).unwrap();
    let keras::Loaded {
        vs, mut net, cfg, ..
    } = keras::load(&init, Device::Cpu, false).unwrap();
    assert_eq!(cfg, UNetConfig::width(4));
    net.set_speed(&vs, speed).unwrap();
    // NHWC with one channel has NCHW's memory order.
    let x = tensor("train_x_w4.npy").view([6, 1, 96, 96]);
    let y = tensor("train_y_w4.npy").view([6, 1, 96, 96]);
    let (_, keras_losses) = {
        let r =
            nerveseg::data::npy::NpyReader::open(&keras_fixture("train_losses_w4.npy")).unwrap();
        ((), r.read_all::<f64>().unwrap())
    };
    let mut opt = KerasAdam::new(&vs, AdamConfig::default()).unwrap();
    for (step, want) in keras_losses.iter().enumerate() {
        opt.zero_grad().unwrap();
        let loss = dice_loss(&y, &net.forward(&x).unwrap().mask).unwrap();
        loss.backward();
        let got = loss.double_value(&[]);
        assert!(
            (got - want).abs() < 1e-6,
            "{speed:?} step {}: loss {got} vs keras {want}",
            step + 1
        );
        opt.step().unwrap();
        if step == 0 {
            let d = max_weight_diff(&vs, "train_step1_w4.h5");
            assert!(d <= 1e-6, "{speed:?} after 1 step: max |diff| {d:e}");
        }
    }
    let d = max_weight_diff(&vs, "train_step5_w4.h5");
    assert!(d <= 1e-6, "{speed:?} after 5 steps: max |diff| {d:e}");
}

/// A tiny prepared set: 2 subjects x 6 frames.
pub fn prepared() -> TestEnv {
    let env = TestEnv::new();
    env.synth_small(2, 6, 1);
    env.prepare_train("raw", ".");
    env
}

fn history(env: &TestEnv, dir: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(env.path(&format!("{dir}/history.csv"))).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

pub const TINY: [&str; 8] = [
    "--device",
    "cpu",
    "--base-width",
    "2",
    "--batch-size",
    "4",
    "--seed",
    "3",
];

#[test]
fn train_writes_checkpoint_state_and_history() {
    let env = prepared();
    let out = env
        .run(&[&["train", "--epochs", "2"][..], &TINY].concat())
        .ok();
    assert!(out.contains("epoch 1/2: loss -"), "{out}");
    assert!(out.contains("val_dice_coef"), "{out}");
    assert!(out.contains("best epoch"), "{out}");
    let h = history(&env, "weights");
    assert_eq!(
        h[0],
        [
            "epoch",
            "dice_coef",
            "loss",
            "val_dice_coef",
            "val_loss",
            "seconds"
        ]
    );
    assert_eq!(h.len(), 3);
    assert_eq!((h[1][0].as_str(), h[2][0].as_str()), ("0", "1"));
    // Keras's loss is -dice_coef when all batches have the same size (12 samples: 9 train
    // in batches of 4, 4, 1 make them differ; only check they are numbers).
    for row in &h[1..] {
        for v in &row[1..5] {
            v.parse::<f64>().unwrap();
        }
    }
    let best = keras::read(&env.path("weights/weights.h5")).unwrap();
    assert!(best.meta.stats.unwrap().mean > 0.0 && best.meta.stats.unwrap().std > 0.0);
    assert_eq!(best.base_width().unwrap(), 2);
    let last = keras::read(&env.path("weights/last.h5")).unwrap();
    assert_eq!(last.meta.epoch, Some(2));
    let names: Vec<(String, Vec<i64>)> = {
        let vs = VarStore::new(Device::Cpu);
        let _n = unet(&vs.root(), &UNetConfig::width(2)).unwrap();
        let mut v: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        v.sort();
        v
    };
    let adam = keras::read_adam_state(&env.path("weights/last.h5"), &names)
        .unwrap()
        .unwrap();
    assert_eq!(adam.iterations, 2 * 3); // 9 training samples in batches of 4: 3 steps an epoch
}

#[test]
fn resume_continues_exactly() {
    let env = prepared();
    env.run(
        &[
            &["train", "-q", "--epochs", "3", "--out-dir", "straight"][..],
            &TINY,
        ]
        .concat(),
    )
    .ok();
    env.run(
        &[
            &["train", "-q", "--epochs", "1", "--out-dir", "split"][..],
            &TINY,
        ]
        .concat(),
    )
    .ok();
    env.run(
        &[
            &[
                "train",
                "-q",
                "--epochs",
                "3",
                "--out-dir",
                "split",
                "--resume",
            ][..],
            &TINY,
        ]
        .concat(),
    )
    .ok();
    let (a, b) = (history(&env, "straight"), history(&env, "split"));
    assert_eq!(a.len(), 4);
    for (ra, rb) in a.iter().zip(&b) {
        assert_eq!(ra[..5], rb[..5], "resumed history differs");
    }
}

/// The columns of history.csv as numbers: dice_coef, loss, val_dice_coef, val_loss.
fn figures(env: &TestEnv, dir: &str) -> Vec<[f64; 4]> {
    history(env, dir)[1..]
        .iter()
        .map(|r| std::array::from_fn(|i| r[i + 1].parse::<f64>().unwrap()))
        .collect()
}

#[test]
fn channels_last_trains_as_nchw_does() {
    let env = prepared();
    for (dir, flag) in [("nhwc", None), ("nchw", Some("--no-channels-last"))] {
        let mut a = vec!["train", "-q", "--epochs", "2", "--out-dir", dir];
        a.extend(flag);
        env.run(&[&a[..], &TINY].concat()).ok();
    }
    let (a, b) = (figures(&env, "nhwc"), figures(&env, "nchw"));
    assert_eq!(a.len(), 2);
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() < 1e-5, "{ra:?} vs {rb:?}");
        }
    }
}

#[test]
fn amp_trains_in_bf16_and_saves_float32_weights() {
    let env = prepared();
    env.run(
        &[
            &["train", "-q", "--epochs", "2", "--out-dir", "fp32"][..],
            &TINY,
        ]
        .concat(),
    )
    .ok();
    env.run(
        &[
            &["train", "-q", "--epochs", "2", "--out-dir", "amp", "--amp"][..],
            &TINY,
        ]
        .concat(),
    )
    .ok();
    let (a, b) = (figures(&env, "fp32"), figures(&env, "amp"));
    assert_eq!(b.len(), 2);
    let mut largest = 0f64;
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!(y.is_finite());
            largest = largest.max((x - y).abs());
        }
    }
    // bfloat16 arithmetic: near the float32 run, but not the same numbers.
    assert!(largest > 1e-7 && largest < 0.05, "{a:?} vs {b:?}");
    // The master weights stay float32 and load into a fresh model.
    let f = keras::read(&env.path("amp/weights.h5")).unwrap();
    let loaded = keras::load(&f, Device::Cpu, false).unwrap();
    assert_eq!(loaded.cfg, UNetConfig::width(2));
    let vs = loaded.vs;
    for (name, v) in vs.variables() {
        assert_eq!(v.kind(), tch::Kind::Float, "{name}");
        assert!(v.isfinite().all().int64_value(&[]) == 1, "{name}");
    }
}

#[test]
fn no_validation_saves_every_epoch() {
    let env = prepared();
    env.run(
        &[
            &["train", "-q", "--epochs", "2", "--validation-split", "0"][..],
            &TINY,
        ]
        .concat(),
    )
    .ok();
    let best = keras::read(&env.path("weights/weights.h5")).unwrap();
    assert_eq!(best.meta.epoch, Some(2));
    let h = history(&env, "weights");
    assert_eq!(h[1][3], ""); // no val_dice_coef
}

#[test]
fn init_weights_start_from_a_keras_file() {
    let env = TestEnv::new();
    let x = keras_fixture("train_x_w4.npy");
    let y = keras_fixture("train_y_w4.npy");
    let init = keras_fixture("train_init_w4.h5");
    // Model-ready float32 arrays, one batch of 6, no validation, no shuffle: the first
    // epoch's loss is Keras's first train_on_batch loss.
    let out = env
        .run(&[
            "train",
            "--images",
            x.to_str().unwrap(),
            "--masks",
            y.to_str().unwrap(),
            "--init-weights",
            init.to_str().unwrap(),
            "--epochs",
            "1",
            "--batch-size",
            "6",
            "--validation-split",
            "0",
            "--no-shuffle",
            "--device",
            "cpu",
        ])
        .ok();
    assert!(out.contains("loss -0.050862"), "{out}");
    assert_eq!(
        keras::read(&env.path("weights/weights.h5"))
            .unwrap()
            .base_width()
            .unwrap(),
        4
    );
}

#[test]
fn bad_training_input_is_explained() {
    let env = prepared();
    env.run(&["train", "--images", "nope.npy", "--device", "cpu"])
        .fails_with(&["opening nope.npy"]);
    nerveseg::data::npy::write(
        &env.path("few.npy"),
        &[3, 420, 580],
        &vec![0u8; 3 * 420 * 580],
    )
    .unwrap();
    env.run(&["train", "--masks", "few.npy", "--device", "cpu"])
        .fails_with(&["imgs_train.npy holds 12 images but few.npy holds 3 masks"]);
    env.run(&["train", "--resume", "--out-dir", "fresh", "--device", "cpu"])
        .fails_with(&["nothing to resume", "fresh/last.h5"]);
    env.run(&["train", "--validation-split", "1.5", "--device", "cpu"])
        .fails_with(&["--validation-split"]);
    assert!(!env.path("weights/weights.h5").exists());
}

#[test]
fn a_nan_loss_stops_the_run() {
    let env = TestEnv::new();
    let mut x = vec![0.5f32; 4 * 96 * 96];
    x[100] = f32::NAN;
    nerveseg::data::npy::write(&env.path("x.npy"), &[4, 96, 96, 1], &x).unwrap();
    nerveseg::data::npy::write(
        &env.path("y.npy"),
        &[4, 96, 96, 1],
        &vec![0f32; 4 * 96 * 96],
    )
    .unwrap();
    env.run(&[
        "train",
        "--images",
        "x.npy",
        "--masks",
        "y.npy",
        "--validation-split",
        "0",
        "--base-width",
        "2",
        "--device",
        "cpu",
    ])
    .fails_with(&["the loss became NaN at epoch 1 batch 1", "weights.h5"]);
    assert!(!env.path("weights/weights.h5").exists());
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_after_the_batch_and_keeps_the_checkpoint() {
    let env = prepared();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nerveseg"))
        .args(
            [
                &["train", "--epochs", "1000", "--batch-size", "1"][..],
                &TINY[..4],
            ]
            .concat(),
        )
        .current_dir(env.path(""))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !env.path("weights/last.h5").exists() {
        assert!(std::time::Instant::now() < deadline, "no epoch finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The shell's own kill, so no procps binary is needed.
    std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted; the best checkpoint weights/weights.h5 (epoch "),
        "{err}"
    );
    assert!(err.contains("--resume"), "{err}");
    keras::read(&env.path("weights/weights.h5")).unwrap();
    // No partial file, and the history matches the last checkpoint's epoch.
    assert!(env.partial_files().is_empty(), "{:?}", env.partial_files());
    let last = keras::read(&env.path("weights/last.h5")).unwrap();
    let rows = history(&env, "weights").len() as i64 - 1;
    assert!(rows >= last.meta.epoch.unwrap(), "{rows} rows");
}
