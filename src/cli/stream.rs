//! `stream`'s flags.

use std::path::PathBuf;

use clap::Args;
use nerveseg::frame::FrameSize;
use nerveseg::predict::EnsembleConfig;
use nerveseg::segment::SegmenterConfig;
use nerveseg::stream::StreamConfig;

use super::shared::{default_weights, EngineArgs, MaskRuleArgs, StatsArgs};

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Keras weight file: a nerveseg checkpoint or a Keras file of the tutorial's U-Net.
    /// Give it more than once for an ensemble: the probabilities are averaged.
    #[arg(long, value_name = "FILE", default_values_os_t = [default_weights()], action = clap::ArgAction::Append)]
    pub weights: Vec<PathBuf>,
    /// The frames' size, HxW (Kaggle's: 420x580); by default the size the checkpoint was
    /// trained on.
    #[arg(long, value_name = "HxW")]
    pub frame_size: Option<FrameSize>,
    /// Raw 8-bit gray frames, one after another, instead of standard input.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Where the masks go instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace --output if it exists.
    #[arg(long, requires = "output")]
    pub overwrite: bool,
    /// Write each frame in RGB (24 bits a pixel) with the predicted outline in red,
    /// instead of its 0/255 mask.
    #[arg(long)]
    pub overlay: bool,
    /// Also predict each frame flipped left to right (flipped back), and average.
    #[arg(long)]
    pub tta: bool,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub rule: MaskRuleArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

impl StreamArgs {
    pub fn into_config(self) -> StreamConfig {
        StreamConfig {
            segmenter: SegmenterConfig {
                // One frame a forward pass: the batch is the stream's, not a setting.
                ensemble: EnsembleConfig {
                    weights: self.weights,
                    tta: self.tta,
                    device: self.engine.device,
                    speed: self.engine.speed(),
                    batch_size: 1,
                    allow_partial: false,
                },
                stats: self.stats.source(),
                rule: self.rule.rule(),
            },
            frame_size: self.frame_size,
            input: self.input,
            output: self.output,
            overwrite: self.overwrite,
            overlay: self.overlay,
        }
    }
}
