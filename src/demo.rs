//! `nerveseg demo`: the whole pipeline on synthetic data in one folder, for a newcomer:
//! synth, prepare, train, evaluate, predict, submit, score the submission, plot.
//!
//! On CUDA it runs the original's full size and settings. On a CPU it shrinks the job
//! to show learning in minutes on two cores: 1,080 training frames, a U-Net of base
//! width 16, batch 8, `--loss bce-dice` at a learning rate of 6e-4 and 6 epochs,
//! denormals flushed.
//!
//! Measured on a 2-core AMD EPYC with AVX-512 and AVX-512 BF16, with the demo's frames, best val_dice_coef (the
//! epoch of the best val_loss) over seeds 0 to 3: this setting 0.695, 0.673, 0.632,
//! 0.627, taking off by epoch 3 to 5, in 87 s of training. The earlier setting (the
//! batch Dice at batch 16 and lr 4e-5) reached 0.495 at epoch 6 with seed 0 and
//! collapsed to empty masks with seed 1 (0.002); lr 6e-5 collapsed with seeds 1 and 2;
//! 12 epochs of it reached 0.695 (seed 0) in 167 s. The cross-entropy keeps the empty
//! prediction from being a place to fall into, so a high rate is safe; at batch 16
//! (6e-4) seed 2 had not taken off by epoch 6 (0.216), and batch 8 costs the same time
//! an epoch with twice the steps. Earlier measurements, of the batch Dice:
//!
//! Measured on an H200 with these 1,080 frames at batch 32 (30 epochs each): lr 1e-5 at
//! width 16 only takes off after epoch 22; lr 3e-5 takes off at epoch 10 and reaches
//! val_dice_coef 0.67 by epoch 13; lr 1e-4 collapses to an all-empty prediction
//! (val_dice_coef 0.001) at widths 8 and 16. On a 2-core AMD EPYC, where an epoch takes
//! about 35 s at batch 32 and at batch 16 alike: the Dice takes off after about as many
//! steps times the learning rate (0.01) whatever the batch, so batch 16 gets there in
//! half the time. Batch 32 at lr 5e-5 takes off at epoch 7 and reaches 0.62 at epoch 10;
//! batch 16 at lr 5e-5 takes off at epoch 4 and then collapses (0.002 at epoch 5); batch
//! 16 at lr 4e-5 takes off at epoch 5 and reaches 0.68 at epoch 6 (0.65 at epoch 7).
//! Width 8 at lr 5e-5 (11 s an epoch) only reaches 0.45 by epoch 20; 720 frames at batch
//! 16 and lr 5e-5 reach 0.56 by epoch 8.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use tch::{Device, Kind, Tensor};

use crate::adam::{AdamConfig, KerasAdam};
use crate::batches::Batches;
use crate::data::PrepareConfig;
use crate::evaluate::{self, EvalConfig};
use crate::loss::Loss;
use crate::predict::{EnsembleConfig, PredictConfig};
use crate::submission::{MaskRule, SubmitConfig};
use crate::synth::SynthConfig;
use crate::train::pass::Pass;
use crate::train::{self, TrainConfig};

/// What the demo does; `None` picks the default for the device.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    pub out: PathBuf,
    pub device: Device,
    pub subjects: Option<u32>,
    pub epochs: Option<usize>,
    pub quiet: bool,
}

/// The demo's headline numbers.
#[derive(Clone, Debug)]
pub struct DemoReport {
    pub out: PathBuf,
    pub best_val_dice_coef: Option<f64>,
    pub validation: evaluate::Scores,
    pub submission: evaluate::Scores,
    pub seconds: f64,
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let out = &self.out;
        let weights = out.join("weights");
        write!(
            f,
            "\ndone in {:.0} s. Outputs in {}:\n  best checkpoint   {}\n  history           {}\n  \
             curves            {}\n  predictions       {} and {}/\n  overlays          {}/\n  \
             submission        {}\nscores:\n  best val_dice_coef (Keras)        {}\n  \
             validation kaggle_dice            {:.4}\n  test submission kaggle_dice       {:.4} ({} images)",
            self.seconds,
            out.display(),
            weights.join(train::BEST).display(),
            weights.join(train::HISTORY).display(),
            out.join("training.png").display(),
            out.join(crate::data::IMGS_MASK_TEST).display(),
            out.join("preds").display(),
            out.join("overlays").display(),
            out.join("submission.csv").display(),
            self.best_val_dice_coef
                .map_or_else(|| "n/a".to_owned(), |d| format!("{d:.4}")),
            self.validation.kaggle_dice,
            self.submission.kaggle_dice,
            self.submission.images,
        )
    }
}

/// The size of the demo's job.
struct Plan {
    subjects: u32,
    test: u32,
    epochs: usize,
    batch: i64,
    lr: f64,
    loss: Loss,
    width: i64,
}

/// Training frames per subject.
const PER_SUBJECT: usize = 120;

impl Plan {
    fn for_device(cfg: &DemoConfig) -> Plan {
        let gpu = cfg.device.is_cuda();
        Plan {
            subjects: cfg.subjects.unwrap_or(if gpu { 47 } else { 9 }),
            test: if gpu { 5508 } else { 200 },
            epochs: cfg.epochs.unwrap_or(if gpu { 20 } else { 6 }),
            batch: if gpu { 32 } else { 8 },
            lr: if gpu { 1e-5 } else { 6e-4 },
            loss: if gpu { Loss::Dice } else { Loss::BceDice },
            width: if gpu { 32 } else { 16 },
        }
    }

    /// The run time, from one training step timed here: the epochs' training and
    /// validation batches (a validation batch costs about a third of a step), plus the
    /// other steps (synth, prepare, evaluation, prediction), which took 27 s on a 2-core
    /// AMD EPYC whose step of batch 32 took 1.25 s: about 22 such steps, or 44 of batch
    /// 16 (a CPU step's time grows with the batch).
    fn expected_seconds(&self, device: Device) -> Result<f64> {
        Ok(self.seconds_for(self.step_seconds(device)?))
    }

    /// [`Plan::expected_seconds`] for a step of `step` seconds.
    fn seconds_for(&self, step: f64) -> f64 {
        let frames = self.subjects as usize * PER_SUBJECT;
        let val = frames / 5;
        let batches = |n: usize| n.div_ceil(self.batch as usize) as f64;
        let epoch = batches(frames - val) + batches(val) / 3.0;
        let others = 22.0 * 32.0 / self.batch as f64;
        step * (self.epochs as f64 * epoch + others)
    }

    /// Seconds of one training step (the one `train` takes) at the plan's batch size,
    /// after an untimed one.
    fn step_seconds(&self, device: Device) -> Result<f64> {
        let vs = tch::nn::VarStore::new(device);
        let mut net = crate::model::unet(&vs.root(), &crate::model::UNetConfig::width(self.width))?;
        net.set_speed(&vs, crate::model::Speed::default())?;
        let mut opt = KerasAdam::new(&vs, AdamConfig::default())?;
        let x = Tensor::f_randn([self.batch, 1, 96, 96], (Kind::Float, device))?;
        let y = x.f_gt(1.0)?.f_to_kind(Kind::Float)?;
        let pass = Pass {
            net: &net,
            images: &x,
            masks: &y,
            device,
            batch: self.batch as usize,
            frame: crate::frame::KAGGLE,
            presence: None,
            loss: self.loss,
        };
        let batches = Batches::range([&x, &y], 0..self.batch as usize, pass.batch, device);
        crate::bench::timed_step(&pass, &mut opt, batches.get(0)?)?;
        let seconds = crate::bench::timed_step(&pass, &mut opt, batches.get(0)?)?;
        Ok(seconds)
    }
}

/// Runs every step; an interrupt says which step it stopped in and that the finished
/// steps' outputs are kept.
pub fn demo(cfg: &DemoConfig) -> Result<DemoReport> {
    let step = std::cell::Cell::new("[1/7] synth");
    crate::interrupt::keeping(run_steps(cfg, &step), |inner| {
        format!(
            "the demo stopped during {}{}; the outputs of the steps before it are in {}",
            step.get(),
            inner.map(|s| format!(" ({s})")).unwrap_or_default(),
            cfg.out.display()
        )
    })
}

/// The demo's steps: each says what it does (unless quiet) and names itself for an
/// interrupt's message.
struct Steps<'a> {
    cfg: &'a DemoConfig,
    step: &'a std::cell::Cell<&'static str>,
    /// The synthetic Kaggle folders (`OUT/raw`).
    raw: PathBuf,
}

impl Steps<'_> {
    fn begin(&self, step: &'static str, what: String) {
        self.step.set(step);
        self.say(what);
    }

    fn say(&self, what: String) {
        if !self.cfg.quiet {
            crate::say!("{what}");
        }
    }

    /// [1/7] and [2/7]: the synthetic frames, prepared as the original's arrays.
    fn data(&self, plan: &Plan) -> Result<()> {
        let (cfg, raw, out) = (self.cfg, &self.raw, &self.cfg.out);
        let synth = SynthConfig {
            out: raw.clone(),
            subjects: plan.subjects,
            per_subject: PER_SUBJECT as u32,
            test: plan.test,
            seed: 0,
            test_masks: true,
            overwrite: true,
            compression: Default::default(),
            label_noise: crate::synth::noise::DEFAULT_RATE,
            quiet: cfg.quiet,
        };
        self.say(format!(
            "[1/7] synth: {} subjects x 120 training frames, {} test frames -> {}",
            synth.subjects,
            synth.test,
            raw.display()
        ));
        crate::synth::synth(&synth)?;
        self.begin(
            "[2/7] prepare",
            format!("[2/7] prepare -> {}", out.display()),
        );
        crate::data::prepare(&PrepareConfig {
            raw: raw.clone(),
            out: out.clone(),
            train: true,
            test: true,
            quiet: cfg.quiet,
        })?;
        Ok(())
    }

    /// [3/7]: training as the plan says, into `OUT/weights`.
    fn train(&self, plan: &Plan) -> Result<(TrainConfig, train::TrainReport)> {
        let (cfg, out) = (self.cfg, &self.cfg.out);
        let tcfg = TrainConfig {
            images: out.join(crate::data::IMGS_TRAIN),
            masks: out.join(crate::data::IMGS_MASK_TRAIN),
            out_dir: out.join("weights"),
            epochs: plan.epochs,
            batch_size: plan.batch as usize,
            adam: AdamConfig {
                lr: plan.lr,
                ..Default::default()
            },
            loss: plan.loss,
            device: cfg.device,
            // The demo's folder is its own: a second demo replaces the first.
            overwrite: true,
            network: crate::model::NetworkChoice {
                base_width: Some(plan.width),
                ..Default::default()
            },
            quiet: cfg.quiet,
            ..Default::default()
        };
        self.begin(
            "[3/7] train",
            format!(
                "[3/7] train: {} epochs, batch {}, base width {}, --loss {} at lr {:e}, on {:?} -> {}",
                tcfg.epochs,
                tcfg.batch_size,
                plan.width,
                plan.loss.name(),
                tcfg.adam.lr,
                cfg.device,
                tcfg.out_dir.display()
            ),
        );
        let report = train::train(&tcfg)?;
        Ok((tcfg, report))
    }

    /// [4/7] to [6/7]: the best checkpoint scored on the validation split, predicting
    /// the test frames, and their submission scored against the synthetic truth.
    fn score(&self, tcfg: &TrainConfig) -> Result<(evaluate::Scores, evaluate::Scores)> {
        let (cfg, raw, out) = (self.cfg, &self.raw, &self.cfg.out);
        self.begin(
            "[4/7] evaluate",
            "[4/7] evaluate on the validation split".to_owned(),
        );
        let rule = MaskRule::default();
        let ensemble = EnsembleConfig {
            weights: vec![tcfg.out_dir.join(train::BEST)],
            device: cfg.device,
            ..Default::default()
        };
        let eval = evaluate::evaluate(&EvalConfig {
            ensemble: ensemble.clone(),
            images: tcfg.images.clone(),
            masks: tcfg.masks.clone(),
            rule,
            trained_on: true,
            quiet: cfg.quiet,
            ..Default::default()
        })?;
        self.say(eval.report(rule).to_string());
        self.begin("[5/7] predict", "[5/7] predict the test frames".to_owned());
        let masks = out.join(crate::data::IMGS_MASK_TEST);
        let ids = out.join(crate::data::IMGS_ID_TEST);
        crate::predict::predict(&PredictConfig {
            ensemble,
            images: out.join(crate::data::IMGS_TEST),
            ids: ids.clone(),
            out: masks.clone(),
            png_dir: Some(out.join("preds")),
            overlays: Some(out.join("overlays")),
            truth_dir: Some(raw.join("test_masks")),
            limit: Some(24),
            rule,
            quiet: cfg.quiet,
            ..Default::default()
        })?;
        self.begin(
            "[6/7] submit",
            "[6/7] submit and score the submission against the synthetic ground truth".to_owned(),
        );
        let csv = out.join("submission.csv");
        crate::submission::submit(&SubmitConfig {
            masks,
            ids,
            out: csv.clone(),
            rule,
            size: crate::frame::KAGGLE,
        })?;
        let sub = evaluate::score_submission(&csv, &raw.join("test_masks"), false)?;
        Ok((eval.scores, sub))
    }
}

fn run_steps(cfg: &DemoConfig, step: &std::cell::Cell<&'static str>) -> Result<DemoReport> {
    let t0 = Instant::now();
    let steps = Steps {
        cfg,
        step,
        raw: cfg.out.join("raw"),
    };
    let plan = Plan::for_device(cfg);
    if !cfg.quiet {
        match plan.expected_seconds(cfg.device) {
            Ok(s) => steps.say(format!(
                "expected run time: about {:.0} min ({:.0} s) on this machine",
                (s / 60.0).max(1.0),
                s
            )),
            Err(e) => log::warn!("could not time a training step: {e:#}"),
        }
    }
    steps.data(&plan)?;
    let (tcfg, history) = steps.train(&plan)?;
    let (validation, submission) = steps.score(&tcfg)?;
    steps.begin("[7/7] plot", "[7/7] plot the training curves".to_owned());
    let png = cfg.out.join("training.png");
    crate::plot::plot_history(&tcfg.out_dir.join(train::HISTORY), &png)?;
    let best_val = history
        .best_epoch
        .and_then(|e| history.history.iter().find(|l| l.epoch == e))
        .and_then(|l| l.val_dice_coef);
    Ok(DemoReport {
        out: cfg.out.clone(),
        best_val_dice_coef: best_val,
        validation,
        submission,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_config() -> DemoConfig {
        DemoConfig {
            out: PathBuf::from("d"),
            device: Device::Cpu,
            subjects: None,
            epochs: None,
            quiet: true,
        }
    }

    fn cpu_plan() -> Plan {
        Plan::for_device(&cpu_config())
    }

    #[test]
    fn the_estimate_counts_the_plans_batches() {
        let p = Plan {
            batch: 16,
            ..cpu_plan()
        };
        // 864 training frames in 54 batches of 16 and 216 validation frames in 14, six
        // epochs, and the other steps' 44 batches of 16.
        let steps = 6.0 * (54.0 + 14.0 / 3.0) + 44.0;
        assert!((p.seconds_for(0.5) - 0.5 * steps).abs() < 1e-9);
        // At batch 32 the same frames are half as many (slower) steps.
        let p32 = Plan { batch: 32, ..p };
        let steps32 = 6.0 * (27.0 + 7.0 / 3.0) + 22.0;
        assert!((p32.seconds_for(1.0) - steps32).abs() < 1e-9);
    }

    /// The CPU demo's setting is the one measured to take off within its 6 epochs
    /// whatever the seed (see the module's notes); a GPU runs the tutorial's.
    #[test]
    fn the_cpu_demo_trains_bce_dice_at_batch_8() {
        let p = cpu_plan();
        assert_eq!((p.subjects, p.batch, p.epochs, p.width), (9, 8, 6, 16));
        assert_eq!((p.loss, p.lr), (Loss::BceDice, 6e-4));
        let gpu = Plan::for_device(&DemoConfig {
            device: Device::Cuda(0),
            ..cpu_config()
        });
        assert_eq!((gpu.batch, gpu.epochs, gpu.width), (32, 20, 32));
        assert_eq!((gpu.loss, gpu.lr), (Loss::Dice, 1e-5));
    }
}
