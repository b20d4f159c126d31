//! `nerveseg predict` on model-ready arrays, against tf-keras's predictions.

use crate::keras_fixtures::{keras_fixture, max_abs_diff, read_f32, FORMATS};
use crate::testenv::TestEnv;

#[test]
fn predictions_match_keras_for_every_format() {
    let env = TestEnv::new();
    let (kshape, keras) = read_f32(&keras_fixture("preds_w4.npy"));
    let inputs = keras_fixture("inputs_w4.npy");
    for (i, name) in FORMATS.iter().enumerate() {
        let out = format!("p{i}.npy");
        env.run(&[
            "predict",
            "--weights",
            keras_fixture(name).to_str().unwrap(),
            "--images",
            inputs.to_str().unwrap(),
            "--out",
            &out,
            "--device",
            "cpu",
            "--batch-size",
            "2",
        ])
        .ok();
        let (shape, ours) = read_f32(&env.path(&out));
        assert_eq!(shape, kshape, "{name}");
        let diff = max_abs_diff(&ours, &keras);
        assert!(diff <= 1e-5, "{name}: max |diff| {diff} against tf-keras");
    }
}

#[test]
fn missing_weights_are_named() {
    let env = TestEnv::new();
    let inputs = keras_fixture("inputs_w4.npy");
    env.run(&[
        "predict",
        "--weights",
        "nope/weights.h5",
        "--images",
        inputs.to_str().unwrap(),
        "--out",
        "p.npy",
        "--device",
        "cpu",
    ])
    .fails_with(&["nope/weights.h5", "file not found"]);
    assert!(!env.path("p.npy").exists());
}

#[test]
fn wrong_image_arrays_are_explained() {
    let env = TestEnv::new();
    let w = keras_fixture("unet_w4_weights.h5");
    let w = w.to_str().unwrap();
    nerveseg::data::npy::write(
        &env.path("x.npy"),
        &[2, 64, 64, 1],
        &vec![0f32; 2 * 64 * 64],
    )
    .unwrap();
    env.run(&["predict", "--weights", w, "--images", "x.npy", "--out", "p.npy", "--device", "cpu"])
        .fails_with(&["x.npy: expected uint8 frames (N, H, W) or a model-ready float32 array (N, 96, 96, 1), found float32 of shape [2, 64, 64, 1]"]);
    nerveseg::data::npy::write(&env.path("f.npy"), &[1, 420, 580], &vec![0u8; 420 * 580]).unwrap();
    env.run(&[
        "predict",
        "--weights",
        w,
        "--images",
        "f.npy",
        "--out",
        "p.npy",
        "--device",
        "cpu",
    ])
    .fails_with(&["unet_w4_weights.h5 stores no training mean/std"]);
    env.run(&[
        "predict",
        "--weights",
        w,
        "--images",
        "missing.npy",
        "--out",
        "p.npy",
        "--device",
        "cpu",
    ])
    .fails_with(&["opening missing.npy"]);
    assert!(!env.path("p.npy").exists());
}

#[test]
fn absent_gpu_is_explained() {
    let env = TestEnv::new();
    let w = keras_fixture("unet_w4_weights.h5");
    let inputs = keras_fixture("inputs_w4.npy");
    env.run(&[
        "predict",
        "--weights",
        w.to_str().unwrap(),
        "--images",
        inputs.to_str().unwrap(),
        "--out",
        "p.npy",
        "--device",
        "cuda:7",
    ])
    .fails_with(&["device cuda:7 requested", "--device cpu"]);
}

#[test]
fn allow_partial_loads_what_matches() {
    let env = TestEnv::new();
    let p = env.path("missing.h5");
    std::fs::copy(keras_fixture("unet_w4_full.h5"), &p).unwrap();
    let mut names = crate::keras_fixtures::layer_names(&p);
    names.retain(|n| n != "conv2d_18"); // the 1x1 output layer
    crate::keras_fixtures::set_layer_names(&p, &names);
    let inputs = keras_fixture("inputs_w4.npy");
    let args = [
        "predict",
        "--weights",
        "missing.h5",
        "--images",
        inputs.to_str().unwrap(),
        "--out",
        "p.npy",
        "--device",
        "cpu",
    ];
    env.run(&args)
        .fails_with(&["missing.h5", "missing: conv2d_19", "--allow-partial"]);
    let run = env.run(&[&args[..], &["--allow-partial"]].concat());
    run.ok();
    assert!(
        run.stderr().contains("not in the file: [conv2d_19]"),
        "{}",
        run.stderr()
    );
    let (shape, _) = read_f32(&env.path("p.npy"));
    assert_eq!(shape, [3, 96, 96, 1]);
}

/// A tiny prepared set (train and test) and a checkpoint trained for one epoch.
fn trained() -> TestEnv {
    let env = TestEnv::new();
    env.run(&[
        "synth",
        "-q",
        "--out",
        "raw",
        "--subjects",
        "1",
        "--per-subject",
        "8",
        "--test",
        "5",
        "--test-masks",
    ])
    .ok();
    env.run(&["prepare", "-q", "--raw", "raw", "--out", "."])
        .ok();
    env.run(&[
        "train",
        "-q",
        "--epochs",
        "1",
        "--base-width",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ])
    .ok();
    env
}

#[test]
fn frames_are_preprocessed_with_the_stored_statistics() {
    let env = trained();
    let out = env
        .run(&[
            "predict",
            "--device",
            "cpu",
            "--overlays",
            "ov",
            "--truth",
            "raw/test_masks",
            "--limit",
            "2",
        ])
        .ok();
    assert!(out.contains("predicted 5 images"), "{out}");
    let (shape, probs) = read_f32(&env.path("imgs_mask_test.npy"));
    assert_eq!(shape, [5, 96, 96, 1]);
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
    assert_eq!(
        env.names("preds"),
        [
            "1_pred.png",
            "2_pred.png",
            "3_pred.png",
            "4_pred.png",
            "5_pred.png"
        ]
    );
    let png = image::open(env.path("preds/3_pred.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(png.dimensions(), (96, 96));
    // uint8(prob * 255) of image 3.
    let p = probs[2 * 9216 + 5 * 96 + 7];
    assert_eq!(png.get_pixel(7, 5)[0], (p * 255.0) as u8);
    assert_eq!(env.names("ov"), ["1_overlay.png", "2_overlay.png"]);
    assert_eq!(
        image::open(env.path("ov/1_overlay.png"))
            .unwrap()
            .to_rgb8()
            .dimensions(),
        (580, 420)
    );
    // The same statistics given by hand give the same probabilities.
    let best = nerveseg::keras::read(&env.path("weights/weights.h5")).unwrap();
    let (m, s) = (
        best.meta.stats.unwrap().mean.to_string(),
        best.meta.stats.unwrap().std.to_string(),
    );
    env.run(&[
        "predict",
        "-q",
        "--device",
        "cpu",
        "--no-png",
        "--out",
        "again.npy",
        "--mean",
        &m,
        "--std",
        &s,
    ])
    .ok();
    assert_eq!(read_f32(&env.path("again.npy")).1, probs);
    // bfloat16 convolutions: close to the float32 probabilities, not equal; and the NCHW
    // layout agrees with the default channels-last one to rounding.
    for (out, flag) in [("bf16.npy", "--bf16"), ("nchw.npy", "--no-channels-last")] {
        env.run(&[
            "predict", "-q", "--device", "cpu", "--no-png", "--out", out, flag,
        ])
        .ok();
    }
    let bf16 = read_f32(&env.path("bf16.npy")).1;
    let mean_diff = bf16
        .iter()
        .zip(&probs)
        .map(|(a, b)| (a - b).abs() as f64)
        .sum::<f64>()
        / probs.len() as f64;
    assert!(mean_diff > 0.0 && mean_diff < 1e-2, "{mean_diff}");
    let nchw = read_f32(&env.path("nchw.npy")).1;
    assert!(max_abs_diff(&nchw, &probs) < 1e-5);
    // Without pictures the ids are not needed; with them a missing file is named.
    std::fs::remove_file(env.path("imgs_id_test.npy")).unwrap();
    env.run(&[
        "predict", "-q", "--device", "cpu", "--no-png", "--out", "c.npy",
    ])
    .ok();
    env.run(&["predict", "--device", "cpu"])
        .fails_with(&["pass --ids", "imgs_id_test.npy"]);
}

#[test]
fn a_checkpoint_without_statistics_needs_them_given() {
    let env = trained();
    let keras_file = keras_fixture("unet_w4_full.h5");
    let w = keras_file.to_str().unwrap();
    env.run(&["predict", "--weights", w, "--device", "cpu"])
        .fails_with(&[
            "unet_w4_full.h5 stores no training mean/std",
            "--mean and --std",
            "--stats-from imgs_train.npy",
        ]);
    env.run(&[
        "predict",
        "-q",
        "--weights",
        w,
        "--device",
        "cpu",
        "--stats-from",
        "imgs_train.npy",
    ])
    .ok();
    env.run(&[
        "predict",
        "-q",
        "--weights",
        w,
        "--device",
        "cpu",
        "--mean",
        "90",
        "--std",
        "30",
        "--out",
        "b.npy",
    ])
    .ok();
    assert_eq!(read_f32(&env.path("b.npy")).0, [5, 96, 96, 1]);
    let run = env.run(&["predict", "--weights", w, "--device", "cpu", "--mean", "90"]);
    assert!(
        !run.output.status.success() && run.stderr().contains("--std"),
        "{}",
        run.stderr()
    );
}
