//! A file that lives in memory but has a path, for libraries that write only to paths
//! (libtorch's TorchScript writer). They meet no full disk there: libtorch, failing to
//! write, throws from a destructor and aborts the process. The bytes are then written
//! to their place by us, where a full disk is an ordinary error.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use anyhow::{Context, Result};

/// An anonymous in-memory file (Linux `memfd_create`), reachable as /proc/self/fd/N.
pub struct MemFile {
    file: File,
}

impl MemFile {
    /// A new empty file named `name` (for /proc only).
    #[cfg(target_os = "linux")]
    pub fn new(name: &str) -> Result<MemFile> {
        use std::os::fd::FromRawFd;
        let c = std::ffi::CString::new(name).context("an in-memory file's name")?;
        // SAFETY: memfd_create takes a NUL-terminated name and returns a new descriptor
        // (or -1), which the File below owns.
        let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("creating an in-memory file");
        }
        Ok(MemFile {
            file: unsafe { File::from_raw_fd(fd) },
        })
    }

    /// The path by which other code of this process opens the file.
    #[cfg(target_os = "linux")]
    pub fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// Everything written to it.
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file
            .read_to_end(&mut out)
            .context("reading an in-memory file")?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_by_path_is_read_back() {
        let mut m = MemFile::new("test").unwrap();
        std::fs::write(m.path(), b"abc").unwrap();
        assert_eq!(m.bytes().unwrap(), b"abc");
    }
}
