//! `.npy` reader: open (header, dtype, shape, size checks), `expect`, and `read_all`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nerveseg::data::npy::{Dtype, NpyReader};

fuzz_target!(|data: &[u8]| {
    let path = nerveseg_fuzz::write_input("input.npy", data);
    let Ok(reader) = NpyReader::open(&path) else {
        return;
    };
    let _ = reader.expect(Dtype::U8, &[None, Some(420), Some(580)]);
    let _ = reader.row_len();
    match reader.dtype {
        Dtype::U8 => drop(reader.read_all::<u8>()),
        Dtype::I32 => drop(reader.read_all::<i32>()),
        Dtype::F32 => drop(reader.read_all::<f32>()),
        Dtype::F64 => drop(reader.read_all::<f64>()),
    }
});
