//! Paths of the files written by tests/fixtures/keras/make_fixtures.py (tf-keras, Keras 3),
//! and small helpers to read .npy arrays and doctor HDF5 files for failure tests.

use std::path::{Path, PathBuf};

use nerveseg::data::npy::NpyReader;

pub fn keras_fixture(name: &str) -> PathBuf {
    crate::testenv::no_hdf5_locks();
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(name)
}

/// Every layout the fixture script writes, all with the same weights.
pub const FORMATS: [&str; 5] = [
    "unet_w4_full.h5",           // tf-keras model.save, with optimizer state
    "unet_w4_weights.h5",        // tf-keras save_weights
    "unet_w4_keras2.h5",         // renamed to Keras 2.0's conv2d_1.. scheme
    "unet_w4_offset_weights.h5", // tf-keras names with higher numbers
    "unet_w4.weights.h5",        // Keras 3 save_weights
];

pub fn read_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let r = NpyReader::open(path).unwrap();
    let shape = r.shape.clone();
    (shape, r.read_all::<f32>().unwrap())
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Replaces the `layer_names` attribute of a Keras 2 file's `model_weights` group.
pub fn set_layer_names(path: &Path, names: &[String]) {
    use hdf5::types::VarLenUnicode;
    let f = hdf5::File::open_rw(path).unwrap();
    let g = f.group("model_weights").unwrap();
    g.delete_attr("layer_names").unwrap();
    let v: Vec<VarLenUnicode> = names.iter().map(|n| n.parse().unwrap()).collect();
    g.new_attr::<VarLenUnicode>()
        .shape(v.len())
        .create("layer_names")
        .unwrap()
        .write_raw(&v)
        .unwrap();
}

pub fn layer_names(path: &Path) -> Vec<String> {
    let f = nerveseg::keras::read(path).unwrap();
    f.layers.iter().map(|l| l.name.clone()).collect()
}
