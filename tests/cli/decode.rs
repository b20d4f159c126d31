//! The folder reader against scikit-image: colour, RGBA, 16-bit and palette files
//! decoded as `tests/fixtures/frames/make_fixtures.py` says scikit-image (and Pillow,
//! for palette indices) decode them.

use std::path::PathBuf;

use nerveseg::data::decode::{read_gray, read_labels};
use nerveseg::data::npy::NpyReader;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/frames")
        .join(name)
}

fn expected(name: &str) -> Vec<u8> {
    let r = NpyReader::open(&fixture(&format!("{name}.npy"))).unwrap();
    assert_eq!(r.shape, [37, 53], "{name}");
    r.read_all::<u8>().unwrap()
}

#[test]
fn frames_become_gray_as_scikit_image_makes_them() {
    for (name, note) in [
        ("gray.png", None),
        ("rgb.png", Some("RGB")),
        ("rgb.bmp", Some("RGB")),
        ("rgba.png", Some("RGBA")),
        ("gray16.png", Some("16-bit")),
        ("gray16.tif", Some("16-bit")),
    ] {
        let g = read_gray(&fixture(name)).unwrap();
        assert_eq!((g.size.height, g.size.width), (37, 53), "{name}");
        assert_eq!(g.converted, note, "{name}");
        let want = expected(name);
        let wrong = g.pixels.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(wrong, 0, "{name}: {wrong} of {} pixels differ", want.len());
    }
}

#[test]
fn jpeg_frames_are_within_a_few_levels_of_pillows_decoding() {
    // JPEG decoders (zune-jpeg here, libjpeg in Pillow) round their IDCT differently.
    let g = read_gray(&fixture("rgb.jpg")).unwrap();
    let want = expected("rgb.jpg");
    let worst = g
        .pixels
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap();
    assert!(worst <= 3, "a JPEG pixel {worst} levels from Pillow's");
}

#[test]
fn palette_masks_keep_their_indices() {
    for name in ["palette8.png", "palette2.png"] {
        let l = read_labels(&fixture(name)).unwrap();
        assert!(!l.lossy);
        assert_eq!(l.values, expected(name), "{name}");
    }
    // The real usgra-seg masks: class 1 counted by numpy.
    let counts = std::fs::read_to_string(fixture("usgra/masks_class1_counts.txt")).unwrap();
    for line in counts.lines() {
        let (name, count) = line.split_once(' ').unwrap();
        let l = read_labels(&fixture(&format!("usgra/{name}"))).unwrap();
        let ones = l.values.iter().filter(|&&v| v == 1).count();
        assert_eq!(ones.to_string(), count, "{name}");
    }
}
