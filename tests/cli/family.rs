//! The model family end to end: a variant trains, and its checkpoint alone is enough for
//! every later command (predict, evaluate, submit, export, inspect, an ensemble with
//! another network); flags that contradict a starting checkpoint are refused; a file
//! claiming a network nerveseg cannot build is refused with one line naming it.

use crate::keras_fixtures::{keras_fixture, read_f32};
use crate::testenv::TestEnv;
use crate::train::TINY;

/// A tiny prepared set with test frames: 2 subjects x 6 frames, 3 test frames.
fn prepared() -> TestEnv {
    let env = TestEnv::new();
    env.synth_small(2, 6, 3);
    env.run(&["prepare", "-q", "--raw", "raw", "--out", "."])
        .ok();
    env
}

/// A BatchNorm, ELU, dropout, presence-head network at 32 x 48, trained on image Dice.
pub const VARIANT: [&str; 12] = [
    "--input-size",
    "32x48",
    "--norm",
    "batch",
    "--activation",
    "elu",
    "--dropout",
    "0.1",
    "--presence-head",
    "--loss",
    "image-dice",
    "--no-channels-last",
];

fn train_variant(env: &TestEnv, out: &str) {
    env.run(
        &[
            &["train", "-q", "--epochs", "2", "--out-dir", out][..],
            &VARIANT,
            &TINY,
        ]
        .concat(),
    )
    .ok();
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_variants_checkpoint_alone_drives_every_command() {
    let env = prepared();
    train_variant(&env, "w");
    let inspect = env.run(&["inspect", "w/weights.h5"]).ok();
    assert!(
        inspect.contains(
            "network: U-Net of 5 levels, base width 2, input 32 x 48, BatchNorm, elu, spatial \
             dropout 0.1, presence head"
        ),
        "{inspect}"
    );
    // predict: no architecture flag, maps at the network's input size.
    env.run(&[
        "predict",
        "-q",
        "--weights",
        "w/weights.h5",
        "--device",
        "cpu",
    ])
    .ok();
    let (shape, probs) = read_f32(&env.path("imgs_mask_test.npy"));
    assert_eq!(shape[1..], [32, 48, 1]);
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(env.path("imgs_presence_test.npy").exists());
    env.run(&["submit", "-q"]).ok();
    let csv = std::fs::read_to_string(env.path("submission.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + shape[0] as usize);
    // evaluate scores the run's validation frames as training did (moving statistics,
    // no dropout): its dice_coef is the epoch's val_dice_coef.
    let v = json(
        &env.run(&[
            "evaluate",
            "--weights",
            "w/weights.h5",
            "--device",
            "cpu",
            "--json",
        ])
        .ok(),
    );
    let file = nerveseg::keras::read(&env.path("w/weights.h5")).unwrap();
    let epoch = file.meta.epoch.unwrap() as usize;
    let history = std::fs::read_to_string(env.path("w/history.csv")).unwrap();
    let row: Vec<&str> = history.lines().nth(epoch).unwrap().split(',').collect();
    let val_dice: f64 = row[3].parse().unwrap();
    let dice = v["dice_coef"].as_f64().unwrap();
    assert!((dice - val_dice).abs() < 1e-5, "{dice} vs {val_dice}");
    // export: the traced input size goes into model.json.
    env.run(&[
        "export",
        "--torchscript",
        "m.pt",
        "--weights",
        "w/weights.h5",
    ])
    .ok();
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("m.json")).unwrap()).unwrap();
    assert_eq!(side["input"]["shape"], serde_json::json!(["N", 1, 32, 48]));
    assert!(side["network"].as_str().unwrap().contains("BatchNorm"));
}

#[test]
fn an_ensemble_of_different_networks_predicts_at_the_first_ones_size() {
    let env = prepared();
    train_variant(&env, "a");
    env.run(
        &[
            &["train", "-q", "--epochs", "1", "--out-dir", "b"][..],
            &TINY,
        ]
        .concat(),
    )
    .ok();
    env.run(&[
        "predict",
        "-q",
        "--weights",
        "a/weights.h5",
        "--weights",
        "b/weights.h5",
        "--tta",
        "--device",
        "cpu",
        "--out",
        "both.npy",
    ])
    .ok();
    let (shape, both) = read_f32(&env.path("both.npy"));
    assert_eq!(shape[1..], [32, 48, 1]);
    env.run(&[
        "predict",
        "-q",
        "--weights",
        "a/weights.h5",
        "--tta",
        "--device",
        "cpu",
        "--out",
        "a.npy",
    ])
    .ok();
    let (_, a) = read_f32(&env.path("a.npy"));
    // The second network (96 x 96) moved the mean.
    let d = crate::keras_fixtures::max_abs_diff(&a, &both);
    assert!(d > 1e-4, "{d}");
}

#[test]
fn flags_that_contradict_the_starting_checkpoint_are_refused() {
    let env = prepared();
    train_variant(&env, "w");
    env.run(
        &[
            &[
                "train",
                "--epochs",
                "3",
                "--out-dir",
                "w",
                "--resume",
                "--norm",
                "none",
            ][..],
            &VARIANT[..2],
            &TINY,
        ]
        .concat(),
    )
    .fails_with(&[
        "w/last.h5 holds U-Net of 5 levels",
        "--norm none (the checkpoint's is batch)",
        "without --resume",
    ]);
    let init = keras_fixture("unet_w4_weights.h5");
    env.run(&[
        "train",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--init-weights",
        init.to_str().unwrap(),
        "--input-size",
        "64x64",
        "--out-dir",
        "x",
    ])
    .fails_with(&[
        "--input-size 64x64 (the checkpoint's is 96x96)",
        "or start a fresh model without --init-weights",
    ]);
    assert!(!env.path("x").exists());
    // A flag that agrees is no contradiction: the run resumes.
    env.run(
        &[
            &["train", "-q", "--epochs", "3", "--out-dir", "w", "--resume"][..],
            &VARIANT,
            &TINY,
        ]
        .concat(),
    )
    .ok();
}

#[test]
fn a_file_claiming_a_network_nerveseg_cannot_build_is_refused() {
    let env = prepared();
    train_variant(&env, "w");
    let set = |value: &str| {
        std::fs::copy(env.path("w/weights.h5"), env.path("bad.h5")).unwrap();
        let f = hdf5::File::open_rw(env.path("bad.h5")).unwrap();
        f.delete_attr("nerveseg_network").unwrap();
        let v: hdf5::types::VarLenUnicode = value.parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .create("nerveseg_network")
            .unwrap()
            .write_scalar(&v)
            .unwrap();
    };
    let record = nerveseg::keras::read(&env.path("w/weights.h5"))
        .unwrap()
        .network()
        .unwrap()
        .to_json();
    for (from, to, needle) in [
        ("\"levels\":5", "\"levels\":7", "7 levels"),
        ("[32,48]", "[32,50]", "multiple of 16"),
        ("\"elu\"", "\"swish\"", "'swish'"),
    ] {
        set(&record.replace(from, to));
        let err = env
            .run(&["predict", "--weights", "bad.h5", "--device", "cpu"])
            .fails_with(&["bad.h5", needle]);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // A record that is a network, but not the one the weights hold.
    set(&record.replace("\"batch\"", "\"none\""));
    env.run(&["predict", "--weights", "bad.h5", "--device", "cpu"])
        .fails_with(&["bad.h5", "BatchNormalization"]);
}

/// `--recipe modern` is exactly the flags it stands for (the same history, the same
/// network), and a flag given beside it sets its own value.
#[test]
fn the_modern_recipe_is_its_flags() {
    let env = prepared();
    let run = |dir: &str, extra: &[&str]| {
        let base = ["train", "-q", "--out-dir", dir, "--epochs", "2"];
        env.run(&[&base[..], &TINY, extra].concat()).ok();
        let text = std::fs::read_to_string(env.path(&format!("{dir}/history.csv"))).unwrap();
        // Without the seconds column.
        let rows: Vec<String> = text
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
            .collect();
        let network = env.run(&["inspect", &format!("{dir}/weights.h5")]).ok();
        let network = network
            .lines()
            .find(|l| l.contains("network:"))
            .map(str::to_owned);
        (rows, network)
    };
    let spelt = run(
        "spelt",
        &[
            "--augment",
            "--reduce-lr-on-plateau",
            "--lr-factor",
            "0.5",
            "--lr-patience",
            "5",
            "--norm",
            "batch",
            "--lr",
            "0.001",
        ],
    );
    assert!(
        spelt.1.as_deref().unwrap().contains("BatchNorm"),
        "{spelt:?}"
    );
    assert_eq!(run("recipe", &["--recipe", "modern"]), spelt);
    // Flags beside the recipe win: the rate and the normalisation.
    let (rows, network) = run(
        "beside",
        &["--recipe", "modern", "--lr", "0.01", "--norm", "none"],
    );
    let lr = rows[0].split(',').position(|c| c == "lr").unwrap();
    let first: f64 = rows[1].split(',').nth(lr).unwrap().parse().unwrap();
    assert_eq!(first, 0.01f32 as f64);
    assert!(!network.unwrap_or_default().contains("BatchNorm"));
}
