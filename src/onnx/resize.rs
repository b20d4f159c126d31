//! A [`Resizer`] as ONNX nodes, with its arithmetic: the same float64 products and sums
//! in the same order, so the graph's uint8 frames and enlarged masks are nerveseg's bit
//! for bit (a resize is linear, but two constant matrices would add in another order,
//! and a value of 254.99999 truncates to 254 where 255.00001 does not).
//!
//! Each blur gathers the rows (or columns) it reads, as `Resizer::resize_values` does:
//! the centre times its weight, then (x[i - j] + x[i + j]) * w[j] added from the
//! outermost j inwards. Sampling gathers the four corners of each output pixel and adds
//! value * row weight * column weight in SciPy's order; the result is clipped to each
//! frame's [min, max].

use super::builder::{Attr, Graph};
use crate::resize::{Axis, Resizer};

fn indices(v: impl Iterator<Item = usize>) -> Vec<i64> {
    v.map(|i| i as i64).collect()
}

/// The blur of `x` along `axis` (1: rows, 2: columns) at the positions `need`, whose
/// tap pairs are `pairs`.
fn blur(
    g: &mut Graph,
    x: &str,
    axis: i64,
    along: &Axis,
    need: &[usize],
    pairs: &[Vec<(usize, usize)>],
) -> String {
    let centre = g.gather(x, &indices(need.iter().copied()), axis);
    let Some(&w0) = along.taps.first() else {
        return centre;
    };
    let w = g.f64s("tap", &[], &[w0]);
    let mut acc = g.op("Mul", &[&centre, &w], vec![]);
    // pairs[k][p] pairs the taps j = radius - p: outermost first.
    let radius = along.taps.len() - 1;
    for p in 0..radius {
        let lo = g.gather(x, &indices(pairs.iter().map(|v| v[p].0)), axis);
        let hi = g.gather(x, &indices(pairs.iter().map(|v| v[p].1)), axis);
        let sum = g.op("Add", &[&lo, &hi], vec![]);
        let w = g.f64s("tap", &[], &[along.taps[radius - p]]);
        let term = g.op("Mul", &[&sum, &w], vec![]);
        acc = g.op("Add", &[&acc, &term], vec![]);
    }
    acc
}

/// Appends the resize of `x`, float64 (N, H, W) at the resizer's input size, to float64
/// (N, h, w) at its output size, clipped to each frame's [min, max]: as
/// `Resizer::resize_f64` (and `resize_binary`, which is the same arithmetic; an
/// enlarging resizer has no blur taps).
pub(crate) fn resize(g: &mut Graph, x: &str, r: &Resizer) -> String {
    let vert = blur(g, x, 1, &r.rows, &r.need_rows, &r.row_pairs);
    let both = blur(g, &vert, 2, &r.cols, &r.need_cols, &r.col_pairs);
    let (h, w) = (r.rows.samples.len() as i64, r.cols.samples.len() as i64);
    // Each output pixel's corner values: the columns first, while there are few rows,
    // then the rows, which copy whole rows (a gather along the last axis is the slow
    // kind: it made a quarter of onnxruntime's time the other way round).
    let at = |i: usize| move |p: &(usize, usize)| if i == 0 { p.0 } else { p.1 };
    let cols: Vec<String> = (0..2)
        .map(|b| g.gather(&both, &indices(r.col_at.iter().map(at(b))), 2))
        .collect();
    let weights = |axis: &Axis, i: usize| -> Vec<f64> {
        axis.samples
            .iter()
            .map(|s| if i == 0 { s.2 } else { s.3 })
            .collect()
    };
    let mut total: Option<String> = None;
    // SciPy's order: (r0, c0), (r0, c1), (r1, c0), (r1, c1); value * row w * column w.
    for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let corner = g.gather(&cols[b], &indices(r.row_at.iter().map(at(a))), 1);
        let row_w = g.f64s("row_weight", &[h, 1], &weights(&r.rows, a));
        let col_w = g.f64s("col_weight", &[1, w], &weights(&r.cols, b));
        let by_row = g.op("Mul", &[&corner, &row_w], vec![]);
        let term = g.op("Mul", &[&by_row, &col_w], vec![]);
        total = Some(match total {
            None => term,
            Some(t) => g.op("Add", &[&t, &term], vec![]),
        });
    }
    let total = total.unwrap_or_default();
    let keep = || vec![("axes", Attr::Ints(vec![1, 2])), ("keepdims", Attr::Int(1))];
    let lo = g.op("ReduceMin", &[x], keep());
    let hi = g.op("ReduceMax", &[x], keep());
    let above = g.op("Max", &[&total, &lo], vec![]);
    g.op("Min", &[&above, &hi], vec![])
}
