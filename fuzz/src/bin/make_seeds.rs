//! Writes the committed fuzz seeds under `fuzz/seeds/<target>/`: small valid files of
//! each kind the readers take, made with nerveseg's own writers (and the `tiff` crate
//! for the LZW-compressed TIFFs, the layout of the real Kaggle frames), plus copies of
//! the committed test fixtures. Deterministic; run it again after changing a writer:
//!
//!     cargo +nightly fuzz build make_seeds
//!     LD_LIBRARY_PATH=$PWD/.venv/libtorch/lib \
//!         fuzz/target/x86_64-unknown-linux-gnu/release/make_seeds

// Built by cargo-fuzz with coverage instrumentation, whose hooks libFuzzer provides.
use libfuzzer_sys as _;

use std::fs;
use std::path::{Path, PathBuf};

use nerveseg::data::{npy, tiff};
use nerveseg::keras::{self, AdamState, Format, Meta};
use nerveseg::model::{self, UNetConfig};
use tiff_enc::encoder::{colortype::Gray8, Compression, TiffEncoder};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let seeds = root.join("fuzz/seeds");
    npy_seeds(&root, &clean(&seeds.join("npy"))?)?;
    tiff_seeds(&clean(&seeds.join("tiff"))?)?;
    lzw_seeds(&clean(&seeds.join("lzw"))?)?;
    keras_seeds(&root, &clean(&seeds.join("keras"))?)?;
    submission_seeds(&clean(&seeds.join("submission"))?)?;
    println!("seeds written to {}", seeds.display());
    Ok(())
}

/// Empties (or makes) `dir`.
fn clean(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    Ok(dir.to_owned())
}

/// The NumPy-written fixtures, and one file of each dtype from nerveseg's writer.
fn npy_seeds(root: &Path, out: &Path) -> Result<()> {
    for entry in fs::read_dir(root.join("tests/fixtures/npy"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "npy") {
            fs::copy(&path, out.join(path.file_name().ok_or("no file name")?))?;
        }
    }
    let u8s: Vec<u8> = (0..20).map(|i| (i * 13) as u8).collect();
    npy::write(&out.join("ours_u8_1x4x5.npy"), &[1, 4, 5], &u8s)?;
    npy::write(
        &out.join("ours_u8_0x420x580.npy"),
        &[0, 420, 580],
        &[] as &[u8],
    )?;
    npy::write(&out.join("ours_i32_3.npy"), &[3], &[1i32, -2, 7])?;
    npy::write(
        &out.join("ours_f32_2x2.npy"),
        &[2, 2],
        &[0.5f32, -1.0, 3.25, 0.0],
    )?;
    npy::write(
        &out.join("ours_f64_2x3.npy"),
        &[2, 3],
        &[1.0f64, 2.0, 3.0, -4.0, 0.5, 1e300],
    )?;
    Ok(())
}

/// A 420 x 580 all-zero frame and a 0/255 mask with a rectangle, each uncompressed
/// (nerveseg's writer) and LZW in one strip of 420 rows (as Kaggle's); the mask also LZW
/// in 16-row strips.
fn tiff_seeds(out: &Path) -> Result<()> {
    let (w, h) = (tiff::WIDTH, tiff::HEIGHT);
    let zero = vec![0u8; tiff::PIXELS];
    let mut mask = zero.clone();
    for r in 150..230 {
        mask[r * w + 250..r * w + 330].fill(255);
    }
    tiff::write_gray8(&out.join("frame_zero.tif"), w, h, &zero, nerveseg::data::tiff::Compression::None)?;
    tiff::write_gray8(&out.join("mask_rect.tif"), w, h, &mask, nerveseg::data::tiff::Compression::None)?;
    lzw(&out.join("frame_zero_lzw.tif"), &zero, h as u32)?;
    lzw(&out.join("mask_rect_lzw.tif"), &mask, h as u32)?;
    lzw(&out.join("mask_rect_lzw_strips16.tif"), &mask, 16)?;
    Ok(())
}

fn lzw(path: &Path, pixels: &[u8], rows_per_strip: u32) -> Result<()> {
    let mut file = fs::File::create(path)?;
    let mut enc = TiffEncoder::new(&mut file)?.with_compression(Compression::Lzw);
    let mut image = enc.new_image::<Gray8>(tiff::WIDTH as u32, tiff::HEIGHT as u32)?;
    image.rows_per_strip(rows_per_strip)?;
    image.write_data(pixels)?;
    Ok(())
}

/// LZW streams for the lzw target, each after its frame length (2 bytes, little
/// endian): a flat frame (long strings, a table reset), noise (no repeats), a ramp, and
/// a 0/255 mask; the noise stream also with a frame shorter than it.
fn lzw_seeds(out: &Path) -> Result<()> {
    let mut state = 7u32;
    let mut noise = || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    };
    let frames: [(&str, Vec<u8>); 4] = [
        ("flat", vec![0u8; 20_000]),
        ("noise", (0..6000).map(|_| noise()).collect()),
        ("ramp", (0..9000).map(|i| (i / 11 % 256) as u8).collect()),
        ("mask", (0..12_000).map(|i| if i % 300 < 120 { 255 } else { 0 }).collect()),
    ];
    for (name, pixels) in &frames {
        let code = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .encode(pixels)?;
        let mut seed = (pixels.len() as u16).to_le_bytes().to_vec();
        seed.extend_from_slice(&code);
        fs::write(out.join(format!("{name}.lzw")), &seed)?;
        if *name == "noise" {
            seed[..2].copy_from_slice(&1000u16.to_le_bytes());
            fs::write(out.join("noise_short.lzw"), &seed)?;
        }
    }
    Ok(())
}

/// A base-width-1 U-Net in each layout, a checkpoint with Adam's state and metadata, and
/// the committed not-Keras HDF5 fixture.
fn keras_seeds(root: &Path, out: &Path) -> Result<()> {
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let cfg = UNetConfig { base_width: 1 };
    let _net = model::unet(&vs.root(), &cfg)?;
    for (name, fmt) in [
        ("w1_keras2_model.h5", Format::Keras2Model),
        ("w1_keras2_weights.h5", Format::Keras2Weights),
        ("w1_keras3.weights.h5", Format::Keras3Weights),
    ] {
        keras::write(&out.join(name), &vs, &cfg, &Meta::default(), fmt)?;
    }
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let moments = |scale: f64| -> Vec<(String, tch::Tensor)> {
        vars.iter()
            .map(|(n, t)| (n.clone(), t.detach().abs() * scale))
            .collect()
    };
    let adam = AdamState {
        iterations: 5,
        m: moments(0.1),
        v: moments(0.01),
    };
    let meta = Meta {
        mean: Some(99.5),
        std: Some(52.25),
        epoch: Some(3),
        best_val_loss: Some(-0.25),
        best_epoch: Some(2),
        run: None,
    };
    keras::write_checkpoint(&out.join("w1_checkpoint_adam.h5"), &vs, &cfg, &meta, &adam)?;
    fs::copy(
        root.join("tests/fixtures/keras/not_keras.h5"),
        out.join("not_keras.h5"),
    )?;
    Ok(())
}

/// Submission CSVs, each after one flag byte (bit 0: `allow_missing`), scored against
/// the fuzz target's true masks 1 (a rectangle), 2 (empty) and 7 (a bar at the last
/// pixels).
fn submission_seeds(out: &Path) -> Result<()> {
    // Mask 1 exactly: rows 100..140 of columns 200..260, 1-based down each column.
    let rect: Vec<String> = (200..260)
        .map(|c| format!("{} 40", c * tiff::HEIGHT + 100 + 1))
        .collect();
    let rect = rect.join(" ");
    let seeds: [(&str, u8, String); 9] = [
        ("basic.csv", 0, "img,pixels\n1,1 5 100 20\n2,\n7,\n".into()),
        (
            "exact.csv",
            0,
            format!("img,pixels\n1,{rect}\n2,\n7,243581 20\n"),
        ),
        (
            "unsorted_ids.csv",
            0,
            "img,pixels\n7,243600 1\n2,3 4\n1,1 1\n".into(),
        ),
        (
            "missing_row_allowed.csv",
            1,
            "img,pixels\n1,1 5 100 20\n2,\n".into(),
        ),
        ("missing_row.csv", 0, "img,pixels\n1,1 5\n7,\n".into()),
        (
            "duplicate_id.csv",
            1,
            "img,pixels\n1,1 5\n1,\n2,\n7,\n".into(),
        ),
        (
            "unknown_id.csv",
            1,
            "img,pixels\n1,\n2,\n3,9 9\n7,\n".into(),
        ),
        (
            "crlf_quoted.csv",
            0,
            "img,pixels\r\n\"1\",\"1 5 100 20\"\r\n2,\r\n7,\r\n".into(),
        ),
        (
            "bad_runs.csv",
            1,
            "img,pixels\n1,5 1 1 5\n2,0 3\n7,1 2 3\n".into(),
        ),
    ];
    for (name, flags, csv) in seeds {
        let mut bytes = vec![flags];
        bytes.extend_from_slice(csv.as_bytes());
        fs::write(out.join(name), bytes)?;
    }
    Ok(())
}
