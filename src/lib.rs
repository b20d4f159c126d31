//! nerveseg: the Keras U-Net tutorial for Kaggle's Ultrasound Nerve Segmentation,
//! reproduced in Rust on libtorch. Each stage of the tutorial has a module of its own:
//! `data` is the original `data.py`; `synth` makes Kaggle-layout data to run it on.

pub mod adam;
pub mod atomic;
pub mod augment;
pub mod batches;
/// The in-process timings of `nerveseg bench` (for `make bench`); not part of the API.
#[doc(hidden)]
pub mod bench;
pub mod clean;
pub mod cpu;
pub mod cv;
pub mod data;
pub mod dataset;
pub mod demo;
pub mod denormal;
pub mod evaluate;
pub mod export;
pub mod frame;
pub mod info;
pub mod interrupt;
pub mod keras;
pub mod libtorch;
pub mod loss;
#[cfg(target_os = "linux")]
pub mod memfile;
pub mod model;
pub mod onnx;
pub mod pictures;
pub mod plot;
pub mod predict;
pub mod presence;
pub mod progress;
pub mod resize;
pub mod segment;
pub mod split;
pub mod stream;
pub mod submission;
pub mod synth;
pub mod train;
pub mod words;
