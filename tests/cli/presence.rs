//! Presence gating: `--presence mask` empties the frames judged empty, the sweep
//! searches the presence threshold and prints the rule as flags, evaluate splits the
//! score into empty frames and frames with a nerve, and a gate on a head that the
//! checkpoint lacks is refused.

use serde_json::Value;

use crate::keras_fixtures::read_f32;
use crate::testenv::TestEnv;
use crate::train::TINY;

fn evaluate(env: &TestEnv, extra: &[&str]) -> Value {
    let base = [
        "evaluate",
        "--json",
        "--device",
        "cpu",
        "--validation-split",
        "1",
    ];
    let out = env.run(&[&base[..], extra].concat()).ok();
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn presence_gates_empty_frames_and_the_sweep_searches_it() {
    let env = TestEnv::new();
    env.synth_small(3, 6, 1);
    env.prepare_train("raw", ".");
    env.run(&[&["train", "-q", "--epochs", "2", "--lr", "1e-3"][..], &TINY].concat())
        .ok();
    // A low probability threshold gives every frame a mask: the gate then decides.
    let open = evaluate(&env, &["--threshold", "0"]);
    let n = open["images"].as_u64().unwrap();
    assert_eq!(n, 18);
    let d = &open["detection"];
    assert_eq!(
        d["tn"].as_u64().unwrap() + d["fn"].as_u64().unwrap(),
        0,
        "{open}"
    );
    assert!(open["presence"].is_null());
    // The split by truth adds up to the total.
    let bt = &open["by_truth"];
    let (ne, nn) = (
        bt["empty"]["images"].as_u64().unwrap(),
        bt["nerve"]["images"].as_u64().unwrap(),
    );
    assert_eq!(ne + nn, n);
    let total = (ne as f64 * bt["empty"]["kaggle_dice"].as_f64().unwrap()
        + nn as f64 * bt["nerve"]["kaggle_dice"].as_f64().unwrap())
        / n as f64;
    assert!((total - open["kaggle_dice"].as_f64().unwrap()).abs() < 1e-9);
    // A gate no frame passes empties every mask: the empty frames score 1, the rest 0.
    let shut = evaluate(
        &env,
        &[
            "--threshold",
            "0",
            "--presence",
            "mask",
            "--presence-threshold",
            "1.01",
        ],
    );
    let d = &shut["detection"];
    assert_eq!(
        d["tp"].as_u64().unwrap() + d["fp"].as_u64().unwrap(),
        0,
        "{shut}"
    );
    assert!((shut["kaggle_dice"].as_f64().unwrap() - ne as f64 / n as f64).abs() < 1e-9);
    assert_eq!(shut["presence"]["source"], "mask");
    // The sweep tries the gate and reports its best rule as flags.
    let swept = evaluate(&env, &["--sweep"]);
    let grid = swept["sweep"]["grid"].as_array().unwrap();
    assert_eq!(grid.len(), 6 * 9 * 8);
    assert!(grid.iter().any(|p| p["presence"]["source"] == "mask"));
    let best = &swept["sweep"]["best"];
    let top = grid
        .iter()
        .map(|p| p["kaggle_dice"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(best["kaggle_dice"].as_f64().unwrap(), top);
    let flags = best["flags"].as_str().unwrap();
    assert!(flags.starts_with("--threshold "), "{flags}");
    // The flags reproduce the best score.
    let args: Vec<&str> = flags.split(' ').collect();
    let again = evaluate(&env, &args);
    assert!(
        (again["kaggle_dice"].as_f64().unwrap() - top).abs() < 1e-12,
        "{flags}"
    );
    // The checkpoint has no presence head.
    env.run(&["evaluate", "--device", "cpu", "--presence", "head"])
        .fails_with(&["--presence head needs checkpoints trained with --presence-head"]);
    env.run(&["prepare", "-q", "--raw", "raw", "--out", ".", "--test-only"])
        .ok();
    env.run(&["predict", "-q", "--device", "cpu", "--no-png"])
        .ok();
    // predict's gate empties the maps it writes, the PNGs and the array alike.
    let open_maps = read_f32(&env.path("imgs_mask_test.npy")).1;
    assert!(open_maps.iter().any(|&p| p > 0.0));
    let gate = ["--presence", "mask", "--presence-threshold"];
    let out = env
        .run(
            &[
                &["predict", "--device", "cpu", "--out", "shut.npy"][..],
                &gate,
                &["1.01"],
            ]
            .concat(),
        )
        .ok();
    assert!(out.contains("judged 1 of 1 frame empty"), "{out}");
    let (shape, shut) = read_f32(&env.path("shut.npy"));
    assert_eq!(shape[0], 1);
    assert!(shut.iter().all(|&p| p == 0.0));
    let png = std::fs::read_dir(env.path("preds"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let png = image::open(png.path()).unwrap().to_luma8();
    assert!(png.pixels().all(|p| p.0[0] == 0));
    // A gate every frame passes changes nothing.
    env.run(
        &[
            &[
                "predict", "-q", "--device", "cpu", "--no-png", "--out", "all.npy",
            ][..],
            &gate,
            &["0"],
        ]
        .concat(),
    )
    .ok();
    assert_eq!(read_f32(&env.path("all.npy")).1, open_maps);
    env.run(&["submit", "--presence", "mean"])
        .fails_with(&["--presence mean needs imgs_presence_test.npy"]);
    env.run(&[
        "submit",
        "-q",
        "--presence",
        "mask",
        "--presence-threshold",
        "1.01",
    ])
    .ok();
    let csv = std::fs::read_to_string(env.path("submission.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.ends_with(',')), "{csv}");
}
