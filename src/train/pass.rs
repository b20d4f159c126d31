//! One pass over batches of the training data on the device: an epoch of training
//! steps in the epoch's order, or the validation pass in file order. Every libtorch call
//! is fallible and a failure names the step; an interrupt stops between batches.

use std::time::Instant;

use anyhow::{bail, Result};
use tch::{Device, Kind, TchError, Tensor};

use super::history::Averages;
use super::{TrainConfig, BEST};
use crate::adam::KerasAdam;
use crate::augment::AugmentConfig;
use crate::dataset;
use crate::libtorch::{explain, Advice};
use crate::loss::{dice_loss, Loss};
use crate::model::UNet;

/// One pass over batches of the data on the device.
pub(super) struct Pass<'a> {
    pub net: &'a UNet,
    pub images: &'a Tensor,
    pub masks: &'a Tensor,
    pub device: Device,
    pub batch: usize,
    /// The full frames' size, for shifts given in full-size pixels.
    pub frame: crate::frame::FrameSize,
    /// The weight of the presence head's binary cross-entropy, when the model has one.
    pub presence: Option<f64>,
    pub loss: Loss,
}

impl Pass<'_> {
    /// One epoch of training steps over the first `n_train` samples, in the epoch's
    /// order; stops at an interrupt between batches, and with an error when the loss
    /// stops being finite.
    pub fn train_epoch(
        &self,
        opt: &mut KerasAdam,
        n_train: usize,
        cfg: &TrainConfig,
        epoch: usize,
    ) -> Result<Averages> {
        let t0 = Instant::now();
        let order = dataset::epoch_order(n_train, cfg.seed, epoch, cfg.shuffle);
        let pb = crate::progress::bar(
            n_train as u64,
            &format!("{}/{}", epoch + 1, cfg.epochs),
            cfg.quiet,
        );
        let fail = |what: String, e: TchError| {
            explain(e, &what, self.device, Advice::BatchSize(self.batch))
        };
        // The batch losses stay on the device until the epoch ends (or the bar is
        // redrawn), so the GPU is never made to wait for the host inside the loop.
        let order_t = Tensor::f_from_slice(&order)
            .and_then(|t| t.f_to_device(self.device))
            .map_err(|e| fail(format!("the order of epoch {}", epoch + 1), e))?;
        let sizes: Vec<usize> = order.chunks(self.batch).map(<[i64]>::len).collect();
        let mut losses: Vec<Tensor> = Vec::with_capacity(sizes.len());
        let mut shown = Instant::now();
        let mut start = 0;
        for (b, &size) in sizes.iter().enumerate() {
            if let Err(e) = crate::interrupt::check() {
                pb.abandon();
                return Err(e);
            }
            let what = || format!("training step {} of epoch {}", b + 1, epoch + 1);
            let idx = order_t
                .f_narrow(0, start, size as i64)
                .map_err(|e| fail(what(), e))?;
            start += size as i64;
            let seed = crate::augment::batch_seed(cfg.seed, epoch, b);
            let aug = cfg.augment.as_ref().map(|a| (a, seed));
            losses.push(self.step(opt, &idx, aug).map_err(|e| fail(what(), e))?);
            pb.inc(size as u64);
            if !cfg.quiet && shown.elapsed().as_secs_f64() >= 0.5 {
                shown = Instant::now();
                let avg = Averages::of(&self.losses(&to_host(&losses)?), sizes.iter().copied());
                let rate = avg.samples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!(
                    "loss {:.4} dice {:.4} {rate:.1} img/s",
                    avg.loss(),
                    avg.dice()
                ));
            }
        }
        let values = self.losses(&to_host(&losses)?);
        pb.finish_and_clear();
        if let Some(b) = values.iter().position(|v| !v.0.is_finite()) {
            bail!(
                "the loss became {} at epoch {} batch {}; stopped. The best checkpoint {} is as it was",
                values[b].0,
                epoch + 1,
                b + 1,
                cfg.out_dir.join(BEST).display()
            );
        }
        Ok(Averages::of(&values, sizes.iter().copied()))
    }

    /// One training step on the samples `idx` (augmented with the draws of a seed when
    /// asked): the loss, detached.
    fn step(
        &self,
        opt: &mut KerasAdam,
        idx: &Tensor,
        augment: Option<(&AugmentConfig, u64)>,
    ) -> Result<Tensor, TchError> {
        let mut x = self.images.f_index_select(0, idx)?;
        let mut y = self.masks.f_index_select(0, idx)?;
        if let Some((a, seed)) = augment {
            (x, y) = crate::augment::augment(&x, &y, a, self.frame, seed)?;
        }
        opt.zero_grad()?;
        let loss = self.loss(&x, &y, true)?;
        if loss.dim() == 1 {
            loss.f_select(0, 0)?.f_backward()?;
        } else {
            loss.f_backward()?;
        }
        opt.step()?;
        loss.f_detach()
    }

    /// The batch's loss (`train` selects training behaviour: batch statistics,
    /// dropout): the tutorial's -dice_coef alone; with another loss or a presence head,
    /// the vector [loss (+ w BCE of the head), -dice_coef] (the total is what Keras's
    /// two-output model minimises; its first element is what backward sees, the second
    /// Keras's dice_coef metric).
    fn loss(&self, x: &Tensor, y: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let out = self.net.forward_t(x, train)?;
        let dice = dice_loss(y, &out.mask)?;
        if !self.pairs() {
            return Ok(dice);
        }
        let mut total = match self.loss {
            Loss::Dice => dice.shallow_clone(),
            other => other.of(y, &out.mask, &out.logits)?,
        };
        if let (Some(logits), Some(w)) = (&out.presence, self.presence) {
            let bce = crate::loss::presence_bce(logits, &crate::loss::presence_target(y)?)?;
            total = total.f_add(&bce.f_mul_scalar(w)?)?;
        }
        Tensor::f_stack(&[total, dice], 0)
    }

    /// Whether each batch's loss comes with its -dice_coef beside it.
    fn pairs(&self) -> bool {
        self.presence.is_some() || self.loss != Loss::Dice
    }

    /// (loss, -dice_coef) of each batch from the host copy of the batch losses.
    fn losses(&self, host: &[f64]) -> Vec<(f64, f64)> {
        if self.pairs() {
            host.chunks(2).map(|c| (c[0], c[1])).collect()
        } else {
            host.iter().map(|&l| (l, l)).collect()
        }
    }

    /// The validation pass over samples `from..to`, in order, without gradients.
    pub fn validate(&self, from: usize, to: usize, epoch: usize) -> Result<Averages> {
        let mut losses = Vec::new();
        let mut sizes = Vec::new();
        let mut s = from;
        while s < to {
            crate::interrupt::check()?;
            let e = (s + self.batch).min(to);
            let loss = tch::no_grad(|| -> Result<Tensor, TchError> {
                let x = self.images.f_narrow(0, s as i64, (e - s) as i64)?;
                let y = self.masks.f_narrow(0, s as i64, (e - s) as i64)?;
                self.loss(&x, &y, false)
            })
            .map_err(|err| {
                let what = format!("validation of epoch {} at sample {}", epoch + 1, s + 1);
                explain(err, &what, self.device, Advice::BatchSize(self.batch))
            })?;
            losses.push(loss);
            sizes.push(e - s);
            s = e;
        }
        Ok(Averages::of(
            &self.losses(&to_host(&losses)?),
            sizes.into_iter(),
        ))
    }
}

/// Scalar losses to host f64 in one transfer (one synchronisation).
fn to_host(losses: &[Tensor]) -> Result<Vec<f64>> {
    if losses.is_empty() {
        return Ok(Vec::new());
    }
    let all = Tensor::f_stack(losses, 0)
        .and_then(|t| t.f_flatten(0, -1))
        .and_then(|t| t.f_to_kind(Kind::Double))
        .and_then(|t| t.f_to_device(Device::Cpu))
        .map_err(|e| explain(e, "reading the losses", Device::Cpu, Advice::None))?;
    Ok(Vec::<f64>::try_from(&all)?)
}
