//! Decoding overlapped with writing: a chunk of frames is decoded in parallel while the
//! chunk before it is written out, so `prepare` keeps the disk and every core busy and
//! its memory flat whatever the data size.

use anyhow::Result;
use rayon::prelude::*;

use super::tiff::PIXELS;

/// One chunk's frames, decoded side by side into a buffer that a later chunk reuses:
/// `per` frames an item (an image and its mask, or an image).
pub(super) struct Frames {
    pixels: Vec<u8>,
    per: usize,
}

impl Frames {
    pub(super) fn new(per: usize) -> Frames {
        Frames {
            pixels: Vec::new(),
            per,
        }
    }

    /// Decodes each of `items` (in parallel, on the pool) into its frames; the first
    /// failure in `items`' order, whichever thread met it first.
    pub(super) fn decode<I: Sync>(
        &mut self,
        items: &[I],
        read: impl Fn(&I, &mut [u8]) -> Result<()> + Sync,
    ) -> Result<()> {
        let size = self.per * PIXELS;
        self.pixels.resize(items.len() * size, 0);
        self.pixels
            .par_chunks_mut(size)
            .zip(items.par_iter())
            .map(|(out, item)| read(item, out))
            .collect::<Vec<Result<()>>>()
            .into_iter()
            .collect()
    }

    /// Each item's frames.
    pub(super) fn items(&self) -> impl Iterator<Item = &[u8]> {
        self.pixels.chunks(self.per * PIXELS)
    }

    /// How many items the last `decode` read.
    pub(super) fn count(&self) -> usize {
        self.pixels.len() / (self.per * PIXELS)
    }
}

/// Runs `read` on each chunk into one of two buffers (made by `buffers`) and `write` on
/// it in order, reading chunk k + 1 (in parallel, on the pool) into the other buffer
/// while chunk k is written (on one thread), so the disk writes and the TIFF decoding
/// overlap and no frame is allocated twice. Stops at the first error.
pub(super) fn pipelined_into<C: Send, B: Send>(
    mut chunks: impl Iterator<Item = C>,
    buffers: impl FnOnce() -> (B, B),
    read: impl Fn(C, &mut B) -> Result<()> + Sync,
    mut write: impl FnMut(&mut B) -> Result<()> + Send,
) -> Result<()> {
    let Some(first) = chunks.next() else {
        return Ok(());
    };
    let (mut pending, mut spare) = buffers();
    read(first, &mut pending)?;
    for c in chunks {
        crate::interrupt::check()?;
        let (written, next) = rayon::join(|| write(&mut pending), || read(c, &mut spare));
        written?;
        next?;
        std::mem::swap(&mut pending, &mut spare);
    }
    write(&mut pending)
}

/// [`pipelined_into`] for chunks whose results are made anew each time (frames of any
/// size).
pub(super) fn pipelined<C: Send, T: Send>(
    chunks: impl Iterator<Item = C>,
    read: impl Fn(C) -> Result<T> + Sync,
    mut write: impl FnMut(T) -> Result<()> + Send,
) -> Result<()> {
    pipelined_into(
        chunks,
        || (None, None),
        |c, slot| {
            *slot = Some(read(c)?);
            Ok(())
        },
        |slot| match slot.take() {
            Some(t) => write(t),
            None => Ok(()),
        },
    )
}

#[cfg(test)]
mod tests {
    use anyhow::bail;

    use super::*;

    #[test]
    fn pipelined_keeps_the_order_and_stops_at_the_first_error() {
        let mut seen = Vec::new();
        pipelined(
            (0..10).map(|i| i * 3),
            |c| Ok(vec![c, c + 1, c + 2]),
            |v| {
                seen.extend(v);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());

        // A read error in chunk 4: chunks 0..=3 are written (chunk 3 while chunk 4 was
        // read), nothing after; the error comes back.
        let mut written = Vec::new();
        let err = pipelined(
            0..10,
            |c| {
                if c == 4 {
                    bail!("chunk {c} is bad")
                } else {
                    Ok(c)
                }
            },
            |c| {
                written.push(c);
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "chunk 4 is bad");
        assert_eq!(written, [0, 1, 2, 3]);

        // A write error stops the reading too.
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let err = pipelined(
            0..10,
            |c| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(c)
            },
            |c| if c == 2 { bail!("disk full") } else { Ok(()) },
        )
        .unwrap_err();
        let reads = counter.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(err.to_string(), "disk full");
        assert!(
            reads <= 4,
            "{reads} chunks read after a write failed at chunk 2"
        );
        assert!(pipelined(std::iter::empty::<u8>(), Ok, |_| Ok(())).is_ok());
    }

    #[test]
    fn pipelined_into_takes_turns_with_two_buffers() {
        // Each buffer remembers how often it was filled: chunks alternate between the two.
        let mut seen = Vec::new();
        pipelined_into(
            0..7,
            || ((0, 0), (1, 0)),
            |c, buf: &mut (i32, i32)| {
                buf.1 = c;
                Ok(())
            },
            |buf| {
                seen.push(*buf);
                Ok(())
            },
        )
        .unwrap();
        let chunks: Vec<i32> = seen.iter().map(|b| b.1).collect();
        let buffers: Vec<i32> = seen.iter().map(|b| b.0).collect();
        assert_eq!(chunks, (0..7).collect::<Vec<_>>());
        assert_eq!(buffers, [0, 1, 0, 1, 0, 1, 0]);
    }
}
