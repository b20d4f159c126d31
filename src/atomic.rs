//! Write-then-rename for every output: a file is written under a hidden temporary name in
//! its own folder and renamed into place only when complete, so an error or a crash never
//! leaves a half-written file nor destroys the previous one.

use std::path::Path;

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// A temporary file beside `path` (same folder, so the final rename is atomic), readable
/// by others as a normal output file would be (0644 before the umask), not 0600.
pub fn temp_beside(path: &Path) -> Result<NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut b = tempfile::Builder::new();
    b.prefix(".nerveseg-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b.tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn outputs_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let t = super::temp_beside(&d.path().join("x.npy")).unwrap();
        let mode = t.as_file().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044 & !umask(), "mode {mode:o}");
        assert!(t
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".nerveseg-"));
    }

    #[cfg(unix)]
    fn umask() -> u32 {
        // Read the umask from a file created with 0666.
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("probe");
        std::fs::write(&p, b"").unwrap();
        0o666 & !std::fs::metadata(&p).unwrap().permissions().mode()
    }
}
