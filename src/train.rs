//! Training, the heart of the original `train.py`: `model.fit(imgs, masks, batch_size=32,
//! epochs=20, shuffle=True, validation_split=0.2, callbacks=[ModelCheckpoint(
//! 'weights.h5', monitor='val_loss', save_best_only=True)])` with Adam(lr=1e-5) and the
//! Dice loss, reporting Keras's own epoch figures.
//!
//! Keras's averaging: the epoch `loss` is the mean of batch losses weighted by batch size,
//! `dice_coef` the plain mean of batch values; the same for the validation pass.
//! Beside the best checkpoint (`weights.h5`) each epoch also writes `last.h5` (weights,
//! Adam state, epoch, best so far) so `--resume` can continue, and `history.csv`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

use crate::adam::{AdamConfig, KerasAdam};
use crate::dataset::{self, Prepared};
use crate::keras::{self, Meta};
use crate::loss::dice_loss;
use crate::model::{self, UNet, UNetConfig};

pub const BEST: &str = "weights.h5";
pub const LAST: &str = "last.h5";
pub const HISTORY: &str = "history.csv";

/// Everything `train` needs; defaults are the tutorial's.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub images: PathBuf,
    pub masks: PathBuf,
    pub out_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub adam: AdamConfig,
    pub validation_split: f64,
    pub seed: u64,
    pub shuffle: bool,
    pub device: Device,
    /// Start from these weights (any Keras file) instead of a fresh initialisation.
    pub init_weights: Option<PathBuf>,
    /// Continue the run saved in `out_dir/last.h5`.
    pub resume: bool,
    pub base_width: i64,
    /// Memory layout and compute precision of the forward pass (`--amp` is bf16).
    pub speed: model::Speed,
    pub quiet: bool,
}

/// Keras's figures for one epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpochLog {
    /// 0-based, as Keras's CSVLogger writes it.
    pub epoch: usize,
    pub loss: f64,
    pub dice_coef: f64,
    pub val_loss: Option<f64>,
    pub val_dice_coef: Option<f64>,
    pub seconds: f64,
}

/// How a run ended.
#[derive(Clone, Debug, Default)]
pub struct TrainReport {
    pub history: Vec<EpochLog>,
    pub best_epoch: Option<usize>,
    pub best_val_loss: Option<f64>,
    pub interrupted: bool,
}

/// Batch-size-weighted loss and plain-mean Dice over a pass, as Keras averages them.
#[derive(Default)]
struct Averages {
    loss_sum: f64,
    samples: usize,
    dice_sum: f64,
    batches: usize,
}

impl Averages {
    /// The averages of a pass from its batch losses and sizes.
    fn of(losses: &[f64], sizes: impl Iterator<Item = usize>) -> Averages {
        let mut avg = Averages::default();
        for (&l, n) in losses.iter().zip(sizes) {
            avg.add(l, n);
        }
        avg
    }
    fn add(&mut self, loss: f64, n: usize) {
        self.loss_sum += loss * n as f64;
        self.samples += n;
        self.dice_sum += -loss;
        self.batches += 1;
    }
    fn loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }
    fn dice(&self) -> f64 {
        self.dice_sum / self.batches.max(1) as f64
    }
}

/// Set by Ctrl-C: stop after the current batch.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    // A second handler cannot be installed (e.g. in tests that train twice); then Ctrl-C
    // keeps its default meaning.
    let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
    flag
}

/// Runs training; returns the history. Errors leave the best checkpoint as it was.
pub fn train(cfg: &TrainConfig) -> Result<TrainReport> {
    model::check_device(cfg.device)?;
    if !(0.0..1.0).contains(&cfg.validation_split) {
        bail!(
            "--validation-split must be in [0, 1), got {}",
            cfg.validation_split
        );
    }
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    let data = dataset::load_training(&cfg.images, &cfg.masks, cfg.quiet)?;
    let n = data.images.size()[0] as usize;
    let n_train = dataset::train_count(n, cfg.validation_split);
    if n_train == 0 || (cfg.validation_split > 0.0 && n_train == n) {
        bail!(
            "{n} samples cannot be split with --validation-split {}",
            cfg.validation_split
        );
    }

    let (vs, mut net, ucfg, start_epoch, mut history, mut best) = build(cfg)?;
    net.set_speed(&vs, cfg.speed);
    let mut opt = KerasAdam::new(&vs, cfg.adam);
    if cfg.resume {
        let last = cfg.out_dir.join(LAST);
        let state = keras::read_adam_state(&last, &opt.names())?
            .with_context(|| format!("{} holds no optimizer state", last.display()))?;
        opt.load_state(&state)?;
    }
    let Prepared {
        images,
        masks,
        stats,
    } = data;
    // The whole set moves to the device once; batches are gathered there.
    let images = images.to_device(cfg.device);
    let masks = masks.to_device(cfg.device);
    let meta_base = Meta {
        mean: stats.map(|s| s.mean),
        std: stats.map(|s| s.std),
        ..Default::default()
    };
    let stop = interrupt_flag();
    let mut report = TrainReport::default();

    for epoch in start_epoch..cfg.epochs {
        let t0 = Instant::now();
        let order = dataset::epoch_order(n_train, cfg.seed, epoch, cfg.shuffle);
        let pb = crate::progress::bar(
            n_train as u64,
            &format!("{}/{}", epoch + 1, cfg.epochs),
            cfg.quiet,
        );
        // The batch losses stay on the device until the epoch ends (or the bar is
        // redrawn), so the GPU is never made to wait for the host inside the loop.
        let order_t = Tensor::from_slice(&order).to_device(cfg.device);
        let sizes: Vec<usize> = order.chunks(cfg.batch_size).map(<[i64]>::len).collect();
        let mut losses: Vec<Tensor> = Vec::with_capacity(sizes.len());
        let mut shown = Instant::now();
        let mut start = 0;
        for &size in &sizes {
            let idx_t = order_t.narrow(0, start, size as i64);
            start += size as i64;
            let x = images.index_select(0, &idx_t);
            let y = masks.index_select(0, &idx_t);
            opt.zero_grad();
            let loss = dice_loss(&y, &net.forward(&x));
            loss.backward();
            opt.step();
            losses.push(loss.detach());
            pb.inc(size as u64);
            if !cfg.quiet && shown.elapsed().as_secs_f64() >= 0.5 {
                shown = Instant::now();
                let avg = Averages::of(&to_host(&losses), sizes.iter().copied());
                let rate = avg.samples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!(
                    "loss {:.4} dice {:.4} {rate:.1} img/s",
                    avg.loss(),
                    avg.dice()
                ));
            }
            if stop.load(Ordering::SeqCst) {
                pb.abandon();
                report.interrupted = true;
                break;
            }
        }
        let values = to_host(&losses);
        if let Some(b) = values.iter().position(|v| !v.is_finite()) {
            bail!(
                "the loss became {} at epoch {} batch {}; stopped. The best checkpoint {} is as it was",
                values[b],
                epoch + 1,
                b + 1,
                cfg.out_dir.join(BEST).display()
            );
        }
        let avg = Averages::of(&values, sizes.iter().copied());
        pb.finish_and_clear();
        if report.interrupted {
            break;
        }
        let val =
            (n_train < n).then(|| validate(&net, &images, &masks, n_train, n, cfg.batch_size));
        let log = EpochLog {
            epoch,
            loss: avg.loss(),
            dice_coef: avg.dice(),
            val_loss: val.as_ref().map(Averages::loss),
            val_dice_coef: val.as_ref().map(Averages::dice),
            seconds: t0.elapsed().as_secs_f64(),
        };
        // ModelCheckpoint(save_best_only): only when val_loss improves; every epoch
        // without validation.
        let improved = match (log.val_loss, best) {
            (Some(v), Some((_, b))) => v < b,
            _ => true,
        };
        if improved {
            best = Some((epoch, log.val_loss.unwrap_or(log.loss)));
            let meta = Meta {
                epoch: Some(epoch as i64 + 1),
                ..meta_base.clone()
            };
            keras::write(
                &cfg.out_dir.join(BEST),
                &vs,
                &ucfg,
                &meta,
                keras::Format::Keras2Model,
            )?;
        }
        history.push(log);
        let meta = Meta {
            epoch: Some(epoch as i64 + 1),
            best_val_loss: best.map(|b| b.1),
            best_epoch: best.map(|b| b.0 as i64 + 1),
            ..meta_base.clone()
        };
        keras::write_checkpoint(&cfg.out_dir.join(LAST), &vs, &ucfg, &meta, &opt.state())?;
        write_history(&cfg.out_dir.join(HISTORY), &history)?;
        if !cfg.quiet {
            println!("{}", format_epoch(&log, cfg.epochs, improved));
        }
    }
    report.history = history;
    report.best_epoch = best.map(|b| b.0);
    report.best_val_loss = best.map(|b| b.1);
    Ok(report)
}

type Built = (
    VarStore,
    UNet,
    UNetConfig,
    usize,
    Vec<EpochLog>,
    Option<(usize, f64)>,
);

/// The model and where the run starts: fresh, from `--init-weights`, or resumed.
fn build(cfg: &TrainConfig) -> Result<Built> {
    let source = if cfg.resume {
        Some(cfg.out_dir.join(LAST))
    } else {
        cfg.init_weights.clone()
    };
    let file = match &source {
        Some(p) if cfg.resume => {
            Some(keras::read(p).context("nothing to resume; run without --resume first")?)
        }
        Some(p) => Some(keras::read(p)?),
        None => None,
    };
    let width = match &file {
        Some(f) => f.base_width()?,
        None => cfg.base_width,
    };
    let ucfg = UNetConfig { base_width: width };
    tch::manual_seed(cfg.seed as i64);
    let mut vs = VarStore::new(cfg.device);
    let net = model::unet(&vs.root(), &ucfg);
    let (mut start, mut history, mut best) = (0, Vec::new(), None);
    if let Some(f) = &file {
        keras::apply(f, &mut vs, false)?;
        if cfg.resume {
            start = f.meta.epoch.unwrap_or(0) as usize;
            history = read_history(&cfg.out_dir.join(HISTORY))?;
            history.truncate(start);
            best = f
                .meta
                .best_val_loss
                .zip(f.meta.best_epoch)
                .map(|(l, e)| (e as usize - 1, l));
        }
    }
    Ok((vs, net, ucfg, start, history, best))
}

/// The validation pass, in order, without gradients.
fn validate(
    net: &UNet,
    images: &Tensor,
    masks: &Tensor,
    from: usize,
    to: usize,
    batch: usize,
) -> Averages {
    let mut losses = Vec::new();
    let mut sizes = Vec::new();
    tch::no_grad(|| {
        let mut s = from;
        while s < to {
            let e = (s + batch).min(to);
            let x = images.narrow(0, s as i64, (e - s) as i64);
            let y = masks.narrow(0, s as i64, (e - s) as i64);
            losses.push(dice_loss(&y, &net.forward(&x)));
            sizes.push(e - s);
            s = e;
        }
    });
    Averages::of(&to_host(&losses), sizes.into_iter())
}

/// Scalar losses to host f64 in one transfer (one synchronisation).
fn to_host(losses: &[Tensor]) -> Vec<f64> {
    if losses.is_empty() {
        return Vec::new();
    }
    let all = Tensor::stack(losses, 0)
        .to_kind(Kind::Double)
        .to_device(Device::Cpu);
    Vec::<f64>::try_from(&all).unwrap_or_default()
}

fn format_epoch(l: &EpochLog, epochs: usize, saved: bool) -> String {
    let mut s = format!(
        "epoch {}/{epochs}: loss {:.6} dice_coef {:.6}",
        l.epoch + 1,
        l.loss,
        l.dice_coef
    );
    if let (Some(vl), Some(vd)) = (l.val_loss, l.val_dice_coef) {
        s += &format!(" val_loss {vl:.6} val_dice_coef {vd:.6}");
    }
    s += &format!(" ({:.1} s)", l.seconds);
    if saved {
        s += " saved";
    }
    s
}

const HEADER: [&str; 6] = [
    "epoch",
    "dice_coef",
    "loss",
    "val_dice_coef",
    "val_loss",
    "seconds",
];

/// Keras CSVLogger's columns (epoch, then the metrics sorted by name), plus seconds;
/// rewritten whole and atomically each epoch.
fn write_history(path: &std::path::Path, rows: &[EpochLog]) -> Result<()> {
    let tmp = crate::atomic::temp_beside(path)?;
    {
        let mut w = csv::Writer::from_writer(tmp.as_file());
        w.write_record(HEADER)?;
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for r in rows {
            w.write_record([
                r.epoch.to_string(),
                r.dice_coef.to_string(),
                r.loss.to_string(),
                opt(r.val_dice_coef),
                opt(r.val_loss),
                format!("{:.3}", r.seconds),
            ])?;
        }
        w.flush()?;
    }
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn read_history(path: &std::path::Path) -> Result<Vec<EpochLog>> {
    let mut out = Vec::new();
    let Ok(mut r) = csv::Reader::from_path(path) else {
        return Ok(out);
    };
    for rec in r.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        let num = |i: usize| rec.get(i).and_then(|s| s.parse::<f64>().ok());
        out.push(EpochLog {
            epoch: num(0).unwrap_or(0.0) as usize,
            dice_coef: num(1).unwrap_or(f64::NAN),
            loss: num(2).unwrap_or(f64::NAN),
            val_dice_coef: num(3),
            val_loss: num(4),
            seconds: num(5).unwrap_or(0.0),
        });
    }
    Ok(out)
}
