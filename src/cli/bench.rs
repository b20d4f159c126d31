//! `bench`: time one stage in-process and print one JSON line (what `make bench` reads).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use nerveseg::bench::{self, NetBench, SaveResized};
use serde_json::json;
use tch::Device;

use super::network::NetworkArgs;
use super::parse_device;
use super::shared::SpeedArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub stage: Stage,
}

#[derive(Debug, Subcommand)]
pub enum Stage {
    /// Resize every training image and mask to the network's input (the training
    /// preprocessing).
    Resize(ResizeArgs),
    /// Training steps of the network (forward, loss, backward, Adam) on one batch each.
    TrainStep(NetArgs),
    /// Forward passes of the network without gradients.
    Infer(NetArgs),
    /// Encode probability maps as the submission does (enlarge, threshold, run-length).
    Encode(EncodeArgs),
}

#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// Training images, uint8 (N, H, W) frames of one size (Kaggle: 420 x 580).
    #[arg(long, value_name = "FILE", default_value = "imgs_train.npy")]
    pub images: PathBuf,
    /// Training masks, uint8 (N, H, W), the images' size.
    #[arg(long, value_name = "FILE", default_value = "imgs_mask_train.npy")]
    pub masks: PathBuf,
    /// Only the first N frames.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// The network's input to resize to, rows x columns.
    #[arg(long, value_name = "HxW", default_value = "96x96")]
    pub input_size: nerveseg::frame::FrameSize,
    /// Also write the standardised images, float32 (N, h, w, 1) (not timed).
    #[arg(long, value_name = "FILE", requires = "save_masks")]
    pub save_images: Option<PathBuf>,
    /// Also write the masks / 255, float32 (N, h, w, 1) (not timed).
    #[arg(long, value_name = "FILE", requires = "save_images")]
    pub save_masks: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct NetArgs {
    /// Model-ready float32 (N, h, w, 1) images at the network's input, e.g. from `bench
    /// resize --save-images`.
    #[arg(long, value_name = "FILE")]
    pub images: PathBuf,
    /// Model-ready float32 (N, h, w, 1) masks in [0, 1] (train-step only).
    #[arg(long, value_name = "FILE")]
    pub masks: Option<PathBuf>,
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Untimed runs first.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub warmup: usize,
    /// Timed training steps (train-step).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub steps: usize,
    /// Timed forward passes (infer).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub batches: usize,
    #[arg(long, value_name = "DEVICE", default_value = "cpu", value_parser = parse_device)]
    pub device: Device,
    /// CPU threads for libtorch (default: libtorch's choice).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub threads: Option<i32>,
    /// bfloat16 convolutions (train-step: mixed precision as `train --amp`).
    #[arg(long, visible_alias = "amp")]
    pub bf16: bool,
    #[command(flatten)]
    pub speed: SpeedArgs,
    /// The network timed and its loss (the tutorial's by default).
    #[command(flatten)]
    pub network: NetworkArgs,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// float32 (N, h, w, 1) probability maps.
    #[arg(long, value_name = "FILE", default_value = "imgs_mask_test.npy")]
    pub masks: PathBuf,
}

impl BenchArgs {
    /// Runs the stage; returns its JSON line.
    pub fn run(self) -> Result<String> {
        Ok(match self.stage {
            Stage::Resize(a) => {
                let save = a
                    .save_images
                    .zip(a.save_masks)
                    .map(|(images, masks)| SaveResized { images, masks });
                let files = (a.images.as_path(), a.masks.as_path());
                let (n, s) = bench::resize(files, a.limit, a.input_size, save.as_ref())?;
                json!({"stage": "resize", "framework": "nerveseg", "images": n, "seconds": s})
            }
            Stage::TrainStep(a) => {
                let masks = a.masks.clone().ok_or_else(|| {
                    anyhow::anyhow!("bench train-step needs --masks (model-ready float32)")
                })?;
                let b = a.net_bench(a.steps)?;
                let times = bench::train_steps(&a.images, &masks, &b)?;
                a.report("train-step", "step_seconds", &times)
            }
            Stage::Infer(a) => {
                let b = a.net_bench(a.batches)?;
                let times = bench::inference(&a.images, &b)?;
                a.report("infer", "batch_seconds", &times)
            }
            Stage::Encode(a) => {
                let (n, s) = bench::encode(&a.masks)?;
                json!({"stage": "encode", "framework": "nerveseg", "masks": n, "seconds": s})
            }
        }
        .to_string())
    }
}

impl NetArgs {
    fn net_bench(&self, runs: usize) -> Result<NetBench> {
        if let Some(t) = self.threads {
            tch::set_num_threads(t);
        }
        let network = self.network.choice(Default::default())?.fresh(false);
        network.check()?;
        Ok(NetBench {
            batch_size: self.batch_size as usize,
            warmup: self.warmup,
            runs,
            device: self.device,
            speed: self.speed.speed(self.bf16),
            network,
            loss: self.network.loss.map(Into::into).unwrap_or_default(),
        })
    }

    fn report(&self, stage: &str, key: &str, times: &[f64]) -> serde_json::Value {
        let m = bench::median(times);
        let speed = self.speed.speed(self.bf16);
        json!({
            "stage": stage,
            "framework": "nerveseg",
            "batch_size": self.batch_size,
            "threads": tch::get_num_threads(),
            "device": match self.device {
                Device::Cuda(i) => format!("cuda:{i}"),
                _ => "cpu".to_owned(),
            },
            "channels_last": speed.channels_last,
            "network": self.network.choice(Default::default()).map(|c| c.fresh(false).to_string()).unwrap_or_default(),
            "bf16": speed.bf16,
            key: times,
            "median_s": m,
            "images_per_s": self.batch_size as f64 / m,
        })
    }
}
