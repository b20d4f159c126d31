//! ReduceLROnPlateau and EarlyStopping against real tf-keras: the rate during every epoch
//! and the epoch that stops, on scripted val_loss sequences
//! (tests/fixtures/keras/callbacks/make_callbacks_fixture.py, tf-keras 2.21).

use std::path::PathBuf;

use nerveseg::train::callbacks::{Callbacks, PlateauConfig, Schedule, StopConfig};
use serde_json::Value;

fn fixture() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras/callbacks/callbacks_expected.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn callbacks(list: &Value) -> Callbacks {
    let mut cb = Callbacks::default();
    for c in list.as_array().unwrap() {
        let f = |k: &str| c[k].as_f64().unwrap();
        let u = |k: &str| c[k].as_u64().unwrap() as usize;
        assert_eq!(c["monitor"], "val_loss");
        match c["type"].as_str().unwrap() {
            "ReduceLROnPlateau" => {
                cb.plateau = Some(PlateauConfig {
                    factor: f("factor"),
                    patience: u("patience"),
                    min_delta: f("min_delta"),
                    cooldown: u("cooldown"),
                    min_lr: f("min_lr"),
                })
            }
            "EarlyStopping" => {
                assert!(c["baseline"].is_null() && c["restore_best_weights"] == false);
                cb.early_stopping = Some(StopConfig {
                    patience: u("patience"),
                    min_delta: f("min_delta"),
                })
            }
            other => panic!("{other}"),
        }
    }
    cb
}

#[test]
fn callbacks_follow_tf_keras_on_scripted_val_losses() {
    let fx = fixture();
    let scenarios = fx["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 6);
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        let cb = callbacks(&s["callbacks"]);
        let mut schedule = Schedule::new(&cb, s["lr0"].as_f64().unwrap());
        let mut lrs = Vec::new();
        let mut run = 0;
        for (epoch, v) in s["val_loss"].as_array().unwrap().iter().enumerate() {
            // The rate is a float32 variable in Keras; unscheduled, ours is its f64.
            lrs.push(schedule.lr as f32 as f64);
            run += 1;
            if schedule.end_epoch(epoch, Some(v.as_f64().unwrap_or(f64::NAN))) {
                break;
            }
        }
        let want: Vec<f64> = s["lr_during_epoch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(
            run,
            s["epochs_run"].as_u64().unwrap() as usize,
            "{name}: epochs run"
        );
        assert_eq!(lrs, want, "{name}: the rate of each epoch");
        let after = s["lr_after_last_epoch"].as_f64().unwrap();
        assert_eq!(
            schedule.lr as f32 as f64, after,
            "{name}: the rate after the run"
        );
    }
}

use crate::testenv::TestEnv;
use crate::train::{prepared, TINY};

fn history(env: &TestEnv, dir: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(env.path(&format!("{dir}/history.csv"))).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// A plateau of one epoch halves the rate: history.csv gets Keras's lr column, the rate
/// follows the callback's rules on the run's own val_loss, and a resumed run replays
/// the callback to the same rates.
#[test]
fn training_schedules_the_rate_and_resumes_the_schedule() {
    let env = prepared();
    let plateau = [
        "--reduce-lr-on-plateau",
        "--lr-factor",
        "0.5",
        "--lr-patience",
        "1",
        "--lr-min-delta",
        "10",
        "--lr",
        "0.001",
    ];
    let run = |dir: &str, epochs: &str, extra: &[&str]| {
        let base = ["train", "-q", "--out-dir", dir, "--epochs", epochs];
        env.run(&[&base[..], &TINY, &plateau, extra].concat()).ok()
    };
    run("straight", "4", &[]);
    let h = history(&env, "straight");
    assert_eq!(
        h[0],
        [
            "epoch",
            "dice_coef",
            "loss",
            "lr",
            "val_dice_coef",
            "val_loss",
            "seconds"
        ]
    );
    // min_delta 10: no epoch after the first improves, so every later epoch halves it.
    let lrs: Vec<f64> = h[1..].iter().map(|r| r[3].parse().unwrap()).collect();
    let f = |v: f64| v as f32 as f64;
    assert_eq!(lrs, [f(1e-3), f(1e-3), f(f(1e-3) * 0.5), f(f(1e-3) * 0.25)]);
    run("split", "2", &[]);
    run("split", "4", &["--resume"]);
    let (a, b) = (history(&env, "straight"), history(&env, "split"));
    for (ra, rb) in a.iter().zip(&b) {
        assert_eq!(ra[..6], rb[..6], "the resumed history differs");
    }
    // A resume with other callbacks is another run.
    let base = ["train", "--out-dir", "split", "--epochs", "5", "--resume"];
    env.refuses(
        &[&base[..], &TINY, &["--early-stopping", "1"]].concat(),
        &[
            "--resume continues the same run only",
            "--early-stopping 1 --stop-min-delta 0 (the run used --reduce-lr-on-plateau",
        ],
    );
}

#[test]
fn early_stopping_ends_the_run_when_val_loss_stalls() {
    let env = prepared();
    let args = [
        "train",
        "--epochs",
        "6",
        "--early-stopping",
        "0",
        "--stop-min-delta",
        "10",
    ];
    let out = env.run(&[&args[..], &TINY].concat()).ok();
    // Epoch 2 cannot beat epoch 1 by 10: the run stops after it.
    assert!(out.contains("early stopping"), "{out}");
    assert_eq!(history(&env, "weights").len(), 1 + 2);
    assert!(!history(&env, "weights")[0].contains(&"lr".to_owned()));
    // The callbacks watch val_loss: without a validation split they are refused.
    let no_split = ["--validation-split", "0", "--overwrite"];
    env.run(&[&args[..], &TINY, &no_split].concat())
        .fails_with(&["need a --validation-split above 0"]);
}

/// `--recipe kaggle` is exactly the flags it stands for (the same run, the same
/// history), and a flag given beside it sets its own value.
#[test]
fn the_kaggle_recipe_is_its_flags() {
    let env = prepared();
    let run = |dir: &str, extra: &[&str]| {
        let base = [
            "train",
            "-q",
            "--out-dir",
            dir,
            "--epochs",
            "3",
            "--lr",
            "0.001",
        ];
        env.run(&[&base[..], &TINY, extra].concat()).ok();
        let h = history(&env, dir);
        h.into_iter().map(|r| r[..6].to_vec()).collect::<Vec<_>>()
    };
    let spelt = run(
        "spelt",
        &[
            "--augment",
            "--reduce-lr-on-plateau",
            "--lr-factor",
            "0.5",
            "--lr-patience",
            "5",
        ],
    );
    assert_eq!(spelt[0][3], "lr");
    assert_eq!(run("recipe", &["--recipe", "kaggle"]), spelt);
    let patience1 = run(
        "patience1",
        &[
            "--recipe",
            "kaggle",
            "--lr-patience",
            "1",
            "--lr-min-delta",
            "10",
        ],
    );
    let lrs: Vec<f64> = patience1[1..]
        .iter()
        .map(|r| r[3].parse().unwrap())
        .collect();
    let f = |v: f64| v as f32 as f64;
    assert_eq!(lrs, [f(1e-3), f(1e-3), f(f(1e-3) * 0.5)]);
    // Without a plateau callback the schedule's flags are refused.
    let r = env.run(&[&["train", "--lr-patience", "3"][..], &TINY].concat());
    assert!(!r.output.status.success());
    assert!(
        r.stderr().contains("--reduce-lr-on-plateau"),
        "{}",
        r.stderr()
    );
}
