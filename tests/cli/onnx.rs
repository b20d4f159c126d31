//! `export --onnx`: the graph, run by tract (a pure-Rust ONNX runtime), gives `predict`'s
//! probabilities and `submit`'s masks for the same frames, for the tutorial's network, a
//! BatchNorm/ELU/dropout variant at another input size, and a presence head with its gate.

use std::path::Path;

use nerveseg::data::npy::NpyReader;
use tract_onnx::prelude::*;

use crate::testenv::TestEnv;
use crate::tiny::{raw_frames, submitted, trained, H, W};

/// What the graph gave for a batch of frames.
struct Outputs {
    probabilities: Vec<f32>,
    masks: Vec<u8>,
    presence: Option<Vec<f32>>,
}

/// Runs `path` on `n` frames of H x W with tract.
fn run_onnx(path: &Path, frames: &[u8], n: usize) -> Outputs {
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, u8::fact([n, H, W]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[n, H, W], frames).unwrap();
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

fn read_f32(env: &TestEnv, name: &str) -> Vec<f32> {
    NpyReader::open(&env.path(name))
        .unwrap()
        .read_all::<f32>()
        .unwrap()
}

/// Halfway between the lowest and highest score, as a flag's value.
fn middle_of(scores: &[f32]) -> String {
    let (lo, hi) = scores
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    format!("{}", (lo + hi) / 2.0)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The graph's masks against submit's: at least 99.9% of pixels equal and the same
/// frames empty; returns how many frames have a mask.
fn compare_masks(got: &[u8], want: &[Vec<u8>]) -> usize {
    assert_eq!(got.len(), want.len() * H * W);
    let mut differ = 0;
    for (k, (g, w)) in got.chunks(H * W).zip(want).enumerate() {
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

/// Exports `w/weights.h5` with `rule` and checks the graph against predict and submit
/// (which `trained` or the caller ran with the same rule); returns the graph's outputs.
fn export_and_compare(env: &TestEnv, rule: &[&str], map_pixels: usize) -> Outputs {
    let mut args = vec![
        "export",
        "--onnx",
        "m/model.onnx",
        "--weights",
        "w/weights.h5",
    ];
    args.extend(rule);
    let out = env.run(&args).ok();
    assert!(out.contains("opset 17"), "{out}");
    let n = raw_frames(env);
    let frames = std::fs::read(env.path("clip.raw")).unwrap();
    let got = run_onnx(&env.path("m/model.onnx"), &frames, n);
    let maps = read_f32(env, "imgs_mask_test.npy");
    assert_eq!(maps.len(), n * map_pixels);
    let diff = max_diff(&got.probabilities, &maps);
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
    assert!(max_diff(&one.probabilities, &got.probabilities[..map_pixels]) <= 1e-5);
    got
}

#[test]
fn the_tutorials_network_gives_predict_and_submits_results() {
    let env = TestEnv::new();
    let rule = ["--threshold", "0.3", "--min-size", "50"];
    trained(&env, &[], &rule);
    let got = export_and_compare(&env, &rule, 96 * 96);
    assert!(got.presence.is_none());
    // The other rules: a `mask` presence gate between the frames' scores (the mean of a
    // map's top 1%), and --keep-above-zero.
    let maps = read_f32(&env, "imgs_mask_test.npy");
    let scores: Vec<f32> = maps
        .chunks(96 * 96)
        .map(|m| {
            let mut v = m.to_vec();
            v.sort_by(|a, b| b.total_cmp(a));
            v[..92].iter().sum::<f32>() / 92.0
        })
        .collect();
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
        export_and_compare(&env, &rule, 96 * 96);
    }
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

#[test]
fn a_batchnorm_elu_dropout_variant_at_another_input_size_exports() {
    let env = TestEnv::new();
    let network = [
        "--norm",
        "batch",
        "--activation",
        "elu",
        "--dropout",
        "0.1",
        "--input-size",
        "64x80",
    ];
    let rule = ["--threshold", "0.3", "--min-size", "50"];
    trained(&env, &network, &rule);
    export_and_compare(&env, &rule, 64 * 80);
}

#[test]
fn a_presence_head_and_its_gate_export() {
    let env = TestEnv::new();
    let rule = ["--threshold", "0.3", "--min-size", "50"];
    trained(&env, &["--presence-head"], &rule);
    // A gate between the frames' head probabilities, so that it empties some masks.
    let scores = read_f32(&env, "imgs_presence_test.npy");
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
    let got = export_and_compare(&env, &[&rule[..], &gate].concat(), 96 * 96);
    let presence = got.presence.expect("a presence output");
    let diff = max_diff(&presence, &scores);
    assert!(diff <= 1e-4, "presence differs from predict's by {diff}");
    // The mean of head and mask at the same threshold.
    let mean = [
        &rule[..],
        &["--presence", "mean", "--presence-threshold", &middle],
    ]
    .concat();
    env.run(&[&["submit", "-q"][..], &mean].concat()).ok();
    export_and_compare(&env, &mean, 96 * 96);
}
