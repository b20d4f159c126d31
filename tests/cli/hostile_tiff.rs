//! TIFFs that lie about their size or strips, and Kaggle names that collide: `prepare`
//! refuses each before decoding, naming the file, and leaves earlier outputs as they
//! were. The real Kaggle TIFFs (LZW, one strip of 420 rows) read as uncompressed ones.

use std::io::Cursor;

use nerveseg::data::tiff::{HEIGHT, PIXELS, WIDTH};
use tiff::encoder::{colortype::Gray8, Compression, TiffEncoder};

use crate::testenv::TestEnv;

/// A little-endian 8-bit grayscale TIFF with one strip, whose tags say what we like.
fn tiff_bytes(
    width: u32,
    height: u32,
    strip_offset: Option<u32>,
    strip_bytes: u32,
    data: &[u8],
) -> Vec<u8> {
    const ENTRIES: u16 = 9;
    let data_at = 8 + 2 + 12 * ENTRIES as u32 + 4;
    let mut out = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    out.extend_from_slice(&ENTRIES.to_le_bytes());
    let mut entry = |tag: u16, kind: u16, value: u32| {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    };
    let (short, long) = (3, 4);
    entry(256, long, width); // ImageWidth
    entry(257, long, height); // ImageLength
    entry(258, short, 8); // BitsPerSample
    entry(259, short, 1); // Compression: none
    entry(262, short, 1); // PhotometricInterpretation: BlackIsZero
    entry(273, long, strip_offset.unwrap_or(data_at)); // StripOffsets
    entry(277, short, 1); // SamplesPerPixel
    entry(278, long, height); // RowsPerStrip
    entry(279, long, strip_bytes); // StripByteCounts
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A Kaggle-like training folder (two good pairs) with an earlier prepare's outputs in
/// `out/`.
fn kaggle_folder(env: &TestEnv) {
    env.synth_small(1, 2, 1);
    env.prepare_train("raw", "out");
}

fn refuse(env: &TestEnv, file: &str, bytes: Vec<u8>, needles: &[&str]) {
    std::fs::write(env.path(&format!("raw/train/{file}")), bytes).unwrap();
    env.refuses(
        &["prepare", "--raw", "raw", "--out", "out", "--train-only"],
        needles,
    );
    std::fs::remove_file(env.path(&format!("raw/train/{file}"))).unwrap();
}

#[test]
fn sizes_and_strips_are_checked_before_decoding() {
    let env = TestEnv::new();
    kaggle_folder(&env);
    let frame = vec![0u8; PIXELS];
    let limit = env.memory_limit_mib();
    // 100,000 x 100,000 pixels claimed (10 GB): refused from the tags.
    std::fs::write(
        env.path("raw/train/1_1.tif"),
        tiff_bytes(100_000, 100_000, None, u32::MAX, &frame),
    )
    .unwrap();
    env.refuses_within(
        &["prepare", "--raw", "raw", "--out", "out", "--train-only"],
        &["raw/train/1_1.tif: image is 100000 rows x 100000 columns, expected 420 rows x 580 columns"],
        limit,
    );
    // A strip longer than the file, placed after its end, or cut short (the file holds
    // 122 bytes of header and tags, then the data).
    for (offset, bytes, data, what) in [
        (
            None,
            4_000_000_000u32,
            &frame[..],
            "strip 0 claims 4000000000 bytes",
        ),
        (
            Some(1_000_000_000),
            PIXELS as u32,
            &frame[..],
            "strip 0 claims 243600 bytes at offset 1000000000",
        ),
        (
            None,
            PIXELS as u32,
            &frame[..1000],
            "outside the 1122-byte file",
        ),
    ] {
        std::fs::write(
            env.path("raw/train/1_1.tif"),
            tiff_bytes(WIDTH as u32, HEIGHT as u32, offset, bytes, data),
        )
        .unwrap();
        env.refuses(
            &["prepare", "--raw", "raw", "--out", "out", "--train-only"],
            &["raw/train/1_1.tif: TIFF is corrupt", what],
        );
    }
    // The same tags with honest numbers read fine.
    std::fs::write(
        env.path("raw/train/1_1.tif"),
        tiff_bytes(WIDTH as u32, HEIGHT as u32, None, PIXELS as u32, &frame),
    )
    .unwrap();
    env.prepare_train("raw", "out2");
}

#[test]
fn two_names_for_one_frame_are_refused() {
    let env = TestEnv::new();
    kaggle_folder(&env);
    let copy = std::fs::read(env.path("raw/train/1_2.tif")).unwrap();
    refuse(
        &env,
        "01_2.tif",
        copy.clone(),
        &["raw/train/01_2.tif and raw/train/1_2.tif both name subject 1 image 2"],
    );
    refuse(
        &env,
        "1_02_mask.tif",
        copy,
        &["1_02_mask.tif", "1_2_mask.tif both name subject 1 image 2"],
    );
    std::fs::write(env.path("raw/test/001.tif"), b"").unwrap();
    env.refuses(
        &["prepare", "--raw", "raw", "--out", "out", "--test-only"],
        &["raw/test/001.tif and raw/test/1.tif both name test image 1"],
    );
}

/// The real Kaggle TIFFs are LZW-compressed in one strip of 420 rows: prepared, they give
/// exactly the arrays of the same pixels stored uncompressed.
#[test]
fn lzw_frames_in_one_strip_prepare_as_uncompressed_ones() {
    let env = TestEnv::new();
    env.synth_small(1, 2, 1);
    env.prepare_train("raw", "plain");
    for name in ["1_1.tif", "1_1_mask.tif", "1_2.tif", "1_2_mask.tif"] {
        let path = env.path(&format!("raw/train/{name}"));
        let mut pixels = vec![0u8; PIXELS];
        nerveseg::data::tiff::read_frame(&path, &mut pixels).unwrap();
        let mut out = Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut out)
            .unwrap()
            .with_compression(Compression::Lzw);
        let mut img = enc.new_image::<Gray8>(WIDTH as u32, HEIGHT as u32).unwrap();
        img.rows_per_strip(HEIGHT as u32).unwrap();
        img.write_data(&pixels).unwrap();
        let bytes = out.into_inner();
        // Compression 5 (LZW) in one strip, as Kaggle's files.
        let mut dec = tiff::decoder::Decoder::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(dec.get_tag_u32(tiff::tags::Tag::Compression).unwrap(), 5);
        assert_eq!(dec.strip_count().unwrap(), 1);
        std::fs::write(&path, bytes).unwrap();
    }
    env.prepare_train("raw", "lzw");
    for f in ["imgs_train.npy", "imgs_mask_train.npy"] {
        let (a, b) = (
            std::fs::read(env.path(&format!("plain/{f}"))).unwrap(),
            std::fs::read(env.path(&format!("lzw/{f}"))).unwrap(),
        );
        assert!(a == b, "{f} differs between LZW and uncompressed frames");
    }
}
