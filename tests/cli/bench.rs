//! `nerveseg bench`: each stage does the real work on small inputs and prints one JSON line.

use crate::keras_fixtures::read_f32;
use crate::testenv::TestEnv;

fn json(out: &str) -> serde_json::Value {
    let last = out.trim_end().lines().last().expect("a JSON line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A tiny prepared set and its model-ready arrays x.npy / y.npy.
fn prepared() -> TestEnv {
    let env = TestEnv::new();
    env.synth_small(1, 8, 2);
    env.run(&["prepare", "-q", "--raw", "raw", "--out", "."])
        .ok();
    let out = env
        .run(&[
            "bench",
            "resize",
            "--save-images",
            "x.npy",
            "--save-masks",
            "y.npy",
        ])
        .ok();
    let j = json(&out);
    assert_eq!(j["stage"], "resize");
    assert_eq!(j["images"], 8);
    assert!(j["seconds"].as_f64().unwrap() > 0.0, "{out}");
    env
}

#[test]
fn resize_saves_model_ready_arrays() {
    let env = prepared();
    let (shape, x) = read_f32(&env.path("x.npy"));
    assert_eq!(shape, [8, 96, 96, 1]);
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(
        mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
        "{mean} {var}"
    );
    let (shape, y) = read_f32(&env.path("y.npy"));
    assert_eq!(shape, [8, 96, 96, 1]);
    // Masks / 255: every value is a whole number of 255ths, some soft edges among them.
    assert!(y.iter().all(|&v| {
        let k = v * 255.0;
        (0.0..=1.0).contains(&v) && (k - k.round()).abs() < 1e-3
    }));
    assert!(y.iter().any(|&v| v > 0.0 && v < 1.0));
}

#[test]
fn train_step_and_infer_time_the_network() {
    let env = prepared();
    let args = [
        "--images",
        "x.npy",
        "--masks",
        "y.npy",
        "--batch-size",
        "4",
        "--warmup",
        "1",
        "--threads",
        "1",
    ];
    for (stage, extra, key, runs) in [
        ("train-step", vec!["--steps", "3"], "step_seconds", 3),
        (
            "train-step",
            vec!["--steps", "2", "--amp"],
            "step_seconds",
            2,
        ),
        (
            "infer",
            vec!["--batches", "3", "--bf16"],
            "batch_seconds",
            3,
        ),
        (
            "infer",
            vec!["--batches", "2", "--no-channels-last"],
            "batch_seconds",
            2,
        ),
    ] {
        let mut a = vec!["bench", stage];
        a.extend(args);
        a.extend(&extra);
        let out = env.run(&a).ok();
        let j = json(&out);
        assert_eq!(j["stage"], stage, "{out}");
        assert_eq!(j["framework"], "nerveseg");
        assert_eq!(j["threads"], 1);
        assert_eq!(j["device"], "cpu");
        assert_eq!(
            j["bf16"],
            extra.contains(&"--amp") || extra.contains(&"--bf16")
        );
        assert_eq!(j["channels_last"], !extra.contains(&"--no-channels-last"));
        let times: Vec<f64> = j[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(times.len(), runs, "{out}");
        assert!(times.iter().all(|&t| t > 0.0));
        let median = j["median_s"].as_f64().unwrap();
        assert!(times.iter().any(|&t| t <= median) && times.iter().any(|&t| t >= median));
        let rate = j["images_per_s"].as_f64().unwrap();
        assert!((rate - 4.0 / median).abs() < 1e-9 * rate, "{out}");
    }
}

#[test]
fn encode_times_the_submission_encoding() {
    let env = prepared();
    let j = json(&env.run(&["bench", "encode", "--masks", "y.npy"]).ok());
    assert_eq!(j["stage"], "encode");
    assert_eq!(j["masks"], 8);
    assert!(j["seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn wrong_inputs_are_explained() {
    let env = prepared();
    // uint8 frames where model-ready float32 is needed.
    env.run(&[
        "bench",
        "train-step",
        "--images",
        "imgs_train.npy",
        "--masks",
        "y.npy",
    ])
    .fails_with(&["imgs_train.npy", "float32"]);
    env.run(&["bench", "infer", "--images", "nothing.npy"])
        .fails_with(&["nothing.npy"]);
    // More rows asked per batch than the file has.
    env.run(&["bench", "infer", "--images", "x.npy", "--batch-size", "9"])
        .fails_with(&["x.npy", "at least 9 rows"]);
    env.run(&["bench", "train-step", "--images", "x.npy"])
        .fails_with(&["--masks"]);
    env.run(&["bench", "encode", "--masks", "imgs_train.npy"])
        .fails_with(&["imgs_train.npy"]);
}
