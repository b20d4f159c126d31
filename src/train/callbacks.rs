//! Keras's `ReduceLROnPlateau` and `EarlyStopping`, monitoring val_loss, with tf-keras's
//! rules and defaults (keras/callbacks.py at tf-keras 2.x), replayed here epoch by epoch:
//!
//! - ReduceLROnPlateau: an epoch improves when val_loss < best - min_delta. During
//!   cooldown the wait stays 0; otherwise each epoch without improvement adds one, and
//!   at `patience` the rate becomes max(lr * factor, min_lr) (when lr > min_lr), the wait
//!   resets and cooldown starts. The rate lives in a float32 variable and the product is
//!   taken in float32, as in tf-keras under numpy 2.
//! - EarlyStopping: an epoch improves when val_loss + min_delta < best; the run stops at
//!   the end of an epoch (not the first) once `patience` epochs passed without one.
//!
//! Both are pure state machines over the val_loss sequence, so `--resume` rebuilds them
//! by replaying `history.csv`.

/// ReduceLROnPlateau's settings; defaults are Keras's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauConfig {
    pub factor: f64,
    pub patience: usize,
    pub min_delta: f64,
    pub cooldown: usize,
    pub min_lr: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            factor: 0.1,
            patience: 10,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
        }
    }
}

/// ReduceLROnPlateau's state.
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    pub cfg: PlateauConfig,
    best: f64,
    wait: usize,
    cooldown_counter: usize,
}

/// The value a float32 variable holds.
fn f32_value(v: f64) -> f64 {
    v as f32 as f64
}

impl ReduceLrOnPlateau {
    pub fn new(cfg: PlateauConfig) -> ReduceLrOnPlateau {
        ReduceLrOnPlateau {
            cfg,
            best: f64::INFINITY,
            wait: 0,
            cooldown_counter: 0,
        }
    }

    /// After an epoch with `val_loss` at rate `lr`: the rate for the next epoch.
    pub(crate) fn on_epoch_end(&mut self, val_loss: f64, lr: f64) -> f64 {
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if val_loss < self.best - self.cfg.min_delta {
            self.best = val_loss;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.cfg.patience {
                let old = f32_value(lr);
                if old > f32_value(self.cfg.min_lr) {
                    // float32 * factor in float32 (numpy 2 keeps the variable's type),
                    // then min_lr as given, stored in the float32 variable.
                    let product = (old as f32 * self.cfg.factor as f32) as f64;
                    let new = product.max(self.cfg.min_lr);
                    self.cooldown_counter = self.cfg.cooldown;
                    self.wait = 0;
                    return f32_value(new);
                }
            }
        }
        lr
    }
}

/// EarlyStopping's state.
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    pub patience: usize,
    pub min_delta: f64,
    best: f64,
    wait: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize, min_delta: f64) -> EarlyStopping {
        EarlyStopping {
            patience,
            min_delta: min_delta.abs(),
            best: f64::INFINITY,
            wait: 0,
        }
    }

    /// After epoch `epoch` (0-based) with `val_loss`: whether training stops now.
    pub(crate) fn on_epoch_end(&mut self, epoch: usize, val_loss: f64) -> bool {
        self.wait += 1;
        if val_loss + self.min_delta < self.best {
            self.best = val_loss;
            self.wait = 0;
            return false;
        }
        self.wait >= self.patience && epoch > 0
    }
}

/// EarlyStopping's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StopConfig {
    pub patience: usize,
    pub min_delta: f64,
}

/// The callbacks a run asked for; none is the tutorial's run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Callbacks {
    pub plateau: Option<PlateauConfig>,
    pub early_stopping: Option<StopConfig>,
}

impl Callbacks {
    /// The settings as flags, recorded in the checkpoint so a resume can compare them
    /// ("" for none).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.plateau {
            parts.push(format!(
                "--reduce-lr-on-plateau --lr-factor {} --lr-patience {} --lr-min-delta {} \
                 --lr-cooldown {} --min-lr {}",
                p.factor, p.patience, p.min_delta, p.cooldown, p.min_lr
            ));
        }
        if let Some(e) = self.early_stopping {
            parts.push(format!(
                "--early-stopping {} --stop-min-delta {}",
                e.patience, e.min_delta
            ));
        }
        parts.join(" ")
    }
}

/// The callbacks' state over a run: the rate of the next epoch and whether to stop.
#[derive(Clone, Debug)]
pub struct Schedule {
    plateau: Option<ReduceLrOnPlateau>,
    early: Option<EarlyStopping>,
    /// The rate of the next epoch (a float32 value when ReduceLROnPlateau runs).
    pub lr: f64,
    /// The 0-based epoch after which EarlyStopping stopped the run.
    pub stopped_after: Option<usize>,
}

impl Schedule {
    pub fn new(cb: &Callbacks, lr: f64) -> Schedule {
        Schedule {
            plateau: cb.plateau.map(ReduceLrOnPlateau::new),
            early: cb
                .early_stopping
                .map(|e| EarlyStopping::new(e.patience, e.min_delta)),
            lr: if cb.plateau.is_some() {
                f32_value(lr)
            } else {
                lr
            },
            stopped_after: None,
        }
    }

    /// Whether the rate is scheduled (and so recorded in `history.csv`).
    pub(crate) fn schedules_lr(&self) -> bool {
        self.plateau.is_some()
    }

    /// After epoch `epoch` (0-based) with `val_loss`: updates the rate and says whether
    /// training stops. Without a val_loss (no validation split) nothing changes.
    pub fn end_epoch(&mut self, epoch: usize, val_loss: Option<f64>) -> bool {
        let Some(v) = val_loss else {
            return false;
        };
        if let Some(p) = &mut self.plateau {
            self.lr = p.on_epoch_end(v, self.lr);
        }
        if let Some(e) = &mut self.early {
            if e.on_epoch_end(epoch, v) {
                self.stopped_after = Some(epoch);
            }
        }
        self.stopped_after.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_waits_patience_epochs_then_cools_down() {
        let mut r = ReduceLrOnPlateau::new(PlateauConfig {
            factor: 0.5,
            patience: 2,
            cooldown: 1,
            min_delta: 0.0,
            min_lr: 0.0,
        });
        let mut lr = 1e-3;
        let mut seen = Vec::new();
        for v in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9] {
            lr = r.on_epoch_end(v, lr);
            seen.push(lr);
        }
        let half = f32_value(f32_value(1e-3) * 0.5);
        let quarter = f32_value(half * 0.5);
        // Two improvements; waits 1, 2 -> reduce. Keras decrements the cooldown before
        // it looks, so a cooldown of 1 only resets the wait: waits 1, 2 -> reduce again.
        assert_eq!(seen, [1e-3, 1e-3, 1e-3, half, half, quarter, quarter]);
    }

    #[test]
    fn early_stopping_counts_epochs_without_improvement() {
        let mut e = EarlyStopping::new(2, 0.0);
        let stops: Vec<bool> = [1.0, 0.8, 0.8, 0.9, 0.7]
            .iter()
            .enumerate()
            .map(|(k, &v)| e.on_epoch_end(k, v))
            .collect();
        assert_eq!(stops, [false, false, false, true, false]);
        // patience 0 stops at the first epoch (after the first) that does not improve.
        let mut e = EarlyStopping::new(0, 0.0);
        assert!(!e.on_epoch_end(0, 1.0));
        assert!(!e.on_epoch_end(1, 0.5));
        assert!(e.on_epoch_end(2, 0.5));
    }
}
