//! TIFF reader: `read_frame` (header, colour type, size, strip checks, decode) and
//! `read_mask` (the same plus the 0/255 check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nerveseg::data::tiff::{read_frame, read_mask, PIXELS};

fuzz_target!(|data: &[u8]| {
    let path = nerveseg_fuzz::write_input("input.tif", data);
    let mut buf = vec![0u8; PIXELS];
    let _ = read_frame(&path, &mut buf);
    let _ = read_mask(&path, &mut buf);
});
