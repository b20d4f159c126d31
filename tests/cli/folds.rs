//! `train --folds K --fold I`: validation on one fold by group; the checkpoint records
//! it, `evaluate` scores that fold, and `--resume` refuses another.

use crate::testenv::TestEnv;
use crate::train::TINY;

/// 4 subjects of 4 frames, prepared (groups are the subjects).
fn four_subjects() -> TestEnv {
    let env = TestEnv::new();
    env.synth_small(4, 4, 0);
    env.prepare_train("raw", ".");
    env
}

#[test]
fn a_fold_validates_whole_groups_and_evaluate_scores_it() {
    let env = four_subjects();
    let groups = std::fs::read_to_string(env.path("imgs_groups_train.txt")).unwrap();
    assert_eq!(groups.lines().count(), 16);
    let out = env
        .run(
            &[
                &["train", "--epochs", "1", "--folds", "4", "--fold", "2"][..],
                &TINY,
            ]
            .concat(),
        )
        .ok();
    // One subject of four validates: 4 frames, 12 train.
    assert!(
        out.contains("fold 2 of 4: 12 frames train, 4 validate"),
        "{out}"
    );
    let w = nerveseg::keras::read(&env.path("weights/weights.h5")).unwrap();
    assert_eq!(w.meta.run.unwrap().folds, Some((4, 1)));
    let e = env.run(&["evaluate", "--device", "cpu"]).ok();
    assert!(e.contains("images: 4"), "{e}");
    assert!(
        e.contains("validation: fold 2 of 4 by group (the checkpoint's)"),
        "{e}"
    );
    // A share asked for is scored instead.
    let e = env
        .run(&["evaluate", "--device", "cpu", "--validation-split", "0.5"])
        .ok();
    assert!(e.contains("images: 8"), "{e}");
    // The same validation frames as training's: the fold's val_loss is the history's.
    let h = std::fs::read_to_string(env.path("weights/history.csv")).unwrap();
    let j = env.run(&["evaluate", "--device", "cpu", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    let dice = v["dice_coef"].as_f64().unwrap();
    let row: Vec<&str> = h.lines().nth(1).unwrap().split(',').collect();
    let val_dice: f64 = row[3].parse().unwrap();
    assert!(
        (dice - val_dice).abs() < 1e-5,
        "evaluate {dice} vs training's {val_dice}"
    );
    // Resuming as another fold, or without folds, is another run.
    let base = ["train", "--epochs", "2", "--resume"];
    env.refuses(
        &[&base[..], &TINY, &["--folds", "4", "--fold", "3"]].concat(),
        &["--folds 4 --fold 3 (the run used --folds 4 --fold 2)"],
    );
    env.refuses(
        &[&base[..], &TINY].concat(),
        &["the last-share split (the run used --folds 4 --fold 2)"],
    );
    env.run(&[&base[..], &TINY, &["--folds", "4", "--fold", "2"]].concat())
        .ok();
}

#[test]
fn folds_need_groups_and_enough_of_them() {
    let env = four_subjects();
    env.run(&[&["train", "--folds", "5", "--fold", "1"][..], &TINY].concat())
        .fails_with(&["4 groups cannot make 5 folds"]);
    env.run(&[&["train", "--folds", "4", "--fold", "5"][..], &TINY].concat())
        .fails_with(&["--fold 5 of --folds 4"]);
    std::fs::remove_file(env.path("imgs_groups_train.txt")).unwrap();
    env.run(&[&["train", "--folds", "2", "--fold", "1"][..], &TINY].concat())
        .fails_with(&["imgs_groups_train.txt", "--groups FILE"]);
}

/// evaluate's dice_coef of the run in `weights/`, in training's batches.
fn evaluated_dice(env: &TestEnv) -> f64 {
    let j = env
        .run(&["evaluate", "--device", "cpu", "--batch-size", "4", "--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    v["dice_coef"].as_f64().unwrap()
}

#[test]
fn the_split_is_stored_and_read_back_without_the_groups() {
    let env = four_subjects();
    let fold = ["--folds", "3", "--fold", "2"];
    let train = [&["train", "--epochs", "2"][..], &fold, &TINY].concat();
    env.run(&train).ok();
    let w = nerveseg::keras::read(&env.path("weights/weights.h5")).unwrap();
    let frames = w.meta.run.unwrap().validation.unwrap();
    // Whole subjects of 4 frames, in file order.
    assert!(!frames.is_empty() && frames.len() % 4 == 0, "{frames:?}");
    let text = std::fs::read_to_string(env.path("imgs_groups_train.txt")).unwrap();
    let groups: Vec<&str> = text.lines().collect();
    let held: std::collections::BTreeSet<&str> =
        frames.iter().map(|&i| groups[i as usize]).collect();
    for (i, g) in groups.iter().enumerate() {
        assert_eq!(held.contains(g), frames.contains(&(i as u64)), "frame {i}");
    }
    // evaluate scores the checkpoint's own frames: its dice_coef is the best epoch's.
    let with_groups = evaluated_dice(&env);
    let h = std::fs::read_to_string(env.path("weights/history.csv")).unwrap();
    let rows: Vec<Vec<f64>> = h
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let best = rows.iter().min_by(|a, b| a[4].total_cmp(&b[4])).unwrap()[3];
    assert!((with_groups - best).abs() < 1e-5, "{with_groups} vs {best}");
    // The checkpoint is its own record: without the groups file, evaluate scores the
    // same frames, and the run resumes; a fresh run needs the groups.
    std::fs::remove_file(env.path("imgs_groups_train.txt")).unwrap();
    assert_eq!(evaluated_dice(&env), with_groups);
    env.run(&[&["train", "--epochs", "3", "--resume"][..], &fold, &TINY].concat())
        .ok();
    let resumed = evaluated_dice(&env);
    env.run(&[&train[..], &["--overwrite"]].concat())
        .fails_with(&["imgs_groups_train.txt"]);
    // A checkpoint of an older nerveseg stored no split: evaluate makes it again from
    // the groups, the same frames.
    let f = hdf5::File::open_rw(env.path("weights/weights.h5")).unwrap();
    f.unlink("nerveseg_validation_frames").unwrap();
    f.close().unwrap();
    env.run(&["evaluate", "--device", "cpu"])
        .fails_with(&["imgs_groups_train.txt"]);
    std::fs::write(env.path("imgs_groups_train.txt"), &text).unwrap();
    assert_eq!(evaluated_dice(&env), resumed);
}
