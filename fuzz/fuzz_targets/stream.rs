//! `stream`'s reader of raw frames (`stream::Frames`): the first two input bytes are the
//! frame's height and width (1 to 256 each), the third how many bytes a read hands out
//! (1 to 7, as a pipe may), the rest the stream. Every whole frame must
//! come back as it was sent, and a short last one must be an error, never a panic.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use nerveseg::frame::FrameSize;
use nerveseg::stream::Frames;

/// A reader giving at most `step` bytes a call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let size = FrameSize::new(data[0] as usize + 1, data[1] as usize + 1).unwrap();
    let body = &data[3..];
    let mut frames = Frames {
        input: Trickle { data: body, step: data[2] as usize % 7 + 1 },
        name: "fuzz".into(),
        size,
    };
    let mut buf = vec![0u8; size.pixels()];
    let mut done = 0;
    loop {
        match frames.next_frame(&mut buf, done) {
            Ok(true) => {
                assert_eq!(&buf[..], &body[done * buf.len()..(done + 1) * buf.len()]);
                done += 1;
            }
            Ok(false) => {
                assert_eq!(done * buf.len(), body.len());
                break;
            }
            Err(_) => {
                assert!(body.len() % buf.len() != 0 && done == body.len() / buf.len());
                break;
            }
        }
    }
});
