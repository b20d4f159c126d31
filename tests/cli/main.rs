//! Integration tests: run the `nerveseg` binary on small inputs, one module per subcommand.

mod bench;
mod convert;
mod decode;
mod demo;
mod evaluate;
mod export;
mod folders;
mod hostile_keras;
mod hostile_npy;
mod hostile_tiff;
mod info;
mod inspect;
mod interrupt;
mod keras_fixtures;
mod libtorch_errors;
mod npy;
mod plot;
mod predict;
mod prepare;
mod resize;
mod resume;
mod statistics;
mod submit;
mod synth;
mod testenv;
mod train;
