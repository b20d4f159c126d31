//! Flag groups that several subcommands share: how the network runs, how probabilities
//! become masks, and where the standardisation statistics come from.

use std::path::PathBuf;

use clap::Args;
use nerveseg::dataset::Stats;
use nerveseg::predict::{EnsembleConfig, StatsSource};
use nerveseg::submission::MaskRule;
use tch::Device;

use super::parse_device;

/// Speed switches shared by the commands that run the network.
#[derive(Debug, Args)]
pub struct SpeedArgs {
    /// Keep activations and weights in NCHW memory order instead of channels-last (NHWC).
    /// Channels-last is faster; both are float32 and agree to rounding.
    #[arg(long)]
    pub no_channels_last: bool,
}

impl SpeedArgs {
    pub fn speed(&self, bf16: bool) -> nerveseg::model::Speed {
        nerveseg::model::Speed {
            channels_last: !self.no_channels_last,
            bf16,
        }
    }
}

/// Where and in what precision the network runs (predict, evaluate, stream).
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Where to run: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Run the convolutions in bfloat16 (fast on GPUs with tensor cores; on CPUs `nerveseg
    /// info` says what it measured on one of the kind: 2.0x on AVX-512 BF16 without AMX,
    /// 0.6x with AMX); probabilities move by about 1e-2, so not the Keras parity mode.
    #[arg(long)]
    pub bf16: bool,
    #[command(flatten)]
    pub speed: SpeedArgs,
}

impl EngineArgs {
    pub fn speed(&self) -> nerveseg::model::Speed {
        self.speed.speed(self.bf16)
    }
}

/// How the network runs in batches (predict, evaluate).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Images per forward pass (in evaluate also the batch of Keras's dice_coef).
    #[arg(long, value_name = "N", default_value_t = EnsembleConfig::default().batch_size as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    #[command(flatten)]
    pub engine: EngineArgs,
}

impl RunArgs {
    pub fn speed(&self) -> nerveseg::model::Speed {
        self.engine.speed()
    }

    /// The checkpoints `weights` run as these flags say.
    pub fn ensemble(
        &self,
        weights: Vec<PathBuf>,
        tta: bool,
        allow_partial: bool,
    ) -> EnsembleConfig {
        EnsembleConfig {
            weights,
            tta,
            device: self.engine.device,
            speed: self.speed(),
            batch_size: self.batch_size as usize,
            allow_partial,
        }
    }
}

/// The checkpoint predict and evaluate read by default: train's best.
pub fn default_weights() -> PathBuf {
    nerveseg::train::TrainConfig::default()
        .out_dir
        .join(nerveseg::train::BEST)
}

/// How probability maps become full-size masks (submit, evaluate, overlays).
#[derive(Debug, Args)]
pub struct MaskRuleArgs {
    /// A 96 x 96 probability above this is in the mask.
    #[arg(long, value_name = "P", default_value_t = MaskRule::default().threshold)]
    pub threshold: f64,
    /// Masks with fewer full-size pixels are written empty.
    #[arg(long, value_name = "PIXELS", default_value_t = MaskRule::default().min_size)]
    pub min_size: usize,
    /// After enlarging, keep every pixel above 0 (the original submission.py's dilation)
    /// instead of thresholding at 0.5 again.
    #[arg(long)]
    pub keep_above_zero: bool,
    /// Decide "is there a nerve" apart from the mask: frames whose presence probability
    /// is below --presence-threshold get an empty mask. mask: the mean of the map's most
    /// confident 1% of pixels; head: the checkpoint's presence head (--presence-head);
    /// mean: the mean of the two. Off by default, as the original.
    #[arg(long, value_name = "SOURCE", value_enum)]
    pub presence: Option<PresenceArg>,
    /// With --presence: frames below this probability are judged empty.
    #[arg(long, value_name = "P", default_value_t = 0.5, requires = "presence")]
    pub presence_threshold: f64,
}

impl MaskRuleArgs {
    pub fn rule(&self) -> MaskRule {
        MaskRule {
            threshold: self.threshold,
            min_size: self.min_size,
            keep_above_zero: self.keep_above_zero,
            presence: self.presence.map(|source| nerveseg::presence::Gate {
                source: source.into(),
                threshold: self.presence_threshold,
            }),
        }
    }
}

/// `--presence`'s values: [`nerveseg::presence::Source`]'s, as the command line spells
/// them (the library does not know clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PresenceArg {
    /// The mean of the map's most confident 1% of pixels.
    Mask,
    /// The checkpoint's presence head.
    Head,
    /// The mean of head and mask.
    Mean,
}

impl From<PresenceArg> for nerveseg::presence::Source {
    fn from(p: PresenceArg) -> Self {
        match p {
            PresenceArg::Mask => Self::Mask,
            PresenceArg::Head => Self::Head,
            PresenceArg::Mean => Self::Mean,
        }
    }
}

/// The size limit of frames read from image files.
#[derive(Debug, Args)]
pub struct ImageLimitArgs {
    /// The largest side, in pixels, of a frame read from an image file: larger files
    /// are refused before they are decoded. Up to 16384; a frame takes about 8 bytes of
    /// memory a pixel at the peak.
    #[arg(long, value_name = "PX", default_value_t = nerveseg::data::decode::DEFAULT_MAX_SIDE)]
    pub max_side: usize,
}

/// Where the standardisation mean/std come from when the checkpoint has none.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Training pixel mean, for a checkpoint without stored statistics (with --std).
    #[arg(
        long,
        value_name = "MEAN",
        requires = "std",
        allow_negative_numbers = true
    )]
    pub mean: Option<f64>,
    /// Training pixel standard deviation (with --mean); a positive number.
    #[arg(
        long,
        value_name = "STD",
        requires = "mean",
        allow_negative_numbers = true
    )]
    pub std: Option<f64>,
    /// Recompute the statistics from this training array, as the original did.
    #[arg(long, value_name = "FILE", conflicts_with = "mean")]
    pub stats_from: Option<PathBuf>,
}

impl StatsArgs {
    pub fn source(&self) -> StatsSource {
        match (self.mean, self.std, &self.stats_from) {
            (Some(mean), Some(std), _) => StatsSource::Given(Stats { mean, std }),
            (_, _, Some(p)) => StatsSource::From(p.clone()),
            _ => StatsSource::Stored,
        }
    }
}

/// The checkpoints asked for: `--ensemble DIR`'s folds, or the `--weights` given.
pub fn models(
    weights: Vec<PathBuf>,
    ensemble: Option<&std::path::Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    match ensemble {
        Some(dir) => nerveseg::cv::ensemble_weights(dir),
        None => Ok(weights),
    }
}
