//! Shared helpers for the fuzz targets: the readers take paths, so each target writes
//! the fuzz input to a file in one temporary folder per process and overwrites it on
//! every iteration.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The process's scratch folder, made on first use and kept until the process exits.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("nerveseg-fuzz-")
            .tempdir()
            .expect("creating the fuzz scratch folder")
    })
    .path()
}

/// Writes `data` to `name` in the scratch folder (truncating it) and returns its path.
pub fn write_input(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("writing the fuzz input");
    path
}
