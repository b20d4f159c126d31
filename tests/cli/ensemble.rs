//! Ensembles and test-time flips: `--weights A --weights B` predicts the mean of A's and
//! B's probabilities, and `--tta` the mean of a frame's and its mirror's (flipped back).

use nerveseg::data::npy::{self, NpyReader};

use crate::testenv::TestEnv;

fn read(env: &TestEnv, name: &str) -> Vec<f32> {
    NpyReader::open(&env.path(name))
        .unwrap()
        .read_all::<f32>()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Two tiny checkpoints of different seeds, trained on the same small set.
fn two_models(env: &TestEnv) {
    env.synth_small(1, 8, 3);
    env.run(&["prepare", "-q", "--raw", "raw", "--out", "."])
        .ok();
    for (dir, seed) in [("a", "1"), ("b", "2")] {
        env.run(&[
            "train",
            "-q",
            "--epochs",
            "1",
            "--base-width",
            "2",
            "--batch-size",
            "4",
            "--seed",
            seed,
            "--out-dir",
            dir,
            "--device",
            "cpu",
        ])
        .ok();
    }
}

fn predict(env: &TestEnv, weights: &[&str], images: &str, out: &str, extra: &[&str]) {
    let mut args = vec![
        "predict", "-q", "--images", images, "--out", out, "--no-png", "--device", "cpu",
    ];
    for w in weights {
        args.extend(["--weights", w]);
    }
    args.extend(extra);
    env.run(&args).ok();
}

#[test]
fn an_ensemble_is_the_mean_of_its_members() {
    let env = TestEnv::new();
    two_models(&env);
    predict(&env, &["a/weights.h5"], "imgs_test.npy", "pa.npy", &[]);
    predict(&env, &["b/weights.h5"], "imgs_test.npy", "pb.npy", &[]);
    predict(
        &env,
        &["a/weights.h5", "b/weights.h5"],
        "imgs_test.npy",
        "pab.npy",
        &[],
    );
    let (a, b, ab) = (
        read(&env, "pa.npy"),
        read(&env, "pb.npy"),
        read(&env, "pab.npy"),
    );
    assert!(
        max_diff(&a, &b) > 1e-4,
        "the two members agree: nothing is tested"
    );
    let mean: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y) / 2.0).collect();
    assert!(max_diff(&ab, &mean) <= 1e-6, "{}", max_diff(&ab, &mean));
    // evaluate scores the same mean, and says what it scored.
    let one = env
        .run(&[
            "evaluate",
            "--weights",
            "a/weights.h5",
            "--device",
            "cpu",
            "--json",
        ])
        .ok();
    let both = env
        .run(&[
            "evaluate",
            "--weights",
            "a/weights.h5",
            "--weights",
            "b/weights.h5",
            "--device",
            "cpu",
            "--json",
        ])
        .ok();
    assert_ne!(one, both);
}

#[test]
fn tta_is_the_mean_of_a_frame_and_its_mirror() {
    let env = TestEnv::new();
    two_models(&env);
    // Model-ready frames, so the mirror is exact.
    tch::manual_seed(4);
    let x = tch::Tensor::randn([3, 96, 96, 1], (tch::Kind::Float, tch::Device::Cpu));
    let mirror = x.flip([2]);
    let v = |t: &tch::Tensor| Vec::<f32>::try_from(&t.contiguous().view([-1])).unwrap();
    npy::write(&env.path("x.npy"), &[3, 96, 96, 1], &v(&x)).unwrap();
    npy::write(&env.path("xm.npy"), &[3, 96, 96, 1], &v(&mirror)).unwrap();
    predict(&env, &["a/weights.h5"], "x.npy", "p.npy", &[]);
    predict(&env, &["a/weights.h5"], "xm.npy", "pm.npy", &[]);
    predict(&env, &["a/weights.h5"], "x.npy", "pt.npy", &["--tta"]);
    let (p, pm, pt) = (
        read(&env, "p.npy"),
        read(&env, "pm.npy"),
        read(&env, "pt.npy"),
    );
    let back: Vec<f32> = pm
        .chunks(96)
        .flat_map(|r| r.iter().rev().copied())
        .collect();
    assert!(
        max_diff(&p, &back) > 1e-4,
        "the model is mirror-symmetric: nothing is tested"
    );
    let mean: Vec<f32> = p.iter().zip(&back).map(|(a, b)| (a + b) / 2.0).collect();
    assert!(max_diff(&pt, &mean) <= 1e-6, "{}", max_diff(&pt, &mean));
    // With two members, each adds its flip: the mean of four maps.
    predict(
        &env,
        &["a/weights.h5", "b/weights.h5"],
        "x.npy",
        "pt2.npy",
        &["--tta"],
    );
    predict(&env, &["b/weights.h5"], "x.npy", "pbt.npy", &["--tta"]);
    let (pt2, pbt) = (read(&env, "pt2.npy"), read(&env, "pbt.npy"));
    let mean: Vec<f32> = pt.iter().zip(&pbt).map(|(a, b)| (a + b) / 2.0).collect();
    assert!(max_diff(&pt2, &mean) <= 1e-6, "{}", max_diff(&pt2, &mean));
}
