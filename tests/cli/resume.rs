//! Runs that resume, and checkpoints that describe them: `--resume` refuses to continue
//! a different run, a history it cannot trust, and a run whose validation loss stopped
//! being a number; `evaluate` scores the checkpoint's own validation split.

use crate::testenv::TestEnv;
use crate::train::{prepared, TINY};

fn train(env: &TestEnv, extra: &[&str]) -> String {
    env.run(&[&["train", "-q"][..], &TINY, extra].concat()).ok()
}

#[test]
fn a_resume_with_other_settings_is_refused_saying_which() {
    let env = prepared();
    train(&env, &["--epochs", "1"]);
    let resume = |extra: &[&str], needles: &[&str]| {
        // The run's flags (TINY) but those the change gives again.
        let mut args = vec!["train", "--epochs", "2", "--resume"];
        for pair in TINY.chunks(2) {
            if !extra.contains(&pair[0]) {
                args.extend(pair);
            }
        }
        args.extend(extra);
        env.refuses(&args, needles);
    };
    let why = "weights/last.h5: --resume continues the same run only, and this command differs";
    resume(
        &["--validation-split", "0.5"],
        &[why, "--validation-split 0.5 (the run used 0.2)"],
    );
    resume(
        &["--batch-size", "2"],
        &[why, "--batch-size 2 (the run used 4)"],
    );
    resume(&["--seed", "4"], &[why, "--seed 4 (the run used 3)"]);
    resume(
        &["--no-shuffle"],
        &[why, "--no-shuffle (the run was shuffled)"],
    );
    // Other samples: one more frame in the training arrays.
    let mut frames = std::fs::read(env.path("imgs_train.npy")).unwrap();
    let mut masks = std::fs::read(env.path("imgs_mask_train.npy")).unwrap();
    let one = 420 * 580;
    for (name, bytes) in [("more.npy", &mut frames), ("more_masks.npy", &mut masks)] {
        let last = bytes[bytes.len() - one..].to_vec();
        bytes.extend_from_slice(&last);
        let at = bytes.windows(8).position(|w| w == b"(12, 420").unwrap();
        bytes[at + 2] = b'3';
        std::fs::write(env.path(name), &bytes).unwrap();
    }
    resume(
        &["--images", "more.npy", "--masks", "more_masks.npy"],
        &[why, "other training samples (13 with fingerprint"],
    );
    // The same settings continue.
    train(&env, &["--epochs", "2", "--resume"]);
}

#[test]
fn a_history_that_cannot_be_trusted_is_refused() {
    let env = prepared();
    train(&env, &["--epochs", "2"]);
    let history = env.path("weights/history.csv");
    let good = std::fs::read_to_string(&history).unwrap();
    let args = [&["train", "--epochs", "3", "--resume"][..], &TINY].concat();
    // One row short (last.h5 is at epoch 2).
    let short: String = good.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&history, &short).unwrap();
    env.refuses(
        &args,
        &["weights/history.csv: 1 epochs recorded, but the checkpoint is at epoch 2"],
    );
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    let mut row: Vec<&str> = lines[2].split(',').collect();
    row[2] = "oops";
    lines[2] = row.join(",");
    std::fs::write(&history, lines.join("\n") + "\n").unwrap();
    env.refuses(
        &args,
        &["weights/history.csv line 3: loss is \"oops\", not a number"],
    );
    std::fs::remove_file(&history).unwrap();
    env.refuses(&args, &["reading weights/history.csv"]);
    // A row too many (a crash between history.csv and last.h5) is dropped.
    let extra = good.clone() + &good.lines().last().unwrap().replacen("1,", "2,", 1) + "\n";
    std::fs::write(&history, extra).unwrap();
    train(&env, &["--epochs", "3", "--resume"]);
    let rows = std::fs::read_to_string(&history).unwrap();
    assert_eq!(rows.lines().count(), 4, "{rows}");
    assert!(rows.starts_with(&good), "{rows}");
}

#[test]
fn a_checkpoint_without_a_run_record_cannot_be_resumed() {
    let env = prepared();
    train(&env, &["--epochs", "1"]);
    // A last.h5 from elsewhere: the same weights, without nerveseg's record of the run.
    env.run(&[
        "convert",
        "weights/last.h5",
        "bare.h5",
        "--format",
        "keras2-weights",
    ])
    .ok();
    let f = hdf5::File::open_rw(env.path("bare.h5")).unwrap();
    f.delete_attr("nerveseg_validation_split").unwrap();
    drop(f);
    std::fs::copy(env.path("bare.h5"), env.path("weights/last.h5")).unwrap();
    env.refuses(
        &[&["train", "--epochs", "2", "--resume"][..], &TINY].concat(),
        &["weights/last.h5 does not record its training run"],
    );
}

/// Model-ready arrays whose validation part (the last 20%) holds a NaN: training is
/// fine, the first validation loss is NaN, and the run stops with no checkpoint.
#[test]
fn a_nan_validation_loss_stops_the_run() {
    let env = TestEnv::new();
    let n = 10;
    let mut x = vec![0.5f32; n * 96 * 96];
    x[9 * 96 * 96 + 5] = f32::NAN; // sample 10: validation
    nerveseg::data::npy::write(&env.path("x.npy"), &[n as u64, 96, 96, 1], &x).unwrap();
    nerveseg::data::npy::write(
        &env.path("y.npy"),
        &[n as u64, 96, 96, 1],
        &vec![0f32; n * 96 * 96],
    )
    .unwrap();
    env.refuses(
        &[
            "train",
            "--images",
            "x.npy",
            "--masks",
            "y.npy",
            "--base-width",
            "2",
            "--device",
            "cpu",
        ],
        &[
            "the validation loss became NaN at epoch 1; stopped",
            "weights/weights.h5",
        ],
    );
    assert!(!env.path("weights/weights.h5").exists());
}

/// `evaluate` without `--validation-split` scores the checkpoint's split.
#[test]
fn evaluate_scores_the_checkpoints_own_split() {
    let env = prepared();
    train(&env, &["--epochs", "1", "--validation-split", "0.5"]);
    let json = |extra: &[&str]| -> serde_json::Value {
        let out = env
            .run(&[&["evaluate", "--json", "--device", "cpu"][..], extra].concat())
            .ok();
        serde_json::from_str(out.trim()).unwrap()
    };
    let own = json(&[]);
    assert_eq!(own["images"], 6, "{own}");
    assert_eq!(own["validation_split"], 0.5);
    assert_eq!(json(&["--validation-split", "0.25"])["images"], 3);
    let table = env.run(&["evaluate", "--device", "cpu"]).ok();
    assert!(
        table.contains("validation split: the last 50% of the samples (the checkpoint's)"),
        "{table}"
    );
}
