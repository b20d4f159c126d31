//! `.npy` files that lie: every command that reads one refuses it with a one-line error
//! naming the file, before allocating what the header claims, and changes nothing.

use crate::keras_fixtures::keras_fixture;
use crate::testenv::TestEnv;

/// A version-1.0 `.npy` file with a header of our choosing and `data` after it.
pub fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

/// A header claiming a billion frames (9 TB as uint8, 37 TB as float32) over 100 bytes:
/// every reader refuses it with both sizes, and memory stays at the baseline.
#[test]
fn a_header_claiming_a_billion_frames_is_refused_by_every_reader() {
    let env = TestEnv::new();
    let data = [7u8; 100];
    std::fs::write(
        env.path("huge.npy"),
        npy_bytes("|u1", false, "(1000000000, 420, 580)", &data),
    )
    .unwrap();
    std::fs::write(
        env.path("huge_f32.npy"),
        npy_bytes("<f4", false, "(1000000000, 96, 96, 1)", &data),
    )
    .unwrap();
    // Earlier outputs that a refusal must leave as they are.
    nerveseg::data::npy::write(
        &env.path("imgs_mask_test.npy"),
        &[1, 96, 96, 1],
        &vec![0.25f32; 96 * 96],
    )
    .unwrap();
    std::fs::write(env.path("submission.csv"), "img,pixels\n1,\n").unwrap();
    let w = keras_fixture("unet_w4_weights.h5");
    let w = w.to_str().unwrap();
    let claim = "huge.npy: the header says uint8 of shape [1000000000, 420, 580], \
                 243600000000000 bytes of data, but the file holds 100 bytes after the header";
    let claim_f32 = "huge_f32.npy: the header says float32 of shape [1000000000, 96, 96, 1], \
                     36864000000000 bytes of data, but the file holds 100 bytes";
    let limit = env.memory_limit_mib();
    for (args, needle) in [
        (
            vec!["train", "--images", "huge.npy", "--device", "cpu"],
            claim,
        ),
        (
            vec!["train", "--images", "huge_f32.npy", "--device", "cpu"],
            claim_f32,
        ),
        (
            vec![
                "predict",
                "--weights",
                w,
                "--images",
                "huge.npy",
                "--device",
                "cpu",
            ],
            claim,
        ),
        (
            vec![
                "predict",
                "--weights",
                w,
                "--images",
                "huge_f32.npy",
                "--device",
                "cpu",
            ],
            claim_f32,
        ),
        (
            vec![
                "evaluate",
                "--weights",
                w,
                "--images",
                "huge.npy",
                "--mean",
                "1",
                "--std",
                "1",
                "--device",
                "cpu",
            ],
            claim,
        ),
        (vec!["submit", "--masks", "huge_f32.npy"], claim_f32),
        (vec!["submit", "--ids", "huge.npy"], claim),
        (
            vec![
                "bench", "resize", "--images", "huge.npy", "--masks", "huge.npy",
            ],
            claim,
        ),
        (
            vec!["bench", "infer", "--images", "huge_f32.npy"],
            claim_f32,
        ),
    ] {
        env.refuses_within(&args, &[needle], limit);
    }
}

/// Headers that lie in other ways, each refused on opening with what is wrong.
#[test]
fn lying_headers_are_refused() {
    let env = TestEnv::new();
    let frame = vec![0u8; 2 * 420 * 580];
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend_from_slice(&4_000_000_000u32.to_le_bytes());
    v2.extend_from_slice(b"{'descr': '|u1'");
    let nested = format!("{}{}", "(".repeat(40), ")".repeat(40));
    for (name, bytes, needle) in [
        (
            "long.npy",
            npy_bytes("|u1", false, "(1, 420, 580)", &[frame.clone(), vec![9]].concat()),
            "long.npy: the header says uint8 of shape [1, 420, 580], 243600 bytes of data, but \
             the file holds 487201 bytes after the header (trailing bytes)",
        ),
        (
            "v2.npy",
            v2,
            "v2.npy: not a valid .npy file: a header of 4000000000 bytes (NumPy loads at most 10000)",
        ),
        (
            "negative.npy",
            npy_bytes("|u1", false, "(-1, 420, 580)", &frame),
            "negative.npy: not a valid .npy file",
        ),
        (
            "axis.npy",
            npy_bytes("|u1", false, "(0, 99999999999)", &[]),
            "axis.npy: the header's shape [0, 99999999999] has an axis of 99999999999",
        ),
        (
            "product.npy",
            npy_bytes("|u1", false, "(4000000000, 4000000000, 4000000000)", &[]),
            "product.npy: the header's shape [4000000000, 4000000000, 4000000000] is too large",
        ),
        (
            "nested.npy",
            npy_bytes("|u1", false, &nested, &[]),
            "nested.npy: not a valid .npy file: the header nests brackets more than 8 deep",
        ),
        (
            "fortran.npy",
            npy_bytes("|u1", true, "(2, 420, 580)", &frame),
            "fortran.npy: Fortran-order arrays are not supported",
        ),
        (
            "big_endian.npy",
            npy_bytes(">f4", false, "(2,)", &[0; 8]),
            "big_endian.npy: dtype >f4 is not supported",
        ),
        (
            "magic.npy",
            b"\x93NUMPX\x01\x00".to_vec(),
            "magic.npy: not a valid .npy file",
        ),
    ] {
        std::fs::write(env.path(name), bytes).unwrap();
        env.refuses(&["train", "--images", name, "--device", "cpu"], &[needle]);
    }
    // A refused file left no output folder behind.
    assert!(!env.path("weights").exists());
}
