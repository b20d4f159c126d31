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
use crate::batches::Batches;
use crate::dataset;
use crate::libtorch::{explain, Advice};
use crate::loss::{dice_loss, Loss};
use crate::model::UNet;

/// One pass over batches of the data on the device.
pub(crate) struct Pass<'a> {
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

/// A batch's loss: `total` is what backward sees (the loss, plus the presence head's
/// weighted binary cross-entropy: what Keras's two-output model minimises), `dice` is
/// -dice_coef, Keras's metric. For the tutorial's loss they are one tensor.
pub(crate) struct BatchLoss {
    pub total: Tensor,
    pub dice: Tensor,
}

impl Pass<'_> {
    /// One epoch of training steps over the first `n_train` samples, in the epoch's
    /// order; stops at an interrupt between batches, and with an error when the loss
    /// stops being finite.
    pub(crate) fn train_epoch(
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
        let tensors = [self.images, self.masks];
        let batches = Batches::shuffled(tensors, &order, self.batch, self.device)
            .map_err(|e| fail(format!("the order of epoch {}", epoch + 1), e))?;
        // The batch losses stay on the device until the epoch ends (or the bar is
        // redrawn), so the GPU is never made to wait for the host inside the loop.
        let mut losses: Vec<BatchLoss> = Vec::with_capacity(batches.len());
        let mut shown = Instant::now();
        for (b, batch) in batches.iter().enumerate() {
            if let Err(e) = crate::interrupt::check() {
                pb.abandon();
                return Err(e);
            }
            let what = || format!("training step {} of epoch {}", b + 1, epoch + 1);
            let seed = crate::augment::batch_seed(cfg.seed, epoch, b);
            let aug = cfg.augment.as_ref().map(|a| (a, seed));
            let loss = batch.and_then(|batch| self.step(opt, batch, aug));
            losses.push(loss.map_err(|e| fail(what(), e))?);
            pb.inc(batches.span(b).len() as u64);
            if !cfg.quiet && shown.elapsed().as_secs_f64() >= 0.5 {
                shown = Instant::now();
                let avg = Averages::of(&to_host(&losses)?, batches.sizes());
                let rate = avg.samples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!(
                    "loss {:.4} dice {:.4} {rate:.1} img/s",
                    avg.loss(),
                    avg.dice()
                ));
            }
        }
        let values = to_host(&losses)?;
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
        Ok(Averages::of(&values, batches.sizes()))
    }

    /// One training step on a batch of images and masks (augmented with the draws of a
    /// seed when asked): its loss, detached.
    pub fn step(
        &self,
        opt: &mut KerasAdam,
        [mut x, mut y]: [Tensor; 2],
        augment: Option<(&AugmentConfig, u64)>,
    ) -> Result<BatchLoss, TchError> {
        if let Some((a, seed)) = augment {
            (x, y) = crate::augment::augment(&x, &y, a, self.frame, seed)?;
        }
        opt.zero_grad()?;
        let loss = self.loss(&x, &y, true)?;
        loss.total.f_backward()?;
        opt.step()?;
        Ok(BatchLoss {
            total: loss.total.f_detach()?,
            dice: loss.dice.f_detach()?,
        })
    }

    /// The batch's loss (`train` selects training behaviour: batch statistics,
    /// dropout): the tutorial's -dice_coef alone; with another loss or a presence head,
    /// that loss (+ w BCE of the head) beside -dice_coef.
    fn loss(&self, x: &Tensor, y: &Tensor, train: bool) -> Result<BatchLoss, TchError> {
        let out = self.net.forward_t(x, train)?;
        let dice = dice_loss(y, &out.mask)?;
        let mut total = match self.loss {
            Loss::Dice => dice.shallow_clone(),
            other => other.of(y, &out.mask, &out.logits)?,
        };
        if let (Some(logits), Some(w)) = (&out.presence, self.presence) {
            let bce = crate::loss::presence_bce(logits, &crate::loss::presence_target(y)?)?;
            total = total.f_add(&bce.f_mul_scalar(w)?)?;
        }
        Ok(BatchLoss { total, dice })
    }

    /// The validation pass over samples `from..to`, in order, without gradients.
    pub fn validate(&self, from: usize, to: usize, epoch: usize) -> Result<Averages> {
        let tensors = [self.images, self.masks];
        let batches = Batches::range(tensors, from..to, self.batch, self.device);
        let mut losses = Vec::with_capacity(batches.len());
        for b in 0..batches.len() {
            crate::interrupt::check()?;
            let loss = tch::no_grad(|| -> Result<BatchLoss, TchError> {
                let [x, y] = batches.get(b)?;
                self.loss(&x, &y, false)
            })
            .map_err(|err| {
                let s = from + batches.span(b).start;
                let what = format!("validation of epoch {} at sample {}", epoch + 1, s + 1);
                explain(err, &what, self.device, Advice::BatchSize(self.batch))
            })?;
            losses.push(loss);
        }
        Ok(Averages::of(&to_host(&losses)?, batches.sizes()))
    }
}

/// Each batch's (loss, -dice_coef) on the host, in one transfer (one synchronisation).
fn to_host(losses: &[BatchLoss]) -> Result<Vec<(f64, f64)>> {
    if losses.is_empty() {
        return Ok(Vec::new());
    }
    let scalars: Vec<&Tensor> = losses.iter().flat_map(|l| [&l.total, &l.dice]).collect();
    let all = Tensor::f_stack(&scalars, 0)
        .and_then(|t| t.f_to_kind(Kind::Double))
        .and_then(|t| t.f_to_device(Device::Cpu))
        .map_err(|e| explain(e, "reading the losses", Device::Cpu, Advice::None))?;
    let host = Vec::<f64>::try_from(&all)?;
    Ok(host.chunks(2).map(|c| (c[0], c[1])).collect())
}
