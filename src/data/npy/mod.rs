//! The `.npy` intermediates of the original `data.py` (`imgs_train.npy`, `imgs_mask_train.npy`,
//! `imgs_test.npy`, `imgs_id_test.npy`): a streaming, atomic writer and checked readers.
//!
//! Reading parses the header with `npyz`. Writing builds the header here, because the
//! files must equal NumPy's byte for byte and npyz's header differs from NumPy's (it writes
//! `(3, 4, )` for a shape and leaves out the spare room NumPy keeps for growing the first
//! axis). The header follows NumPy's `format._write_array_header` (format version 1.0):
//! <https://github.com/numpy/numpy/blob/v2.1.0/numpy/lib/format.py#L420>.

mod read;
mod write;

pub use self::read::NpyReader;
pub use self::write::{write, NpyWriter};

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

    pub(crate) fn from_descr(descr: &str) -> Option<Dtype> {
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
pub(crate) fn header_bytes(dtype: Dtype, shape: &[u64]) -> Vec<u8> {
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
