//! The flags that choose a fresh model's network and loss (`train`, `cv`). Each is
//! `None` unless given, so that a checkpoint to start from decides what is not asked
//! and refuses what contradicts it.

use clap::{Args, ValueEnum};
use nerveseg::frame::FrameSize;
use nerveseg::loss::Loss;
use nerveseg::model::{Activation, NetworkChoice, Norm};

/// The network of a fresh model; the defaults are the tutorial's.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Channels of the first level of a fresh model [default: 32, the tutorial's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub base_width: Option<i64>,
    /// The network's input, rows x columns, each a multiple of 16 [default: 96x96, the
    /// tutorial's]. Frames are resized to it with the same scikit-image resize and masks
    /// come back at each frame's own size: e.g. 128x128, or 96x128 and 128x176, which
    /// keep Kaggle's 420 x 580 aspect.
    #[arg(long, value_name = "HxW")]
    pub input_size: Option<FrameSize>,
    /// Normalisation after each 3x3 convolution, before its activation [default: none,
    /// the tutorial's]. batch: Keras BatchNormalization (momentum 0.99, epsilon 1e-3;
    /// batch statistics in training, the moving ones in validation and prediction).
    #[arg(long, value_name = "NORM", value_enum)]
    pub norm: Option<NormArg>,
    /// The activation of each 3x3 convolution [default: relu, the tutorial's].
    #[arg(long, value_name = "NAME", value_enum)]
    pub activation: Option<ActivationArg>,
    /// A SpatialDropout2D of this rate after each of the five encoder levels, in
    /// training only [default: 0, none].
    #[arg(long, value_name = "P")]
    pub dropout: Option<f64>,
    /// The loss to train on [default: dice, the tutorial's batch Dice]. image-dice: the
    /// mean of each image's soft Dice, what the competition scores (an empty prediction
    /// of an empty frame counts 1); bce-dice: binary cross-entropy + 1 - batch Dice.
    #[arg(long, value_name = "LOSS", value_enum)]
    pub loss: Option<LossArg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NormArg {
    None,
    Batch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    Relu,
    Elu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    Dice,
    ImageDice,
    BceDice,
}

impl From<NormArg> for Norm {
    fn from(n: NormArg) -> Norm {
        match n {
            NormArg::None => Norm::None,
            NormArg::Batch => Norm::Batch,
        }
    }
}

impl From<ActivationArg> for Activation {
    fn from(a: ActivationArg) -> Activation {
        match a {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Elu => Activation::Elu,
        }
    }
}

impl From<LossArg> for Loss {
    fn from(l: LossArg) -> Loss {
        match l {
            LossArg::Dice => Loss::Dice,
            LossArg::ImageDice => Loss::ImageDice,
            LossArg::BceDice => Loss::BceDice,
        }
    }
}

impl NetworkArgs {
    /// The network asked for: the flags, then `preset` (a recipe's) where they are
    /// silent.
    pub fn choice(&self, preset: NetworkChoice) -> anyhow::Result<NetworkChoice> {
        if let Some(p) = self.dropout.filter(|p| !(0.0..1.0).contains(p)) {
            anyhow::bail!("--dropout {p}: the rate must be 0 or more and below 1");
        }
        if let Some(size) = self.input_size {
            nerveseg::model::check_input(size).map_err(|e| anyhow::anyhow!("--input-size: {e}"))?;
        }
        Ok(NetworkChoice {
            base_width: self.base_width.or(preset.base_width),
            input: self.input_size.or(preset.input),
            norm: self.norm.map(Norm::from).or(preset.norm),
            activation: self.activation.map(Activation::from).or(preset.activation),
            dropout: self.dropout.or(preset.dropout),
        })
    }
}
