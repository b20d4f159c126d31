//! `clean`: the conflicting near duplicates synth plants are found, and only they; the
//! cleaned copy drops both frames of each pair with names and groups kept aligned.

use nerveseg::data::npy::NpyReader;

use crate::testenv::TestEnv;

#[test]
fn clean_finds_the_planted_conflicts_and_only_them() {
    let env = TestEnv::new();
    env.synth_noisy("raw", 3, "0.1");
    env.prepare_train("raw", ".");
    let planted = std::fs::read_to_string(env.path("raw/label_noise.csv")).unwrap();
    let planted: Vec<(String, String)> = planted
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_owned(), c[1].to_owned())
        })
        .collect();
    assert!(planted.len() >= 4, "{planted:?}");
    let out = env
        .run(&[
            "clean",
            "--noise",
            "raw/label_noise.csv",
            "--drop",
            "--out",
            "cleaned",
        ])
        .ok();
    let n = planted.len();
    assert!(
        out.contains(&format!("precision 1.000 ({n} of {n} pairs")),
        "{out}"
    );
    assert!(
        out.contains(&format!("recall 1.000 ({n} of {n} noisy")),
        "{out}"
    );
    // Every pair printed is a planted one (either order).
    for (noisy, source) in &planted {
        assert!(
            out.lines()
                .any(|l| l.starts_with(source.as_str()) && l.contains(noisy.as_str())),
            "{noisy} / {source} missing:\n{out}"
        );
    }
    let read = |p: &str| std::fs::read_to_string(env.path(p)).unwrap();
    let names: Vec<String> = read("imgs_names_train.txt")
        .lines()
        .map(String::from)
        .collect();
    let kept: Vec<String> = read("cleaned/imgs_names_train.txt")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(kept.len(), 120 - 2 * n);
    for (noisy, source) in &planted {
        assert!(!kept.contains(noisy) && !kept.contains(source));
    }
    // The arrays, names and groups stay aligned: each kept row equals its original row.
    let frames = NpyReader::open(&env.path("imgs_train.npy"))
        .unwrap()
        .read_all::<u8>()
        .unwrap();
    let r = NpyReader::open(&env.path("cleaned/imgs_train.npy")).unwrap();
    assert_eq!(r.shape, [kept.len() as u64, 420, 580]);
    let cleaned = r.read_all::<u8>().unwrap();
    let px = 420 * 580;
    for (k, name) in kept.iter().enumerate() {
        let i = names.iter().position(|x| x == name).unwrap();
        assert_eq!(
            cleaned[k * px..(k + 1) * px],
            frames[i * px..(i + 1) * px],
            "{name}"
        );
    }
    let groups: Vec<String> = read("cleaned/imgs_groups_train.txt")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(groups.len(), kept.len());
    assert!(kept
        .iter()
        .zip(&groups)
        .all(|(n, g)| n.starts_with(&format!("{g}_"))));
    let masks = NpyReader::open(&env.path("cleaned/imgs_mask_train.npy")).unwrap();
    assert_eq!(masks.shape, [kept.len() as u64, 420, 580]);
    // The cleaned copy trains.
    env.run(&[
        "train",
        "-q",
        "--images",
        "cleaned/imgs_train.npy",
        "--masks",
        "cleaned/imgs_mask_train.npy",
        "--epochs",
        "1",
        "--base-width",
        "2",
        "--device",
        "cpu",
        "--out-dir",
        "w",
    ])
    .ok();
    // The input folder is never overwritten.
    env.run(&["clean", "--drop", "--out", "."])
        .fails_with(&["holds the arrays being cleaned"]);
}

#[test]
fn clean_finds_nothing_without_label_noise() {
    let env = TestEnv::new();
    env.synth_noisy("raw", 2, "0");
    env.prepare_train("raw", ".");
    let out = env.run(&["clean"]).ok();
    assert!(
        out.contains("80 frames in 2 groups: 0 near-duplicate pairs"),
        "{out}"
    );
}
