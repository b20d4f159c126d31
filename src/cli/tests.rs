//! Parse tests for every subcommand's flags and defaults.

use std::path::PathBuf;

use super::*;
use clap::CommandFactory;

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("nerveseg").chain(args.iter().copied())).unwrap()
}

#[test]
fn synth_defaults_are_kaggle_sizes() {
    let Command::Synth(a) = parse(&["synth"]).command else {
        panic!("not synth")
    };
    let c = a.into_config(false);
    assert_eq!(
        (c.subjects, c.per_subject, c.test, c.seed),
        (47, 120, 5508, 0)
    );
    assert_eq!(c.out, PathBuf::from("raw"));
    assert!(!c.test_masks && !c.overwrite);
}

#[test]
fn synth_flags_parse() {
    let cli = parse(&[
        "-q",
        "synth",
        "--out",
        "x",
        "--subjects",
        "2",
        "--per-subject",
        "3",
        "--test",
        "4",
        "--seed",
        "5",
        "--test-masks",
        "--overwrite",
    ]);
    assert!(cli.quiet);
    let Command::Synth(a) = cli.command else {
        panic!("not synth")
    };
    let c = a.into_config(true);
    assert_eq!((c.subjects, c.per_subject, c.test, c.seed), (2, 3, 4, 5));
    assert!(c.test_masks && c.overwrite && c.quiet);
    assert!(Cli::try_parse_from(["nerveseg", "synth", "--subjects", "0"]).is_err());
}

#[test]
fn prepare_flags_parse() {
    let kaggle = |a: PrepareArgs| match a.into_config(false) {
        super::data::PrepareFrom::Kaggle(c) => c,
        super::data::PrepareFrom::Folders(_) => panic!("not the Kaggle layout"),
    };
    let Command::Prepare(a) = parse(&["prepare"]).command else {
        panic!("not prepare")
    };
    let c = kaggle(a);
    assert_eq!(
        (c.raw, c.out, c.train, c.test),
        ("raw".into(), ".".into(), true, true)
    );
    let Command::Prepare(a) =
        parse(&["prepare", "--raw", "r", "--out", "o", "--train-only"]).command
    else {
        panic!("not prepare")
    };
    let c = kaggle(a);
    assert_eq!(
        (c.raw, c.out, c.train, c.test),
        ("r".into(), "o".into(), true, false)
    );
    let Command::Prepare(a) = parse(&["prepare", "--test-only"]).command else {
        panic!()
    };
    assert!(!kaggle(a).train);
    assert!(Cli::try_parse_from(["nerveseg", "prepare", "--train-only", "--test-only"]).is_err());
    // Folders: --images needs --masks, and leaves the Kaggle flags out.
    let Command::Prepare(a) = parse(&[
        "prepare",
        "--images",
        "i",
        "--masks",
        "m",
        "--mask-class",
        "1",
        "--size",
        "64x80",
    ])
    .command
    else {
        panic!()
    };
    let super::data::PrepareFrom::Folders(f) = a.into_config(false) else {
        panic!("not folders")
    };
    assert_eq!(
        (f.mask_class, f.size.map(|s| (s.height, s.width))),
        (Some(1), Some((64, 80)))
    );
    for bad in [
        &["prepare", "--images", "i"][..],
        &["prepare", "--images", "i", "--masks", "m", "--raw", "r"],
        &["prepare", "--images", "i", "--masks", "m", "--size", "64"],
        &["prepare", "--mask-class", "1"],
    ] {
        assert!(
            Cli::try_parse_from([&["nerveseg"][..], bad].concat()).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn train_defaults_are_the_tutorials() {
    let Command::Train(a) = parse(&["train"]).command else {
        panic!("not train")
    };
    let c = a.into_config(false).unwrap();
    assert_eq!(
        (c.epochs, c.batch_size, c.adam.lr, c.validation_split),
        (20, 32, 1e-5, 0.2)
    );
    // No callbacks: the tutorial's run.
    assert_eq!(c.callbacks, Default::default());
    assert_eq!(
        (c.adam.epsilon, c.adam.beta1, c.adam.beta2),
        (1e-7, 0.9, 0.999)
    );
    assert_eq!(
        (c.seed, c.shuffle, c.resume, c.network.fresh(false)),
        (0, true, false, nerveseg::model::UNetConfig::default())
    );
    assert_eq!(c.images, PathBuf::from("imgs_train.npy"));
    assert_eq!(c.masks, PathBuf::from("imgs_mask_train.npy"));
    assert_eq!(c.out_dir, PathBuf::from("weights"));
    let Command::Train(a) = parse(&[
        "train",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "0.001",
        "--adam-epsilon",
        "1e-8",
        "--validation-split",
        "0",
        "--seed",
        "4",
        "--no-shuffle",
        "--device",
        "cpu",
        "--init-weights",
        "w.h5",
        "--out-dir",
        "o",
        "--base-width",
        "8",
    ])
    .command
    else {
        panic!("not train")
    };
    let c = a.into_config(true).unwrap();
    assert_eq!(
        (c.epochs, c.batch_size, c.adam.lr, c.adam.epsilon),
        (3, 8, 1e-3, 1e-8)
    );
    assert_eq!(
        (c.validation_split, c.seed, c.shuffle, c.device),
        (0.0, 4, false, Device::Cpu)
    );
    assert_eq!(
        (c.init_weights, c.out_dir, c.network.base_width),
        (Some("w.h5".into()), "o".into(), Some(8))
    );
    assert!(
        Cli::try_parse_from(["nerveseg", "train", "--resume", "--init-weights", "w.h5"]).is_err()
    );
    // Keras's defaults for ReduceLROnPlateau; EarlyStopping's patience as given.
    let Command::Train(a) =
        parse(&["train", "--reduce-lr-on-plateau", "--early-stopping", "3"]).command
    else {
        panic!("not train")
    };
    let c = a.into_config(false).unwrap().callbacks;
    let p = c.plateau.unwrap();
    assert_eq!(
        (p.factor, p.patience, p.min_delta, p.cooldown, p.min_lr),
        (0.1, 10, 1e-4, 0, 0.0)
    );
    let e = c.early_stopping.unwrap();
    assert_eq!((e.patience, e.min_delta), (3, 0.0));
    let Command::Train(a) =
        parse(&["train", "--reduce-lr-on-plateau", "--lr-factor", "1.5"]).command
    else {
        panic!("not train")
    };
    assert!(a.into_config(false).is_err());
    assert!(Cli::try_parse_from(["nerveseg", "train", "--lr-patience", "3"]).is_err());
}

#[test]
fn predict_defaults_are_the_original_files() {
    let arrays = |a: PredictArgs| match a.into_config(false).unwrap() {
        super::predict::PredictFrom::Arrays(c) => c,
        super::predict::PredictFrom::Folder(_) => panic!("not arrays"),
    };
    let Command::Predict(a) = parse(&["predict"]).command else {
        panic!("not predict")
    };
    let c = arrays(a);
    assert_eq!(c.ensemble.weights, [PathBuf::from("weights/weights.h5")]);
    assert!(!c.ensemble.tta);
    assert_eq!(c.images, PathBuf::from("imgs_test.npy"));
    assert_eq!(c.out, PathBuf::from("imgs_mask_test.npy"));
    assert_eq!(c.ensemble.batch_size, 32);
    let Command::Predict(a) = parse(&[
        "predict",
        "--device",
        "cpu",
        "--batch-size",
        "4",
        "--weights",
        "w.h5",
    ])
    .command
    else {
        panic!("not predict")
    };
    let c = arrays(a);
    assert_eq!(
        (c.ensemble.device, c.ensemble.batch_size, c.ensemble.weights),
        (Device::Cpu, 4, vec![PathBuf::from("w.h5")])
    );
    let Command::Predict(a) =
        parse(&["predict", "--weights", "a.h5", "--weights", "b.h5", "--tta"]).command
    else {
        panic!("not predict")
    };
    let c = arrays(a);
    assert_eq!(
        c.ensemble.weights,
        [PathBuf::from("a.h5"), PathBuf::from("b.h5")]
    );
    assert!(c.ensemble.tta);
    assert!(Cli::try_parse_from(["nerveseg", "predict", "--device", "tpu"]).is_err());
    assert!(Cli::try_parse_from(["nerveseg", "predict", "--batch-size", "0"]).is_err());
}

#[test]
fn convert_picks_the_format_from_the_name() {
    let Command::Convert(a) = parse(&["convert", "a.h5", "b.weights.h5"]).command else {
        panic!()
    };
    assert_eq!(a.format(), Format::Keras3Weights);
    let Command::Convert(a) = parse(&["convert", "a.weights.h5", "b.h5"]).command else {
        panic!()
    };
    assert_eq!(a.format(), Format::Keras2Model);
    let Command::Convert(a) =
        parse(&["convert", "a.h5", "b.h5", "--format", "keras2-weights"]).command
    else {
        panic!()
    };
    assert_eq!(a.format(), Format::Keras2Weights);
    assert!(Cli::try_parse_from(["nerveseg", "convert", "a.h5", "b.h5", "--format", "x"]).is_err());
    assert!(Cli::try_parse_from(["nerveseg", "convert", "a.h5"]).is_err());
}

#[test]
fn inspect_takes_a_file() {
    let Command::Inspect(a) = parse(&["inspect", "w.h5"]).command else {
        panic!()
    };
    assert_eq!(a.file, PathBuf::from("w.h5"));
}

#[test]
fn stream_runs_one_frame_at_a_time_and_writes_data_on_stdout() {
    let cli = parse(&["stream", "--frame-size", "420x580", "--bf16"]);
    assert!(cli.stdout_is_data());
    let Command::Stream(a) = cli.command else {
        panic!()
    };
    let cfg = a.into_config();
    assert_eq!(cfg.segmenter.ensemble.batch_size, 1);
    assert!(cfg.segmenter.ensemble.speed.bf16);
    assert_eq!(
        cfg.frame_size.map(|f| (f.height, f.width)),
        Some((420, 580))
    );
    assert!(!parse(&["stream", "--output", "m.raw"]).stdout_is_data());
    for bad in [
        &["stream", "--batch-size", "8"][..],
        &["stream", "--overwrite"],
        &["stream", "--frame-size", "420"],
    ] {
        assert!(
            Cli::try_parse_from([&["nerveseg"][..], bad].concat()).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn info_parses() {
    assert!(matches!(parse(&["info"]).command, Command::Info));
}

#[test]
fn devices_parse() {
    assert_eq!(parse_device("cpu"), Ok(Device::Cpu));
    assert_eq!(parse_device("cuda"), Ok(Device::Cuda(0)));
    assert_eq!(parse_device("cuda:3"), Ok(Device::Cuda(3)));
    assert!(parse_device("gpu").is_err());
    assert!(parse_device("cuda:x").is_err());
}

#[test]
fn evaluate_takes_the_checkpoints_split_unless_told() {
    let Command::Evaluate(a) = parse(&["evaluate"]).command else {
        panic!("not evaluate")
    };
    assert_eq!(a.validation_split, None);
    assert!(!a.allow_missing);
    let Command::Evaluate(a) = parse(&["evaluate", "--validation-split", "0.3"]).command else {
        panic!("not evaluate")
    };
    assert_eq!(a.validation_split, Some(0.3));
    // --allow-missing only means something for a submission.
    assert!(Cli::try_parse_from(["nerveseg", "evaluate", "--allow-missing"]).is_err());
    let Command::Evaluate(a) = parse(&[
        "evaluate",
        "--submission",
        "s.csv",
        "--masks",
        "t",
        "--allow-missing",
    ])
    .command
    else {
        panic!("not evaluate")
    };
    assert!(a.allow_missing);
}

#[test]
fn a_negative_std_reaches_the_check_instead_of_clap() {
    let Command::Predict(a) = parse(&["predict", "--mean", "-3", "--std", "-1"]).command else {
        panic!("not predict")
    };
    assert_eq!(
        a.stats.source(),
        nerveseg::predict::StatsSource::Given(nerveseg::dataset::Stats {
            mean: -3.0,
            std: -1.0
        })
    );
}

/// The flags' defaults are the library's `Default`s (one home for the tutorial's
/// values), the checkpoint to read aside; `--device auto` is the CPU here.
#[test]
fn flag_defaults_are_the_configs_defaults() {
    let cpu = "--device=cpu";
    let Command::Train(a) = parse(&["train", cpu]).command else {
        panic!("not train")
    };
    let asked = format!("{:?}", a.into_config(false).unwrap());
    let library = nerveseg::train::TrainConfig::default();
    assert_eq!(asked, format!("{library:?}"));
    let Command::Predict(a) = parse(&["predict", cpu]).command else {
        panic!("not predict")
    };
    let super::predict::PredictFrom::Arrays(mut c) = a.into_config(false).unwrap() else {
        panic!("not arrays")
    };
    assert_eq!(c.ensemble.weights, [PathBuf::from("weights/weights.h5")]);
    c.ensemble.weights.clear();
    let library = nerveseg::predict::PredictConfig::default();
    assert_eq!(format!("{c:?}"), format!("{library:?}"));
    let Command::Evaluate(a) = parse(&["evaluate", cpu]).command else {
        panic!("not evaluate")
    };
    let mut c = a.into_config(false).unwrap();
    c.ensemble.weights.clear();
    let library = nerveseg::evaluate::EvalConfig::default();
    assert_eq!(format!("{c:?}"), format!("{library:?}"));
}
