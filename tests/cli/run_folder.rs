//! A run's folder belongs to one run: a fresh `train` or `cv` refuses a folder holding
//! another run unless --overwrite (or --resume) says so, and a second command on a
//! folder in use is refused with the pid of the run that holds it.

use crate::interrupt::{finish, signal, wait_for};
use crate::testenv::TestEnv;
use crate::train::TINY;

fn prepared() -> TestEnv {
    let env = TestEnv::new();
    env.synth_small(2, 6, 0);
    env.prepare_train("raw", ".");
    env
}

#[test]
fn a_fresh_train_refuses_a_folder_holding_another_run() {
    let env = prepared();
    let train = |extra: &[&str]| {
        let base = ["train", "-q", "--out-dir", "w"];
        env.run(&[&base[..], &TINY[..6], extra].concat())
    };
    train(&["--seed", "3", "--epochs", "1"]).ok();
    let before = env.snapshot();
    let err = train(&["--seed", "4", "--epochs", "1"]).fails_with(&[
        "w holds another run (1 epoch, best val_dice_coef",
        "at epoch 1): pass --overwrite to replace it, --resume to continue it",
    ]);
    assert!(!err.contains("panicked"));
    assert!(env.snapshot() == before, "the refused run changed a file");
    // Asked for, the folder is replaced.
    train(&["--seed", "4", "--epochs", "1", "--overwrite"]).ok();
    let after = std::fs::read(env.path("w/weights.h5")).unwrap();
    assert_ne!(after, before[std::path::Path::new("w/weights.h5")]);
    // --resume continues the run in place; --overwrite with it makes no sense.
    let resume = ["--seed", "4", "--epochs", "2", "--resume"];
    train(&resume).ok();
    let both = train(&[&resume[..], &["--overwrite"]].concat());
    assert_eq!(both.output.status.code(), Some(2));
    assert!(both
        .stderr()
        .contains("'--resume' cannot be used with '--overwrite'"));
}

#[test]
fn a_folder_in_use_is_refused_until_its_run_ends() {
    let env = prepared();
    let base = ["train", "-q", "--out-dir", "busy", "--overwrite"];
    let child = env.spawn(&[&base[..], &TINY, &["--epochs", "1000"]].concat());
    wait_for("the first epoch", || env.path("busy/history.csv").exists());
    env.run(&[&base[..], &TINY, &["--epochs", "1"]].concat())
        .fails_with(&[&format!(
            "busy is in use by another nerveseg run (pid {})",
            child.id()
        )]);
    // A run that dies (here killed) releases its folder.
    signal(&child, "KILL");
    finish(child);
    env.run(&[&base[..], &TINY, &["--epochs", "1"]].concat())
        .ok();
}
