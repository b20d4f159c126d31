//! `train --recipe`: named sets of options that measured best (README, "Beyond the
//! tutorial"). A recipe only fills in what the command leaves out: flags given beside
//! it still set their own values.

use nerveseg::model::{NetworkChoice, Norm};

/// A named set of training options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Recipe {
    /// Augmentation and a learning rate halved when val_loss stalls for 5 epochs; the
    /// tutorial's network, loss, learning rate and epochs.
    Kaggle,
    /// The kaggle recipe on the network, learning rate and epochs that measured best on
    /// both usgra-seg's real frames and the synthetic set (README, "The model family"):
    /// BatchNorm after every 3x3 convolution, Adam at 1e-3, 60 epochs.
    Modern,
}

/// What a recipe sets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Preset {
    pub lr: Option<f64>,
    pub epochs: Option<usize>,
    pub network: NetworkChoice,
    pub augment: bool,
    /// ReduceLROnPlateau's factor and patience.
    pub plateau: Option<(f64, usize)>,
}

impl Recipe {
    pub fn preset(self) -> Preset {
        let kaggle = Preset {
            augment: true,
            plateau: Some((0.5, 5)),
            ..Preset::default()
        };
        match self {
            Recipe::Kaggle => kaggle,
            Recipe::Modern => Preset {
                lr: Some(1e-3),
                epochs: Some(60),
                network: NetworkChoice {
                    norm: Some(Norm::Batch),
                    ..NetworkChoice::default()
                },
                ..kaggle
            },
        }
    }
}

/// The preset of an optional recipe (nothing without one).
pub fn preset(recipe: Option<Recipe>) -> Preset {
    recipe.map(Recipe::preset).unwrap_or_default()
}
