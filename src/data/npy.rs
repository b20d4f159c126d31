//! The `.npy` intermediates of the original `data.py` (`imgs_train.npy`, `imgs_mask_train.npy`,
//! `imgs_test.npy`, `imgs_id_test.npy`): a streaming, atomic writer and checked readers.
//!
//! Reading parses the header with `npyz`. Writing builds the header here, because the
//! files must equal NumPy's byte for byte and npyz's header differs from NumPy's (it writes
//! `(3, 4, )` for a shape and leaves out the spare room NumPy keeps for growing the first
//! axis). The header follows NumPy's `format._write_array_header` (format version 1.0):
//! <https://github.com/numpy/numpy/blob/v2.1.0/numpy/lib/format.py#L420>.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use npyz::{DType, NpyHeader, Order};

use crate::atomic::AtomicFile;

/// The element types nerveseg stores, with NumPy's `descr` for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    U8,
    I32,
    F32,
    F64,
}

impl Dtype {
    /// NumPy's `descr` string, as `np.save` writes it on a little-endian machine.
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::U8 => "|u1",
            Dtype::I32 => "<i4",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }

    /// NumPy's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::I32 => "int32",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    fn from_descr(descr: &str) -> Option<Dtype> {
        match descr {
            "|u1" | "<u1" | ">u1" => Some(Dtype::U8),
            "<i4" => Some(Dtype::I32),
            "<f4" => Some(Dtype::F32),
            "<f8" => Some(Dtype::F64),
            _ => None,
        }
    }
}

/// A Rust element type that maps to one [`Dtype`].
pub trait Element: Copy + Default + 'static {
    const DTYPE: Dtype;
    /// Appends `values` as little-endian bytes.
    fn extend_le(values: &[Self], out: &mut Vec<u8>);
    /// Fills `out` from little-endian bytes (`bytes.len()` = `out.len()` x the size).
    fn from_le_slice(bytes: &[u8], out: &mut [Self]);
    /// The values' bytes as they are, where no conversion is needed (uint8).
    fn as_bytes(_values: &[Self]) -> Option<&[u8]> {
        None
    }
}

impl Element for u8 {
    const DTYPE: Dtype = Dtype::U8;
    fn extend_le(values: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(values);
    }
    fn from_le_slice(bytes: &[u8], out: &mut [u8]) {
        out.copy_from_slice(bytes);
    }
    fn as_bytes(values: &[u8]) -> Option<&[u8]> {
        Some(values)
    }
}

// Whole slices at a time into pre-sized buffers: one extend_from_slice per value kept
// the compiler from vectorising and cost prepare two thirds of its time.
macro_rules! element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: Dtype = $d;
            fn extend_le(values: &[Self], out: &mut Vec<u8>) {
                const SIZE: usize = std::mem::size_of::<$t>();
                let start = out.len();
                out.resize(start + values.len() * SIZE, 0);
                for (b, v) in out[start..].chunks_exact_mut(SIZE).zip(values) {
                    b.copy_from_slice(&v.to_le_bytes());
                }
            }
            fn from_le_slice(bytes: &[u8], out: &mut [Self]) {
                const SIZE: usize = std::mem::size_of::<$t>();
                for (v, b) in out.iter_mut().zip(bytes.chunks_exact(SIZE)) {
                    let mut a = [0u8; SIZE];
                    a.copy_from_slice(b);
                    *v = <$t>::from_le_bytes(a);
                }
            }
        }
    };
}
element!(i32, Dtype::I32);
element!(f32, Dtype::F32);
element!(f64, Dtype::F64);

/// NumPy's header (magic, version 1.0, length, dict, padding) for a C-order array.
pub fn header_bytes(dtype: Dtype, shape: &[u64]) -> Vec<u8> {
    // NumPy prints the shape with repr(tuple): "(5,)" for one axis, "(2, 3)" for more.
    let shape_repr = match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", dims.join(", "))
        }
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_repr}, }}",
        dtype.descr()
    );
    // Spare room so the first axis can grow in place (numpy's GROWTH_AXIS_MAX_DIGITS).
    if let Some(first) = shape.first() {
        dict.push_str(&" ".repeat(21 - first.to_string().len()));
    }
    // Pad with spaces and end with a newline so that magic (6) + version (2) + length (2)
    // + dict is a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

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

    pub fn push_row(&mut self, row: &[T]) -> Result<()> {
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

/// NumPy's own limit on the header of a file it loads (`max_header_size` of
/// `np.load`): larger headers "may not be safe to load securely".
const MAX_HEADER: usize = 10_000;

/// Deepest bracket nesting a header may have; NumPy's hold a dict, a tuple and at most a
/// structured dtype's list of tuples.
const MAX_NESTING: usize = 8;

/// A single axis longer than this is taken for a hostile or broken header.
const MAX_AXIS: u64 = u32::MAX as u64;

/// An opened `.npy` file: its checked header, and a reader at the first data byte.
///
/// Nothing the header says is trusted: its length is bounded before it is read, the
/// shape is checked with overflow-checked arithmetic, and the data must be exactly as
/// long as the shape says, so no later read allocates more than the file holds.
pub struct NpyReader {
    path: PathBuf,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    reader: BufReader<File>,
}

/// Reads the magic, version and header length, and returns the whole header (preamble
/// included) after bounding its length by NumPy's limit and by the file's size.
fn read_header_bytes(r: &mut impl Read, file_len: u64) -> Result<Vec<u8>> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .context("not a valid .npy file: shorter than the magic and version")?;
    ensure!(
        &pre[..6] == b"\x93NUMPY",
        "not a valid .npy file: the NumPy magic is missing"
    );
    let len_bytes = match pre[6] {
        1 => 2,
        2 | 3 => 4,
        v => bail!(
            "not a valid .npy file: format version {v}.{} is unknown",
            pre[7]
        ),
    };
    let mut len = [0u8; 4];
    r.read_exact(&mut len[..len_bytes])
        .context("not a valid .npy file: the header length is cut off")?;
    let header_len = u32::from_le_bytes(len) as usize;
    let total = 8 + len_bytes + header_len;
    ensure!(
        header_len <= MAX_HEADER,
        "not a valid .npy file: a header of {header_len} bytes (NumPy loads at most {MAX_HEADER})"
    );
    ensure!(
        total as u64 <= file_len,
        "not a valid .npy file: the header needs {total} bytes, the file holds {file_len}"
    );
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&pre);
    out.extend_from_slice(&len[..len_bytes]);
    out.resize(total, 0);
    r.read_exact(&mut out[8 + len_bytes..])
        .context("not a valid .npy file: the header is cut off")?;
    let mut depth = 0usize;
    for &b in &out[8 + len_bytes..] {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        ensure!(
            depth <= MAX_NESTING,
            "not a valid .npy file: the header nests brackets more than {MAX_NESTING} deep"
        );
    }
    Ok(out)
}

/// The number of data bytes a C-order array of `shape` and `dtype` holds, refusing
/// axes and products that no real file has.
fn data_bytes(shape: &[u64], dtype: Dtype) -> Result<u64> {
    if let Some(d) = shape.iter().find(|&&d| d > MAX_AXIS) {
        bail!("the header's shape {shape:?} has an axis of {d}, more than any real array");
    }
    let row = shape
        .iter()
        .skip(1)
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d));
    // A row (one item of the first axis) past 1 TiB is absurd even in an empty array.
    let row = row.filter(|&r| r <= 1 << 40);
    let total = row.and_then(|r| r.checked_mul(shape.first().copied().unwrap_or(1)));
    match total {
        Some(t) if t <= i64::MAX as u64 => Ok(t),
        _ => bail!("the header's shape {shape:?} is too large to be a real array"),
    }
}

impl NpyReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let file_len = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let header_bytes = read_header_bytes(&mut reader, file_len)
            .with_context(|| format!("reading {}", path.display()))?;
        let header = NpyHeader::from_reader(header_bytes.as_slice())
            .with_context(|| format!("reading {}: not a valid .npy file", path.display()))?;
        let descr = match header.dtype() {
            DType::Plain(ts) => ts.to_string(),
            other => bail!("reading {}: unsupported dtype {:?}", path.display(), other),
        };
        let Some(dtype) = Dtype::from_descr(&descr) else {
            bail!(
                "reading {}: dtype {descr} is not supported (expected uint8, int32, float32 or float64)",
                path.display()
            );
        };
        if header.order() == Order::Fortran && header.shape().len() > 1 {
            bail!(
                "reading {}: Fortran-order arrays are not supported; save it with \
                 np.ascontiguousarray",
                path.display()
            );
        }
        let shape = header.shape().to_vec();
        let want =
            data_bytes(&shape, dtype).with_context(|| format!("reading {}", path.display()))?;
        let have = file_len - header_bytes.len() as u64;
        if have != want {
            bail!(
                "reading {}: the header says {} of shape {shape:?}, {want} bytes of data, but the \
                 file holds {have} bytes after the header ({})",
                path.display(),
                dtype.name(),
                if have < want {
                    "truncated?"
                } else {
                    "trailing bytes"
                }
            );
        }
        Ok(NpyReader {
            path: path.to_owned(),
            dtype,
            shape,
            reader,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails unless the dtype is `dtype` and the shape matches `shape`, where `None`
    /// stands for any length on that axis.
    pub fn expect(&self, dtype: Dtype, shape: &[Option<u64>]) -> Result<()> {
        let fits = self.shape.len() == shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(&n, want)| want.is_none_or(|w| w == n));
        if self.dtype != dtype || !fits {
            let want: Vec<String> = shape
                .iter()
                .map(|d| d.map_or_else(|| "N".to_owned(), |n| n.to_string()))
                .collect();
            bail!(
                "{}: expected a {} array of shape ({}), found {} of shape {:?}",
                self.path.display(),
                dtype.name(),
                want.join(", "),
                self.dtype.name(),
                self.shape
            );
        }
        Ok(())
    }

    /// Number of values in one row (one item of the first axis).
    pub fn row_len(&self) -> usize {
        // Bounded when the file was opened: the whole array fits in the file.
        self.shape.iter().skip(1).product::<u64>() as usize
    }

    /// Reads the next `out.len()` values (a whole number of rows, each [`Self::row_len`]).
    pub fn read_rows<T: Element>(&mut self, out: &mut [T]) -> Result<()> {
        ensure!(
            T::DTYPE == self.dtype,
            "{}: read as the wrong dtype",
            self.path.display()
        );
        // Through a bounded buffer: a whole-array scratch copy doubled the peak memory of
        // reading a 1.4 GB array.
        let size = T::DTYPE.size();
        let mut bytes = vec![0u8; (1 << 20) / size * size];
        for part in out.chunks_mut(bytes.len() / size) {
            let bytes = &mut bytes[..part.len() * size];
            self.reader.read_exact(bytes).with_context(|| {
                format!(
                    "reading {}: the file is shorter than its header says",
                    self.path.display()
                )
            })?;
            T::from_le_slice(bytes, part);
        }
        Ok(())
    }

    /// Reads the whole array.
    pub fn read_all<T: Element>(mut self) -> Result<Vec<T>> {
        // No more than the file holds: checked when it was opened.
        let total = self.shape.iter().product::<u64>() as usize;
        let mut out = vec![T::default(); total];
        self.read_rows(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arrays larger than the 1 MiB read buffer and the 64 KiB write buffer, in every
    /// dtype, come back as written, rows split across buffer boundaries included.
    #[test]
    fn large_arrays_round_trip_through_the_buffers() {
        let d = tempfile::tempdir().unwrap();
        let n = 3 * (1 << 20) / 4 + 7; // rows of 3 values: not a divisor of any buffer
        let f: Vec<f32> = (0..n * 3).map(|i| i as f32 * 0.25 - 7.0).collect();
        let p = d.path().join("f.npy");
        write(&p, &[n as u64, 3], &f).unwrap();
        assert_eq!(NpyReader::open(&p).unwrap().read_all::<f32>().unwrap(), f);
        let ints: Vec<i32> = (0..n as i32).map(|i| i * 7 - 1_000_000).collect();
        write(&p, &[n as u64], &ints).unwrap();
        assert_eq!(
            NpyReader::open(&p).unwrap().read_all::<i32>().unwrap(),
            ints
        );
        let bytes: Vec<u8> = (0..n * 3).map(|i| (i * 31 % 251) as u8).collect();
        write(&p, &[n as u64, 3], &bytes).unwrap();
        let mut r = NpyReader::open(&p).unwrap();
        let mut first = vec![0u8; 3 * 5];
        r.read_rows(&mut first).unwrap();
        let mut rest = vec![0u8; 3 * (n - 5)];
        r.read_rows(&mut rest).unwrap();
        first.extend(rest);
        assert_eq!(first, bytes);
        let doubles: Vec<f64> = (0..n).map(|i| (i as f64).sqrt()).collect();
        write(&p, &[n as u64], &doubles).unwrap();
        assert_eq!(
            NpyReader::open(&p).unwrap().read_all::<f64>().unwrap(),
            doubles
        );
    }

    #[test]
    fn header_is_64_aligned_and_numpy_shaped() {
        let h = header_bytes(Dtype::U8, &[3, 420, 580]);
        assert_eq!(h.len() % 64, 0);
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(
            text.starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 420, 580), }")
        );
        assert!(text.ends_with('\n'));
        let h1 = header_bytes(Dtype::I32, &[7]);
        assert!(std::str::from_utf8(&h1[10..])
            .unwrap()
            .contains("'shape': (7,), }"));
    }

    #[test]
    fn write_then_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        write(&p, &[2, 3, 4], &data).unwrap();
        let r = NpyReader::open(&p).unwrap();
        r.expect(Dtype::F32, &[None, Some(3), Some(4)]).unwrap();
        assert!(r.expect(Dtype::U8, &[None, Some(3), Some(4)]).is_err());
        assert_eq!(r.read_all::<f32>().unwrap(), data);
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.npy");
        {
            let mut w = NpyWriter::<u8>::create(&p, &[2, 2]).unwrap();
            w.push_row(&[1, 2]).unwrap();
            assert!(w.finish().is_err());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
