use nerveseg::data::tiff::{read_frame, read_mask, PIXELS};

use crate::testenv::TestEnv;

#[test]
fn synth_writes_the_kaggle_layout() {
    let env = TestEnv::new();
    let out = env
        .run(&[
            "synth",
            "--out",
            "raw",
            "--subjects",
            "2",
            "--per-subject",
            "3",
            "--test",
            "4",
            "--test-masks",
        ])
        .ok();
    assert!(out.contains("wrote 6 training pairs"), "{out}");
    assert_eq!(
        env.names("raw/train"),
        [
            "1_1.tif",
            "1_1_mask.tif",
            "1_2.tif",
            "1_2_mask.tif",
            "1_3.tif",
            "1_3_mask.tif",
            "2_1.tif",
            "2_1_mask.tif",
            "2_2.tif",
            "2_2_mask.tif",
            "2_3.tif",
            "2_3_mask.tif"
        ]
    );
    assert_eq!(env.names("raw/test"), ["1.tif", "2.tif", "3.tif", "4.tif"]);
    assert_eq!(
        env.names("raw/test_masks"),
        ["1_mask.tif", "2_mask.tif", "3_mask.tif", "4_mask.tif"]
    );
    // Every file is an 8-bit grayscale 420 x 580 TIFF; masks hold only 0 and 255.
    let mut buf = vec![0u8; PIXELS];
    for name in env.names("raw/train") {
        let path = env.path("raw/train").join(&name);
        if name.ends_with("_mask.tif") {
            read_mask(&path, &mut buf).unwrap();
        } else {
            read_frame(&path, &mut buf).unwrap();
        }
    }
    read_mask(&env.path("raw/test_masks/4_mask.tif"), &mut buf).unwrap();
}

#[test]
fn synth_is_deterministic_for_a_seed() {
    let (a, b, c) = (TestEnv::new(), TestEnv::new(), TestEnv::new());
    let args = |seed: &'static str| {
        [
            "synth",
            "--out",
            "raw",
            "--subjects",
            "1",
            "--per-subject",
            "2",
            "--test",
            "2",
            "--seed",
            seed,
        ]
    };
    a.run(&args("5")).ok();
    b.run(&args("5")).ok();
    c.run(&args("6")).ok();
    for f in [
        "raw/train/1_2.tif",
        "raw/train/1_2_mask.tif",
        "raw/test/2.tif",
    ] {
        assert_eq!(
            std::fs::read(a.path(f)).unwrap(),
            std::fs::read(b.path(f)).unwrap(),
            "{f}"
        );
    }
    assert_ne!(
        std::fs::read(a.path("raw/train/1_2.tif")).unwrap(),
        std::fs::read(c.path("raw/train/1_2.tif")).unwrap()
    );
}

#[test]
fn synth_refuses_to_mix_with_existing_files() {
    let env = TestEnv::new();
    env.synth_small(1, 2, 1);
    env.run(&[
        "synth",
        "--out",
        "raw",
        "--subjects",
        "1",
        "--per-subject",
        "1",
        "--test",
        "1",
    ])
    .fails_with(&[
        "raw/train",
        "already holds 4 Kaggle-named files",
        "--overwrite",
    ]);
    // With --overwrite the old frames are replaced, not mixed in.
    env.run(&[
        "synth",
        "--out",
        "raw",
        "--subjects",
        "1",
        "--per-subject",
        "1",
        "--test",
        "1",
        "--overwrite",
    ])
    .ok();
    assert_eq!(env.names("raw/train"), ["1_1.tif", "1_1_mask.tif"]);
}

#[test]
fn synth_rejects_zero_subjects() {
    let run = TestEnv::new().run(&["synth", "--subjects", "0"]);
    assert!(!run.output.status.success());
    assert!(run.stderr().contains("--subjects"), "{}", run.stderr());
}
