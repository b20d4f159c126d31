//! Image files that lie: headers claiming frames far larger than the file, truncated
//! data, text named .jpg. `prepare` from folders and `predict` on a folder refuse each
//! with one line naming the file, within the start-up memory, leaving earlier outputs
//! as they were.

use image::GrayImage;

use crate::testenv::TestEnv;

/// A PNG that is its header and a scrap of image data: `w` x `h` pixels of `colour`.
fn png_header(w: u32, h: u32, colour: png::ColorType) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(colour);
        enc.set_depth(png::BitDepth::Eight);
        if colour == png::ColorType::Indexed {
            enc.set_palette(vec![0u8; 6]);
        }
        let mut w = enc.write_header().unwrap();
        w.write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1])
            .unwrap();
        drop(w);
    }
    out
}

/// A BMP header (BITMAPINFOHEADER, 8-bit) claiming `w` x `h` pixels, with no pixels.
fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&(54u32 + 1024).to_le_bytes()); // file size
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(54u32 + 1024).to_le_bytes()); // pixel data offset
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // planes
    b.extend_from_slice(&8u16.to_le_bytes()); // bits per pixel
    b.extend_from_slice(&[0; 24]);
    b.extend_from_slice(&[0; 1024]); // palette
    b
}

/// A folder pair of two good frames, prepared once into `out/`.
fn good_folder(env: &TestEnv) {
    for d in ["img", "msk"] {
        std::fs::create_dir_all(env.path(d)).unwrap();
    }
    for n in ["a", "b"] {
        GrayImage::from_fn(30, 40, |x, y| image::Luma([(x * 5 + y) as u8]))
            .save(env.path(&format!("img/{n}.png")))
            .unwrap();
        GrayImage::from_fn(30, 40, |x, _| image::Luma([if x > 15 { 255 } else { 0 }]))
            .save(env.path(&format!("msk/{n}.png")))
            .unwrap();
    }
    env.run(&[
        "prepare", "-q", "--images", "img", "--masks", "msk", "--out", "out",
    ])
    .ok();
}

#[test]
fn lying_frames_are_refused_before_they_are_allocated() {
    let env = TestEnv::new();
    good_folder(&env);
    let limit = env.memory_limit_mib();
    let mut truncated = std::fs::read(env.path("img/a.png")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "c.png",
            png_header(100_000, 100_000, png::ColorType::Grayscale),
            "c.png",
        ),
        (
            "c.png",
            png_header(8_000, 8_000, png::ColorType::Rgba),
            "c.png: its header claims 8000 x 8000 pixels",
        ),
        (
            "c.png",
            png_header(6_000, 6_000, png::ColorType::Grayscale),
            "c.png: its header claims 6000 x 6000 pixels",
        ),
        (
            "c.png",
            png_header(12_000, 12_000, png::ColorType::Grayscale),
            "c.png: a frame of 12000 x 12000 pixels, over the limit of 8192 pixels a side",
        ),
        (
            "c.bmp",
            bmp_header(7_000, 7_000),
            "c.bmp: its header claims 7000 x 7000 pixels",
        ),
        ("c.bmp", bmp_header(-5, 1 << 30), "c.bmp"),
        ("c.png", truncated, "c.png"),
        (
            "c.jpg",
            b"this is not a JPEG".to_vec(),
            "c.jpg: not a PNG, JPEG, TIFF or BMP image",
        ),
        ("c.tif", b"II*\0\x08\0\0\0\xff\xff".to_vec(), "c.tif"),
    ];
    std::fs::create_dir_all(env.path("t")).unwrap();
    for (name, bytes, needle) in cases {
        // As the one test frame (the training pairs are checked for matching sizes
        // first, which a lying header fails already).
        let path = env.path(&format!("t/{name}"));
        std::fs::write(&path, &bytes).unwrap();
        env.refuses_within(
            &[
                "prepare",
                "--images",
                "img",
                "--masks",
                "msk",
                "--test-images",
                "t",
                "--out",
                "out",
            ],
            &[needle],
            limit,
        );
        // As a mask: its own reader (palette indices for PNGs) checks the same.
        let err = nerveseg::data::decode::read_labels(&path)
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref().is_some_and(|e| e.contains(name)),
            "{name}: {err:?}"
        );
        std::fs::remove_file(&path).unwrap();
    }
    let liar = env.path("t/p.png");
    std::fs::write(&liar, png_header(8_000, 8_000, png::ColorType::Indexed)).unwrap();
    let err = nerveseg::data::decode::read_labels(&liar)
        .err()
        .map(|e| format!("{e:#}"));
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("p.png: its header claims 8000 x 8000 pixels")),
        "{err:?}"
    );
}

#[test]
fn predict_on_a_folder_names_a_lying_frame_or_skips_it() {
    let env = TestEnv::new();
    good_folder(&env);
    env.run(&[
        "train",
        "-q",
        "--images",
        "out/imgs_train.npy",
        "--masks",
        "out/imgs_mask_train.npy",
        "--epochs",
        "1",
        "--base-width",
        "2",
        "--batch-size",
        "2",
        "--validation-split",
        "0",
        "--device",
        "cpu",
    ])
    .ok();
    std::fs::write(
        env.path("img/z.png"),
        png_header(8_000, 8_000, png::ColorType::Rgb),
    )
    .unwrap();
    env.refuses(
        &[
            "predict",
            "--images",
            "img",
            "--out-dir",
            "pred",
            "--device",
            "cpu",
        ],
        &["z.png: its header claims 8000 x 8000 pixels", "--skip-bad"],
    );
    let out = env
        .run(&[
            "predict",
            "--images",
            "img",
            "--out-dir",
            "pred",
            "--device",
            "cpu",
            "--skip-bad",
        ])
        .ok();
    assert!(
        out.contains("wrote 2 masks") && out.contains("skipped 1 file that could not be read"),
        "{out}"
    );
    let csv = std::fs::read_to_string(env.path("pred/predictions.csv")).unwrap();
    assert!(
        csv.lines().nth(3).unwrap().starts_with("z.png,,,,"),
        "{csv}"
    );
}
