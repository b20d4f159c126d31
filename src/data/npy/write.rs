//! Writing `.npy` files as NumPy's `np.save` does, byte for byte, row by row and
//! atomically.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use super::{header_bytes, Element};
use crate::atomic::AtomicFile;

/// Writes one `.npy` file row by row (a row is one item of the first axis) to a temporary
/// file beside the target; [`NpyWriter::finish`] renames it into place once every row is
/// written. Dropped unfinished, it removes the temporary file and the target is untouched.
pub struct NpyWriter<T: Element> {
    path: PathBuf,
    file: BufWriter<AtomicFile>,
    row_len: usize,
    rows_expected: u64,
    rows_written: u64,
    scratch: Vec<u8>,
    _marker: std::marker::PhantomData<T>,
}

impl<T: Element> NpyWriter<T> {
    pub fn create(path: &Path, shape: &[u64]) -> Result<Self> {
        ensure!(
            !shape.is_empty(),
            "writing {}: a 0-d array is not supported",
            path.display()
        );
        let row_len = shape[1..]
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|r| usize::try_from(r).ok())
            .with_context(|| format!("writing {}: shape {shape:?} is too large", path.display()))?;
        let tmp = AtomicFile::create(path)?;
        // Rows larger than the buffer (a 420 x 580 frame) go straight to the file without
        // a copy; small rows (ids) are gathered.
        let mut file = BufWriter::with_capacity(64 << 10, tmp);
        file.write_all(&header_bytes(T::DTYPE, shape))?;
        Ok(NpyWriter {
            path: path.to_owned(),
            file,
            row_len,
            rows_expected: shape[0],
            rows_written: 0,
            scratch: Vec::new(),
            _marker: std::marker::PhantomData,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn push_row(&mut self, row: &[T]) -> Result<()> {
        ensure!(
            row.len() == self.row_len,
            "writing {}: a row has {} values, expected {}",
            self.path.display(),
            row.len(),
            self.row_len
        );
        ensure!(
            self.rows_written < self.rows_expected,
            "writing {}: more than the {} rows declared",
            self.path.display(),
            self.rows_expected
        );
        let bytes = match T::as_bytes(row) {
            Some(b) => b,
            None => {
                self.scratch.clear();
                T::extend_le(row, &mut self.scratch);
                &self.scratch
            }
        };
        self.file.write_all(bytes)?;
        self.rows_written += 1;
        Ok(())
    }

    /// Flushes and renames the temporary file to the target path. No fsync, as NumPy's
    /// `np.save`: the rename makes the new file appear whole or not at all, and forcing
    /// 4 GB of prepared arrays to disk cost prepare about 10 s of its 16 (run `sync` when
    /// a power cut must not lose them).
    pub fn finish(self) -> Result<PathBuf> {
        ensure!(
            self.rows_written == self.rows_expected,
            "writing {}: {} rows written, {} declared",
            self.path.display(),
            self.rows_written,
            self.rows_expected
        );
        let tmp = self.file.into_inner().map_err(|e| e.into_error())?;
        tmp.commit()
    }
}

/// Writes a whole array at once (atomically, as [`NpyWriter`]).
pub fn write<T: Element>(path: &Path, shape: &[u64], data: &[T]) -> Result<PathBuf> {
    let mut w = NpyWriter::<T>::create(path, shape)?;
    let row_len = w.row_len.max(1);
    ensure!(
        data.len() as u64 == shape.iter().product::<u64>(),
        "writing {}: {} values for shape {shape:?}",
        path.display(),
        data.len()
    );
    if w.row_len == 0 {
        for _ in 0..shape[0] {
            w.push_row(&[])?;
        }
    } else {
        for row in data.chunks(row_len) {
            w.push_row(row)?;
        }
    }
    w.finish()
}
