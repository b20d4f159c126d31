//! The probabilities of one checkpoint or several, as `predict`'s ensemble makes them
//! (`predict::Ensemble`): each member's frames resized to its own input, truncated to
//! uint8 and standardised with its own statistics, then its network; with TTA also the
//! frames flipped left to right, and the map flipped back; maps of another size resized
//! to the first member's as scikit-image resizes floats; all added in order in float32
//! and divided by their number (one map alone is taken as it is). The presence heads'
//! probabilities the same way, when every member has a head.

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use tch::Tensor;

use super::builder::pb::tensor_proto::DataType;
use super::builder::Graph;
use super::network::{network, Outputs, Weights};
use super::resize::resize;
use crate::dataset::Stats;
use crate::frame::FrameSize;
use crate::model::UNetConfig;
use crate::resize::Resizer;

/// One checkpoint of the graph.
pub(crate) struct Member<'a> {
    pub network: &'a UNetConfig,
    /// Its variables by VarStore name.
    pub vars: HashMap<String, Tensor>,
    pub stats: Stats,
}

/// The frames (float64 (N, H, W) of `from`) resized to `to` and stored into uint8 as
/// the tutorial's preprocessing does (truncated: never negative), as float32.
fn shrunk(g: &mut Graph, frames: &str, from: FrameSize, to: FrameSize) -> String {
    let r = Resizer::new(from.height, from.width, to.height, to.width);
    let x = resize(g, frames, &r);
    let x = g.op("Floor", &[&x], vec![]);
    let x = g.cast(&x, DataType::Uint8);
    g.cast(&x, DataType::Float)
}

/// (x - mean) / std in float32, as (N, 1, h, w).
fn standardised(g: &mut Graph, x: &str, stats: Stats) -> String {
    let mean = g.f32s("mean", &[], &[stats.mean as f32]);
    let std = g.f32s("std", &[], &[stats.std as f32]);
    let centred = g.op("Sub", &[x, &mean], vec![]);
    let x = g.op("Div", &[&centred, &std], vec![]);
    g.unsqueeze(&x, 1)
}

/// (N, 1, h, w) flipped along its width.
fn flipped(g: &mut Graph, x: &str, width: usize) -> String {
    let reversed: Vec<i64> = (0..width as i64).rev().collect();
    g.gather(x, &reversed, 3)
}

/// Maps (N, 1, h, w) of `from` resized to `to` in float64, clipped to each map's range,
/// back in float32 (`Resizer::resize_map`).
fn resized_maps(g: &mut Graph, maps: &str, from: FrameSize, to: FrameSize) -> String {
    let m = g.squeeze(maps, 1);
    let m = g.cast(&m, DataType::Double);
    let m = resize(
        g,
        &m,
        &Resizer::new(from.height, from.width, to.height, to.width),
    );
    let m = g.cast(&m, DataType::Float);
    g.unsqueeze(&m, 1)
}

/// The network's passes over one member's frames `x`: the frames, then with `tta` the
/// flipped frames (the map flipped back).
fn passes(g: &mut Graph, m: &Member, x: &str, tta: bool) -> Result<Vec<Outputs>> {
    let mut weights = Weights::new(&m.vars);
    let width = m.network.input.width;
    let mut out = vec![network(g, m.network, &mut weights, x)?];
    if tta {
        let x = flipped(g, x, width);
        let mut back = network(g, m.network, &mut weights, &x)?;
        back.mask = flipped(g, &back.mask, width);
        out.push(back);
    }
    Ok(out)
}

/// Appends every member's passes over `frames` (float64 (N, H, W) of `frame`); returns
/// the mean probabilities (N, 1, h, w) at the first member's input size and, when every
/// member has a head, the heads' mean (N, 1).
pub(crate) fn probabilities(
    g: &mut Graph,
    members: &[Member],
    tta: bool,
    frames: &str,
    frame: FrameSize,
) -> Result<Outputs> {
    let first = members.first().ok_or_else(|| anyhow!("no checkpoints"))?;
    let out_size = first.network.input;
    let with_heads = members.iter().all(|m| m.network.presence_head);
    let mut small: HashMap<FrameSize, String> = HashMap::new();
    let mut sum: Option<Outputs> = None;
    let mut count = 0usize;
    for m in members {
        let size = m.network.input;
        let x = match small.get(&size) {
            Some(x) => x.clone(),
            None => {
                let x = shrunk(g, frames, frame, size);
                small.insert(size, x.clone());
                x
            }
        };
        let x = standardised(g, &x, m.stats);
        for mut out in passes(g, m, &x, tta)? {
            if size != out_size {
                out.mask = resized_maps(g, &out.mask, size, out_size);
            }
            if !with_heads {
                out.head = None;
            }
            count += 1;
            sum = Some(match sum {
                None => out,
                Some(s) => Outputs {
                    mask: g.op("Add", &[&s.mask, &out.mask], vec![]),
                    head: match (s.head, out.head) {
                        (Some(a), Some(b)) => Some(g.op("Add", &[&a, &b], vec![])),
                        _ => None,
                    },
                },
            });
        }
    }
    let mut mean = sum.ok_or_else(|| anyhow!("no checkpoints"))?;
    if count > 1 {
        let n = g.f32s("count", &[], &[count as f32]);
        mean.mask = g.op("Div", &[&mean.mask, &n], vec![]);
        mean.head = mean.head.map(|h| g.op("Div", &[&h, &n], vec![]));
    }
    Ok(mean)
}
