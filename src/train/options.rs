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

    /// Reads the flags [`RunOptions`]' `Display` writes, each group's flag before its
    /// settings; `Err` names what it cannot read.
    pub fn parse(flags: &str) -> Result<RunOptions, String> {
        let mut o = RunOptions::default();
        let mut words = flags.split_whitespace();
        while let Some(flag) = words.next() {
            let mut value = || -> Result<f64, String> {
                let v = words.next().ok_or(format!("{flag} without its value"))?;
                v.parse().map_err(|_| format!("{flag} {v}: not a number"))
            };
            match flag {
                "--reduce-lr-on-plateau" => o.callbacks.plateau = Some(PlateauConfig::default()),
                "--lr-factor" => in_group(&mut o.callbacks.plateau, flag)?.factor = value()?,
                "--lr-patience" => {
                    in_group(&mut o.callbacks.plateau, flag)?.patience = value()? as usize
                }
                "--lr-min-delta" => in_group(&mut o.callbacks.plateau, flag)?.min_delta = value()?,
                "--lr-cooldown" => {
                    in_group(&mut o.callbacks.plateau, flag)?.cooldown = value()? as usize
                }
                "--min-lr" => in_group(&mut o.callbacks.plateau, flag)?.min_lr = value()?,
                "--early-stopping" => {
                    o.callbacks.early_stopping = Some(StopConfig {
                        patience: value()? as usize,
                        min_delta: 0.0,
                    })
                }
                "--stop-min-delta" => {
                    in_group(&mut o.callbacks.early_stopping, flag)?.min_delta = value()?
                }
                "--augment" => o.augment = Some(AugmentConfig::default()),
                "--aug-no-flip" => in_group(&mut o.augment, flag)?.flip = false,
                "--aug-rotate" => in_group(&mut o.augment, flag)?.rotate = value()?,
                "--aug-shift" => in_group(&mut o.augment, flag)?.shift = value()?,
                "--aug-zoom" => in_group(&mut o.augment, flag)?.zoom = value()?,
                "--aug-brightness" => in_group(&mut o.augment, flag)?.brightness = value()?,
                "--aug-contrast" => in_group(&mut o.augment, flag)?.contrast = value()?,
                "--presence-head" => o.presence = Some(o.presence.unwrap_or(1.0)),
                "--presence-weight" => o.presence = Some(value()?),
                "--loss" => {
                    let name = words.next().unwrap_or_default();
                    o.loss = Loss::named(name).ok_or(format!("--loss {name}: no such loss"))?;
                }
                other => return Err(format!("{other}: not an option nerveseg records")),
            }
        }
        Ok(o)
    }
}

/// The settings of a group of options (`--augment`'s, say) for one of its flags: the
/// group's own flag must have come first.
fn in_group<'a, T>(group: &'a mut Option<T>, flag: &str) -> Result<&'a mut T, String> {
    group
        .as_mut()
        .ok_or(format!("{flag} before the option it belongs to"))
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
        assert!(RunOptions::parse("--aug-zoom 0.2 --augment").is_err());
    }
}
