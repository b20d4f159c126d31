//! Reading `.npy` files that nerveseg did not write, trusting nothing their header says
//! until the file's own size confirms it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use npyz::{DType, NpyHeader, Order};

use super::{Dtype, Element};

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
    pub(crate) fn read_rows<T: Element>(&mut self, out: &mut [T]) -> Result<()> {
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
