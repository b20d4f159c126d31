//! The mask rule as ONNX nodes, as `MaskRule::full_mask` applies it: the map above the
//! threshold, enlarged to the frame's size (bilinear, clipped, then above 0.5, or above
//! 0 with `keep_above_zero`), kept only with at least `min_size` pixels (and one) and,
//! with a presence gate, only when the frame's presence probability reaches its
//! threshold. The result is uint8, 0 or 255.

use super::builder::pb::tensor_proto::DataType;
use super::builder::{Attr, Graph};
use super::resize::resize;
use crate::presence::{top_k, Source};
use crate::resize::Resizer;
use crate::submission::MaskRule;

/// Appends the rule: `probs` (N, 1, h, w) float32 to the masks (N, H, W) uint8, written
/// to `output`; `head` is the presence head's probabilities (N, 1) when there is one.
pub(crate) fn masks(
    g: &mut Graph,
    rule: &MaskRule,
    probs: &str,
    head: Option<&str>,
    enlarge: &Resizer,
    map_pixels: usize,
    output: &str,
) {
    let map = g.squeeze(probs, 1);
    let map = g.cast(&map, DataType::Double);
    let threshold = g.f64s("threshold", &[], &[rule.threshold]);
    let small = g.op("Greater", &[&map, &threshold], vec![]);
    let small = g.cast(&small, DataType::Double);
    let big = resize(g, &small, enlarge);
    let cut = if rule.keep_above_zero { 0.0 } else { 0.5 };
    let cut = g.f64s("cut", &[], &[cut]);
    let full = g.op("Greater", &[&big, &cut], vec![]);
    let ones = g.cast(&full, DataType::Int64);
    let axes = g.i64s("axes", &[2], &[1, 2]);
    let count = g.op(
        "ReduceSum",
        &[&ones, &axes],
        vec![("keepdims", Attr::Int(1))],
    );
    let least = g.i64s("min_size", &[], &[rule.min_size.max(1) as i64]);
    let mut keep = g.op("GreaterOrEqual", &[&count, &least], vec![]);
    let gated = rule
        .presence
        .and_then(|gate| Some((gate, probability(g, gate.source, probs, head, map_pixels)?)));
    if let Some((gate, p)) = gated {
        // (N, 1) -> (N, 1, 1), to broadcast over the masks' pixels.
        let p = g.cast(&p, DataType::Double);
        let at = g.f64s("presence_threshold", &[], &[gate.threshold]);
        let judged = g.op("GreaterOrEqual", &[&p, &at], vec![]);
        let judged = g.unsqueeze(&judged, 2);
        keep = g.op("And", &[&keep, &judged], vec![]);
    }
    let kept = g.op("And", &[&full, &keep], vec![]);
    let on = g.u8_scalar("on", 255);
    let off = g.u8_scalar("off", 0);
    g.op_into("Where", &[&kept, &on, &off], vec![], &[output]);
}

/// The presence probability of `source`, float32 (N, 1), as `presence::probability`
/// gives it (none for a source that needs a head the network lacks: the gate keeps all).
fn probability(
    g: &mut Graph,
    source: Source,
    probs: &str,
    head: Option<&str>,
    map_pixels: usize,
) -> Option<String> {
    let from_map = |g: &mut Graph| {
        let flat = g.op("Flatten", &[probs], vec![("axis", Attr::Int(1))]);
        let k = top_k(map_pixels).max(1);
        let kk = g.i64s("k", &[1], &[k as i64]);
        let attrs = vec![("axis", Attr::Int(1)), ("largest", Attr::Int(1))];
        let top = g.ops("TopK", &[&flat, &kk], attrs, 2).swap_remove(0);
        let axis = g.i64s("axes", &[1], &[1]);
        let sum = g.op(
            "ReduceSum",
            &[&top, &axis],
            vec![("keepdims", Attr::Int(1))],
        );
        let k = g.f32s("k", &[], &[k as f32]);
        g.op("Div", &[&sum, &k], vec![])
    };
    Some(match (source, head) {
        (Source::Mask, _) => from_map(g),
        (Source::Head, Some(h)) => h.to_owned(),
        (Source::Mean, Some(h)) => {
            let m = from_map(g);
            let sum = g.op("Add", &[h, &m], vec![]);
            let half = g.f32s("half", &[], &[0.5]);
            g.op("Mul", &[&half, &sum], vec![])
        }
        (_, None) => return None,
    })
}
