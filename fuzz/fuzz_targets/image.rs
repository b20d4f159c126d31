//! The folder reader (`data::decode`): header sizes, frames made gray, masks as labels
//! (palette PNGs through the png crate). The input is written as a .png, so both the
//! palette path and the content-sniffed PNG/JPEG/TIFF/BMP path are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nerveseg::data::decode::{dimensions, read_gray, read_labels};

fuzz_target!(|data: &[u8]| {
    let path = nerveseg_fuzz::write_input("input.png", data);
    let _ = dimensions(&path);
    let _ = read_gray(&path);
    let _ = read_labels(&path);
});
