//! Prediction, the last part of the original `train.py`: load a checkpoint and predict
//! masks for an array of images, in batches and without gradients.
//!
//! Input today: model-ready float32 (N, 96, 96, 1) arrays, fed to the network as they
//! are, as Keras `model.predict` does. Output: float32 (N, 96, 96, 1) probabilities, the
//! original's `imgs_mask_test.npy`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

use crate::data::npy::{Dtype, NpyReader, NpyWriter};
use crate::keras::{self, KerasFile, LoadReport};
use crate::model::{self, UNet, UNetConfig, INPUT_SIZE};

/// A U-Net with weights from a Keras file, ready to run.
pub struct Loaded {
    pub vs: VarStore,
    pub net: UNet,
    pub cfg: UNetConfig,
    pub file: KerasFile,
    pub report: LoadReport,
}

/// Reads a Keras weight file and builds the U-Net of its width on `device`.
pub fn load(path: &Path, device: Device, allow_partial: bool) -> Result<Loaded> {
    model::check_device(device)?;
    let file = keras::read(path)?;
    let cfg = UNetConfig {
        base_width: file.base_width()?,
    };
    let mut vs = VarStore::new(device);
    let net = model::unet(&vs.root(), &cfg);
    let report = keras::apply(&file, &mut vs, allow_partial)?;
    Ok(Loaded {
        vs,
        net,
        cfg,
        file,
        report,
    })
}

/// What `predict` reads and writes.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    pub weights: PathBuf,
    pub images: PathBuf,
    pub out: PathBuf,
    pub batch_size: usize,
    pub device: Device,
    /// Load what matches when the file's layers do not all match ours.
    pub allow_partial: bool,
    pub quiet: bool,
}

/// Predicts float32 (N, 96, 96, 1) images and writes float32 (N, 96, 96, 1) probabilities.
pub fn predict(cfg: &PredictConfig) -> Result<usize> {
    let mut reader = NpyReader::open(&cfg.images)?;
    let side = INPUT_SIZE as u64;
    match (reader.dtype, reader.shape.as_slice()) {
        (Dtype::F32, [_, h, w, 1]) if *h == side && *w == side => {}
        (Dtype::U8, [_, 420, 580]) => bail!(
            "{}: uint8 (N, 420, 580) frames need preprocessing (resize to 96 x 96 and \
             standardising), which predict does not do yet; pass a model-ready float32 \
             (N, 96, 96, 1) array",
            cfg.images.display()
        ),
        _ => reader.expect(Dtype::F32, &[None, Some(side), Some(side), Some(1)])?,
    }
    let n = reader.shape[0] as usize;
    let loaded = load(&cfg.weights, cfg.device, cfg.allow_partial)?;
    let r = &loaded.report;
    if !r.missing.is_empty() || !r.unused.is_empty() {
        log::warn!(
            "{}: loaded {} layers; not in the file: [{}]; unused from the file: [{}]",
            cfg.weights.display(),
            r.applied.len(),
            r.missing.join(", "),
            r.unused.join(", ")
        );
    }
    let mut writer = NpyWriter::<f32>::create(&cfg.out, &[n as u64, side, side, 1])?;
    let pixels = (side * side) as usize;
    let batch = cfg.batch_size.max(1);
    let pb = crate::progress::bar(n as u64, "predict", cfg.quiet);
    let mut buf = vec![0f32; batch * pixels];
    let mut done = 0;
    while done < n {
        let b = batch.min(n - done);
        let chunk = &mut buf[..b * pixels];
        reader.read_rows(chunk)?;
        // NHWC with one channel has the same memory order as NCHW: a view is enough.
        let x = Tensor::from_slice(chunk)
            .view([b as i64, 1, INPUT_SIZE, INPUT_SIZE])
            .to_device(cfg.device);
        let y = tch::no_grad(|| loaded.net.forward(&x));
        let y = Vec::<f32>::try_from(
            &y.to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .contiguous()
                .view([-1]),
        )
        .context("copying predictions from the device")?;
        for row in y.chunks(pixels) {
            writer.push_row(row)?;
        }
        done += b;
        pb.inc(b as u64);
    }
    pb.finish_and_clear();
    writer.finish()?;
    Ok(n)
}
