use std::path::Path;

use nerveseg::data::npy::{Dtype, NpyReader};
use nerveseg::data::tiff::{read_frame, write_gray8, HEIGHT, PIXELS, WIDTH};

use crate::testenv::TestEnv;

/// Reads a whole uint8 (N, 420, 580) .npy file, checking its header.
fn frames(path: &Path, n: u64) -> Vec<u8> {
    let r = NpyReader::open(path).unwrap();
    r.expect(
        Dtype::U8,
        &[Some(n), Some(HEIGHT as u64), Some(WIDTH as u64)],
    )
    .unwrap();
    r.read_all::<u8>().unwrap()
}

fn tiff_pixels(path: &Path) -> Vec<u8> {
    let mut buf = vec![0u8; PIXELS];
    read_frame(path, &mut buf).unwrap();
    buf
}

#[test]
fn prepare_writes_the_original_arrays_in_natural_order() {
    let env = TestEnv::new();
    // 11 per subject and 12 test images: 10 must sort after 9, as numbers.
    env.synth_small(2, 11, 12);
    let out = env.run(&["prepare", "--raw", "raw", "--out", "data"]).ok();
    assert!(out.contains("22 training and 12 test images"), "{out}");
    assert_eq!(
        env.names("data"),
        [
            "imgs_groups_train.txt",
            "imgs_id_test.npy",
            "imgs_mask_train.npy",
            "imgs_names_test.txt",
            "imgs_names_train.txt",
            "imgs_test.npy",
            "imgs_train.npy"
        ]
    );
    // Beside the arrays, row by row: the file names and the subjects.
    let lines = |f: &str| std::fs::read_to_string(env.path(f)).unwrap();
    let names: Vec<String> = (1..=2)
        .flat_map(|s| (1..=11).map(move |n| format!("{s}_{n}.tif")))
        .collect();
    assert_eq!(lines("data/imgs_names_train.txt"), names.join("\n") + "\n");
    let groups = lines("data/imgs_groups_train.txt");
    assert_eq!(groups, "1\n".repeat(11) + &"2\n".repeat(11));
    let test: Vec<String> = (1..=12).map(|i| format!("{i}.tif")).collect();
    assert_eq!(lines("data/imgs_names_test.txt"), test.join("\n") + "\n");

    let imgs = frames(&env.path("data/imgs_train.npy"), 22);
    let masks = frames(&env.path("data/imgs_mask_train.npy"), 22);
    let mut row = 0;
    for subject in 1..=2 {
        for n in 1..=11 {
            let img = tiff_pixels(&env.path(&format!("raw/train/{subject}_{n}.tif")));
            let mask = tiff_pixels(&env.path(&format!("raw/train/{subject}_{n}_mask.tif")));
            assert!(
                imgs[row * PIXELS..(row + 1) * PIXELS] == img[..],
                "image row {row}"
            );
            assert!(
                masks[row * PIXELS..(row + 1) * PIXELS] == mask[..],
                "mask row {row}"
            );
            row += 1;
        }
    }
    let test = frames(&env.path("data/imgs_test.npy"), 12);
    for id in 1..=12usize {
        let img = tiff_pixels(&env.path(&format!("raw/test/{id}.tif")));
        assert!(
            test[(id - 1) * PIXELS..id * PIXELS] == img[..],
            "test id {id}"
        );
    }
    let ids = NpyReader::open(&env.path("data/imgs_id_test.npy")).unwrap();
    ids.expect(Dtype::I32, &[Some(12)]).unwrap();
    assert_eq!(
        ids.read_all::<i32>().unwrap(),
        (1..=12).collect::<Vec<i32>>()
    );
}

#[test]
fn prepare_train_only_and_test_only() {
    let env = TestEnv::new();
    env.synth_small(1, 2, 3);
    env.run(&["prepare", "--raw", "raw", "--out", "a", "--train-only"])
        .ok();
    assert_eq!(
        env.names("a"),
        [
            "imgs_groups_train.txt",
            "imgs_mask_train.npy",
            "imgs_names_train.txt",
            "imgs_train.npy"
        ]
    );
    env.run(&["prepare", "--raw", "raw", "--out", "b", "--test-only"])
        .ok();
    assert_eq!(
        env.names("b"),
        ["imgs_id_test.npy", "imgs_names_test.txt", "imgs_test.npy"]
    );
}

/// Sets up a good raw folder, breaks it with `damage`, runs prepare and checks that it
/// fails naming `needles`, leaves an existing output untouched and no temporary file.
fn fails(damage: impl FnOnce(&TestEnv), needles: &[&str]) {
    let env = TestEnv::new();
    env.synth_small(1, 2, 2);
    std::fs::create_dir(env.path("data")).unwrap();
    std::fs::write(env.path("data/imgs_train.npy"), b"keep me").unwrap();
    damage(&env);
    env.run(&["prepare", "--raw", "raw", "--out", "data"])
        .fails_with(needles);
    assert_eq!(
        env.names("data"),
        ["imgs_train.npy"],
        "outputs changed or temp files left"
    );
    assert_eq!(
        std::fs::read(env.path("data/imgs_train.npy")).unwrap(),
        b"keep me"
    );
}

fn write_tiff<C: tiff::encoder::colortype::ColorType>(
    path: &Path,
    w: u32,
    h: u32,
    data: &[C::Inner],
) where
    [C::Inner]: tiff::encoder::TiffValue,
{
    let mut f = std::fs::File::create(path).unwrap();
    tiff::encoder::TiffEncoder::new(&mut f)
        .unwrap()
        .write_image::<C>(w, h, data)
        .unwrap();
}

#[test]
fn missing_train_folder() {
    fails(
        |e| std::fs::remove_dir_all(e.path("raw/train")).unwrap(),
        &["raw/train not found"],
    );
}

#[test]
fn missing_test_folder() {
    fails(
        |e| std::fs::remove_dir_all(e.path("raw/test")).unwrap(),
        &["raw/test not found"],
    );
}

#[test]
fn image_without_mask() {
    fails(
        |e| std::fs::remove_file(e.path("raw/train/1_2_mask.tif")).unwrap(),
        &["raw/train/1_2.tif: image without its mask", "1_2_mask.tif"],
    );
}

#[test]
fn mask_without_image() {
    fails(
        |e| std::fs::remove_file(e.path("raw/train/1_1.tif")).unwrap(),
        &["raw/train/1_1_mask.tif: mask without its image"],
    );
}

#[test]
fn not_a_tiff() {
    fails(
        |e| std::fs::write(e.path("raw/train/1_2.tif"), b"hello, not an image").unwrap(),
        &["raw/train/1_2.tif: not a readable TIFF file"],
    );
}

#[test]
fn truncated_tiff() {
    fails(
        |e| {
            let p = e.path("raw/test/2.tif");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        },
        &["raw/test/2.tif"],
    );
}

#[test]
fn wrong_size() {
    fails(
        |e| {
            write_gray8(
                &e.path("raw/train/1_1.tif"),
                600,
                400,
                &vec![7u8; 600 * 400],
                nerveseg::data::tiff::Compression::None,
            )
            .unwrap()
        },
        &["raw/train/1_1.tif: image is 400 rows x 600 columns, expected 420 rows x 580 columns"],
    );
}

#[test]
fn rgb_tiff() {
    fails(
        |e| {
            write_tiff::<tiff::encoder::colortype::RGB8>(
                &e.path("raw/train/1_1.tif"),
                580,
                420,
                &vec![9u8; PIXELS * 3],
            )
        },
        &["raw/train/1_1.tif: image is 8-bit RGB, expected 8-bit single-channel grayscale"],
    );
}

#[test]
fn sixteen_bit_tiff() {
    fails(
        |e| {
            write_tiff::<tiff::encoder::colortype::Gray16>(
                &e.path("raw/test/1.tif"),
                580,
                420,
                &vec![9u16; PIXELS],
            )
        },
        &["raw/test/1.tif: image is 16-bit grayscale, expected 8-bit single-channel grayscale"],
    );
}

#[test]
fn name_outside_the_kaggle_pattern() {
    fails(
        |e| std::fs::write(e.path("raw/train/scan_01.tif"), b"").unwrap(),
        &["raw/train/scan_01.tif: name does not follow the Kaggle pattern"],
    );
    fails(
        |e| std::fs::write(e.path("raw/test/a.tif"), b"").unwrap(),
        &["raw/test/a.tif: name does not follow the Kaggle pattern {id}.tif"],
    );
}

#[test]
fn mask_with_other_values() {
    fails(
        |e| {
            write_gray8(
                &e.path("raw/train/1_2_mask.tif"),
                580,
                420,
                &vec![1u8; PIXELS],
                nerveseg::data::tiff::Compression::None,
            )
            .unwrap()
        },
        &["raw/train/1_2_mask.tif: mask holds the value 1"],
    );
}
