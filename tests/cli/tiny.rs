//! A tiny trained checkpoint with its test frames predicted and submitted, which the
//! deployment tests (`stream`, `export --onnx`, the in-memory example) compare with.

use nerveseg::data::npy::NpyReader;

use crate::testenv::TestEnv;

/// The synthetic frames' size.
pub const H: usize = 420;
pub const W: usize = 580;

/// A tiny checkpoint (`w/weights.h5`, width 4 and the flags `network`) trained on a
/// small synthetic set of 420 x 580 frames, and the test frames, predicted and submitted
/// with `rule`.
pub fn trained(env: &TestEnv, network: &[&str], rule: &[&str]) {
    env.synth_small(1, 8, 4);
    env.run(&["prepare", "-q", "--raw", "raw", "--out", "."])
        .ok();
    train_tiny(env, "w", network);
    let mut args = vec![
        "predict",
        "-q",
        "--weights",
        "w/weights.h5",
        "--no-png",
        "--device",
        "cpu",
    ];
    args.extend(rule);
    env.run(&args).ok();
    let mut args = vec!["submit", "-q"];
    args.extend(rule);
    env.run(&args).ok();
}

/// The test frames as one raw stream, and how many there are.
pub fn raw_frames(env: &TestEnv) -> usize {
    let frames = NpyReader::open(&env.path("imgs_test.npy"))
        .unwrap()
        .read_all::<u8>()
        .unwrap();
    std::fs::write(env.path("clip.raw"), &frames).unwrap();
    frames.len() / (H * W)
}

/// submission.csv's masks (0/255, row-major, in the file's order of ids).
pub fn submitted(env: &TestEnv) -> Vec<Vec<u8>> {
    let csv = std::fs::read_to_string(env.path("submission.csv")).unwrap();
    let ids: Vec<i32> = NpyReader::open(&env.path("imgs_id_test.npy"))
        .unwrap()
        .read_all::<i32>()
        .unwrap();
    let mut rows: std::collections::HashMap<i32, Vec<u8>> = Default::default();
    for line in csv.lines().skip(1) {
        let (id, runs) = line.split_once(',').unwrap();
        let mut mask = vec![0u8; H * W];
        let nums: Vec<usize> = runs
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        for pair in nums.chunks(2) {
            for p in pair[0] - 1..pair[0] - 1 + pair[1] {
                // Kaggle numbers pixels down each column.
                mask[(p % H) * W + p / H] = 255;
            }
        }
        rows.insert(id.parse().unwrap(), mask);
    }
    ids.iter().map(|id| rows.remove(id).unwrap()).collect()
}

/// The `mask` presence score of each of predict's 96 x 96 maps: the mean of its top 1%.
pub fn mask_scores(env: &TestEnv) -> Vec<f32> {
    let maps = NpyReader::open(&env.path("imgs_mask_test.npy"))
        .unwrap()
        .read_all::<f32>()
        .unwrap();
    maps.chunks(96 * 96)
        .map(|m| {
            let mut v = m.to_vec();
            v.sort_by(|a, b| b.total_cmp(a));
            v[..92].iter().sum::<f32>() / 92.0
        })
        .collect()
}

/// Halfway between the lowest and highest score, as a flag's value.
pub fn middle_of(scores: &[f32]) -> String {
    let (lo, hi) = scores
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    format!("{}", (lo + hi) / 2.0)
}

/// A tiny checkpoint (`OUT_DIR/weights.h5`, width 4 and the flags `network`) trained two
/// epochs on the prepared synthetic frames.
pub fn train_tiny(env: &TestEnv, out_dir: &str, network: &[&str]) {
    let train = [
        "train",
        "-q",
        "--epochs",
        "2",
        "--base-width",
        "4",
        "--batch-size",
        "2",
        "--lr",
        "1e-3",
        "--out-dir",
        out_dir,
        "--device",
        "cpu",
    ];
    env.run(&[&train[..], network].concat()).ok();
}
