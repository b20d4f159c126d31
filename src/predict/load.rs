//! A checkpoint made ready to predict: its network built from the file and its weights
//! loaded, and the statistics its frames are standardised with (the checkpoint's, given
//! ones, or recomputed from a training array as the original did).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::Device;

use crate::data::npy::NpyReader;
use crate::dataset::{self, Stats};
use crate::frame::FrameSize;
use crate::keras::{self, KerasFile, LoadReport};
use crate::libtorch::{explain, Advice};
use crate::model::{self, UNet, UNetConfig};

/// A U-Net with weights from a Keras file, ready to run.
pub struct Loaded {
    pub vs: VarStore,
    pub net: UNet,
    pub cfg: UNetConfig,
    pub file: KerasFile,
    pub report: LoadReport,
}

/// Reads a Keras weight file, checks every shape, and builds the U-Net of its width on
/// `device`, to run as `speed` says.
pub fn load(
    path: &Path,
    device: Device,
    allow_partial: bool,
    speed: model::Speed,
) -> Result<Loaded> {
    model::check_device(device)?;
    let file = keras::read(path)?;
    let mut loaded = keras::load(&file, device, allow_partial)?;
    loaded.net.set_speed(&loaded.vs, speed).map_err(|e| {
        explain(
            e,
            "laying out the weights",
            device,
            Advice::BaseWidth(loaded.cfg.base_width),
        )
    })?;
    let r = &loaded.report;
    if !r.missing.is_empty() || !r.unused.is_empty() {
        log::warn!(
            "{}: loaded {} layers; not in the file: [{}]; unused from the file: [{}]",
            path.display(),
            r.applied.len(),
            r.missing.join(", "),
            r.unused.join(", ")
        );
    }
    Ok(Loaded {
        vs: loaded.vs,
        net: loaded.net,
        cfg: loaded.cfg,
        file,
        report: loaded.report,
    })
}

/// Where the standardisation statistics come from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StatsSource {
    /// The checkpoint's stored mean/std.
    #[default]
    Stored,
    /// Given on the command line.
    Given(Stats),
    /// Recomputed from a training array, as the original did.
    From(PathBuf),
}

impl StatsSource {
    /// The statistics to use with `file`'s weights (a network of input `input`);
    /// refused when they cannot standardise (a std that is not positive and finite).
    pub(crate) fn resolve(&self, file: &KerasFile, input: FrameSize, quiet: bool) -> Result<Stats> {
        match self {
            StatsSource::Given(s) => s.checked("--mean and --std"),
            StatsSource::From(p) => {
                let mut r = NpyReader::open(p)?;
                let frames = dataset::preprocess_frames(&mut r, "stats", input, quiet)?;
                dataset::stats(&frames).checked(&format!("statistics of {}", p.display()))
            }
            StatsSource::Stored => match file.meta.stats {
                Some(s) => s.checked(&format!("the statistics stored in {}", file.path.display())),
                None => bail!(
                    "{} stores no training mean/std (an original Keras file?): pass --mean and \
                     --std, or --stats-from imgs_train.npy",
                    file.path.display()
                ),
            },
        }
    }
}
