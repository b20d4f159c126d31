//! Integration tests: run the `nerveseg` binary on small inputs, one module per subcommand.

mod convert;
mod info;
mod inspect;
mod keras_fixtures;
mod npy;
mod predict;
mod prepare;
mod resize;
mod synth;
mod testenv;
mod train;
