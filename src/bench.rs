//! In-process timings of single stages, for `make bench` (bench/bench.py): the same work
//! the pipeline does, timed without process start-up and file reading, so each figure
//! stands beside the reference scripts' own in-process timings.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::adam::{AdamConfig, KerasAdam};
use crate::batches::Batches;
use crate::data::npy::{self, Dtype, NpyReader};
use crate::dataset;
use crate::frame::FrameSize;
use crate::loss::Loss;
use crate::model::{self, Speed, UNet, UNetConfig};
use crate::predict::Predictions;
use crate::submission::{self, MaskRule};
use crate::train::pass::Pass;

/// Reads the first `limit` (or all) frames of a uint8 (N, H, W) array, with their size.
fn read_frames(path: &Path, limit: Option<usize>) -> Result<(Vec<u8>, FrameSize)> {
    let mut r = NpyReader::open(path)?;
    let size = FrameSize::of_frames(&r)?;
    let n = limit.map_or(r.shape[0] as usize, |l| l.min(r.shape[0] as usize));
    let mut out = vec![0u8; n * size.pixels()];
    r.read_rows(&mut out)?;
    Ok((out, size))
}

/// Where `resize` saves the model-ready arrays it made (float32 (N, h, w, 1)).
pub struct SaveResized {
    pub images: PathBuf,
    pub masks: PathBuf,
}

/// The training preprocessing: every image and mask resized to `to` (the network's
/// input, 96 x 96 for the tutorial's) in uint8, timed after both arrays are in memory.
/// Returns (images, seconds). With `save`, also writes the standardised images and unit
/// masks (not timed).
pub fn resize(
    (images, masks): (&Path, &Path),
    limit: Option<usize>,
    to: FrameSize,
    save: Option<&SaveResized>,
) -> Result<(usize, f64)> {
    let (frames, size) = read_frames(images, limit)?;
    let (mask_frames, mask_size) = read_frames(masks, limit)?;
    ensure!(
        frames.len() == mask_frames.len() && size == mask_size,
        "{} and {} hold different numbers or sizes of frames",
        images.display(),
        masks.display()
    );
    let t0 = Instant::now();
    let small = dataset::resize_frames(&frames, size, to);
    let small_masks = dataset::resize_frames(&mask_frames, size, to);
    let seconds = t0.elapsed().as_secs_f64();
    let n = small.len() / to.pixels();
    if let Some(save) = save {
        let shape = [n as u64, to.height as u64, to.width as u64, 1];
        let stats = dataset::stats(&small);
        let x = Vec::<f32>::try_from(&dataset::standardise(&small, stats, to)?.f_view([-1])?)?;
        let y = Vec::<f32>::try_from(&dataset::unit_masks(&small_masks, to)?.f_view([-1])?)?;
        npy::write(&save.images, &shape, &x)?;
        npy::write(&save.masks, &shape, &y)?;
    }
    Ok((n, seconds))
}

/// What a timed run of the network does.
#[derive(Clone, Debug)]
pub struct NetBench {
    pub batch_size: usize,
    /// Untimed runs first (allocator, oneDNN and cuDNN set-up).
    pub warmup: usize,
    /// Timed runs.
    pub runs: usize,
    pub device: Device,
    pub speed: Speed,
    /// The network timed (the tutorial's by default) and the loss of a training step.
    pub network: UNetConfig,
    pub loss: Loss,
}

/// Reads model-ready float32 (N, h, w, 1) rows of `input` as [N, 1, h, w]; at most
/// `limit`.
fn read_model_ready(path: &Path, limit: usize, input: FrameSize) -> Result<Tensor> {
    let mut r = NpyReader::open(path)?;
    let (h, w) = (input.height as u64, input.width as u64);
    r.expect(Dtype::F32, &[None, Some(h), Some(w), Some(1)])?;
    let n = (r.shape[0] as usize).min(limit);
    ensure!(n > 0, "{}: no rows", path.display());
    let mut v = vec![0f32; n * input.pixels()];
    r.read_rows(&mut v)?;
    Ok(dataset::to_nchw(&v, input)?)
}

fn net_on(b: &NetBench) -> Result<(VarStore, UNet)> {
    tch::manual_seed(0);
    let vs = VarStore::new(b.device);
    let mut net = model::unet(&vs.root(), &b.network)?;
    net.set_speed(&vs, b.speed)?;
    Ok((vs, net))
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Seconds of each timed training step ([`Pass::step`], as `train` takes it: zero grad,
/// forward, loss, backward, Keras Adam) of the network, batches taken in file order,
/// cycling.
pub fn train_steps(images: &Path, masks: &Path, b: &NetBench) -> Result<Vec<f64>> {
    model::check_device(b.device)?;
    let rows = b.batch_size * (b.warmup + b.runs);
    let x = read_model_ready(images, rows, b.network.input)?.f_to_device(b.device)?;
    let y = read_model_ready(masks, rows, b.network.input)?.f_to_device(b.device)?;
    let n = x.size()[0] as usize;
    ensure!(
        n >= b.batch_size && y.size()[0] as usize == n,
        "{} and {} need at least {} rows each",
        images.display(),
        masks.display(),
        b.batch_size
    );
    let (vs, net) = net_on(b)?;
    let mut opt = KerasAdam::new(&vs, AdamConfig::default())?;
    let pass = Pass {
        net: &net,
        images: &x,
        masks: &y,
        device: b.device,
        batch: b.batch_size,
        frame: crate::frame::KAGGLE,
        presence: None,
        loss: b.loss,
    };
    let full = n / b.batch_size * b.batch_size;
    let batches = Batches::range([&x, &y], 0..full, b.batch_size, b.device);
    let mut times = Vec::with_capacity(b.runs);
    for step in 0..b.warmup + b.runs {
        let seconds = timed_step(&pass, &mut opt, batches.get(step % batches.len())?)?;
        if step >= b.warmup {
            times.push(seconds);
        }
    }
    Ok(times)
}

/// Seconds of one training step of `pass` on `batch` (images, masks), waiting for the
/// device to finish.
pub(crate) fn timed_step(pass: &Pass, opt: &mut KerasAdam, batch: [Tensor; 2]) -> Result<f64> {
    let t0 = Instant::now();
    pass.step(opt, batch, None)?;
    sync(pass.device);
    Ok(t0.elapsed().as_secs_f64())
}

/// Seconds of each timed forward pass over a batch, without gradients.
pub fn inference(images: &Path, b: &NetBench) -> Result<Vec<f64>> {
    model::check_device(b.device)?;
    let rows = b.batch_size * (b.warmup + b.runs);
    let x = read_model_ready(images, rows, b.network.input)?.f_to_device(b.device)?;
    let n = x.size()[0] as usize;
    ensure!(
        n >= b.batch_size,
        "{} needs at least {} rows",
        images.display(),
        b.batch_size
    );
    let (_vs, net) = net_on(b)?;
    let full = n / b.batch_size * b.batch_size;
    let batches = Batches::range([&x], 0..full, b.batch_size, b.device);
    let mut times = Vec::with_capacity(b.runs);
    tch::no_grad(|| -> Result<()> {
        for run in 0..b.warmup + b.runs {
            let t0 = Instant::now();
            let [xb] = batches.get(run % batches.len())?;
            let y = net.forward(&xb)?;
            sync(b.device);
            drop(y);
            if run >= b.warmup {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        Ok(())
    })?;
    Ok(times)
}

/// The submission's encoding of float32 (N, h, w, 1) probability maps (threshold,
/// enlarge to 420 x 580, run-length code) with the default rule, timed after reading.
/// Returns (masks, seconds).
pub fn encode(masks: &Path) -> Result<(usize, f64)> {
    let preds = Predictions::read(masks, false)?;
    let order: Vec<usize> = (0..preds.len()).collect();
    let t0 = Instant::now();
    let rule = MaskRule::default();
    let rows = submission::encode(&preds, &order, &rule, crate::frame::KAGGLE);
    Ok((rows.len(), t0.elapsed().as_secs_f64()))
}

/// The median of `v` (the mean of the middle two for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
