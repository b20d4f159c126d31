//! A fast decoder for the one LZW stream a Kaggle TIFF holds (compression 5, MSB-first
//! codes, TIFF's early width switch): 2-3 times the `tiff` crate's (weezl's) speed on
//! synth's frames, whose decoding was 80% of `prepare`'s time.
//!
//! The speed comes from the table: every code's string was already written out, in one
//! piece, so the table holds where (start, length) and a code is one short copy from the
//! output instead of a walk down a prefix chain. It only takes streams it is sure of:
//! anything unusual (a code not yet defined, a full table, no end code before the data
//! runs out, too few bytes) is `None`, and the caller decodes the file the `tiff` crate's
//! way, which then says what is wrong. So the two can differ only in speed (tests hold
//! them to the same bytes).

use std::cell::RefCell;

const CLEAR: usize = 256;
// 257 is the end code: like a code not yet defined, its table entry has length 0.
const FIRST: usize = 258;
const MAX_CODES: usize = 4096;
/// The 256 one-byte strings sit before the output, so every code, a byte or not, is a
/// copy from the same buffer; and the buffer runs on past the output by more than the
/// longest string (under 4,096 bytes), so that every copy goes in whole 16-byte moves and
/// the last string may run past the frame's end.
const LEAD: usize = 256;
const PAD: usize = MAX_CODES + 16;

/// A thread's decoding buffer and table, kept from one frame to the next.
struct Scratch {
    buf: Vec<u8>,
    /// Each code's string as (start in `buf`) << 32 | length; length 0 for the clear and
    /// end codes.
    table: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { buf: Vec::new(), table: Vec::new() })
    };
}

/// Decodes `input` into all of `out`, stopping when `out` is full (as the `tiff` crate
/// does: bytes past the frame are ignored). `None` when the stream is not one this
/// decoder is sure of, or ends before `out` is full.
pub fn decode(input: &[u8], out: &mut [u8]) -> Option<()> {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let Scratch { buf, table } = &mut *s;
        buf.resize(LEAD + out.len() + PAD, 0);
        if table.is_empty() {
            // The one-byte strings, once: the loop only writes codes from FIRST on, and
            // the clear and end codes keep length 0.
            table.resize(MAX_CODES, 0);
            for (c, (t, v)) in table.iter_mut().zip(&mut buf[..LEAD]).enumerate() {
                *t = (c as u64) << 32 | 1;
                *v = c as u8;
            }
        }
        let n = decode_into(input, buf, table, out.len())?;
        out.copy_from_slice(&buf[LEAD..LEAD + n]);
        Some(())
    })
}

/// The decoding loop: writes from `buf[LEAD]` on until `want` bytes are out (the last
/// string may run on into the padding); returns `want`, or None (see [`decode`]).
fn decode_into(input: &[u8], buf: &mut [u8], table: &mut [u64], want: usize) -> Option<usize> {
    let end = LEAD + want;
    let mut bits = Bits::new(input);
    let mut width = 9;
    let mut next = FIRST;
    // The previous code's string (start, length); length 0 right after a clear code.
    let (mut p_start, mut p_len) = (0usize, 0usize);
    let mut pos = LEAD;
    while pos < end {
        let code = bits.take(width)?;
        let entry = table[code] as usize;
        let (from, mut len) = (entry >> 32, entry & 0xffff_ffff);
        if len == 0 || code >= next {
            // The rare codes: clear, end, and the one not yet in the table.
            if code == CLEAR {
                width = 9;
                next = FIRST;
                p_len = 0;
                continue;
            }
            if code != next || p_len == 0 {
                return None;
            }
            // The previous string and its own first byte.
            buf.copy_within(p_start..p_start + p_len, pos);
            buf[pos + p_len] = buf[p_start];
            len = p_len + 1;
        } else {
            // 16 bytes at a time: the string ends before `pos`, so every byte it needs
            // was written before this copy began; what runs past `len` is overwritten
            // next (or lies past the frame, in the padding).
            let mut k = 0;
            while k < len {
                let mut b = [0u8; 16];
                b.copy_from_slice(&buf[from + k..from + k + 16]);
                buf[pos + k..pos + k + 16].copy_from_slice(&b);
                k += 16;
            }
        }
        if p_len > 0 {
            if next >= MAX_CODES {
                return None;
            }
            // The previous string and this one's first byte, side by side in `buf`.
            table[next] = (p_start as u64) << 32 | (p_len as u64 + 1);
            next += 1;
        }
        (p_start, p_len) = (pos, len);
        pos += len;
        // TIFF switches one code early: 10 bits once 511 entries exist, and so on.
        if next + 1 >= (1 << width) && width < 12 {
            width += 1;
        }
    }
    Some(want)
}

/// MSB-first codes from a byte slice, through a 64-bit window.
struct Bits<'a> {
    input: &'a [u8],
    at: usize,
    window: u64,
    held: u32,
}

impl<'a> Bits<'a> {
    fn new(input: &'a [u8]) -> Self {
        Bits {
            input,
            at: 0,
            window: 0,
            held: 0,
        }
    }

    /// The next `width`-bit code, None when the input has too few bits left.
    #[inline(always)]
    fn take(&mut self, width: u32) -> Option<usize> {
        if self.held < width {
            self.refill();
            if self.held < width {
                return None;
            }
        }
        let code = (self.window >> (64 - width)) as usize;
        self.window <<= width;
        self.held -= width;
        Some(code)
    }

    #[inline(always)]
    fn refill(&mut self) {
        if let Some(chunk) = self.input.get(self.at..self.at + 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            // Whole bytes only (held < 64 here); the partial one comes again, in its
            // place, next time.
            let bytes = (64 - self.held) / 8;
            let empty = 64 - self.held - bytes * 8;
            self.window |= (u64::from_be_bytes(b) >> self.held) & !((1u64 << empty) - 1);
            self.at += bytes as usize;
            self.held += bytes * 8;
        } else {
            while self.held <= 56 && self.at < self.input.len() {
                self.window |= (self.input[self.at] as u64) << (56 - self.held);
                self.at += 1;
                self.held += 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    /// weezl, as the `tiff` crate configures it: the reference. The bytes it wrote
    /// before it stopped (full, end code, error, or out of input), and whether it filled
    /// `want` bytes.
    fn weezl(input: &[u8], want: usize) -> (Vec<u8>, bool) {
        let mut dec = weezl::decode::Configuration::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .with_yield_on_full_buffer(true)
            .build();
        let mut out = vec![0u8; want];
        // As the `tiff` crate reads: again after an `Ok` that made no progress (weezl
        // yields so after a clear code), until full, ended or failed.
        let (mut i, mut o, mut idle) = (0, 0, 0);
        while o < want && idle < 64 {
            let r = dec.decode_bytes(&input[i..], &mut out[o..]);
            i += r.consumed_in;
            o += r.consumed_out;
            idle = if r.consumed_in + r.consumed_out == 0 {
                idle + 1
            } else {
                0
            };
            if !matches!(r.status, Ok(weezl::LzwStatus::Ok)) {
                break;
            }
        }
        out.truncate(o);
        (out, o == want)
    }

    fn encode(data: &[u8]) -> Vec<u8> {
        weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .encode(data)
            .unwrap()
    }

    fn ours(input: &[u8], want: usize) -> Option<Vec<u8>> {
        let mut out = vec![7u8; want];
        decode(input, &mut out).map(|()| out)
    }

    /// Frames of every kind LZW meets: noise (incompressible, as synth's), flat (long
    /// strings, full tables), smooth ramps, runs, and a mix; at several sizes.
    fn frames() -> Vec<Vec<u8>> {
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        let mut out = Vec::new();
        for &n in &[1usize, 2, 3, 17, 300, 4096, 70_000, 243_600] {
            out.push((0..n).map(|_| rng.random::<u8>()).collect());
            out.push(vec![0u8; n]);
            out.push((0..n).map(|i| (i / 7 % 256) as u8).collect());
            out.push((0..n).map(|i| if i % 97 < 60 { 0 } else { 255 }).collect());
            out.push(
                (0..n)
                    .map(|i| ((i % 580) as f32 * 0.3 + rng.random::<f32>() * 12.0) as u8)
                    .collect(),
            );
        }
        out
    }

    #[test]
    fn decodes_every_kind_of_frame_as_weezl_does() {
        for f in frames() {
            let code = encode(&f);
            let (want, full) = weezl(&code, f.len());
            assert!(full && want == f, "weezl itself round-trips");
            assert_eq!(
                ours(&code, f.len()).as_deref(),
                Some(&f[..]),
                "{} bytes",
                f.len()
            );
            // A frame smaller than the stream stops where it is full, as weezl does.
            let short = f.len() / 2 + 1;
            assert_eq!(ours(&code, short).as_deref(), Some(&f[..short]));
        }
    }

    #[test]
    fn declines_streams_that_end_before_the_frame_is_full() {
        for f in frames().into_iter().filter(|f| f.len() > 10) {
            let code = encode(&f);
            // More bytes wanted than the stream holds: the end code comes first.
            assert_eq!(ours(&code, f.len() + 1), None);
            // The stream cut short: its codes run out.
            let cut = &code[..code.len() / 2];
            assert_eq!(ours(cut, f.len()), None);
            assert!(!weezl(cut, f.len()).1, "weezl cannot fill it either");
        }
    }

    /// The property the fallback rests on: whenever this decoder gives a frame, weezl
    /// (the `tiff` crate) gives the same bytes; hostile or damaged streams included.
    #[test]
    fn any_frame_it_gives_is_the_one_weezl_gives() {
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let mut given = 0;
        let frames = frames();
        for round in 0..3000 {
            let f = &frames[round % frames.len()];
            let mut code = encode(f);
            // Damage it: flip bits, drop or repeat a run, or use noise outright.
            match round % 4 {
                0 => {
                    for _ in 0..rng.random_range(1..4) {
                        let i = rng.random_range(0..code.len());
                        code[i] ^= 1 << rng.random_range(0..8);
                    }
                }
                1 => {
                    let i = rng.random_range(0..code.len());
                    let j = (i + rng.random_range(1..40)).min(code.len());
                    code.drain(i..j);
                }
                2 => {
                    let i = rng.random_range(0..code.len());
                    let run: Vec<u8> = code[i..(i + 9).min(code.len())].to_vec();
                    code.splice(i..i, run);
                }
                _ => {
                    let n = rng.random_range(1..600);
                    code = (0..n).map(|_| rng.random::<u8>()).collect();
                }
            }
            let want = f.len().min(rng.random_range(1..5000));
            if let Some(got) = ours(&code, want) {
                given += 1;
                let (w, full) = weezl(&code, want);
                assert!(full && got == w, "round {round}: weezl gives other bytes");
            }
        }
        assert!(
            given > 300,
            "only {given} damaged streams still decoded: the test tests little"
        );
    }

    /// The stream read the `tiff` crate's way: as the one strip of a 1-row TIFF.
    fn tiff_crate(stream: &[u8], want: usize) -> Option<Vec<u8>> {
        let mut t = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        t.extend_from_slice(&9u16.to_le_bytes());
        let at = 8 + 2 + 12 * 9 + 4;
        for (tag, kind, value) in [
            (256u16, 4u16, want as u32),
            (257, 4, 1),
            (258, 3, 8),
            (259, 3, 5),
            (262, 3, 1),
            (273, 4, at),
            (277, 3, 1),
            (278, 4, 1),
            (279, 4, stream.len() as u32),
        ] {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&kind.to_le_bytes());
            t.extend_from_slice(&1u32.to_le_bytes());
            t.extend_from_slice(&value.to_le_bytes());
        }
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(stream);
        let mut dec = tiff::decoder::Decoder::new(std::io::Cursor::new(t)).ok()?;
        let mut out = vec![0u8; want];
        dec.read_image_bytes(&mut out).ok().map(|()| out)
    }

    /// Found by the lzw fuzz target: weezl yields without progress after a clear code
    /// mid-stream, the `tiff` crate asks again, and the frame goes on; so does ours.
    #[test]
    fn a_stream_the_fuzzer_found_reads_as_the_tiff_crate_reads_it() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fuzz/lzw/weezl_yields_after_clear.lzw"
        );
        let data = std::fs::read(path).unwrap();
        let want = u16::from_le_bytes([data[0], data[1]]) as usize;
        let stream = &data[2..];
        let reference = tiff_crate(stream, want).expect("the tiff crate reads it");
        assert_eq!(ours(stream, want), Some(reference.clone()));
        assert_eq!(weezl(stream, want), (reference, true));
    }
}
