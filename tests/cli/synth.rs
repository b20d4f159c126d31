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

/// The TIFF tags of the first IFD of a little-endian classic TIFF: tag -> first value.
fn tiff_tags(bytes: &[u8]) -> std::collections::BTreeMap<u16, u32> {
    assert_eq!(&bytes[..4], b"II*\0", "a little-endian classic TIFF");
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let ifd = u32_at(4) as usize;
    (0..u16_at(ifd) as usize)
        .map(|k| {
            let e = ifd + 2 + 12 * k;
            let (typ, count) = (u16_at(e + 2), u32_at(e + 4));
            // A single SHORT or LONG value sits in the entry itself.
            let v = match (typ, count) {
                (3, 1) => u16_at(e + 8) as u32,
                (4, 1) => u32_at(e + 8),
                _ => u32::MAX,
            };
            (u16_at(e), v)
        })
        .collect()
}

#[test]
fn synth_writes_lzw_as_kaggle_does_and_prepare_reads_both() {
    let env = TestEnv::new();
    for (dir, compression) in [("lzw", "lzw"), ("plain", "none")] {
        let args = [
            "synth",
            "--out",
            dir,
            "--subjects",
            "1",
            "--per-subject",
            "3",
        ];
        env.run(&[&args[..], &["--test", "2", "--compression", compression]].concat())
            .ok();
        env.run(&["prepare", "--raw", dir, "--out", &format!("{dir}-npy")])
            .ok();
    }
    // Kaggle's: compression 5 (LZW), no predictor, one strip of all 420 rows,
    // min-is-black; the uncompressed file differs only in its compression.
    let lzw = std::fs::read(env.path("lzw/train/1_2.tif")).unwrap();
    let plain = std::fs::read(env.path("plain/train/1_2.tif")).unwrap();
    let (t, u) = (tiff_tags(&lzw), tiff_tags(&plain));
    assert_eq!((t[&259], u[&259]), (5, 1), "compression");
    assert_eq!(t[&262], 1, "photometric: min-is-black");
    assert_eq!(t.get(&317).copied().unwrap_or(1), 1, "no predictor");
    assert_eq!((t[&257], t[&278]), (420, 420), "one strip of 420 rows");
    // Speckle does not compress (the frame grows a little); a mask shrinks to almost
    // nothing.
    let mask = std::fs::metadata(env.path("lzw/train/1_2_mask.tif"))
        .unwrap()
        .len();
    assert!(mask < 20_000, "an LZW mask of {mask} bytes");
    assert!(lzw.len() != plain.len());
    for name in [
        "imgs_train.npy",
        "imgs_mask_train.npy",
        "imgs_test.npy",
        "imgs_id_test.npy",
    ] {
        assert_eq!(
            std::fs::read(env.path("lzw-npy").join(name)).unwrap(),
            std::fs::read(env.path("plain-npy").join(name)).unwrap(),
            "{name}"
        );
    }
}

/// The label noise synth adds by default: every frame listed in label_noise.csv is a near
/// repeat of the frame before whose mask says the opposite; `--label-noise 0` lists none.
#[test]
fn synth_records_its_label_noise() {
    let env = TestEnv::new();
    env.synth_noisy("raw", 3, "0.1");
    let csv = std::fs::read_to_string(env.path("raw/label_noise.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "image,repeats,mask");
    assert!(rows.len() > 4, "{csv}");
    let read = |name: &str| {
        let (mut img, mut mask) = (vec![0u8; PIXELS], vec![0u8; PIXELS]);
        let stem = name.trim_end_matches(".tif");
        read_frame(&env.path(&format!("raw/train/{name}")), &mut img).unwrap();
        read_mask(&env.path(&format!("raw/train/{stem}_mask.tif")), &mut mask).unwrap();
        (img, mask.iter().any(|&m| m != 0))
    };
    for row in &rows[1..] {
        let c: Vec<&str> = row.split(',').collect();
        let ((img, nerve), (src, src_nerve)) = (read(c[0]), read(c[1]));
        assert_ne!(nerve, src_nerve, "{row}");
        assert_eq!(c[2], if nerve { "added" } else { "removed" }, "{row}");
        let mad = img
            .iter()
            .zip(&src)
            .map(|(&a, &b)| (a as f64 - b as f64).abs())
            .sum::<f64>()
            / PIXELS as f64;
        assert!(mad < 8.0, "{row}: mean |diff| {mad}");
    }
    env.synth_noisy("clean", 3, "0");
    let csv = std::fs::read_to_string(env.path("clean/label_noise.csv")).unwrap();
    assert_eq!(csv, "image,repeats,mask\n");
}
