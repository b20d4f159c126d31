//! `nerveseg evaluate`: a submission scored as Kaggle would, and a checkpoint scored on
//! the validation split with both metrics.

use nerveseg::data::tiff::{write_gray8, HEIGHT, WIDTH};

use crate::submit::{full_masks, sub_fixture};
use crate::testenv::TestEnv;

/// Writes the fixture's full masks as 0/255 ground-truth TIFFs named by sorted id.
fn truth_folder(env: &TestEnv) {
    std::fs::create_dir_all(env.path("truth")).unwrap();
    let mut ids = vec![
        5508, 4321, 3, 10, 101, 5, 21, 999, 9, 1, 12, 100, 33, 1000, 2, 215,
    ];
    ids.sort();
    for (id, m) in ids.iter().zip(full_masks()) {
        let px: Vec<u8> = m.iter().map(|&v| v * 255).collect();
        write_gray8(
            &env.path(&format!("truth/{id}_mask.tif")),
            WIDTH,
            HEIGHT,
            &px,
        )
        .unwrap();
    }
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_submission_is_scored_as_kaggle_would() {
    let env = TestEnv::new();
    truth_folder(&env);
    let exact = sub_fixture("submission.csv");
    let v = json(
        &env.run(&[
            "evaluate",
            "--submission",
            exact.to_str().unwrap(),
            "--masks",
            "truth",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(v["kaggle_dice"], 1.0);
    assert!(v["dice_coef"].is_null());
    assert_eq!(v["images"], 16);
    // The dilated variant against the same truth: 0.852540 by the fixture script's own
    // decoder and numpy.
    let wide = sub_fixture("submission_above_zero.csv");
    let v = json(
        &env.run(&[
            "evaluate",
            "--submission",
            wide.to_str().unwrap(),
            "--masks",
            "truth",
            "--json",
        ])
        .ok(),
    );
    let k = v["kaggle_dice"].as_f64().unwrap();
    assert!((k - 0.852540).abs() < 5e-7, "{k}");
    let table = env
        .run(&[
            "evaluate",
            "--submission",
            exact.to_str().unwrap(),
            "--masks",
            "truth",
        ])
        .ok();
    assert!(
        table.contains("kaggle_dice (mean per image, full size):   1.0000"),
        "{table}"
    );
}

#[test]
fn bad_submissions_are_explained() {
    let env = TestEnv::new();
    truth_folder(&env);
    std::fs::write(env.path("dup.csv"), "img,pixels\n1,\n1,5 3\n").unwrap();
    env.run(&["evaluate", "--submission", "dup.csv", "--masks", "truth"])
        .fails_with(&["dup.csv: id 1 appears more than once"]);
    std::fs::write(env.path("odd.csv"), "img,pixels\n1,5\n").unwrap();
    env.run(&["evaluate", "--submission", "odd.csv", "--masks", "truth"])
        .fails_with(&["odd.csv line 2 (id 1)", "odd count"]);
    std::fs::write(env.path("missing.csv"), "img,pixels\n77,\n").unwrap();
    env.run(&[
        "evaluate",
        "--submission",
        "missing.csv",
        "--masks",
        "truth",
    ])
    .fails_with(&["truth/77_mask.tif"]);
    std::fs::write(env.path("one.csv"), "img,pixels\n1,\n").unwrap();
    env.run(&["evaluate", "--submission", "one.csv"])
        .fails_with(&["imgs_mask_train.npy is not a folder", "--masks"]);
    std::fs::write(env.path("head.csv"), "id,rle\n1,\n").unwrap();
    env.run(&["evaluate", "--submission", "head.csv", "--masks", "truth"])
        .fails_with(&["head.csv: expected the header img,pixels"]);
}
