//! `export`'s flags.

use std::path::PathBuf;

use clap::Args;
use nerveseg::export::ExportConfig;

use super::shared::{MaskRuleArgs, StatsArgs};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The TorchScript file to write (model.pt); model.json beside it says how to
    /// preprocess the input and threshold the output.
    #[arg(long, value_name = "FILE")]
    pub torchscript: PathBuf,
    /// Keras weight file: a nerveseg checkpoint or a Keras file of the tutorial's U-Net.
    #[arg(long, value_name = "FILE", default_value = "weights/weights.h5")]
    pub weights: PathBuf,
    #[command(flatten)]
    pub stats: StatsArgs,
    /// The threshold and minimum size recorded in model.json.
    #[command(flatten)]
    pub rule: MaskRuleArgs,
}

impl ExportArgs {
    pub fn into_config(self, quiet: bool) -> ExportConfig {
        ExportConfig {
            weights: self.weights,
            torchscript: self.torchscript,
            stats: self.stats.source(),
            rule: self.rule.rule(),
            quiet,
        }
    }
}
