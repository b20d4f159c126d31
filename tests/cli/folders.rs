//! A user's own frames: folders of PNG and JPEG frames of any size through prepare ->
//! train -> predict on a folder, palette masks with --mask-class (real usgra-seg frames),
//! the pairing and mixed-size errors, and --skip-bad.

use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage};
use nerveseg::data::npy::NpyReader;

use crate::testenv::TestEnv;

fn usgra(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/frames/usgra")
        .join(rel)
}

/// A frame with a bright disc (the "nerve") and its 0/255 mask.
fn scene(h: u32, w: u32, seed: u32) -> (GrayImage, GrayImage) {
    let (cy, cx, r) = (
        h as f32 * 0.5,
        w as f32 * (0.3 + 0.1 * seed as f32),
        h as f32 * 0.2,
    );
    let inside = |x: u32, y: u32| (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < r * r;
    let img = GrayImage::from_fn(w, h, |x, y| {
        let noise = ((x * 31 + y * 17 + seed * 7) % 23) as u8;
        image::Luma([if inside(x, y) { 200 } else { 60 } + noise])
    });
    let mask = GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if inside(x, y) { 255 } else { 0 }])
    });
    (img, mask)
}

fn colour(g: &GrayImage) -> RgbImage {
    RgbImage::from_fn(g.width(), g.height(), |x, y| {
        let v = g.get_pixel(x, y)[0];
        image::Rgb([v, v.saturating_sub(20), v / 2])
    })
}

fn shape(path: &Path) -> Vec<u64> {
    NpyReader::open(path).unwrap().shape.clone()
}

fn train_tiny(env: &TestEnv, dir: &str) {
    env.run(&[
        "train",
        "-q",
        "--images",
        &format!("{dir}/imgs_train.npy"),
        "--masks",
        &format!("{dir}/imgs_mask_train.npy"),
        "--out-dir",
        &format!("{dir}/w"),
        "--epochs",
        "1",
        "--base-width",
        "2",
        "--batch-size",
        "2",
        "--validation-split",
        "0.5",
        "--device",
        "cpu",
    ])
    .ok();
}

/// PNG and JPEG frames of two sizes, resized by --size, then trained on and predicted
/// on as a folder: every mask has its own frame's size and name.
#[test]
fn mixed_formats_and_sizes_go_through_with_size() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("in/img")).unwrap();
    std::fs::create_dir_all(env.path("in/msk")).unwrap();
    let sizes = [(60u32, 80u32), (50, 70), (60, 80), (50, 70)];
    for (k, &(h, w)) in sizes.iter().enumerate() {
        let (img, mask) = scene(h, w, k as u32);
        let name = format!("frame{}", k + 1);
        if k % 2 == 0 {
            img.save(env.path(&format!("in/img/{name}.png"))).unwrap();
        } else {
            colour(&img)
                .save(env.path(&format!("in/img/{name}.jpg")))
                .unwrap();
        }
        // One lossy JPEG mask: its near-0 and near-255 values still split at 128.
        let ext = if k == 1 { "jpg" } else { "png" };
        mask.save(env.path(&format!("in/msk/{name}_mask.{ext}")))
            .unwrap();
    }
    std::fs::write(env.path("in/img/notes.txt"), "not a frame").unwrap();
    let args = [
        "prepare", "--images", "in/img", "--masks", "in/msk", "--out", "p",
    ];
    let e = env.run(&args).fails_with(&["frames of 2 sizes: 50 x 70 (2 frames, e.g. frame2.jpg), 60 x 80 (2 frames, e.g. frame1.png); pass --size HxW"]);
    assert!(!env.path("p/imgs_train.npy").exists(), "{e}");
    let out = env
        .run(&[&args[..], &["--size", "48x64", "--test-images", "in/img"]].concat())
        .ok();
    for note in [
        "frames resized to 48 x 64",
        "masks: nerve = pixel >= 128: 4 masks",
        "skipped 1 file that is not PNG, JPEG, TIFF or BMP: notes.txt",
        "RGB frames made gray",
        "warning: 4 frames are smaller than the network's 96 x 96 input (e.g. frame1.png, 60 x 80)",
    ] {
        assert!(out.contains(note), "{note}: {out}");
    }
    assert_eq!(shape(&env.path("p/imgs_train.npy")), [4, 48, 64]);
    assert_eq!(shape(&env.path("p/imgs_mask_train.npy")), [4, 48, 64]);
    let names = std::fs::read_to_string(env.path("p/imgs_names_train.txt")).unwrap();
    assert_eq!(names, "frame1.png\nframe2.jpg\nframe3.png\nframe4.jpg\n");
    let masks = NpyReader::open(&env.path("p/imgs_mask_train.npy"))
        .unwrap()
        .read_all::<u8>()
        .unwrap();
    assert!(masks.iter().all(|&v| v == 0 || v == 255) && masks.contains(&255));
    train_tiny(&env, "p");

    // A frame that is not an image at all, beside the notes that are not frames.
    std::fs::write(env.path("in/img/frame5.png"), "not a frame either").unwrap();
    let run = env.run(&[
        "predict",
        "--weights",
        "p/w/weights.h5",
        "--images",
        "in/img",
        "--out-dir",
        "masks",
        "--overlays",
        "over",
        "--device",
        "cpu",
        "--skip-bad",
    ]);
    let out = run.ok();
    assert!(out.contains("wrote 4 masks"), "{out}");
    assert!(
        out.contains("skipped 1 file that could not be read (see predictions.csv)"),
        "{out}"
    );
    assert!(
        out.contains("skipped 1 file that is not PNG, JPEG, TIFF or BMP: notes.txt"),
        "{out}"
    );
    // The warning names the file once, in one line of its own.
    let err = run.stderr();
    assert_eq!(err.matches("frame5.png").count(), 1, "{err}");
    assert!(
        err.starts_with("nerveseg: warning: skipped ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    for (k, &(h, w)) in sizes.iter().enumerate() {
        let stem = format!("frame{}", k + 1);
        let m = image::open(env.path(&format!("masks/{stem}_mask.png")))
            .unwrap()
            .to_luma8();
        assert_eq!((m.height(), m.width()), (h, w), "{stem}");
        assert!(m.pixels().all(|p| p[0] == 0 || p[0] == 255));
        let o = image::open(env.path(&format!("over/{stem}_overlay.png"))).unwrap();
        assert_eq!((o.height(), o.width()), (h, w), "{stem}");
        // The colour frames (the JPEGs) keep their colour; the gray ones stay gray
        // (but for the red outline and the caption).
        let tinted = o
            .to_rgb8()
            .pixels()
            .filter(|p| p[0] > p[1] && p[1] > p[2] && p[1] > 40)
            .count();
        let half = (h * w / 2) as usize;
        assert_eq!(tinted > half, k % 2 == 1, "{stem}: {tinted} tinted pixels");
    }
    let csv = std::fs::read_to_string(env.path("masks/predictions.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "name,nerve_present,area_pixels,max_probability,error"
    );
    assert!(lines[1].starts_with("frame1.png,"), "{csv}");
    assert!(
        lines[5].starts_with("frame5.png,,,,") && lines[5].contains("not a PNG"),
        "{csv}"
    );
    assert_eq!(lines.len(), 6, "{csv}");
    // Without --skip-bad the same folder stops at the file, naming it.
    env.run(&[
        "predict",
        "--weights",
        "p/w/weights.h5",
        "--images",
        "in/img",
        "--out-dir",
        "m2",
        "--device",
        "cpu",
    ])
    .fails_with(&[
        "frame5.png: not a PNG, JPEG, TIFF or BMP image",
        "--skip-bad",
    ]);
    // The folder the failed command created is gone again.
    assert!(!env.path("m2").exists());
    // One image file: its mask, as the folder run made it; by default here.
    let one = |extra: &[&str]| {
        let base = [
            "predict",
            "-q",
            "--weights",
            "p/w/weights.h5",
            "--device",
            "cpu",
        ];
        env.run(&[&base[..], extra].concat())
    };
    one(&["--images", "in/img/frame2.jpg", "--out-dir", "single"]).ok();
    let read = |p: &str| std::fs::read(env.path(p)).unwrap();
    assert!(read("single/frame2_mask.png") == read("masks/frame2_mask.png"));
    one(&["--images", "in/img/frame2.jpg"]).ok();
    assert!(read("frame2_mask.png") == read("masks/frame2_mask.png"));
    one(&["--images", "in/img/nope.png", "--out-dir", "x"])
        .fails_with(&["--images in/img/nope.png: no such file or folder"]);
    one(&["--images", "p/imgs_train.npy", "--out-dir", "x"]).fails_with(&[
        "--out-dir is for a folder or an image file of --images; p/imgs_train.npy is an array",
    ]);
    // A folder of which no frame can be read is an error, not "wrote 0 masks".
    std::fs::create_dir_all(env.path("allbad")).unwrap();
    std::fs::write(env.path("allbad/x.png"), "text").unwrap();
    env.run(&[
        "predict",
        "-q",
        "--weights",
        "p/w/weights.h5",
        "--images",
        "allbad",
        "--out-dir",
        "m3",
        "--device",
        "cpu",
        "--skip-bad",
    ])
    .fails_with(&[
        "allbad: none of its 1 image file could be read as a frame",
        "m3/predictions.csv",
    ]);
    env.run(&[
        "predict",
        "--weights",
        "p/w/weights.h5",
        "--images",
        "in/img",
        "--out-dir",
        "in/img/",
        "--device",
        "cpu",
    ])
    .fails_with(&["in/img/ is the --images folder"]);
}

/// One size that is not Kaggle's, without --size; frames and masks in one folder.
#[test]
fn one_other_size_needs_no_resize() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("d")).unwrap();
    for k in 0..4 {
        let (img, mask) = scene(40, 52, k);
        img.save(env.path(&format!("d/{}_{}.png", 1 + k / 2, k)))
            .unwrap();
        // A 0/1 mask, as many annotation tools write them.
        let ones = GrayImage::from_fn(52, 40, |x, y| image::Luma([mask.get_pixel(x, y)[0] / 255]));
        ones.save(env.path(&format!("d/{}_{}_mask.png", 1 + k / 2, k)))
            .unwrap();
    }
    let out = env
        .run(&[
            "prepare",
            "--images",
            "d",
            "--masks",
            "d",
            "--out",
            "p",
            "--test-images",
            "d",
        ])
        .ok();
    assert!(out.contains("frames: 40 x 52"), "{out}");
    assert!(
        out.contains("nerve = pixel == 1 (0/1 masks): 4 masks"),
        "{out}"
    );
    assert!(out.contains("groups: the subject"), "{out}");
    assert_eq!(shape(&env.path("p/imgs_train.npy")), [4, 40, 52]);
    let groups = std::fs::read_to_string(env.path("p/imgs_groups_train.txt")).unwrap();
    assert_eq!(groups, "1\n1\n2\n2\n");
    train_tiny(&env, "p");
    let w = nerveseg::keras::read(&env.path("p/w/weights.h5")).unwrap();
    assert_eq!(
        w.meta.frame_size.map(|s| (s.height, s.width)),
        Some((40, 52))
    );
    // The array path after prepare takes the size as it is: evaluate, predict with
    // overlays at 40 x 52, submit enlarging to --size, bench's resize.
    let out = env
        .run(&[
            "evaluate",
            "--weights",
            "p/w/weights.h5",
            "--images",
            "p/imgs_train.npy",
            "--masks",
            "p/imgs_mask_train.npy",
            "--device",
            "cpu",
            "--json",
        ])
        .ok();
    assert!(out.contains("\"images\":2"), "{out}");
    env.run(&[
        "predict",
        "--weights",
        "p/w/weights.h5",
        "--images",
        "p/imgs_test.npy",
        "--ids",
        "p/imgs_id_test.npy",
        "--out",
        "probs.npy",
        "--overlays",
        "ov",
        "--device",
        "cpu",
    ])
    .ok();
    let o = image::open(env.path("ov/1_overlay.png")).unwrap();
    assert_eq!((o.height(), o.width()), (40, 52));
    let csv = env.path("sub.csv");
    env.run(&[
        "submit",
        "--masks",
        "probs.npy",
        "--ids",
        "p/imgs_id_test.npy",
        "--out",
        csv.to_str().unwrap(),
        "--size",
        "40x52",
        "--min-size",
        "0",
        "--threshold",
        "0",
    ])
    .ok();
    // Threshold 0 fills each mask: one run of every pixel of the 40 x 52 frame.
    let sub = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(sub.lines().nth(1), Some("1,1 2080"), "{sub}");
    let out = env
        .run(&[
            "bench",
            "resize",
            "--images",
            "p/imgs_train.npy",
            "--masks",
            "p/imgs_mask_train.npy",
        ])
        .ok();
    assert!(out.contains("\"images\":4,"), "{out}");
    std::fs::create_dir_all(env.path("new")).unwrap();
    scene(33, 45, 1).0.save(env.path("new/a.bmp")).unwrap();
    env.run(&[
        "predict",
        "--weights",
        "p/w/weights.h5",
        "--images",
        "new",
        "--out-dir",
        "o",
        "--device",
        "cpu",
    ])
    .ok();
    let m = image::open(env.path("o/a_mask.png")).unwrap();
    assert_eq!((m.height(), m.width()), (33, 45));
}

/// Real usgra-seg frames: palette masks (1 nerve, 2 vessel) need --mask-class.
#[test]
fn palette_masks_take_the_class_asked_for() {
    let env = TestEnv::new();
    let (img, msk) = (usgra("images"), usgra("masks"));
    let args = [
        "prepare",
        "--images",
        img.to_str().unwrap(),
        "--masks",
        msk.to_str().unwrap(),
    ];
    env.run(&[&args[..], &["--out", "p"]].concat())
        .fails_with(&[
            "masks/0000.png: a label mask (values 0, 1, 2, none >= 128): pass --mask-class K",
        ]);
    let out = env
        .run(
            &[
                &args[..],
                &["--out", "p", "--mask-class", "1", "--size", "128x128"],
            ]
            .concat(),
        )
        .ok();
    assert!(
        out.contains("nerve = label 1 (--mask-class 1): 2 masks"),
        "{out}"
    );
    // At the frames' own size (no --size, both are 512 x 512) the nerve pixels are the
    // class-1 pixels numpy counted.
    let out = env
        .run(&[&args[..], &["--out", "q", "--mask-class", "1"]].concat())
        .ok();
    assert!(out.contains("frames: 512 x 512"), "{out}");
    let masks = NpyReader::open(&env.path("q/imgs_mask_train.npy"))
        .unwrap()
        .read_all::<u8>()
        .unwrap();
    let counts = std::fs::read_to_string(usgra("masks_class1_counts.txt")).unwrap();
    for (k, line) in counts.lines().take(2).enumerate() {
        let want: usize = line.split_once(' ').unwrap().1.parse().unwrap();
        let got = masks[k * 512 * 512..(k + 1) * 512 * 512]
            .iter()
            .filter(|&&v| v == 255)
            .count();
        assert_eq!(got, want, "{line}");
    }
}

#[test]
fn unpaired_and_doubled_masks_are_named() {
    let env = TestEnv::new();
    for d in ["i", "m"] {
        std::fs::create_dir_all(env.path(d)).unwrap();
    }
    let (img, mask) = scene(20, 20, 0);
    for n in ["a", "b", "c"] {
        img.save(env.path(&format!("i/{n}.png"))).unwrap();
    }
    for n in ["a", "a_mask", "c", "z"] {
        mask.save(env.path(&format!("m/{n}.png"))).unwrap();
    }
    env.run(&["prepare", "--images", "i", "--masks", "m", "--out", "p"])
        .fails_with(&[
            "1 image has no mask: b.png",
            "1 mask has no image: z.png",
            "1 image has two masks: a.png (a.png and a_mask.png)",
        ]);
    assert!(!env.path("p").exists());
    img.save(env.path("i/c.jpg")).unwrap();
    env.run(&["prepare", "--images", "i", "--masks", "m", "--out", "p"])
        .fails_with(&["c.jpg and c.png are two images with one name"]);
}

/// `evaluate` takes folders of frames and masks as `prepare` reads them, scoring every
/// frame: the same scores as evaluate on the arrays prepare makes of them.
#[test]
fn evaluate_takes_folders_as_prepare_does() {
    let env = TestEnv::new();
    env.synth_small(2, 6, 0);
    env.prepare_train("raw", ".");
    env.run(&[&["train", "-q", "--epochs", "1"][..], &crate::train::TINY].concat())
        .ok();
    let (img, msk) = (usgra("images"), usgra("masks"));
    let (img, msk) = (img.to_str().unwrap(), msk.to_str().unwrap());
    let read = ["--mask-class", "1", "--size", "512x512"];
    let score = |args: &[&str]| {
        let base = ["evaluate", "--json", "--device", "cpu"];
        let out = env.run(&[&base[..], args].concat()).ok();
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let folders = score(&[&["--images", img, "--masks", msk][..], &read].concat());
    env.run(
        &[
            &[
                "prepare", "-q", "--images", img, "--masks", msk, "--out", "us",
            ][..],
            &read,
        ]
        .concat(),
    )
    .ok();
    let arrays = score(&[
        "--images",
        "us/imgs_train.npy",
        "--masks",
        "us/imgs_mask_train.npy",
        "--validation-split",
        "1",
    ]);
    assert_eq!(folders["images"], 2, "{folders}");
    assert_eq!(folders["kaggle_dice"], arrays["kaggle_dice"]);
    assert_eq!(folders["dice_coef"], arrays["dice_coef"]);
    env.run(&["evaluate", "--device", "cpu", "--size", "512x512"])
        .fails_with(&["--mask-class and --size are for folders"]);
}
