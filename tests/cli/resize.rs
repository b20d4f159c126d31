//! The resize against scikit-image on committed fixtures (tests/fixtures/preprocess/,
//! written by make_fixtures.py with scikit-image 0.26 / SciPy 1.17): random noise, a
//! hand-made frame with sharp edges, synthetic ultrasound frames and 0/255 masks.

use std::path::PathBuf;

use nerveseg::data::npy::NpyReader;
use nerveseg::resize::Resizer;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/preprocess")
        .join(name)
}

#[test]
fn resize_equals_scikit_image() {
    let frames = NpyReader::open(&fixture("frames.npy"))
        .unwrap()
        .read_all::<u8>()
        .unwrap();
    let want_u8 = NpyReader::open(&fixture("resized_u8.npy"))
        .unwrap()
        .read_all::<u8>()
        .unwrap();
    let want_f64 = NpyReader::open(&fixture("resized_f64.npy")).unwrap();
    assert_eq!(want_f64.shape, [8, 96, 96]);
    let want_f64 = want_f64.read_all::<f64>().unwrap();
    let r = Resizer::new(420, 580, 96, 96);
    let (mut same, mut worst, mut worst_f) = (0usize, 0i32, 0f64);
    for (k, frame) in frames.chunks(420 * 580).enumerate() {
        let mut f = vec![0f64; 96 * 96];
        r.resize_f64(frame, &mut f);
        let mut u = vec![0u8; 96 * 96];
        r.resize_u8(frame, &mut u);
        for i in 0..96 * 96 {
            let j = k * 96 * 96 + i;
            worst_f = worst_f.max((f[i] - want_f64[j]).abs());
            let d = (u[i] as i32 - want_u8[j] as i32).abs();
            worst = worst.max(d);
            same += (d == 0) as usize;
        }
    }
    let total = want_u8.len();
    // The issue asks for >= 99.9% identical and none off by more than 1; we reproduce
    // SciPy's order of operations, so expect every pixel.
    assert_eq!(
        same, total,
        "{same}/{total} identical, worst {worst}, worst float {worst_f:e}"
    );
    assert!(worst_f < 1e-9, "float result off by {worst_f:e}");
}

#[test]
fn masks_top_out_at_254_as_in_the_tutorial() {
    // A 255 plateau blurs to 254.99999999999994 in float64 and truncates to 254.
    let frames = NpyReader::open(&fixture("frames.npy"))
        .unwrap()
        .read_all::<u8>()
        .unwrap();
    let mask = &frames[6 * 420 * 580..7 * 420 * 580];
    assert!(mask.contains(&255));
    let mut u = vec![0u8; 96 * 96];
    Resizer::new(420, 580, 96, 96).resize_u8(mask, &mut u);
    assert_eq!(u.iter().max(), Some(&254));
}
