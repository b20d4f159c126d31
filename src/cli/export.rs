//! `export`'s flags.

use std::path::PathBuf;

use clap::Args;
use nerveseg::export::ExportConfig;
use nerveseg::frame::FrameSize;
use nerveseg::onnx::OnnxConfig;

use super::shared::{default_weights, MaskRuleArgs, StatsArgs};

#[derive(Debug, Args)]
#[group(id = "format", required = true, multiple = false, args = ["torchscript", "onnx"])]
pub struct ExportArgs {
    /// The TorchScript file to write (model.pt): standardised 96 x 96 frames in,
    /// probabilities out; model.json beside it says how to preprocess the input and
    /// threshold the output.
    #[arg(long, value_name = "FILE")]
    pub torchscript: Option<PathBuf>,
    /// The ONNX file to write (model.onnx, opset 17): uint8 frames in, masks and
    /// probabilities out, with the resize, standardisation and mask rule inside;
    /// model.onnx.json beside it describes it.
    #[arg(long, value_name = "FILE")]
    pub onnx: Option<PathBuf>,
    /// With --onnx: the frames' size, HxW (Kaggle's: 420x580); by default the size the
    /// checkpoint was trained on.
    #[arg(long, value_name = "HxW", conflicts_with = "torchscript")]
    pub frame_size: Option<FrameSize>,
    /// Keras weight file: a nerveseg checkpoint or a Keras file of the tutorial's U-Net.
    /// With --onnx, give it more than once for an ensemble in one graph: the
    /// probabilities are averaged, as predict's.
    #[arg(long, value_name = "FILE", default_values_os_t = [default_weights()], action = clap::ArgAction::Append)]
    pub weights: Vec<PathBuf>,
    /// With --onnx: also predict each frame flipped left to right (flipped back), and
    /// average, as predict's --tta.
    #[arg(long, conflicts_with = "torchscript")]
    pub tta: bool,
    #[command(flatten)]
    pub stats: StatsArgs,
    /// The mask rule: built into the ONNX graph; recorded in the JSON beside either file.
    #[command(flatten)]
    pub rule: MaskRuleArgs,
}

/// One export: TorchScript or ONNX.
pub enum Export {
    TorchScript(ExportConfig),
    Onnx(OnnxConfig),
}

impl ExportArgs {
    pub fn into_config(self, quiet: bool) -> anyhow::Result<Export> {
        let (stats, rule) = (self.stats.source(), self.rule.rule());
        Ok(match (self.torchscript, self.onnx) {
            (Some(torchscript), _) => Export::TorchScript(ExportConfig {
                weights: match <[PathBuf; 1]>::try_from(self.weights) {
                    Ok([w]) => w,
                    Err(_) => anyhow::bail!(
                        "export --torchscript takes one --weights; an ensemble exports with --onnx"
                    ),
                },
                torchscript,
                stats,
                rule,
                quiet,
            }),
            (None, onnx) => Export::Onnx(OnnxConfig {
                weights: self.weights,
                tta: self.tta,
                // clap requires one of the two.
                onnx: onnx.unwrap_or_else(|| PathBuf::from("model.onnx")),
                frame_size: self.frame_size,
                stats,
                rule,
                quiet,
            }),
        })
    }
}

impl Export {
    /// Writes it; the summary line.
    pub fn run(&self) -> anyhow::Result<String> {
        Ok(match self {
            Export::TorchScript(c) => nerveseg::export::export(c)?.to_string(),
            Export::Onnx(c) => nerveseg::onnx::export_onnx(c)?.to_string(),
        })
    }
}
