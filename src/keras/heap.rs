//! A guard against a libhdf5 bug that a hostile file can trigger: a global heap
//! collection (`GCOL`, where HDF5 keeps variable-length strings such as `model_config`)
//! whose object 0 has size 0 makes `H5HG__cache_heap_deserialize` (H5HGcache.c) step
//! by zero bytes forever, so reading such a string never returns; so does an object
//! whose size makes that step wrap around to zero (or backwards) in its size_t
//! arithmetic. Found by fuzzing (`tests/fixtures/fuzz/keras/`). Before libhdf5 opens a
//! file we walk every collection the way it would, with its arithmetic, and refuse the
//! file when a step would not move forward.
//!
//! The walk mirrors HDF5's format spec (III.E, "Global Heap"): signature, version 1,
//! three reserved bytes, the collection size, then objects of `index (2), references
//! (2), reserved (4), size (length-size)`, each padded to 8 bytes, object 0 being the
//! free space at the end.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The superblock's size of lengths (bytes of a "length" field), 8 unless it says.
fn size_of_lengths(f: &mut File) -> Result<usize> {
    let mut sb = [0u8; 16];
    f.seek(SeekFrom::Start(0))?;
    let n = f.read(&mut sb)?;
    let at = match sb.get(8) {
        Some(0) | Some(1) => 14, // superblock versions 0 and 1
        Some(2) | Some(3) => 10, // versions 2 and 3
        _ => return Ok(8),
    };
    Ok(match sb.get(at).filter(|_| at < n) {
        Some(&s @ (2 | 4 | 8)) => s as usize,
        _ => 8,
    })
}

fn decode_length(b: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(v)
}

/// Walks the collection starting at `at` as libhdf5 would; fails where it would loop.
fn check_collection(f: &mut File, at: u64, lengths: usize, file_len: u64) -> Result<()> {
    let header = 8 + lengths;
    let mut head = vec![0u8; header];
    f.seek(SeekFrom::Start(at))?;
    if f.read_exact(&mut head).is_err() || head[4] != 1 || head[5..8] != [0, 0, 0] {
        return Ok(()); // not a collection (or cut off): libhdf5 refuses those itself
    }
    let size = decode_length(&head[8..]).min(file_len - at) as usize;
    let mut heap = vec![0u8; size.saturating_sub(header)];
    f.read_exact(&mut heap)?;
    let object_header = 8 + lengths;
    let mut p = 0usize;
    while p < heap.len() {
        if p + object_header > heap.len() {
            break; // the tail too small for an object: free space
        }
        let index = u16::from_le_bytes([heap[p], heap[p + 1]]);
        let object = decode_length(&heap[p + 8..p + 8 + lengths]);
        // libhdf5's arithmetic, in size_t, wrapping: 16 + the size rounded up to 8.
        let need = if index > 0 {
            let aligned = 8u64.wrapping_mul(object.wrapping_add(7) / 8);
            (object_header as u64).wrapping_add(aligned)
        } else {
            object
        };
        // A step of 0 repeats the same object forever; one of 2^63 or more moves the
        // pointer backwards (it wraps around the address space) and repeats or reads
        // outside the heap.
        if need == 0 || need >= 1 << 63 {
            bail!(
                "the global heap at byte {at} holds an object whose size steps the HDF5 \
                 library by {need} bytes: a corruption that makes it loop forever"
            );
        }
        match p.checked_add(need as usize) {
            Some(next) if next <= heap.len() => p = next,
            _ => break, // past the end: libhdf5 reports the overflow itself
        }
    }
    Ok(())
}

/// Refuses a file with a global heap collection that would make libhdf5 hang.
pub(crate) fn check_global_heaps(path: &Path) -> Result<()> {
    (|| -> Result<()> {
        let mut f = File::open(path)?;
        let file_len = f.metadata()?.len();
        let lengths = size_of_lengths(&mut f)?;
        let mut hits = Vec::new();
        let mut chunk = vec![0u8; 1 << 20];
        let mut start = 0u64;
        while start < file_len {
            f.seek(SeekFrom::Start(start))?;
            let n = f.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            hits.extend(memchr::memmem::find_iter(&chunk[..n], b"GCOL").map(|i| start + i as u64));
            if start + n as u64 >= file_len {
                break;
            }
            // Overlap by three bytes so a signature across two chunks is found once.
            start += (n as u64).saturating_sub(3).max(1);
        }
        hits.dedup();
        for at in hits {
            check_collection(&mut f, at, lengths, file_len)?;
        }
        Ok(())
    })()
    .context("not a readable HDF5 file")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.h5");
        std::fs::write(&p, bytes).unwrap();
        (d, p)
    }

    fn collection(objects: &[(u16, u64)]) -> Vec<u8> {
        let mut c = b"GCOL\x01\x00\x00\x00".to_vec();
        c.extend_from_slice(&4096u64.to_le_bytes());
        for &(index, size) in objects {
            c.extend_from_slice(&index.to_le_bytes());
            c.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
            c.extend_from_slice(&size.to_le_bytes());
            if index > 0 {
                c.extend(std::iter::repeat_n(b'a', size.div_ceil(8) as usize * 8));
            }
        }
        c
    }

    #[test]
    fn a_zero_step_is_refused_and_a_sound_heap_passes() {
        let mut sound = vec![0u8; 100];
        let free = 4096 - 16 - (16 + 8) as u64;
        sound.extend(collection(&[(1, 5), (0, free)]));
        sound.resize(100 + 4096, 0);
        let (_d, p) = file_with(&sound);
        check_global_heaps(&p).unwrap();

        let mut bad = vec![0u8; 2048];
        bad.extend(collection(&[(0, 0)]));
        bad.resize(2048 + 4096, 0);
        let (_d2, p2) = file_with(&bad);
        let e = format!("{:#}", check_global_heaps(&p2).unwrap_err());
        assert!(
            e.contains(
                "global heap at byte 2048 holds an object whose size steps the HDF5 library \
                 by 0 bytes"
            ),
            "{e}"
        );
        // Sizes whose step wraps: 16 + (2^64 - 16) is 0; 2^64 - 1 rounds up to 0.
        for size in [u64::MAX - 15, u64::MAX] {
            let mut bad = vec![0u8; 64];
            let mut c = b"GCOL\x01\x00\x00\x00".to_vec();
            c.extend_from_slice(&4096u64.to_le_bytes());
            c.extend_from_slice(&1u16.to_le_bytes());
            c.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
            c.extend_from_slice(&size.to_le_bytes());
            bad.extend(c);
            bad.resize(64 + 4096, 0);
            let (_d3, p3) = file_with(&bad);
            assert!(check_global_heaps(&p3).is_err(), "size {size}");
        }
    }

    #[test]
    fn a_signature_across_the_chunk_boundary_is_seen() {
        let mut bad = vec![0u8; (1 << 20) - 2];
        bad.extend(collection(&[(0, 0)]));
        bad.resize(bad.len() + 4096, 0);
        let (_d, p) = file_with(&bad);
        assert!(check_global_heaps(&p).is_err());
    }
}
