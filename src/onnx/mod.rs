//! `export --onnx model.onnx`: one ONNX graph from raw frames to masks, with nerveseg's
//! preprocessing and mask rule inside, so a runtime needs nothing else:
//!
//! - input `frames`: uint8 (N, H, W) at the frame size it was exported for;
//! - the resize to the network's input as scikit-image's `preserve_range` resize does it,
//!   truncated to uint8 (`resize.rs`, the same arithmetic as [`crate::resize`]), then
//!   (x - mean) / std with the checkpoint's statistics;
//! - the network (`network.rs`);
//! - output `probabilities`: float32 (N, 1, h, w), the network's output;
//! - output `masks`: uint8 (N, H, W), 0 or 255, by `submit`'s rule (`rule.rs`);
//! - with a presence head, output `presence`: float32 (N, 1).
//!
//! The graph is written for opset [`OPSET`] with prost's types of ONNX's own schema.
//! Beside it, `model.onnx.json` says the same in words.

mod builder;
mod ensemble;
mod network;
mod resize;
mod rule;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use prost::Message;
use tch::Device;

use builder::pb::tensor_proto::DataType;
use builder::{value_info, Dim, Graph};
pub use builder::{IR_VERSION, OPSET};

use crate::frame::FrameSize;
use crate::model::Speed;
use crate::predict::{Ensemble, EnsembleConfig, StatsSource};
use crate::submission::{enlarger, MaskRule};

/// What `export --onnx` reads and writes.
#[derive(Clone, Debug)]
pub struct OnnxConfig {
    /// One checkpoint, or several whose probabilities are averaged (as `predict`'s).
    pub weights: Vec<PathBuf>,
    /// Also predict the frames flipped left to right, and average.
    pub tta: bool,
    pub onnx: PathBuf,
    /// The frames' size; by default the size the checkpoint was trained on.
    pub frame_size: Option<FrameSize>,
    pub stats: StatsSource,
    pub rule: MaskRule,
    pub quiet: bool,
}

/// What `export --onnx` wrote.
#[derive(Clone, Debug)]
pub struct OnnxReport {
    pub onnx: PathBuf,
    pub sidecar: PathBuf,
    pub frame_size: FrameSize,
    pub map_size: FrameSize,
    pub nodes: usize,
    pub bytes: usize,
    /// The checkpoints averaged, and whether flipped frames were too.
    pub checkpoints: usize,
    pub tta: bool,
}

impl fmt::Display for OnnxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} ({:.1} MB, {} nodes, opset {OPSET}: uint8 frames of {} in, masks and \
             {} probabilities out{}) and {}",
            self.onnx.display(),
            self.bytes as f64 / 1e6,
            self.nodes,
            self.frame_size,
            self.map_size,
            match (self.checkpoints, self.tta) {
                (1, false) => String::new(),
                (1, true) => ", averaged with the flipped frames'".to_owned(),
                (k, tta) => format!(
                    ", the mean of {k} checkpoints{}",
                    if tta {
                        " and their flipped frames'"
                    } else {
                        ""
                    }
                ),
            },
            self.sidecar.display()
        )
    }
}

/// What the graph is made from.
pub(crate) struct Parts<'a> {
    pub members: Vec<ensemble::Member<'a>>,
    pub tta: bool,
    pub rule: &'a MaskRule,
    pub frame_size: FrameSize,
}

/// The whole graph, frames to masks.
pub(crate) fn model(p: &Parts) -> Result<builder::pb::ModelProto> {
    let mut g = Graph::default();
    let size = p.frame_size;
    let map = p.members.first().map(|m| m.network.input).unwrap_or(size);
    let frames = g.cast("frames", DataType::Double);
    let out = ensemble::probabilities(&mut g, &p.members, p.tta, &frames, size)?;
    g.op_into("Identity", &[&out.mask], vec![], &["probabilities"]);
    let head = out.head.map(|h| {
        g.op_into("Identity", &[&h], vec![], &["presence"]);
        "presence"
    });
    let enlarge = enlarger(map, size);
    rule::masks(
        &mut g,
        p.rule,
        "probabilities",
        head,
        &enlarge,
        map.pixels(),
        "masks",
    );
    let n = || Dim::Named("N");
    let fixed = |v: usize| Dim::Fixed(v as i64);
    let mut outputs = vec![
        value_info(
            "probabilities",
            DataType::Float,
            &[n(), fixed(1), fixed(map.height), fixed(map.width)],
        ),
        value_info(
            "masks",
            DataType::Uint8,
            &[n(), fixed(size.height), fixed(size.width)],
        ),
    ];
    if head.is_some() {
        outputs.push(value_info("presence", DataType::Float, &[n(), fixed(1)]));
    }
    let input = value_info(
        "frames",
        DataType::Uint8,
        &[n(), fixed(size.height), fixed(size.width)],
    );
    let networks: Vec<String> = p.members.iter().map(|m| m.network.to_string()).collect();
    let doc = format!(
        "nerveseg {}: uint8 frames of {size} to 0/255 masks; {}{}",
        env!("CARGO_PKG_VERSION"),
        networks.join(" + "),
        if p.tta { ", with flipped frames" } else { "" }
    );
    Ok(g.model("nerveseg", vec![input], outputs, doc))
}

/// Loads the checkpoints, writes the graph and its `model.onnx.json`.
pub fn export_onnx(cfg: &OnnxConfig) -> Result<OnnxReport> {
    let plain = EnsembleConfig {
        weights: cfg.weights.clone(),
        tta: cfg.tta,
        device: Device::Cpu,
        speed: Speed::PLAIN,
        batch_size: 1,
        allow_partial: false,
    };
    let models = Ensemble::load(&plain, Some(&cfg.stats), cfg.quiet)?;
    crate::presence::check_head(cfg.rule.presence, models.headless())?;
    let meta = &models.first().meta;
    let frame_size = match cfg.frame_size.or(meta.frame_size) {
        Some(s) => s,
        None => bail!(
            "{} does not say the size of the frames it was trained on: pass --frame-size HxW",
            cfg.weights[0].display()
        ),
    };
    let members = members(&models)?;
    let parts = Parts {
        members,
        tta: cfg.tta,
        rule: &cfg.rule,
        frame_size,
    };
    let model = model(&parts)?;
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    let bytes = model.encode_to_vec();
    let sidecar_path = sidecar_path(&cfg.onnx);
    let onnx = write(
        &cfg.onnx,
        &bytes,
        &sidecar_path,
        &sidecar(cfg, &parts, meta),
    )?;
    Ok(OnnxReport {
        onnx,
        sidecar: sidecar_path,
        frame_size,
        map_size: models.map_size(),
        nodes,
        bytes: bytes.len(),
        checkpoints: cfg.weights.len(),
        tta: cfg.tta,
    })
}

/// The loaded checkpoints as the graph's members.
fn members(models: &Ensemble) -> Result<Vec<ensemble::Member<'_>>> {
    models
        .members
        .iter()
        .map(|m| {
            let stats = m.stats.ok_or_else(|| anyhow::anyhow!("no statistics"))?;
            Ok(ensemble::Member {
                network: &m.loaded.cfg,
                vars: m.loaded.vs.variables(),
                stats,
            })
        })
        .collect()
}

/// Writes the graph's `bytes` to `path` and `json` to `sidecar`. The graph is written
/// (not yet in place) before the sidecar, so that a full disk leaves neither a new
/// sidecar without its graph nor a partial graph.
fn write(path: &Path, bytes: &[u8], sidecar: &Path, json: &serde_json::Value) -> Result<PathBuf> {
    let dir = crate::atomic::parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let mut file = crate::atomic::AtomicFile::create(path)?;
    std::io::Write::write_all(&mut file, bytes)?;
    crate::atomic::write_json(sidecar, json)?;
    crate::interrupt::check()?;
    file.commit()
}

/// The JSON beside `model.onnx`: `model.onnx.json` (TorchScript's `model.json` may sit
/// beside it, from `export --torchscript model.pt`).
pub fn sidecar_path(onnx: &Path) -> PathBuf {
    let mut name = onnx.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

fn sidecar(cfg: &OnnxConfig, p: &Parts, meta: &crate::keras::Meta) -> serde_json::Value {
    let size = p.frame_size;
    let map = p.members[0].network.input;
    let mut outputs = serde_json::json!({
        "probabilities": {
            "shape": ["N", 1, map.height, map.width],
            "dtype": "float32",
            "what": "probability of nerve per pixel at the network's input size",
        },
        "masks": {
            "shape": ["N", size.height, size.width],
            "dtype": "uint8",
            "what": "0 or 255 at the frame's size, by submit's rule (below)",
        },
    });
    if p.members.iter().all(|m| m.network.presence_head) {
        outputs["presence"] = serde_json::json!({
            "shape": ["N", 1],
            "dtype": "float32",
            "what": "the presence head's probability that the frame holds a nerve",
        });
    }
    serde_json::json!({
        "format": "nerveseg U-Net, ONNX, frames to masks",
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "nerveseg_version": env!("CARGO_PKG_VERSION"),
        "weights": cfg.weights.iter().map(|w| w.display().to_string()).collect::<Vec<_>>(),
        "networks": p.members.iter().map(|m| m.network.to_string()).collect::<Vec<_>>(),
        "tta": p.tta,
        "input": {
            "frames": {
                "shape": ["N", size.height, size.width],
                "dtype": "uint8",
                "what": "8-bit gray frames; resized and standardised inside the graph",
            },
        },
        "output": outputs,
        "mean": p.members.iter().map(|m| m.stats.mean).collect::<Vec<_>>(),
        "std": p.members.iter().map(|m| m.stats.std).collect::<Vec<_>>(),
        "threshold": p.rule.threshold,
        "min_size": p.rule.min_size,
        "keep_above_zero": p.rule.keep_above_zero,
        "presence": p.rule.presence.map(|g| g.to_string()),
        "frame_size": [size.height, size.width],
        "trained_frame_size": meta.frame_size.map(|s| [s.height, s.width]),
        "epoch": meta.epoch,
    })
}

#[cfg(test)]
mod tests;
