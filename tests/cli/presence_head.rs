//! The presence head against tf-keras (tests/fixtures/keras/make_presence_fixtures.py):
//! a two-output tf-keras model (the U-Net plus GlobalAveragePooling2D of conv5 and
//! Dense(1, sigmoid) named `presence`) loads into nerveseg, predicts the same mask and
//! presence, and one Adam step of dice loss + 0.5 binary cross-entropy gives the same
//! weights. nerveseg's head checkpoints round-trip, and a head-less file still loads
//! everywhere as before.

use nerveseg::adam::{AdamConfig, KerasAdam};
use nerveseg::keras::{self, Format, Meta};
use nerveseg::loss::{dice_loss, presence_bce, presence_target};
use nerveseg::model::Speed;
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::keras_fixtures::{keras_fixture, read_f32};
use crate::testenv::TestEnv;

fn tensor(name: &str) -> Tensor {
    let (shape, data) = read_f32(&keras_fixture(name));
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&data).view(dims.as_slice())
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Max |ours - theirs| over every variable of two stores.
fn max_weight_diff(ours: &VarStore, theirs: &VarStore) -> f64 {
    let theirs = theirs.variables();
    ours.variables()
        .iter()
        .map(|(n, t)| max_diff(t, &theirs[n]))
        .fold(0.0, f64::max)
}

#[test]
fn the_presence_head_predicts_and_steps_as_tf_keras() {
    for speed in [Speed::PLAIN, Speed::default()] {
        let init = keras::read(&keras_fixture("presence_init_w4.h5")).unwrap();
        let loaded = keras::load(&init, Device::Cpu, false).unwrap();
        assert!(loaded.cfg.presence_head);
        assert_eq!(loaded.cfg.base_width, 4);
        let (vs, mut net) = (loaded.vs, loaded.net);
        net.set_speed(&vs, speed).unwrap();
        let x = tensor("train_x_w4.npy").view([6, 1, 96, 96]);
        let y = tensor("train_y_w4.npy").view([6, 1, 96, 96]);
        let out = net.forward(&x).unwrap();
        let (mask, logits) = (out.mask, out.presence);
        let logits = logits.unwrap();
        let want_mask = tensor("presence_mask_w4.npy").view([6, 1, 96, 96]);
        assert!(max_diff(&mask, &want_mask) <= 1e-6, "{speed:?} mask");
        let d = max_diff(&logits.sigmoid(), &tensor("presence_prob_w4.npy"));
        assert!(d <= 1e-6, "{speed:?} presence {d:e}");
        let target = presence_target(&y).unwrap();
        assert_eq!(max_diff(&target, &tensor("presence_target_w4.npy")), 0.0);
        let (_, losses) = read_f32_64("presence_loss_w4.npy");
        let mut opt = KerasAdam::new(&vs, AdamConfig::default()).unwrap();
        opt.zero_grad().unwrap();
        let out = net.forward(&x).unwrap();
        let (mask, logits) = (out.mask, out.presence);
        let dice = dice_loss(&y, &mask).unwrap();
        let bce = presence_bce(&logits.unwrap(), &target).unwrap();
        let total = &dice + &bce * 0.5;
        for (got, want, what) in [
            (total.double_value(&[]), losses[0], "total"),
            (dice.double_value(&[]), losses[1], "dice"),
            (bce.double_value(&[]), losses[2], "bce"),
        ] {
            assert!(
                (got - want).abs() < 1e-6,
                "{speed:?} {what}: {got} vs {want}"
            );
        }
        total.backward();
        opt.step().unwrap();
        let step1 = keras::read(&keras_fixture("presence_step1_w4.h5")).unwrap();
        let theirs = keras::load(&step1, Device::Cpu, false).unwrap();
        let d = max_weight_diff(&vs, &theirs.vs);
        assert!(d <= 1e-6, "{speed:?} after one step: max |diff| {d:e}");
        // The head moved: the step reached it.
        let head0 = keras::load(&init, Device::Cpu, false)
            .unwrap()
            .vs
            .variables()["presence.weight"]
            .shallow_clone();
        assert!(max_diff(&vs.variables()["presence.weight"], &head0) > 1e-7);
    }
}

fn read_f32_64(name: &str) -> (Vec<u64>, Vec<f64>) {
    let r = nerveseg::data::npy::NpyReader::open(&keras_fixture(name)).unwrap();
    let shape = r.shape.clone();
    (shape, r.read_all::<f64>().unwrap())
}

/// tf-keras's full-model file of the two-output model (with its Adam state) reads too,
/// and nerveseg's own head checkpoints round-trip in every layout; a file without a
/// head still loads into a model without one, and not into one with a head.
#[test]
fn head_checkpoints_round_trip_in_every_layout() {
    let full = keras::read(&keras_fixture("presence_model_w4.h5")).unwrap();
    let from_full = keras::load(&full, Device::Cpu, false).unwrap();
    let step1 = keras::load(
        &keras::read(&keras_fixture("presence_step1_w4.h5")).unwrap(),
        Device::Cpu,
        false,
    )
    .unwrap();
    assert_eq!(max_weight_diff(&from_full.vs, &step1.vs), 0.0);
    let env = TestEnv::new();
    for format in [
        Format::Keras2Model,
        Format::Keras2Weights,
        Format::Keras3Weights,
    ] {
        let path = env.path(&format!("{format:?}.h5"));
        keras::write(&path, &step1.vs, &step1.cfg, &Meta::default(), format).unwrap();
        let back = keras::load(&keras::read(&path).unwrap(), Device::Cpu, false).unwrap();
        assert!(back.cfg.presence_head, "{format:?}");
        assert_eq!(max_weight_diff(&back.vs, &step1.vs), 0.0, "{format:?}");
    }
    let config = keras::model_config(&step1.cfg);
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(v["config"]["output_layers"][1][0], "presence");
    // Without a head, as before (that a head-less file refuses a model with a head is
    // keras::load's unit test: loading into a given network is not public).
    let plain = keras::read(&keras_fixture("train_init_w4.h5")).unwrap();
    assert!(
        !keras::load(&plain, Device::Cpu, false)
            .unwrap()
            .cfg
            .presence_head
    );
}

/// `train --presence-head` trains and saves the head; predict writes the heads'
/// probabilities beside the maps, and `--presence head` gates on them in evaluate and
/// submit; a resume without the flag is refused.
#[test]
fn training_with_a_head_feeds_the_head_gate() {
    let env = TestEnv::new();
    env.synth_small(3, 6, 4);
    env.prepare_train("raw", ".");
    env.run(&["prepare", "-q", "--raw", "raw", "--out", ".", "--test-only"])
        .ok();
    let tiny = crate::train::TINY;
    env.run(
        &[
            &[
                "train",
                "-q",
                "--epochs",
                "2",
                "--presence-head",
                "--presence-weight",
                "0.5",
            ][..],
            &tiny,
        ]
        .concat(),
    )
    .ok();
    let h = std::fs::read_to_string(env.path("weights/history.csv")).unwrap();
    // With the head the loss is not -dice_coef any more.
    let row: Vec<f64> = h
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((row[1] + row[2]).abs() > 1e-6, "{h}");
    let out = env.run(&["inspect", "weights/weights.h5"]).ok();
    assert!(
        out.lines()
            .any(|l| l.contains("presence") && l.contains("Dense") && l.contains("(32, 1)")),
        "{out}"
    );
    env.run(&["predict", "-q", "--device", "cpu", "--no-png"])
        .ok();
    let r = nerveseg::data::npy::NpyReader::open(&env.path("imgs_presence_test.npy")).unwrap();
    assert_eq!(r.shape, [4, 1]);
    let p = r.read_all::<f32>().unwrap();
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    let json = |extra: &[&str]| -> serde_json::Value {
        let base = [
            "evaluate",
            "--json",
            "--device",
            "cpu",
            "--validation-split",
            "1",
        ];
        serde_json::from_str(env.run(&[&base[..], extra].concat()).ok().trim()).unwrap()
    };
    let shut = json(&[
        "--threshold",
        "0",
        "--presence",
        "head",
        "--presence-threshold",
        "1.01",
    ]);
    assert_eq!(
        shut["detection"]["tp"].as_u64().unwrap() + shut["detection"]["fp"].as_u64().unwrap(),
        0
    );
    let swept = json(&["--sweep"]);
    let grid = swept["sweep"]["grid"].as_array().unwrap();
    assert_eq!(grid.len(), 6 * 9 * (1 + 3 * 7));
    env.run(&[
        "submit",
        "-q",
        "--presence",
        "mean",
        "--presence-threshold",
        "1.01",
    ])
    .ok();
    let csv = std::fs::read_to_string(env.path("submission.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.ends_with(',')), "{csv}");
    // cv keeps the heads' out-of-fold probabilities for evaluate --oof's sweep.
    env.run(
        &[
            &[
                "cv",
                "-q",
                "--folds",
                "2",
                "--epochs",
                "1",
                "--presence-head",
                "--out-dir",
                "cv",
            ][..],
            &tiny,
        ]
        .concat(),
    )
    .ok();
    let r = nerveseg::data::npy::NpyReader::open(&env.path("cv/oof_presence.npy")).unwrap();
    assert_eq!(r.shape, [18, 1]);
    let out = env
        .run(&["evaluate", "--json", "--oof", "cv/oof.npy", "--sweep"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["sweep"]["grid"].as_array().unwrap().len(),
        6 * 9 * (1 + 3 * 7)
    );
    env.run(&[&["train", "--epochs", "3", "--resume"][..], &tiny].concat())
        .fails_with(&["(the run used --presence-head --presence-weight 0.5)"]);
}
