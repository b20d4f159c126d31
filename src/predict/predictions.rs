//! What a prediction is: the probability map of each frame and, when the network has a
//! presence head, the head's probability that the frame holds a nerve. One value carries
//! both from the network to every consumer (the arrays, the pictures, the submission,
//! the scores), and one file form holds it: the maps as float32 (N, h, w, 1)
//! (`imgs_mask_test.npy`, as the original wrote them) with the head's probabilities
//! beside them as float32 (N, 1) ([`crate::presence::scores_path`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::{Device, Kind, TchError, Tensor};

use crate::batches::Batches;
use crate::data::npy::{Dtype, NpyReader, NpyWriter};
use crate::frame::FrameSize;
use crate::interrupt;
use crate::libtorch::{explain, Advice};
use crate::model::UNet;
use crate::presence::{self, Gate};

/// The predictions for N frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    /// The probability maps, one after another, of `size` each.
    pub maps: Vec<f32>,
    /// The maps' size: the network's input (96 x 96 for the tutorial's).
    pub size: FrameSize,
    /// The presence head's probability of each frame, when the network has a head.
    pub presence: Option<Vec<f32>>,
}

impl Predictions {
    /// The predictions of `net` for `images` ([N, 1, h, w] on any device), in batches of
    /// `batch` on `device`, without gradients. Stops at an interrupt between batches; a
    /// libtorch failure (out of memory) is an error naming the batch.
    pub fn of(
        net: &UNet,
        images: &Tensor,
        batch: usize,
        device: Device,
        quiet: bool,
    ) -> Result<Predictions> {
        let shape = images.size();
        let n = shape.first().copied().unwrap_or(0);
        let side = |k: usize| shape.get(k).copied().unwrap_or(0) as usize;
        let size = FrameSize {
            height: side(2),
            width: side(3),
        };
        let pb = crate::progress::bar(n as u64, "predict", quiet);
        let mut maps = Vec::with_capacity(n as usize * size.pixels());
        let mut heads = net.has_head().then(|| Vec::with_capacity(n as usize));
        let host = |t: Tensor| -> Result<Tensor, TchError> {
            t.f_to_device(Device::Cpu)?
                .f_to_kind(Kind::Float)?
                .f_contiguous()?
                .f_view([-1])
        };
        let batches = Batches::range([images], 0..n as usize, batch, device);
        for b in 0..batches.len() {
            interrupt::check()?;
            let (y, h) = tch::no_grad(|| -> Result<(Tensor, Option<Tensor>), TchError> {
                let [x] = batches.get(b)?;
                let out = net.forward(&x)?;
                let head = match out.presence {
                    Some(logits) => Some(host(logits.f_sigmoid()?)?),
                    None => None,
                };
                Ok((host(out.mask)?, head))
            })
            .map_err(|e| {
                let span = batches.span(b);
                let what = format!("prediction of images {}..{}", span.start + 1, span.end);
                explain(e, &what, device, Advice::BatchSize(batch))
            })?;
            let copied = "copying predictions from the device";
            maps.extend(Vec::<f32>::try_from(&y).context(copied)?);
            if let (Some(all), Some(h)) = (heads.as_mut(), h) {
                all.extend(Vec::<f32>::try_from(&h).context(copied)?);
            }
            pb.inc(batches.span(b).len() as u64);
        }
        pb.finish_and_clear();
        Ok(Predictions {
            maps,
            size,
            presence: heads,
        })
    }

    /// The number of frames.
    pub fn len(&self) -> usize {
        self.maps.len() / self.size.pixels().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// The probability map of frame `i`.
    pub fn map(&self, i: usize) -> &[f32] {
        let px = self.size.pixels();
        &self.maps[i * px..(i + 1) * px]
    }

    /// The presence head's probability of frame `i`, when there is a head.
    pub(crate) fn presence_of(&self, i: usize) -> Option<f32> {
        self.presence.as_ref().map(|p| p[i])
    }

    /// Zeroes the maps of the frames `gate` judges empty, so that every picture and array
    /// made from them shows the empty mask; returns how many it emptied.
    pub(crate) fn empty_gated(&mut self, gate: Gate) -> usize {
        let px = self.size.pixels();
        presence::empty_gated(gate, &mut self.maps, px, self.presence.as_deref())
    }

    /// Reads the maps of float32 (N, h, w, 1) `path` and, when `presence` asks for them
    /// and the file beside it exists, the presence head's probabilities.
    pub fn read(path: &Path, presence: bool) -> Result<Predictions> {
        let r = NpyReader::open(path)?;
        let size = FrameSize::of_maps(&r)?;
        let n = r.shape[0];
        let maps = r.read_all::<f32>()?;
        let beside = presence::scores_path(path);
        let presence = match presence && beside.exists() {
            true => {
                let r = NpyReader::open(&beside)?;
                r.expect(Dtype::F32, &[Some(n), Some(1)])?;
                Some(r.read_all::<f32>()?)
            }
            false => None,
        };
        Ok(Predictions {
            maps,
            size,
            presence,
        })
    }
}

/// The file of predictions being made: opened before the work, so that an unwritable
/// place fails first, and written once every frame is predicted.
pub struct PredictionsFile {
    maps: NpyWriter<f32>,
    path: PathBuf,
}

impl PredictionsFile {
    /// Opens `path` for the maps of `n` frames of `size`.
    pub fn create(path: &Path, n: u64, size: FrameSize) -> Result<PredictionsFile> {
        let (h, w) = (size.height as u64, size.width as u64);
        Ok(PredictionsFile {
            maps: NpyWriter::<f32>::create(path, &[n, h, w, 1])?,
            path: path.to_owned(),
        })
    }

    /// Writes the maps and, with a head, the presence probabilities beside them (a stale
    /// file of an earlier prediction's is removed); returns where the latter went. An
    /// interrupt before the maps are in place leaves nothing.
    pub fn write(mut self, p: &Predictions) -> Result<Option<PathBuf>> {
        let beside = presence::scores_path(&self.path);
        let mut heads = match &p.presence {
            Some(h) => Some(NpyWriter::<f32>::create(&beside, &[h.len() as u64, 1])?),
            None => None,
        };
        for row in p.maps.chunks(p.size.pixels()) {
            self.maps.push_row(row)?;
        }
        interrupt::check()?;
        self.maps.finish()?;
        match (heads.as_mut(), &p.presence) {
            (Some(w), Some(h)) => {
                for v in h {
                    w.push_row(std::slice::from_ref(v))?;
                }
            }
            _ if beside.exists() => {
                // An earlier prediction's scores must not pass for this one's.
                std::fs::remove_file(&beside)
                    .with_context(|| format!("removing the stale {}", beside.display()))?;
            }
            _ => {}
        }
        if let Some(w) = heads {
            w.finish()?;
        }
        Ok(p.presence.is_some().then_some(beside))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, UNetConfig};
    use tch::nn::VarStore;

    /// A batch of the wrong shape reaching the network (the seam a file cannot reach:
    /// `predict` checks shapes first) comes back as a one-line libtorch error.
    #[test]
    fn a_libtorch_failure_in_a_batch_is_an_error() {
        let vs = VarStore::new(Device::Cpu);
        let net = model::unet(&vs.root(), &UNetConfig::width(2)).unwrap();
        let x = Tensor::zeros([3, 2, 96, 96], (Kind::Float, Device::Cpu));
        let e = Predictions::of(&net, &x, 2, Device::Cpu, true).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with("libtorch failed during prediction of images 1..2: "),
            "{msg}"
        );
        assert!(msg.contains("to have 1 channels"), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }
}
