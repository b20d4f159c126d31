//! The fast LZW decoder (`data::lzw::decode`) against weezl, the `tiff` crate's own: the
//! first two input bytes are the frame's length (little-endian, at least 1), the rest
//! is the stream. Whenever the fast decoder gives a frame, weezl must give the same
//! bytes; when it declines, `read_frame` falls back to the `tiff` crate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nerveseg::data::lzw;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let want = u16::from_le_bytes([data[0], data[1]]).max(1) as usize;
    let stream = &data[2..];
    let mut fast = vec![0u8; want];
    if lzw::decode(stream, &mut fast).is_none() {
        return;
    }
    let mut dec = weezl::decode::Configuration::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
        .with_yield_on_full_buffer(true)
        .build();
    let mut slow = vec![0u8; want];
    // As the `tiff` crate reads it: again after an `Ok` that made no progress (weezl
    // yields so after a clear code), until the frame is full, the stream ends or fails.
    let (mut i, mut o, mut idle) = (0, 0, 0);
    while o < want && idle < 64 {
        let r = dec.decode_bytes(&stream[i..], &mut slow[o..]);
        i += r.consumed_in;
        o += r.consumed_out;
        idle = if r.consumed_in + r.consumed_out == 0 { idle + 1 } else { 0 };
        if !matches!(r.status, Ok(weezl::LzwStatus::Ok)) {
            break;
        }
    }
    if idle == 64 {
        return; // weezl stuck: the `tiff` crate would loop; nothing to compare
    }
    assert_eq!(o, want, "the fast decoder filled a frame weezl could not");
    assert!(fast == slow, "the fast decoder gave other bytes than weezl");
});
