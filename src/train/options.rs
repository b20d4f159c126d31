//! The options a run takes beyond the tutorial's: the callbacks, augmentation, a
//! presence head and the loss. They define the run as much as its seed does, so a
//! resume and `cv` compare them, as values. A checkpoint stores them as the flags that
//! ask for them (`nerveseg_callbacks`, absent for none), as every nerveseg has; reading
//! takes those flags back.

use std::fmt;

use super::callbacks::{Callbacks, PlateauConfig, StopConfig};
use super::TrainConfig;
use crate::augment::AugmentConfig;
use crate::loss::Loss;

/// What a run adds to the tutorial's; the default is the tutorial's run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunOptions {
    pub callbacks: Callbacks,
    pub augment: Option<AugmentConfig>,
    /// The presence head's weight in the loss, when the run trains one.
    pub presence: Option<f64>,
    pub loss: Loss,
}

impl RunOptions {
    /// The options of the run `cfg` asks for.
    pub fn of(cfg: &TrainConfig) -> RunOptions {
        RunOptions {
            callbacks: cfg.callbacks,
            augment: cfg.augment,
            presence: cfg.presence,
            loss: cfg.loss,
        }
    }

    /// Reads the flags [`RunOptions`]' `Display` writes; `Err` names what it cannot
    /// read.
    pub fn parse(flags: &str) -> Result<RunOptions, String> {
        let mut o = RunOptions::default();
        let mut words = flags.split_whitespace();
        while let Some(flag) = words.next() {
            let mut value = || -> Result<f64, String> {
                let v = words.next().ok_or(format!("{flag} without its value"))?;
                v.parse().map_err(|_| format!("{flag} {v}: not a number"))
            };
            let plateau = o.callbacks.plateau.get_or_insert(PlateauConfig::default());
            let stop = o.callbacks.early_stopping.get_or_insert(StopConfig {
                patience: 0,
                min_delta: 0.0,
            });
            let aug = o.augment.get_or_insert(AugmentConfig::default());
            match flag {
                "--reduce-lr-on-plateau" | "--augment" => {}
                "--lr-factor" => plateau.factor = value()?,
                "--lr-patience" => plateau.patience = value()? as usize,
                "--lr-min-delta" => plateau.min_delta = value()?,
                "--lr-cooldown" => plateau.cooldown = value()? as usize,
                "--min-lr" => plateau.min_lr = value()?,
                "--early-stopping" => stop.patience = value()? as usize,
                "--stop-min-delta" => stop.min_delta = value()?,
                "--aug-no-flip" => aug.flip = false,
                "--aug-rotate" => aug.rotate = value()?,
                "--aug-shift" => aug.shift = value()?,
                "--aug-zoom" => aug.zoom = value()?,
                "--aug-brightness" => aug.brightness = value()?,
                "--aug-contrast" => aug.contrast = value()?,
                "--presence-head" => o.presence = Some(o.presence.unwrap_or(1.0)),
                "--presence-weight" => o.presence = Some(value()?),
                "--loss" => {
                    let name = words.next().unwrap_or_default();
                    o.loss = Loss::named(name).ok_or(format!("--loss {name}: no such loss"))?;
                }
                other => return Err(format!("{other}: not an option nerveseg records")),
            }
        }
        // Each group is on only when its own flag is there (its settings were filled in
        // above whatever the flag).
        let on = |flag: &str| flags.split_whitespace().any(|w| w == flag);
        if !on("--reduce-lr-on-plateau") {
            o.callbacks.plateau = None;
        }
        if !on("--early-stopping") {
            o.callbacks.early_stopping = None;
        }
        if !on("--augment") {
            o.augment = None;
        }
        Ok(o)
    }
}

/// As flags ("" for the tutorial's run), in the order the checkpoint has always
/// stored them.
impl fmt::Display for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aug = self.augment.map(|a| a.describe()).unwrap_or_default();
        let head = self
            .presence
            .map(|w| format!("--presence-head --presence-weight {w}"))
            .unwrap_or_default();
        let loss = match self.loss {
            Loss::Dice => String::new(),
            l => format!("--loss {}", l.name()),
        };
        let parts = [self.callbacks.describe(), aug, head, loss];
        let parts: Vec<String> = parts.into_iter().filter(|s| !s.is_empty()).collect();
        write!(f, "{}", parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of option, alone and together, reads back as it was written.
    #[test]
    fn the_stored_flags_read_back_as_the_options() {
        let plateau = PlateauConfig {
            factor: 0.5,
            patience: 5,
            min_delta: 1e-4,
            cooldown: 2,
            min_lr: 1e-7,
        };
        let stop = StopConfig {
            patience: 7,
            min_delta: 0.001,
        };
        let aug = AugmentConfig {
            flip: false,
            rotate: 7.5,
            ..Default::default()
        };
        let all = RunOptions {
            callbacks: Callbacks {
                plateau: Some(plateau),
                early_stopping: Some(stop),
            },
            augment: Some(aug),
            presence: Some(0.25),
            loss: Loss::ImageDice,
        };
        let some = [
            RunOptions::default(),
            RunOptions {
                augment: Some(AugmentConfig::default()),
                ..Default::default()
            },
            RunOptions {
                callbacks: Callbacks {
                    plateau: None,
                    early_stopping: Some(stop),
                },
                loss: Loss::BceDice,
                ..Default::default()
            },
            all,
        ];
        for o in some {
            assert_eq!(RunOptions::parse(&o.to_string()), Ok(o), "{o}");
        }
        assert_eq!(RunOptions::default().to_string(), "");
        assert!(RunOptions::parse("--lr-factor").is_err());
        assert!(RunOptions::parse("--lr-factor x").is_err());
        assert!(RunOptions::parse("--loss nope").is_err());
        assert!(RunOptions::parse("--learning-rate 3").is_err());
    }
}
