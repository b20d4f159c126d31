//! Integration tests: run the `nerveseg` binary on small inputs, one module per subcommand.

mod info;
mod npy;
mod prepare;
mod synth;
mod testenv;
