//! Standardisation statistics that cannot standardise: a std that is zero, negative or
//! not a number, given on the command line, stored in a checkpoint, or recomputed from
//! constant frames, is refused before anything is predicted.

use nerveseg::keras::{self, Format, Meta};
use nerveseg::model::{unet, UNetConfig};

use crate::testenv::TestEnv;

#[test]
fn statistics_that_cannot_standardise_are_refused() {
    let env = TestEnv::new();
    env.synth_small(1, 2, 2);
    env.run(&["prepare", "-q", "--raw", "raw", "--out", "."])
        .ok();
    let cfg = UNetConfig::width(2);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = unet(&vs.root(), &cfg).unwrap();
    for (name, std) in [("neg.h5", -1.0), ("zero.h5", 0.0), ("nan.h5", f64::NAN)] {
        let meta = Meta {
            stats: Some(nerveseg::dataset::Stats { mean: 100.0, std }),
            ..Default::default()
        };
        keras::write(&env.path(name), &vs, &cfg, &meta, Format::Keras2Model).unwrap();
        env.refuses(
            &["predict", "--weights", name, "--device", "cpu"],
            &[&format!(
                "the statistics stored in {name}: mean 100 and std {std} cannot standardise"
            )],
        );
    }
    let good = Meta {
        stats: Some(nerveseg::dataset::Stats {
            mean: 100.0,
            std: 50.0,
        }),
        ..Default::default()
    };
    keras::write(&env.path("w.h5"), &vs, &cfg, &good, Format::Keras2Model).unwrap();
    for std in ["0", "-2", "NaN", "inf"] {
        env.refuses(
            &[
                "predict",
                "--weights",
                "w.h5",
                "--mean",
                "100",
                "--std",
                std,
                "--device",
                "cpu",
            ],
            &["--mean and --std: mean 100 and std", "cannot standardise"],
        );
    }
    // Constant frames have no spread to standardise with.
    nerveseg::data::npy::write(
        &env.path("flat.npy"),
        &[2, 420, 580],
        &vec![9u8; 2 * 420 * 580],
    )
    .unwrap();
    env.refuses(
        &[
            "predict",
            "--weights",
            "w.h5",
            "--stats-from",
            "flat.npy",
            "--device",
            "cpu",
        ],
        &["statistics of flat.npy: mean 9 and std 0 cannot standardise"],
    );
    // The stored statistics are fine: it predicts.
    env.run(&[
        "predict",
        "-q",
        "--weights",
        "w.h5",
        "--device",
        "cpu",
        "--no-png",
    ])
    .ok();
}
