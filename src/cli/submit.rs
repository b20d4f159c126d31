//! `submit`'s flags.

use std::path::PathBuf;

use clap::Args;
use nerveseg::frame::FrameSize;
use nerveseg::submission::SubmitConfig;

use super::shared::MaskRuleArgs;

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Predicted probabilities, float32 (N, 96, 96, 1).
    #[arg(long, value_name = "FILE", default_value = "imgs_mask_test.npy")]
    pub masks: PathBuf,
    /// Test ids, int32 (N,).
    #[arg(long, value_name = "FILE", default_value = "imgs_id_test.npy")]
    pub ids: PathBuf,
    /// The CSV to write (header img,pixels; one row per id, sorted).
    #[arg(long, value_name = "FILE", default_value = "submission.csv")]
    pub out: PathBuf,
    /// The frames' size, rows x columns: each mask is enlarged to it before encoding.
    #[arg(long, value_name = "HxW", default_value = "420x580")]
    pub size: FrameSize,
    #[command(flatten)]
    pub rule: MaskRuleArgs,
}

impl SubmitArgs {
    pub fn into_config(self) -> SubmitConfig {
        SubmitConfig {
            masks: self.masks,
            ids: self.ids,
            out: self.out,
            rule: self.rule.rule(),
            size: self.size,
        }
    }
}
