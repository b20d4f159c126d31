//! The graph's resizes against [`Resizer`], run by tract: the float64 values equal bit
//! for bit (so any other order of sums fails), hence the frames the network sees and
//! the masks' edges are nerveseg's.

use rand::{Rng, SeedableRng};
use tract_onnx::prelude::*;

use super::builder::pb::tensor_proto::DataType;
use super::builder::{value_info, Dim, Graph};
use super::resize::resize;
use crate::resize::Resizer;

/// A graph from uint8 (n, H, W) to float64 (n, h, w): `body` maps the input, as float64,
/// to a float64 or bool result.
fn run(
    (n, h_in, w_in): (usize, usize, usize),
    (h, w): (usize, usize),
    frames: &[u8],
    body: impl FnOnce(&mut Graph, &str) -> String,
) -> Vec<f64> {
    let mut g = Graph::default();
    let x = g.cast("frames", DataType::Double);
    let y = body(&mut g, &x);
    let to = super::builder::Attr::Int(DataType::Double as i64);
    g.op_into("Cast", &[&y], vec![("to", to)], &["out"]);
    let dims = |a: usize, b: usize| {
        [
            Dim::Fixed(n as i64),
            Dim::Fixed(a as i64),
            Dim::Fixed(b as i64),
        ]
    };
    let model = g.model(
        "test",
        vec![value_info("frames", DataType::Uint8, &dims(h_in, w_in))],
        vec![value_info("out", DataType::Double, &dims(h, w))],
        String::new(),
    );
    let bytes = prost::Message::encode_to_vec(&model);
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[n, h_in, w_in], frames).unwrap();
    let out = plan.run(tvec!(input.into())).unwrap();
    out[0]
        .to_plain_array_view::<f64>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// Frames that catch a different order of sums: noise, flat frames (whose blurred
/// values land a rounding away from an integer), saturated blocks and a ramp.
fn frames(h: usize, w: usize) -> Vec<u8> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    let mut v: Vec<u8> = (0..h * w).map(|_| rng.random()).collect();
    v.extend(std::iter::repeat_n(255, h * w));
    v.extend(std::iter::repeat_n(7, h * w));
    v.extend((0..h * w).map(|i| {
        if (i / w) < h / 2 || i % w < w / 3 {
            255
        } else {
            40
        }
    }));
    v.extend((0..h * w).map(|i| ((i % w) * 255 / w) as u8));
    v
}

#[test]
fn shrinking_frames_gives_the_resizers_values() {
    for ((h_in, w_in), (h, w)) in [
        ((420, 580), (96, 96)),
        ((100, 140), (64, 80)),
        ((64, 80), (64, 80)),
    ] {
        let src = frames(h_in, w_in);
        let n = src.len() / (h_in * w_in);
        let r = Resizer::new(h_in, w_in, h, w);
        let got = run((n, h_in, w_in), (h, w), &src, |g, x| resize(g, x, &r));
        let mut want = vec![0f64; n * h * w];
        for (f, o) in src.chunks(h_in * w_in).zip(want.chunks_mut(h * w)) {
            r.resize_f64(f, o);
        }
        let same = |(a, b): &(&f64, &f64)| a.to_bits() == b.to_bits();
        let differ = got.iter().zip(&want).filter(|p| !same(p)).count();
        assert_eq!(
            differ, 0,
            "{h_in}x{w_in} -> {h}x{w}: {differ} pixels differ"
        );
    }
}

/// Masks enlarged to Kaggle's frames, and shrunk to a frame smaller than the map.
#[test]
fn resizing_masks_gives_the_resizers_pixels() {
    for (big_h, big_w) in [(420, 580), (40, 52)] {
        masks_resize_as_nerveseg((96, 96), (big_h, big_w));
    }
}

fn masks_resize_as_nerveseg((h, w): (usize, usize), (big_h, big_w): (usize, usize)) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
    // Blobs, single pixels, a full mask and an empty one.
    let mut small: Vec<u8> = (0..h * w)
        .map(|i| ((i / w) / 9 % 2 == (i % w) / 7 % 2) as u8)
        .collect();
    small.extend((0..h * w).map(|_| (rng.random::<u8>() > 250) as u8));
    small.extend(std::iter::repeat_n(1, h * w));
    small.extend(std::iter::repeat_n(0, h * w));
    let n = small.len() / (h * w);
    let r = Resizer::new(h, w, big_h, big_w);
    for cut in [0.5, 0.0] {
        let got = run((n, h, w), (big_h, big_w), &small, |g, x| {
            let y = resize(g, x, &r);
            let c = g.f64s("cut", &[], &[cut]);
            g.op("Greater", &[&y, &c], vec![])
        });
        let mut want = vec![0u8; n * big_h * big_w];
        for (f, o) in small.chunks(h * w).zip(want.chunks_mut(big_h * big_w)) {
            r.resize_binary(f, cut, o);
        }
        let differ = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| **a != **b as f64)
            .count();
        assert_eq!(
            differ, 0,
            "{big_h}x{big_w}, cut {cut}: {differ} pixels differ"
        );
        assert!(want.contains(&1));
    }
}
