//! Submission CSV scorer: `score_submission` against three true masks (the first byte's
//! low bit is `allow_missing`), and `rle_decode` on the whole input.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nerveseg::data::tiff::{write_gray8, HEIGHT, PIXELS, WIDTH};
use nerveseg::evaluate::{rle_decode, score_submission};

/// `truth/{1,2,7}_mask.tif`: a rectangle, an empty mask, a thin bar at the last column.
fn truth_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = nerveseg_fuzz::scratch().join("truth");
        std::fs::create_dir_all(&dir).expect("creating the truth folder");
        let mut rect = vec![0u8; PIXELS];
        let mut bar = vec![0u8; PIXELS];
        for r in 0..HEIGHT {
            for c in 0..WIDTH {
                if (100..140).contains(&r) && (200..260).contains(&c) {
                    rect[r * WIDTH + c] = 255;
                }
                if r >= 400 && c == WIDTH - 1 {
                    bar[r * WIDTH + c] = 255;
                }
            }
        }
        for (id, pixels) in [(1, &rect), (2, &vec![0u8; PIXELS]), (7, &bar)] {
            let path = dir.join(format!("{id}_mask.tif"));
            write_gray8(&path, WIDTH, HEIGHT, pixels, nerveseg::data::tiff::Compression::None).expect("writing a true mask");
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = rle_decode(&String::from_utf8_lossy(data));
    let Some((&flags, csv)) = data.split_first() else {
        return;
    };
    let csv_path = nerveseg_fuzz::write_input("sub.csv", csv);
    let _ = score_submission(&csv_path, truth_dir(), flags & 1 == 1);
});
