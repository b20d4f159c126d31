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
            nerveseg::data::tiff::Compression::None,
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

/// The sorted ids of the truth folder.
const IDS: [u64; 16] = [
    1, 2, 3, 5, 9, 10, 12, 21, 33, 100, 101, 215, 999, 1000, 4321, 5508,
];

/// A submission with a row for every test id: empty, except `rows` (id, rle).
fn full_csv(rows: &[(u64, &str)]) -> String {
    let mut s = "img,pixels\n".to_owned();
    for id in IDS {
        let rle = rows.iter().find(|r| r.0 == id).map_or("", |r| r.1);
        s += &format!("{id},{rle}\n");
    }
    s
}

#[test]
fn bad_submissions_are_explained() {
    let env = TestEnv::new();
    truth_folder(&env);
    let run = |name: &str, text: &str, needles: &[&str]| {
        std::fs::write(env.path(name), text).unwrap();
        env.run(&["evaluate", "--submission", name, "--masks", "truth"])
            .fails_with(needles);
    };
    run(
        "dup.csv",
        &(full_csv(&[]) + "1,5 3\n"),
        &["dup.csv: id 1 appears more than once (lines 2 and 18)"],
    );
    run(
        "odd.csv",
        &full_csv(&[(3, "5")]),
        &["odd.csv line 4 (id 3)", "odd count"],
    );
    run(
        "other.csv",
        &(full_csv(&[]) + "77,\n"),
        &["other.csv line 18: id 77 is not a test id (no 77_mask.tif"],
    );
    std::fs::write(env.path("one.csv"), "img,pixels\n1,\n").unwrap();
    env.run(&["evaluate", "--submission", "one.csv"])
        .fails_with(&["imgs_mask_train.npy is not a folder", "--masks"]);
    run(
        "head.csv",
        "id,rle\n1,\n",
        &["head.csv: expected the header img,pixels"],
    );
}

/// Runs that would have been scored before (an overflowing length, out of order), ids
/// that only look like numbers, and a submission that lacks most test ids.
#[test]
fn hostile_submissions_are_refused() {
    let env = TestEnv::new();
    truth_folder(&env);
    let run = |name: &str, text: &str, needles: &[&str]| {
        std::fs::write(env.path(name), text).unwrap();
        env.run(&["evaluate", "--submission", name, "--masks", "truth"])
            .fails_with(needles)
    };
    run(
        "overflow.csv",
        &full_csv(&[(1, "18446744073709551615 5")]),
        &["overflow.csv line 2 (id 1)", "outside the 420 x 580 frame"],
    );
    run(
        "long.csv",
        &full_csv(&[(1, "1 18446744073709551615")]),
        &[
            "long.csv line 2 (id 1)",
            "run 1 18446744073709551615 lies outside",
        ],
    );
    run(
        "order.csv",
        &full_csv(&[(2, "500 10 100 5")]),
        &["order.csv line 3 (id 2)", "must be sorted"],
    );
    run(
        "zeros.csv",
        &full_csv(&[]).replace("\n5,\n", "\n05,\n"),
        &["zeros.csv line 5", "id \"05\" has leading zeros"],
    );
    run(
        "sign.csv",
        &full_csv(&[]).replace("\n5,\n", "\n+5,\n"),
        &["sign.csv line 5", "not a whole number"],
    );
    // Kaggle rejects a file without a row for every test id...
    std::fs::write(env.path("few.csv"), "img,pixels\n1,\n2,\n").unwrap();
    let err = env
        .run(&["evaluate", "--submission", "few.csv", "--masks", "truth"])
        .fails_with(&[
            "few.csv: 14 of the 16 test ids in truth have no row (e.g. 3, 5, 9, 10, 12)",
        ]);
    assert!(err.contains("--allow-missing"), "{err}");
    // ... and with --allow-missing, a missing row scores as an empty prediction: the
    // truth masks of ids 1 and 2 are scored against empty rows either way.
    let few = json(
        &env.run(&[
            "evaluate",
            "--submission",
            "few.csv",
            "--masks",
            "truth",
            "--allow-missing",
            "--json",
        ])
        .ok(),
    );
    std::fs::write(env.path("empty.csv"), full_csv(&[])).unwrap();
    let empty = json(
        &env.run(&[
            "evaluate",
            "--submission",
            "empty.csv",
            "--masks",
            "truth",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(few["images"], 16);
    assert_eq!(few["kaggle_dice"], empty["kaggle_dice"]);
    let k = empty["kaggle_dice"].as_f64().unwrap();
    assert!(k > 0.0 && k < 1.0, "{k}");
    // Two names for one true mask.
    std::fs::copy(env.path("truth/5_mask.tif"), env.path("truth/05_mask.tif")).unwrap();
    run(
        "empty.csv",
        &full_csv(&[]),
        &["are both the mask of test id 5"],
    );
}

/// Arrays that are not the checkpoint's training data (another number of frames, e.g. a
/// prepared test set) are scored whole, and the output says why; a share asked for is
/// still scored as asked.
#[test]
fn other_arrays_than_the_training_data_are_scored_whole() {
    let env = TestEnv::new();
    env.synth_small(2, 6, 0);
    env.prepare_train("raw", ".");
    env.run(&[&["train", "-q", "--epochs", "1"][..], &crate::train::TINY].concat())
        .ok();
    env.synth_noisy("raw2", 1, "0");
    env.prepare_train("raw2", "other");
    let frames = nerveseg::data::npy::NpyReader::open(&env.path("other/imgs_train.npy"))
        .unwrap()
        .shape[0];
    assert_ne!(frames, 12);
    let base = [
        "evaluate",
        "--device",
        "cpu",
        "--images",
        "other/imgs_train.npy",
        "--masks",
        "other/imgs_mask_train.npy",
    ];
    let v = json(&env.run(&[&base[..], &["--json"]].concat()).ok());
    assert_eq!(v["images"].as_u64(), Some(frames), "{v}");
    assert_eq!(v["other_data"]["trained_samples"], 12, "{v}");
    let text = env.run(&base).ok();
    assert!(
        text.contains("scored: every frame, since it trained on 12 samples"),
        "{text}"
    );
    let half = json(
        &env.run(&[&base[..], &["--json", "--validation-split", "0.5"]].concat())
            .ok(),
    );
    assert_eq!(half["images"].as_u64(), Some(frames / 2), "{half}");
    assert!(half["other_data"].is_null());
    // The training arrays themselves: the checkpoint's own split, as before.
    let own = json(&env.run(&["evaluate", "--device", "cpu", "--json"]).ok());
    assert!(own["other_data"].is_null() && own["images"].as_u64().unwrap() < 12);
    // As many frames, but other ones: scored whole too.
    env.run(&[
        "synth",
        "-q",
        "--out",
        "raw3",
        "--subjects",
        "2",
        "--per-subject",
        "6",
        "--test",
        "0",
        "--seed",
        "9",
    ])
    .ok();
    env.prepare_train("raw3", "same");
    let same = [
        "evaluate",
        "--device",
        "cpu",
        "--images",
        "same/imgs_train.npy",
        "--masks",
        "same/imgs_mask_train.npy",
    ];
    let v = json(&env.run(&[&same[..], &["--json"]].concat()).ok());
    assert_eq!(v["images"], 12, "{v}");
    let text = env.run(&same).ok();
    assert!(
        text.contains("these arrays hold 12 samples, but not those it trained on"),
        "{text}"
    );
}
