//! `nerveseg convert`: every layout round-trips exactly, metadata rides along, writes are
//! atomic, and a different architecture is refused with the layer and shapes named.

use std::path::Path;

use nerveseg::keras::{self, Format, Meta};
use nerveseg::model::{unet, UNetConfig};

use crate::keras_fixtures::{keras_fixture, layer_names, set_layer_names};
use crate::testenv::TestEnv;

/// (is transpose, kernel shape, kernel, bias) of one layer.
type LayerWeights = (bool, Vec<usize>, Vec<f32>, Vec<f32>);

/// The weights of a file in matched order: convs, then transposes.
fn weights(path: &Path) -> Vec<LayerWeights> {
    let f = keras::read(path).unwrap();
    let layers: Vec<_> = f
        .layers
        .iter()
        .map(|l| (l, vec!["kernel", "bias"]))
        .collect();
    let values = f.read_values(&layers).unwrap();
    let mut v: Vec<_> = f
        .layers
        .iter()
        .zip(values)
        .map(|(l, kb)| {
            let transpose = l.kind == nerveseg::model::LayerKind::Transpose;
            (
                transpose,
                kb[0].shape.clone(),
                kb[0].data.clone(),
                kb[1].data.clone(),
            )
        })
        .collect();
    v.sort_by_key(|l| l.0); // stable: keeps file order within each kind
    v
}

#[test]
fn every_layout_round_trips_exactly() {
    let env = TestEnv::new();
    let src = keras_fixture("unet_w4_full.h5");
    let original = weights(&src);
    for (format, out) in [
        ("keras2", "a.h5"),
        ("keras2-weights", "b.h5"),
        ("keras3", "c.weights.h5"),
    ] {
        let run = env.run(&["convert", src.to_str().unwrap(), out, "--format", format]);
        assert!(run.ok().contains(&format!("wrote {out}")));
        assert_eq!(weights(&env.path(out)), original, "{format}");
        // ... and back to a tf-keras file.
        let back = format!("back-{format}.h5");
        env.run(&["convert", out, &back]).ok();
        assert_eq!(weights(&env.path(&back)), original, "{format} -> keras2");
    }
    assert_eq!(
        keras::read(&env.path("c.weights.h5")).unwrap().format,
        Format::Keras3Weights
    );
    assert_eq!(
        keras::read(&env.path("b.h5")).unwrap().format,
        Format::Keras2Weights
    );
    assert_eq!(
        keras::read(&env.path("a.h5")).unwrap().format,
        Format::Keras2Model
    );
}

#[test]
fn export_of_a_model_imports_back_exactly_with_metadata() {
    let env = TestEnv::new();
    tch::manual_seed(1);
    let cfg = UNetConfig::width(2);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = unet(&vs.root(), &cfg).unwrap();
    let meta = Meta {
        stats: Some(nerveseg::dataset::Stats {
            mean: 99.25,
            std: 51.5,
        }),
        epoch: Some(7),
        ..Default::default()
    };
    let path = env.path("ours.h5");
    keras::write(&path, &vs, &cfg, &meta, Format::Keras2Model).unwrap();

    let file = keras::read(&path).unwrap();
    assert_eq!(file.meta, meta);
    assert_eq!(file.base_width().unwrap(), 2);
    let loaded = keras::load(&file, tch::Device::Cpu, false).unwrap();
    assert_eq!(loaded.cfg, cfg);
    let (vs2, report) = (loaded.vs, loaded.report);
    assert_eq!(report.applied.len(), 23);
    assert!(report.missing.is_empty() && report.unused.is_empty());
    let (a, b) = (vs.variables(), vs2.variables());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} changed in the round trip");
    }
    // The metadata survives conversion to Keras 3 and back.
    env.run(&["convert", "ours.h5", "k3.weights.h5"]).ok();
    env.run(&["convert", "k3.weights.h5", "again.h5"]).ok();
    assert_eq!(keras::read(&env.path("again.h5")).unwrap().meta, meta);
}

#[test]
fn a_failed_conversion_leaves_the_old_output() {
    let env = TestEnv::new();
    std::fs::write(env.path("out.h5"), b"previous checkpoint").unwrap();
    let bad = keras_fixture("not_keras.h5");
    env.run(&["convert", bad.to_str().unwrap(), "out.h5"])
        .fails_with(&["not_keras.h5", "an HDF5 file without Keras weights"]);
    assert_eq!(
        std::fs::read(env.path("out.h5")).unwrap(),
        b"previous checkpoint"
    );
    assert_eq!(
        env.names(""),
        ["out.h5"],
        "a temporary file was left behind"
    );
}

#[test]
fn a_missing_layer_is_refused() {
    let env = TestEnv::new();
    let p = env.path("missing.h5");
    std::fs::copy(keras_fixture("unet_w4_full.h5"), &p).unwrap();
    let mut names = layer_names(&p);
    names.retain(|n| n != "conv2d_5");
    set_layer_names(&p, &names);
    env.run(&["convert", "missing.h5", "out.h5"]).fails_with(&[
        "missing.h5: not the tutorial's U-Net: expected 19 Conv2D and 4 Conv2DTranspose layers, found 18 and 4",
        "missing: conv2d_19",
    ]);
    assert!(!env.path("out.h5").exists());
}

#[test]
fn an_extra_layer_is_refused() {
    let env = TestEnv::new();
    let p = env.path("extra.h5");
    std::fs::copy(keras_fixture("unet_w4_full.h5"), &p).unwrap();
    let mut names = layer_names(&p);
    names.push("conv2d_17".to_owned()); // listed twice: one layer too many
    set_layer_names(&p, &names);
    env.run(&["convert", "extra.h5", "out.h5"]).fails_with(&[
        "extra.h5",
        "found 20 and 4",
        "extra: conv2d_17",
    ]);
}

#[test]
fn a_different_width_names_the_layer_and_shapes() {
    let env = TestEnv::new();
    let p = env.path("wide.h5");
    std::fs::copy(keras_fixture("unet_w4_weights.h5"), &p).unwrap();
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        let g = f.group("conv2d_4/conv2d_4").unwrap();
        g.unlink("kernel:0").unwrap();
        g.new_dataset::<f32>()
            .shape([3, 3, 8, 12])
            .create("kernel:0")
            .unwrap()
            .write_raw(&vec![0f32; 3 * 3 * 8 * 12])
            .unwrap();
    }
    env.run(&["convert", "wide.h5", "out.h5"]).fails_with(&[
        "wide.h5: layer conv2d_4 (ours conv2d_5): kernel (3, 3, 8, 12) and bias (16), expected (3, 3, 8, 16) and (16)",
    ]);
}
