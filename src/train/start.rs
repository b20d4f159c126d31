//! Where a run starts: a fresh model, the weights of `--init-weights`, or `last.h5`
//! to resume (after checking that it is the same run), with its history and best.

use anyhow::{bail, Context, Result};
use tch::nn::VarStore;

use super::{read_history, resume, EpochLog, TrainConfig, HISTORY, LAST};
use crate::keras::{self, KerasFile, RunRecord};
use crate::libtorch::{explain, Advice};
use crate::model::{self, UNet, UNetConfig};

/// The model and where the run starts: fresh, from `--init-weights`, or resumed.
pub(super) struct Start {
    pub(super) vs: VarStore,
    pub(super) net: UNet,
    pub(super) cfg: UNetConfig,
    pub(super) epoch: usize,
    pub(super) history: Vec<EpochLog>,
    pub(super) best: Option<(usize, f64)>,
}

/// The file to start from (`last.h5` to resume, or `--init-weights`), read and with
/// every shape checked; `None` for a fresh start.
pub(super) fn weights_source(cfg: &TrainConfig) -> Result<Option<KerasFile>> {
    let file = if cfg.resume {
        let last = cfg.out_dir.join(LAST);
        keras::read(&last).context("nothing to resume; run without --resume first")?
    } else {
        match &cfg.init_weights {
            Some(p) => keras::read(p)?,
            None => return Ok(None),
        }
    };
    file.check(false)?;
    Ok(Some(file))
}

/// The network of the checkpoint a run starts from, refused when the command asks for
/// another (a flag that would otherwise be silently ignored).
pub(super) fn checkpoint_network(cfg: &TrainConfig, file: &KerasFile) -> Result<UNetConfig> {
    let net = file.network()?;
    let differ = cfg.network.disagreements(&net);
    if !differ.is_empty() {
        bail!(
            "{} holds {net}, and the checkpoint decides the network: leave out {}, or start \
             a fresh model without {}",
            file.path.display(),
            differ.join(", "),
            if cfg.resume {
                "--resume"
            } else {
                "--init-weights"
            }
        );
    }
    Ok(net)
}

/// The model and where the run starts: fresh (the network `network`), from
/// `--init-weights`, or resumed (after checking that it is the same run).
pub(super) fn build(
    cfg: &TrainConfig,
    source: Option<KerasFile>,
    run: &RunRecord,
    network: &UNetConfig,
) -> Result<Start> {
    if let (true, Some(last)) = (cfg.resume, &source) {
        resume::check_same_run(last, run)?;
    }
    let Some(file) = source else {
        tch::manual_seed(cfg.seed as i64);
        let vs = VarStore::new(cfg.device);
        let net = model::unet(&vs.root(), network).map_err(|e| {
            explain(
                e,
                "building the model",
                cfg.device,
                Advice::BaseWidth(network.base_width),
            )
        })?;
        return Ok(Start {
            vs,
            net,
            cfg: *network,
            epoch: 0,
            history: Vec::new(),
            best: None,
        });
    };
    let loaded = keras::load(&file, cfg.device, false)?;
    if loaded.cfg.presence_head != cfg.presence.is_some() {
        bail!(
            "{} {} a presence head: {}",
            file.path.display(),
            if loaded.cfg.presence_head {
                "has"
            } else {
                "has no"
            },
            if loaded.cfg.presence_head {
                "pass --presence-head to train it"
            } else {
                "leave out --presence-head, or start without --init-weights"
            }
        );
    }
    let (epoch, history, best) = if cfg.resume {
        let epoch = resume::epoch(&file)?;
        let history = read_history(&cfg.out_dir.join(HISTORY), epoch)?;
        let best = file
            .meta
            .best_val_loss
            .zip(file.meta.best_epoch)
            .filter(|&(l, e)| l.is_finite() && e >= 1)
            .map(|(l, e)| (e as usize - 1, l));
        (epoch, history, best)
    } else {
        (0, Vec::new(), None)
    };
    Ok(Start {
        vs: loaded.vs,
        net: loaded.net,
        cfg: loaded.cfg,
        epoch,
        history,
        best,
    })
}
