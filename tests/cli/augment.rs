//! `train --augment`: batches change, the run is the same for a seed, and the settings
//! are part of the run a resume continues.

use crate::testenv::TestEnv;
use crate::train::{prepared, TINY};

fn history(env: &TestEnv, dir: &str) -> String {
    let text = std::fs::read_to_string(env.path(&format!("{dir}/history.csv"))).unwrap();
    // Without the seconds column.
    text.lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_owned() + "\n")
        .collect()
}

#[test]
fn augmented_training_is_fixed_by_its_seed_and_differs_from_plain() {
    let env = prepared();
    let run = |dir: &str, extra: &[&str]| {
        let base = ["train", "-q", "--epochs", "2", "--out-dir", dir];
        env.run(&[&base[..], &TINY, extra].concat()).ok();
    };
    run("plain", &[]);
    run("a", &["--augment"]);
    run("b", &["--augment"]);
    run("c", &["--augment", "--aug-rotate", "0", "--aug-no-flip"]);
    assert_eq!(history(&env, "a"), history(&env, "b"));
    assert_ne!(history(&env, "a"), history(&env, "plain"));
    assert_ne!(history(&env, "a"), history(&env, "c"));
    let w = nerveseg::keras::read(&env.path("a/weights.h5")).unwrap();
    let options = w.meta.run.unwrap().options.to_string();
    assert!(
        options.starts_with("--augment --aug-rotate 5 --aug-shift 10"),
        "{options}"
    );
    let base = ["train", "--epochs", "3", "--out-dir", "a", "--resume"];
    env.refuses(
        &[&base[..], &TINY].concat(),
        &["none of augmentation, callbacks or a presence head (the run used --augment"],
    );
    env.run(&[&["train", "--augment", "--aug-zoom", "1.5"][..], &TINY].concat())
        .fails_with(&["--aug-zoom and --aug-contrast below 1"]);
}
