//! `demo`'s and `plot`'s flags.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nerveseg::demo::DemoConfig;
use tch::Device;

use super::parse_device;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for everything the demo writes.
    #[arg(long, value_name = "DIR", default_value = "demo-out")]
    pub out: PathBuf,
    /// Where to train: auto (CUDA when available), cpu, cuda or cuda:N. On CUDA the demo
    /// uses the full original size and settings.
    #[arg(long, value_name = "DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Training subjects (default: 47 on CUDA, 9 on CPU).
    #[arg(long, value_name = "N")]
    pub subjects: Option<u32>,
    /// Epochs (default: 20 on CUDA, 6 on CPU).
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
}

impl DemoArgs {
    pub fn into_config(self, quiet: bool) -> DemoConfig {
        DemoConfig {
            out: self.out,
            device: self.device,
            subjects: self.subjects,
            epochs: self.epochs,
            quiet,
        }
    }
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A training history (history.csv written by train).
    #[arg(value_name = "HISTORY", default_value = "weights/history.csv")]
    pub history: PathBuf,
    /// The PNG to write.
    #[arg(long, value_name = "FILE", default_value = "training.png")]
    pub out: PathBuf,
}

impl PlotArgs {
    pub fn run(self) -> Result<String> {
        nerveseg::plot::plot_history(&self.history, &self.out)?;
        Ok(format!("wrote {}", self.out.display()))
    }
}
