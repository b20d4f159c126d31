//! `cv --folds K`: every fold trained, scored on its own frames, cv.csv and oof.npy
//! written; a second run keeps finished folds and resumes an unfinished one. The folds
//! trained as separate jobs (`--fold I`, a cluster's array) or child processes
//! (`--devices`) equal those of one `cv`.

use nerveseg::data::npy::NpyReader;

use crate::testenv::TestEnv;
use crate::train::TINY;

#[test]
fn cv_trains_every_fold_writes_its_table_and_resumes() {
    let env = TestEnv::new();
    env.synth_small(4, 4, 3);
    env.prepare_train("raw", ".");
    let args = [
        &["cv", "--folds", "2", "--epochs", "1", "--out-dir", "cv"][..],
        &TINY,
    ]
    .concat();
    let out = env.run(&args).ok();
    assert!(out.contains("fold  frames  best epoch"), "{out}");
    assert!(out.contains("mean +- sd"), "{out}");
    let csv = std::fs::read_to_string(env.path("cv/cv.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "fold,frames,best_epoch,val_dice_coef,kaggle_dice");
    assert_eq!(rows.len(), 3, "{csv}");
    // The folds' frames add up to the set, whole subjects each (4 frames a subject).
    let frames: usize = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(1).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(frames, 16);
    assert!(rows[1..]
        .iter()
        .all(|r| r.split(',').nth(1).unwrap().parse::<usize>().unwrap() % 4 == 0));
    // Every frame got its out-of-fold probabilities (a sigmoid is never exactly 0).
    let r = NpyReader::open(&env.path("cv/oof.npy")).unwrap();
    assert_eq!(r.shape, [16, 96, 96, 1]);
    let oof = r.read_all::<f32>().unwrap();
    assert!(oof.chunks(96 * 96).all(|m| m.iter().any(|&p| p > 0.0)));
    // The out-of-fold maps scored on every frame: the per-image mean is the folds'
    // means weighted by their frames.
    let j = env
        .run(&["evaluate", "--oof", "cv/oof.npy", "--json", "--sweep"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(v["images"], 16);
    let weighted: f64 = rows[1..]
        .iter()
        .map(|r| {
            let c: Vec<&str> = r.split(',').collect();
            c[1].parse::<f64>().unwrap() * c[4].parse::<f64>().unwrap()
        })
        .sum::<f64>()
        / 16.0;
    let k = v["kaggle_dice"].as_f64().unwrap();
    assert!((k - weighted).abs() < 1e-9, "{k} vs {weighted}");
    assert!(v["sweep"]["best"]["threshold"].is_number(), "{j}");
    // A second run keeps the finished folds' files; an unfinished fold resumes.
    let kept = std::fs::read(env.path("cv/fold-1/weights.h5")).unwrap();
    std::fs::remove_file(env.path("cv/fold-2/finished")).unwrap();
    let out = env.run(&[&args[..], &["-q"]].concat()).ok();
    assert!(out.contains("fold  frames"), "{out}");
    assert_eq!(
        std::fs::read(env.path("cv/fold-1/weights.h5")).unwrap(),
        kept
    );
    assert!(env.path("cv/fold-2/finished").exists());
    assert_eq!(std::fs::read_to_string(env.path("cv/cv.csv")).unwrap(), csv);
    // --fold 1 alone (a cluster's job) keeps the finished fold too.
    let out = env.run(&[&args[..], &["--fold", "1"]].concat()).ok();
    assert!(
        out.contains("fold 1 of 2: finished before, kept in cv/fold-1"),
        "{out}"
    );
    // Another cross-validation into the same folder is refused, unless asked for.
    let other = |epochs: &str, seed: &str, extra: &[&str]| {
        let base = [
            "cv",
            "-q",
            "--folds",
            "2",
            "--out-dir",
            "cv",
            "--epochs",
            epochs,
        ];
        env.run(&[&base[..], &TINY[..6], &["--seed", seed], extra].concat())
    };
    other("1", "5", &[]).fails_with(&[
        "cv holds another cross-validation: fold 1 differs: --seed 5 (the run used 3)",
    ]);
    other("2", "3", &[]).fails_with(&["--epochs 2 (the fold finished 1)", "--overwrite"]);
    let fold1 = || std::fs::read(env.path("cv/fold-1/weights.h5")).unwrap();
    assert!(fold1() == kept);
    other("1", "5", &["--overwrite"]).ok();
    assert!(fold1() != kept);
    assert!(std::fs::read_to_string(env.path("cv/cv.csv")).unwrap() != csv);
    // Trained again as the first time, it is the first cross-validation again.
    other("1", "3", &["--overwrite"]).ok();
    assert_eq!(std::fs::read_to_string(env.path("cv/cv.csv")).unwrap(), csv);
    // --ensemble DIR is every fold's best checkpoint, averaged.
    env.run(&["prepare", "-q", "--raw", "raw", "--out", ".", "--test-only"])
        .ok();
    let p = |extra: &[&str], out: &str| {
        let base = [
            "predict",
            "-q",
            "--images",
            "imgs_test.npy",
            "--out",
            out,
            "--no-png",
            "--device",
            "cpu",
        ];
        env.run(&[&base[..], extra].concat()).ok();
    };
    p(&["--ensemble", "cv"], "e.npy");
    p(
        &[
            "--weights",
            "cv/fold-1/weights.h5",
            "--weights",
            "cv/fold-2/weights.h5",
        ],
        "w.npy",
    );
    assert_eq!(
        std::fs::read(env.path("e.npy")).unwrap(),
        std::fs::read(env.path("w.npy")).unwrap()
    );
    env.run(&["predict", "--ensemble", "raw", "--device", "cpu"])
        .fails_with(&["raw: no fold-1/weights.h5"]);
}

/// `cv --devices cpu,cpu` trains the folds in two child processes at once: each fold
/// equals the one a sequential cv trains (cv.csv, oof.npy and history.csv), and each
/// child's output is in its fold's train.log. A device the machine lacks is refused
/// before anything starts.
#[test]
fn cv_on_several_devices_equals_cv_in_sequence() {
    let env = TestEnv::new();
    env.synth_small(4, 4, 0);
    env.prepare_train("raw", ".");
    let run = |out: &str, extra: &[&str]| {
        let base = ["cv", "--folds", "2", "--epochs", "2", "--out-dir", out];
        env.run(&[&base[..], &TINY, extra].concat()).ok()
    };
    run("seq", &[]);
    let out = run("par", &["--devices", "cpu,cpu"]);
    assert!(out.contains("fold 2 of 2 on cpu: finished"), "{out}");
    let read = |p: &str| std::fs::read(env.path(p)).unwrap();
    assert_eq!(read("par/cv.csv"), read("seq/cv.csv"));
    assert_eq!(read("par/oof.npy"), read("seq/oof.npy"));
    for fold in ["fold-1", "fold-2"] {
        let strip = |p: String| {
            let text = String::from_utf8(read(&p)).unwrap();
            let rows: Vec<String> = text
                .lines()
                .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
                .collect();
            rows
        };
        assert_eq!(
            strip(format!("par/{fold}/history.csv")),
            strip(format!("seq/{fold}/history.csv"))
        );
        let log = String::from_utf8(read(&format!("par/{fold}/train.log"))).unwrap();
        assert!(log.contains("epoch 2/2"), "{log}");
    }
    let have = tch::Cuda::device_count();
    let devices = format!("cpu,cuda:{have}");
    env.run(
        &[
            &["cv", "--folds", "2", "--out-dir", "gpu", "--devices"][..],
            &[devices.as_str()],
            &TINY,
        ]
        .concat(),
    )
    .fails_with(&[&format!(
        "--devices names cuda:{have}, but this machine has {have}"
    )]);
    assert!(!env.path("gpu").exists());
}

/// `cv --fold I` for each fold (a cluster's job array) into one folder, then `cv`
/// collecting: it trains nothing again, and every fold's weights.h5, cv.csv and oof.npy
/// equal those of one plain `cv` with the same flags.
#[test]
fn cv_folds_as_separate_jobs_equal_one_cv() {
    let env = TestEnv::new();
    env.synth_small(4, 4, 0);
    env.prepare_train("raw", ".");
    let run = |out: &str, extra: &[&str]| {
        let base = ["cv", "--folds", "3", "--epochs", "1", "--out-dir", out];
        env.run(&[&base[..], &TINY, extra].concat()).ok()
    };
    for fold in ["1", "2", "3"] {
        let out = run("jobs", &["--fold", fold]);
        let saved = format!("fold {fold} of 3: best epoch 1");
        assert!(out.contains(&saved), "{out}");
        assert!(
            out.contains("`nerveseg cv --folds 3` with the same flags"),
            "{out}"
        );
        // A job writes in its own fold's folder only: its siblings may be running.
        assert!(!env.path("jobs/cv.csv").exists());
    }
    let read = |p: &str| std::fs::read(env.path(p)).unwrap();
    let weights = |out: &str| -> Vec<Vec<u8>> {
        (1..=3)
            .map(|f| read(&format!("{out}/fold-{f}/weights.h5")))
            .collect()
    };
    let modified = |out: &str| -> Vec<std::time::SystemTime> {
        (1..=3)
            .map(|f| {
                let p = env.path(&format!("{out}/fold-{f}/last.h5"));
                std::fs::metadata(p).unwrap().modified().unwrap()
            })
            .collect()
    };
    let (jobs, when) = (weights("jobs"), modified("jobs"));
    let out = run("jobs", &[]);
    for fold in 1..=3 {
        let kept = format!("fold {fold} of 3: finished before, kept in jobs/fold-{fold}");
        assert!(out.contains(&kept), "{out}");
    }
    assert!(out.contains("fold  frames  best epoch"), "{out}");
    assert!(
        weights("jobs") == jobs,
        "the collecting run rewrote a weights.h5"
    );
    assert_eq!(modified("jobs"), when, "the collecting run trained again");
    // The same checkpoints, though not the same bytes: HDF5 stamps each object with
    // the time it was written (two plain cv runs differ the same way).
    run("one", &[]);
    for fold in 1..=3 {
        let path = |out: &str| env.path(&format!("{out}/fold-{fold}/weights.h5"));
        assert!(
            checkpoint(&path("jobs")) == checkpoint(&path("one")),
            "fold {fold}"
        );
    }
    assert_eq!(read("jobs/cv.csv"), read("one/cv.csv"));
    assert_eq!(read("jobs/oof.npy"), read("one/oof.npy"));
}

/// A checkpoint's metadata and every weight of every layer, in the file's order.
fn checkpoint(path: &std::path::Path) -> (nerveseg::keras::Meta, Vec<Vec<Vec<f32>>>) {
    let f = nerveseg::keras::read(path).unwrap();
    let layers: Vec<_> = f
        .layers
        .iter()
        .map(|l| (l, l.vars.iter().map(|(n, _)| n.as_str()).collect()))
        .collect();
    let values = f.read_values(&layers).unwrap();
    let values = values
        .into_iter()
        .map(|l| l.into_iter().map(|a| a.data).collect())
        .collect();
    (f.meta.clone(), values)
}

/// A fold outside 1 to K, and --fold beside --devices, are refused before anything is
/// read or written.
#[test]
fn cv_refuses_a_fold_it_cannot_train() {
    let env = TestEnv::new();
    let cv = |extra: &[&str]| {
        let base = ["cv", "--folds", "3", "--out-dir", "cv", "--device", "cpu"];
        env.run(&[&base[..], extra].concat())
    };
    cv(&["--fold", "4"]).fails_with(&["--fold 4 of --folds 3: the fold must be 1 to 3"]);
    cv(&["--fold", "2", "--devices", "cpu,cpu"]).fails_with(&[
        "--fold trains one fold here and --devices",
        "leave out one of them",
    ]);
    assert!(!env.path("cv").exists());
}

/// A fold trained again (--overwrite) loses its finished marker before it trains:
/// interrupted, it is not kept as finished by the next run, and it says how to go on.
#[test]
fn a_fold_trained_again_and_interrupted_is_not_kept_as_finished() {
    use crate::interrupt::{finish, signal, wait_for};
    let env = TestEnv::new();
    env.synth_small(4, 4, 0);
    env.prepare_train("raw", ".");
    let job = |epochs: &'static str, extra: &[&'static str]| -> Vec<&'static str> {
        let base = ["cv", "--folds", "2", "--fold", "1", "--out-dir", "cv"];
        [&base[..], &["--epochs", epochs], &TINY, extra].concat()
    };
    env.run(&job("1", &[])).ok();
    let finished = env.path("cv/fold-1/finished");
    assert!(finished.exists());
    let child = env.spawn(&job("1000", &["--overwrite"]));
    let history = env.path("cv/fold-1/history.csv");
    wait_for("the second epoch of the new run", || {
        std::fs::read_to_string(&history).is_ok_and(|h| h.lines().count() > 2)
    });
    signal(&child, "TERM");
    let (code, err) = finish(child);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("fold 1 goes on from its last finished epoch in cv/fold-1"),
        "{err}"
    );
    assert!(!finished.exists(), "the earlier run's marker was kept");
}
