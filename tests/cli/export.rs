//! `export --torchscript`: the traced module, loaded back through tch's CModule, gives
//! the VarStore network's probabilities; the sidecar says how to preprocess.

use nerveseg::model::Speed;
use tch::{CModule, Device, Kind, Tensor};

use crate::keras_fixtures::keras_fixture;
use crate::testenv::TestEnv;

#[test]
fn the_torchscript_module_gives_the_networks_probabilities() {
    let env = TestEnv::new();
    let w = keras_fixture("unet_w4_weights.h5");
    let w = w.to_str().unwrap();
    // The module has no head output, so a gate on it cannot be honoured.
    env.refuses(
        &[
            "export",
            "--torchscript",
            "m/model.pt",
            "--weights",
            w,
            "--presence",
            "head",
        ],
        &["--presence head", "presence head", "--onnx"],
    );
    // An original Keras file stores no statistics: export asks for them.
    env.run(&["export", "--torchscript", "m/model.pt", "--weights", w])
        .fails_with(&["stores no training mean/std", "--mean"]);
    let out = env
        .run(&[
            "export",
            "--torchscript",
            "m/model.pt",
            "--weights",
            w,
            "--mean",
            "99.5",
            "--std",
            "52.25",
            "--threshold",
            "0.4",
        ])
        .ok();
    assert!(out.contains("wrote m/model.pt and m/model.json"), "{out}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("m/model.json")).unwrap()).unwrap();
    assert_eq!(json["mean"], 99.5);
    assert_eq!(json["std"], 52.25);
    assert_eq!(json["threshold"], 0.4);
    assert_eq!(json["min_size"], 10);
    assert_eq!(json["keep_above_zero"], false);
    assert_eq!(json["presence"], serde_json::Value::Null);
    assert_eq!(json["base_width"], 4);
    assert_eq!(json["input"]["shape"], serde_json::json!(["N", 1, 96, 96]));

    let module = CModule::load(env.path("m/model.pt")).unwrap();
    let plain = Speed {
        channels_last: false,
        bf16: false,
    };
    let net = nerveseg::predict::load(std::path::Path::new(w), Device::Cpu, false, plain).unwrap();
    tch::manual_seed(3);
    // A batch size the trace never saw.
    let x = Tensor::randn([5, 1, 96, 96], (Kind::Float, Device::Cpu));
    let (a, b) = tch::no_grad(|| {
        (
            module.forward_ts(&[&x]).unwrap(),
            net.net.forward(&x).unwrap().mask,
        )
    });
    assert_eq!(a.size(), [5, 1, 96, 96]);
    let diff = (&a - &b).abs().max().double_value(&[]);
    assert!(diff <= 1e-6, "max |diff| {diff}");
    // Probabilities, not logits, and not all alike.
    assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 1.0);
    assert!(a.std(true).double_value(&[]) > 0.0);
}

#[test]
fn a_trained_checkpoint_exports_its_statistics_and_frame_size() {
    let env = TestEnv::new();
    env.synth_small(1, 6, 0);
    env.prepare_train("raw", ".");
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
    env.run(&["export", "--torchscript", "model.pt"]).ok();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("model.json")).unwrap()).unwrap();
    let file = nerveseg::keras::read(&env.path("weights/weights.h5")).unwrap();
    assert_eq!(json["mean"].as_f64(), file.meta.stats.map(|s| s.mean));
    assert_eq!(json["std"].as_f64(), file.meta.stats.map(|s| s.std));
    assert_eq!(json["frame_size"], serde_json::json!([420, 580]));
    assert_eq!(json["epoch"], 1);
    // Nothing half-written beside them.
    assert!(env.partial_files().is_empty());
}
