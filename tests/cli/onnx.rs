//! `export --onnx`: the graph, run by tract (a pure-Rust ONNX runtime), gives `predict`'s
//! probabilities and `submit`'s masks for the same frames, for the tutorial's network and
//! a BatchNorm/ELU/dropout network with a presence head at another input size, under
//! every mask rule.

use std::path::Path;

use tract_onnx::prelude::*;

use crate::family::VARIANT;
use crate::keras_fixtures::{max_abs_diff, read_f32};
use crate::testenv::TestEnv;
use crate::tiny::{mask_scores, middle_of, raw_frames, submitted, train_tiny, trained, H, W};

/// What the graph gave for a batch of frames.
struct Outputs {
    probabilities: Vec<f32>,
    masks: Vec<u8>,
    presence: Option<Vec<f32>>,
}

/// Runs `path` on `n` frames of H x W with tract.
fn run_onnx(path: &Path, frames: &[u8], n: usize) -> Outputs {
    run_onnx_at(path, frames, n, (H, W))
}

/// Runs `path` on `n` frames of `h` x `w` with tract.
fn run_onnx_at(path: &Path, frames: &[u8], n: usize, (h, w): (usize, usize)) -> Outputs {
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, u8::fact([n, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[n, h, w], frames).unwrap();
    let out = model.run(tvec!(input.into())).unwrap();
    let f32s = |t: &TValue| {
        t.to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    };
    Outputs {
        probabilities: f32s(&out[0]),
        masks: out[1]
            .to_plain_array_view::<u8>()
            .unwrap()
            .iter()
            .copied()
            .collect(),
        presence: out.get(2).map(f32s),
    }
}

/// The graph's masks against submit's (or predict's): at least 99.9% of pixels equal
/// and the same frames empty; returns how many frames have a mask.
fn compare_masks(got: &[u8], want: &[Vec<u8>]) -> usize {
    let pixels = want.first().map_or(0, Vec::len);
    assert_eq!(got.len(), want.len() * pixels);
    let mut differ = 0;
    for (k, (g, w)) in got.chunks(pixels).zip(want).enumerate() {
        assert_eq!(
            g.contains(&255),
            w.contains(&255),
            "frame {k}: judged empty differently"
        );
        assert!(g.iter().all(|&v| v == 0 || v == 255));
        differ += g.iter().zip(w).filter(|(a, b)| a != b).count();
    }
    assert!(
        differ * 1000 <= got.len(),
        "{differ} of {} pixels differ",
        got.len()
    );
    want.iter().filter(|m| m.contains(&255)).count()
}

/// The tiny checkpoint alone, as `trained` predicted with it.
const ALONE: [&str; 2] = ["--weights", "w/weights.h5"];

/// Exports `models` (the --weights and --tta flags) with `rule` and checks the graph
/// against predict and submit (which `trained` or the caller ran with the same flags);
/// returns the graph's outputs.
fn export_and_compare(env: &TestEnv, models: &[&str], rule: &[&str], map_pixels: usize) -> Outputs {
    let args = [&["export", "--onnx", "m/model.onnx"][..], models, rule].concat();
    let out = env.run(&args).ok();
    assert!(out.contains("opset 17"), "{out}");
    let n = raw_frames(env);
    let frames = std::fs::read(env.path("clip.raw")).unwrap();
    let got = run_onnx(&env.path("m/model.onnx"), &frames, n);
    let maps = read_f32(&env.path("imgs_mask_test.npy")).1;
    assert_eq!(maps.len(), n * map_pixels);
    let diff = max_abs_diff(&got.probabilities, &maps);
    assert!(
        diff <= 1e-4,
        "probabilities differ from predict's by {diff}"
    );
    let kept = compare_masks(&got.masks, &submitted(env));
    assert!(
        kept > 0,
        "no mask kept: the comparison would be of empty masks"
    );
    // One frame alone gives the same as in the batch (the batch is dynamic).
    let one = run_onnx(&env.path("m/model.onnx"), &frames[..H * W], 1);
    assert_eq!(one.masks, got.masks[..H * W]);
    assert!(max_abs_diff(&one.probabilities, &got.probabilities[..map_pixels]) <= 1e-5);
    got
}

#[test]
fn the_tutorials_network_gives_predict_and_submits_results() {
    let env = TestEnv::new();
    let rule = ["--threshold", "0.3", "--min-size", "50"];
    trained(&env, &[], &rule);
    let got = export_and_compare(&env, &ALONE, &rule, 96 * 96);
    assert!(got.presence.is_none());
    // The other rules: a `mask` presence gate between the frames' scores (the mean of a
    // map's top 1%), and --keep-above-zero.
    let scores = mask_scores(&env);
    let middle = middle_of(&scores);
    let gate = [
        "--presence",
        "mask",
        "--presence-threshold",
        middle.as_str(),
    ];
    for extra in [&gate[..], &["--keep-above-zero"]] {
        let rule = [&rule[..], extra].concat();
        env.run(&[&["submit", "-q"][..], &rule].concat()).ok();
        export_and_compare(&env, &ALONE, &rule, 96 * 96);
    }
    real_frames_give_predicts_masks(&env, &rule);
    let json = std::fs::read_to_string(env.path("m/model.onnx.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["opset"], 17);
    assert_eq!(v["input"]["frames"]["shape"][1], 420);
    assert_eq!(v["min_size"], 50);

    // Refusals, each naming what to do.
    env.refuses(
        &[
            "export",
            "--onnx",
            "m/x.onnx",
            "--weights",
            "w/weights.h5",
            "--presence",
            "head",
        ],
        &["w/weights.h5", "no presence head", "--presence mask"],
    );
    // TorchScript's export into the same folder keeps both descriptions.
    env.run(&[
        "export",
        "--torchscript",
        "m/model.pt",
        "--weights",
        "w/weights.h5",
    ])
    .ok();
    let torchscript = std::fs::read_to_string(env.path("m/model.json")).unwrap();
    assert!(torchscript.contains("TorchScript"), "{torchscript}");
    assert_eq!(
        std::fs::read_to_string(env.path("m/model.onnx.json")).unwrap(),
        json
    );
    // clap's own usage errors (several lines, with the usage).
    for (args, needles) in [
        (
            &["export", "--torchscript", "m.pt", "--frame-size", "420x580"][..],
            &["--frame-size", "--torchscript"][..],
        ),
        (
            &["export", "--weights", "w/weights.h5"],
            &["--torchscript", "--onnx"],
        ),
    ] {
        let run = env.run(args);
        assert!(!run.output.status.success(), "{args:?}");
        let err = run.stderr();
        assert!(needles.iter().all(|n| err.contains(n)), "{args:?}: {err}");
    }
    assert!(!env.path("m.pt").exists());
}

/// The family's other network (BatchNorm, ELU, dropout, a presence head, 32 x 48
/// input), with its presence head's gate, and the mean of head and mask.
#[test]
fn a_batchnorm_variant_with_a_presence_head_at_another_input_size_exports() {
    let env = TestEnv::new();
    let rule = ["--threshold", "0.3", "--min-size", "50"];
    trained(&env, &VARIANT, &rule);
    // A gate between the frames' head probabilities, so that it empties some masks.
    let scores = read_f32(&env.path("imgs_presence_test.npy")).1;
    let middle = middle_of(&scores);
    let gate = [
        "--presence",
        "head",
        "--presence-threshold",
        middle.as_str(),
    ];
    let ungated = submitted(&env);
    env.run(&[&["submit", "-q"][..], &rule, &gate].concat())
        .ok();
    let gated = submitted(&env);
    let emptied = ungated.iter().zip(&gated).filter(|(a, b)| a != b).count();
    assert!(emptied > 0, "the gate emptied no mask");
    let got = export_and_compare(&env, &ALONE, &[&rule[..], &gate].concat(), 32 * 48);
    let presence = got.presence.expect("a presence output");
    let diff = max_abs_diff(&presence, &scores);
    assert!(diff <= 1e-4, "presence differs from predict's by {diff}");
    // The mean of head and mask at the same threshold.
    let mean = [
        &rule[..],
        &["--presence", "mean", "--presence-threshold", &middle],
    ]
    .concat();
    env.run(&[&["submit", "-q"][..], &mean].concat()).ok();
    export_and_compare(&env, &ALONE, &mean, 32 * 48);
    // In an ensemble, the head's gate needs every member's head, and the refusal names
    // the one without.
    train_tiny(&env, "w2", &[]);
    let both = ["--weights", "w/weights.h5", "--weights", "w2/weights.h5"];
    env.refuses(
        &[&["export", "--onnx", "m/both.onnx"][..], &both, &gate].concat(),
        &["w2/weights.h5 has no presence head", "--presence mask"],
    );
}

/// The three real usgra-seg frames of the fixtures (512 x 512 gray), through a graph
/// exported for their size and through `predict` on their folder: the same masks.
fn real_frames_give_predicts_masks(env: &TestEnv, rule: &[&str]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames/usgra");
    std::fs::create_dir_all(env.path("real")).unwrap();
    let mut frames = Vec::new();
    for (k, file) in ["images/0000.png", "images/0001.png", "test/images/0004.png"]
        .iter()
        .enumerate()
    {
        let frame = image::open(dir.join(file)).unwrap().to_luma8();
        assert_eq!(frame.dimensions(), (512, 512));
        frames.extend_from_slice(frame.as_raw());
        std::fs::copy(dir.join(file), env.path(&format!("real/{k}.png"))).unwrap();
    }
    let predict = [
        "predict",
        "-q",
        "--images",
        "real",
        "--out-dir",
        "pred",
        "--device",
        "cpu",
    ];
    env.run(&[&predict[..], &ALONE, rule].concat()).ok();
    let export = ["export", "--onnx", "m/real.onnx", "--frame-size", "512x512"];
    env.run(&[&export[..], &ALONE, rule].concat()).ok();
    let got = run_onnx_at(&env.path("m/real.onnx"), &frames, 3, (512, 512));
    let want: Vec<Vec<u8>> = (0..3)
        .map(|k| {
            image::open(env.path(&format!("pred/{k}_mask.png")))
                .unwrap()
                .to_luma8()
                .into_raw()
        })
        .collect();
    let kept = compare_masks(&got.masks, &want);
    assert!(
        kept > 0,
        "no mask on the real frames: the comparison would be of empty masks"
    );
}

/// Two checkpoints of different input sizes, with TTA, in one graph: predict's average.
#[test]
fn an_ensemble_with_tta_exports_as_predict_averages_it() {
    let env = TestEnv::new();
    let rule = ["--threshold", "0.3", "--min-size", "50"];
    trained(&env, &[], &rule);
    train_tiny(&env, "w2", &["--input-size", "64x80", "--seed", "2"]);
    let models = [
        "--weights",
        "w/weights.h5",
        "--weights",
        "w2/weights.h5",
        "--tta",
    ];
    let predict = ["predict", "-q", "--no-png", "--device", "cpu"];
    env.run(&[&predict[..], &models, &rule].concat()).ok();
    env.run(&[&["submit", "-q"][..], &rule].concat()).ok();
    export_and_compare(&env, &models, &rule, 96 * 96);
    // TorchScript takes one checkpoint, and says what to use instead.
    env.refuses(
        &[
            "export",
            "--torchscript",
            "m.pt",
            "--weights",
            "w/weights.h5",
            "--weights",
            "w2/weights.h5",
        ],
        &["--torchscript takes one --weights", "--onnx"],
    );
}
