//! nerveseg's .npy reader and writer against files written by NumPy
//! (tests/fixtures/npy/make_fixtures.py).

use std::path::PathBuf;

use nerveseg::data::npy::{self, Dtype, Element, NpyReader};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npy")
        .join(name)
}

/// Reads the NumPy file, checks its header and values, writes the values back with
/// nerveseg's writer and compares the two files byte for byte.
fn agree<T: Element + PartialEq + std::fmt::Debug>(
    name: &str,
    dtype: Dtype,
    shape: &[u64],
    values: Vec<T>,
) {
    let r = NpyReader::open(&fixture(name)).unwrap();
    assert_eq!(r.dtype, dtype, "{name}");
    assert_eq!(r.shape, shape, "{name}");
    assert_eq!(r.read_all::<T>().unwrap(), values, "{name}");
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join(name);
    npy::write(&ours, shape, &values).unwrap();
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(fixture(name)).unwrap(),
        "{name}"
    );
}

#[test]
fn uint8_3d() {
    agree(
        "u8_3x4x5.npy",
        Dtype::U8,
        &[3, 4, 5],
        (0..60u32).map(|i| (i * 7 % 256) as u8).collect(),
    );
}

#[test]
fn int32_1d() {
    agree(
        "i32_7.npy",
        Dtype::I32,
        &[7],
        vec![1, -2, 3, i32::MAX, i32::MIN, 0, 5508],
    );
}

#[test]
fn float32_4d() {
    agree(
        "f32_2x3x4x1.npy",
        Dtype::F32,
        &[2, 3, 4, 1],
        (0..24).map(|i| i as f32 * 0.25 - 3.0).collect(),
    );
}

#[test]
fn uint8_long_first_axis() {
    agree(
        "u8_1234x3.npy",
        Dtype::U8,
        &[1234, 3],
        (0..1234 * 3u32).map(|i| (i % 251) as u8).collect(),
    );
}

#[test]
fn reader_names_the_file_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.npy");
    std::fs::write(&p, b"not numpy at all").unwrap();
    let e = format!("{:#}", NpyReader::open(&p).err().unwrap());
    assert!(e.contains("bad.npy: not a valid .npy file"), "{e}");

    // A header promising more data than the file holds, or less: refused on opening,
    // with both numbers.
    let mut bytes = std::fs::read(fixture("u8_3x4x5.npy")).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&p, &bytes).unwrap();
    let e = format!("{:#}", NpyReader::open(&p).err().unwrap());
    assert!(
        e.contains("bad.npy: the header says uint8 of shape [3, 4, 5], 60 bytes of data, but the file holds 50 bytes after the header (truncated?)"),
        "{e}"
    );
    bytes.extend_from_slice(&[0; 11]);
    std::fs::write(&p, &bytes).unwrap();
    let e = format!("{:#}", NpyReader::open(&p).err().unwrap());
    assert!(
        e.contains("61 bytes after the header (trailing bytes)"),
        "{e}"
    );

    let r = NpyReader::open(&fixture("i32_7.npy")).unwrap();
    let e = format!(
        "{:#}",
        r.expect(Dtype::U8, &[None, Some(420), Some(580)])
            .unwrap_err()
    );
    assert!(
        e.contains(
            "i32_7.npy: expected a uint8 array of shape (N, 420, 580), found int32 of shape [7]"
        ),
        "{e}"
    );
}
