//! Integration tests: run the `nerveseg` binary on small inputs, one module per subcommand.

mod bench;
mod convert;
mod demo;
mod evaluate;
mod info;
mod inspect;
mod keras_fixtures;
mod npy;
mod plot;
mod predict;
mod prepare;
mod resize;
mod submit;
mod synth;
mod testenv;
mod train;
