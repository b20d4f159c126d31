//! Keras files from strangers: a kernel of width 0, a first kernel claiming a width of
//! 4096 (a 150 GB model), a layer of the wrong shape further in, a dataset declaring
//! more values than any U-Net has. Each is refused on reading, before a model is built
//! or a value read, naming the file, the layer and the shapes.

use std::path::Path;

use crate::keras_fixtures::keras_fixture;
use crate::testenv::TestEnv;

/// Copies the width-4 tf-keras fixture to `name` and replaces the kernel of its
/// `index`-th weighted layer (file order) by a dataset of `shape`, holding zeros when
/// `write` (else declared only: HDF5 allocates nothing until it is written).
fn doctored(env: &TestEnv, name: &str, index: usize, shape: &[usize], write: bool) -> String {
    let path = env.path(name);
    std::fs::copy(keras_fixture("unet_w4_weights.h5"), &path).unwrap();
    let layer = nerveseg::keras::read(&path).unwrap().layers[index].clone();
    let f = hdf5::File::open_rw(&path).unwrap();
    f.unlink(&layer.var("kernel").unwrap().dataset).unwrap();
    let (group, leaf) = layer
        .var("kernel")
        .unwrap()
        .dataset
        .rsplit_once('/')
        .unwrap();
    let ds = f
        .group(group)
        .unwrap()
        .new_dataset::<f32>()
        .shape(shape)
        .create(leaf)
        .unwrap();
    if write {
        ds.write_raw(&vec![0f32; shape.iter().product()]).unwrap();
    }
    layer.name
}

fn weights_args<'a>(cmd: &'a str, w: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![cmd];
    match cmd {
        "predict" | "evaluate" => v.extend(["--weights", w, "--device", "cpu"]),
        "train" => v.extend(["--init-weights", w, "--device", "cpu"]),
        "convert" => v.extend([w, "out.h5"]),
        _ => v.push(w),
    }
    v.extend(rest);
    v
}

#[test]
fn a_width_of_zero_is_an_error_not_a_libtorch_panic() {
    let env = TestEnv::new();
    let first = doctored(&env, "zero.h5", 0, &[3, 3, 1, 0], true);
    let inputs = keras_fixture("inputs_w4.npy");
    let inputs = inputs.to_str().unwrap();
    for cmd in ["predict", "convert", "train"] {
        let extra: &[&str] = match cmd {
            "predict" | "train" => &["--images", inputs],
            _ => &[],
        };
        env.refuses(
            &weights_args(cmd, "zero.h5", extra),
            &[&format!(
                "zero.h5: the first Conv2D ({first}) has kernel (3, 3, 1, 0): a base width of 0, \
                 outside 1..=256"
            )],
        );
    }
    // inspect still describes it, saying what is wrong with the width.
    let out = env.run(&["inspect", "zero.h5"]).ok();
    assert!(out.contains("base width: unknown"), "{out}");
}

#[test]
fn a_width_of_4096_is_refused_at_once() {
    let env = TestEnv::new();
    doctored(&env, "wide.h5", 0, &[3, 3, 1, 4096], true);
    let limit = env.memory_limit_mib();
    let t0 = std::time::Instant::now();
    let inputs = keras_fixture("inputs_w4.npy");
    for args in [
        weights_args(
            "predict",
            "wide.h5",
            &["--images", inputs.to_str().unwrap()],
        ),
        weights_args("convert", "wide.h5", &[]),
    ] {
        env.refuses_within(
            &args,
            &[
                "wide.h5",
                "has kernel (3, 3, 1, 4096): a base width of 4096",
            ],
            limit,
        );
    }
    assert!(t0.elapsed().as_secs() < 30, "{:?}", t0.elapsed());
}

#[test]
fn a_layer_of_the_wrong_shape_is_named_with_both_shapes() {
    let env = TestEnv::new();
    // The fifth weighted layer in file order is a Conv2D of 8 -> 16 channels at width 4.
    let name = doctored(&env, "mid.h5", 4, &[3, 3, 8, 9], true);
    env.refuses(
        &weights_args("convert", "mid.h5", &[]),
        &[&format!(
            "mid.h5: layer {name} (ours conv2d_5): kernel (3, 3, 8, 9) and bias (16), expected \
             (3, 3, 8, 16) and (16) for base width 4"
        )],
    );
}

/// A kernel declaring 36 billion values (144 GB of float32) that the file never stores:
/// refused from its shape alone, so neither inspect nor loading reads it.
#[test]
fn a_dataset_declaring_144_gb_is_never_read() {
    let env = TestEnv::new();
    let name = doctored(&env, "declared.h5", 2, &[3, 3, 4, 1_000_000_000], false);
    assert!(std::fs::metadata(env.path("declared.h5")).unwrap().len() < 2 << 20);
    let limit = env.memory_limit_mib();
    env.refuses_within(
        &weights_args("convert", "declared.h5", &[]),
        &[&format!(
            "declared.h5: layer {name} (ours conv2d_3): kernel (3, 3, 4, 1000000000)"
        )],
        limit,
    );
    let (run, peak) = env.run_peak(&["inspect", "declared.h5"]);
    let out = run.ok();
    assert!(out.contains("(3, 3, 4, 1000000000)"), "{out}");
    assert!(peak < limit, "inspect: peak {peak:.0} MiB");
}

/// The optimizer state of a resumed run is checked too: an Adam moment of the wrong shape
/// in last.h5 is refused, naming it.
#[test]
fn an_adam_moment_of_the_wrong_shape_is_refused() {
    let env = crate::train::prepared();
    env.run(&[&["train", "-q", "--epochs", "1"][..], &crate::train::TINY].concat())
        .ok();
    let last = env.path("weights/last.h5");
    {
        let f = hdf5::File::open_rw(&last).unwrap();
        let key = "optimizer_weights/Adam/m/conv2d_2/kernel:0";
        f.unlink(key).unwrap();
        f.group("optimizer_weights/Adam/m/conv2d_2")
            .unwrap()
            .new_dataset::<f32>()
            .shape([3, 3, 2, 5])
            .create("kernel:0")
            .unwrap();
    }
    env.refuses(
        &[
            &["train", "--epochs", "2", "--resume"][..],
            &crate::train::TINY,
        ]
        .concat(),
        &[
            "reading the optimizer state in weights/last.h5",
            "Adam/m/conv2d_2/kernel:0 has shape (3, 3, 2, 5), expected (3, 3, 2, 2)",
        ],
    );
    assert!(Path::new(&last).exists());
}

/// Inputs the fuzzer found (`make fuzz`, tests/fixtures/fuzz/keras/): each once made the
/// HDF5 library loop forever. Now a one-line error, at once.
#[test]
fn files_that_hung_libhdf5_are_refused_at_once() {
    let env = TestEnv::new();
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/keras");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let p = path.to_str().unwrap();
        for args in [vec!["inspect", p], vec!["convert", p, "out.h5"]] {
            env.run_deadline(&args, 60)
                .fails_with(&[p, "not a readable HDF5 file"]);
        }
    }
    assert!(env.partial_files().is_empty());
}

/// A checkpoint whose record of its run's options is not what nerveseg writes (a flag
/// it does not know, a setting before its option) is refused on reading in one line
/// naming the file and the attribute.
#[test]
fn run_options_nerveseg_does_not_write_are_refused() {
    let env = TestEnv::new();
    let cfg = nerveseg::model::UNetConfig::width(2);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = nerveseg::model::unet(&vs.root(), &cfg).unwrap();
    let meta = nerveseg::keras::Meta {
        run: Some(nerveseg::keras::RunRecord {
            validation_split: 0.2,
            seed: 0,
            shuffle: true,
            batch_size: 4,
            samples: 10,
            fingerprint: "ab".into(),
            options: Default::default(),
            folds: None,
            lr: Some(1e-5),
            validation: Some(vec![8, 9]),
        }),
        ..Default::default()
    };
    let path = env.path("w.h5");
    nerveseg::keras::write(
        &path,
        &vs,
        &cfg,
        &meta,
        nerveseg::keras::Format::Keras2Model,
    )
    .unwrap();
    for flags in [
        "--lr-factor 0.5 --reduce-lr-on-plateau",
        "--augment --aug-tilt 3",
    ] {
        let f = hdf5::File::open_rw(&path).unwrap();
        let _ = f.delete_attr("nerveseg_callbacks");
        let v: hdf5::types::VarLenUnicode = flags.parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .create("nerveseg_callbacks")
            .unwrap()
            .write_scalar(&v)
            .unwrap();
        f.close().unwrap();
        env.refuses(
            &["inspect", "w.h5"],
            &[
                "w.h5",
                &format!("nerveseg_callbacks '{flags}' is not a run's options"),
            ],
        );
    }
}
