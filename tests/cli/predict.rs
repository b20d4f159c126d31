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
        .fails_with(&["x.npy: expected a float32 array of shape (N, 96, 96, 1), found float32 of shape [2, 64, 64, 1]"]);
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
    .fails_with(&["f.npy: uint8 (N, 420, 580) frames need preprocessing"]);
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
