//! `nerveseg submit` against the corrected Python submission (numpy + scikit-image,
//! tests/fixtures/submission/make_fixtures.py), byte for byte, and decoded back.

use std::path::PathBuf;

use nerveseg::data::npy::NpyReader;
use nerveseg::data::tiff::{HEIGHT, PIXELS, WIDTH};
use nerveseg::evaluate::rle_decode;

use crate::testenv::TestEnv;

pub fn sub_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/submission")
        .join(name)
}

fn submit(env: &TestEnv, extra: &[&str]) -> String {
    let masks = sub_fixture("masks.npy");
    let ids = sub_fixture("ids.npy");
    env.run(
        &[
            &[
                "submit",
                "--masks",
                masks.to_str().unwrap(),
                "--ids",
                ids.to_str().unwrap(),
                "--out",
                "s.csv",
            ][..],
            extra,
        ]
        .concat(),
    )
    .ok();
    std::fs::read_to_string(env.path("s.csv")).unwrap()
}

/// The full-size 0/1 masks of the fixture, in sorted-id order (np.packbits along rows).
pub fn full_masks() -> Vec<Vec<u8>> {
    let r = NpyReader::open(&sub_fixture("full_masks_packed.npy")).unwrap();
    assert_eq!(r.shape, [16, 420, 73]);
    let packed = r.read_all::<u8>().unwrap();
    packed
        .chunks(HEIGHT * 73)
        .map(|m| {
            let mut out = vec![0u8; PIXELS];
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    out[y * WIDTH + x] = (m[y * 73 + x / 8] >> (7 - x % 8)) & 1;
                }
            }
            out
        })
        .collect()
}

#[test]
fn submission_equals_the_python_one_byte_for_byte() {
    let env = TestEnv::new();
    let ours = submit(&env, &[]);
    let theirs = std::fs::read_to_string(sub_fixture("submission.csv")).unwrap();
    assert!(
        ours == theirs,
        "submission.csv differs from the Python reference"
    );
    let ours = submit(&env, &["--keep-above-zero"]);
    let theirs = std::fs::read_to_string(sub_fixture("submission_above_zero.csv")).unwrap();
    assert!(
        ours == theirs,
        "--keep-above-zero differs from the Python reference"
    );
}

#[test]
fn every_row_decodes_to_the_reference_mask() {
    let env = TestEnv::new();
    let csv = submit(&env, &[]);
    let masks = full_masks();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("img,pixels"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 16);
    let mut ids: Vec<i32> = rows
        .iter()
        .map(|r| r.split(',').next().unwrap().parse().unwrap())
        .collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted, "rows are not sorted by id");
    for (row, want) in rows.iter().zip(&masks) {
        let rle = row.split_once(',').unwrap().1;
        assert!(rle_decode(rle).unwrap() == *want, "row {row:.20}");
    }
    ids.dedup();
    assert_eq!(ids.len(), 16);
}

#[test]
fn min_size_empties_small_masks() {
    let env = TestEnv::new();
    let csv = submit(&env, &["--min-size", "20"]);
    let reference = std::fs::read_to_string(sub_fixture("submission.csv")).unwrap();
    for (ours, theirs) in csv.lines().zip(reference.lines()) {
        let id = theirs.split(',').next().unwrap();
        if id == "33" || id == "100" {
            assert_eq!(
                ours,
                format!("{id},"),
                "one-pixel masks (16 and 18 pixels) must be dropped"
            );
        } else {
            assert_eq!(ours, theirs);
        }
    }
}

#[test]
fn bad_submission_input_is_explained() {
    let env = TestEnv::new();
    std::fs::write(env.path("submission.csv"), b"previous").unwrap();
    let masks = sub_fixture("masks.npy");
    let m = masks.to_str().unwrap();
    nerveseg::data::npy::write(&env.path("ids3.npy"), &[3], &[1i32, 2, 3]).unwrap();
    env.run(&["submit", "--masks", m, "--ids", "ids3.npy"])
        .fails_with(&["masks.npy holds 16 masks but ids3.npy holds 3 ids"]);
    let mut dup: Vec<i32> = (1..=16).collect();
    dup[5] = 1;
    nerveseg::data::npy::write(&env.path("dup.npy"), &[16], &dup).unwrap();
    env.run(&["submit", "--masks", m, "--ids", "dup.npy"])
        .fails_with(&["dup.npy: id 1 appears more than once"]);
    nerveseg::data::npy::write(&env.path("flat.npy"), &[16, 9216], &vec![0f32; 16 * 9216]).unwrap();
    env.run(&["submit", "--masks", "flat.npy", "--ids", "dup.npy"])
        .fails_with(&["flat.npy: expected a float32 array of shape (N, 96, 96, 1)"]);
    env.run(&["submit", "--masks", "none.npy"])
        .fails_with(&["opening none.npy"]);
    assert_eq!(
        std::fs::read(env.path("submission.csv")).unwrap(),
        b"previous"
    );
}
