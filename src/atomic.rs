//! One way to write a file. Every output (npy, Keras HDF5, CSV, PNG, TIFF) is written to
//! `{name}.partial-{pid}-{n}` in its own folder and renamed into place only when complete,
//! so an error, an interrupt or a crash never leaves a half-written file nor destroys the
//! previous one. Every I/O error names the file.
//!
//! The partial files of a running process are registered here, so that a second Ctrl-C
//! (which exits at once, see `interrupt.rs`) can remove them; a later run removes the
//! partial files of its target that dead nerveseg processes left behind.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};

/// What sits between a file's name and the writer's pid in a partial file's name.
pub const PARTIAL: &str = ".partial-";

/// The partial files this process has open.
static OPEN: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn register(p: &Path) {
    if let Ok(mut g) = OPEN.lock() {
        g.get_or_insert_with(HashSet::new).insert(p.to_owned());
    }
}

fn unregister(p: &Path) {
    if let Ok(mut g) = OPEN.lock() {
        if let Some(set) = g.as_mut() {
            set.remove(p);
        }
    }
}

/// Removes every partial file this process has open (for an exit without unwinding).
pub(crate) fn remove_all_partials() {
    // Called from the signal-handling thread: a writer holds the lock only to add or
    // remove one name, so wait for it a little, but never block.
    for _ in 0..100 {
        if let Ok(g) = OPEN.try_lock() {
            for p in g.iter().flatten() {
                let _ = std::fs::remove_file(p);
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The folder of `path` ("." for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether two paths name one existing file or folder (both resolve, to the same place).
pub fn same_place(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Whether a process with this pid is running (on Unix; elsewhere assume it is).
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// The pid in a partial file's name, when `name` is a partial file of `target`.
fn partial_pid(name: &str, target: &str) -> Option<u32> {
    let rest = name.strip_prefix(target)?.strip_prefix(PARTIAL)?;
    rest.split_once('-')?.0.parse().ok()
}

/// Removes the partial files of `target` whose writer is no longer running.
fn remove_stale(dir: &Path, target: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| partial_pid(n, target)) else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) {
            log::info!("removing {}, left by an earlier run", e.path().display());
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// An output being written: a partial file beside the target, renamed into place by
/// [`AtomicFile::commit`]. Dropped without a commit, it removes the partial file.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    partial: PathBuf,
    file: File,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing `path` (its folder must exist). Readable by others as a normal
    /// output file (0644 before the umask).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("writing {}: not a file name", path.display()))?;
        remove_stale(dir, name);
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let partial = dir.join(format!("{name}{PARTIAL}{pid}-{n}"));
            let mut o = OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o644);
            }
            match o.open(&partial) {
                Ok(file) => {
                    register(&partial);
                    return Ok(AtomicFile {
                        target: path.to_owned(),
                        partial,
                        file,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("writing {}", path.display()));
                }
            }
        }
    }

    /// Where the partial file is, for libraries that open files by name (HDF5).
    pub(crate) fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// Renames the finished file into place. No fsync, as NumPy's `np.save`: the rename
    /// makes the new file appear whole or not at all (a power cut may lose it).
    pub(crate) fn commit(self) -> Result<PathBuf> {
        self.finish(false)
    }

    /// Forces the data to disk, renames the file into place and forces the rename too:
    /// for checkpoints, which a power cut must not lose or tear.
    pub(crate) fn commit_synced(self) -> Result<PathBuf> {
        self.finish(true)
    }

    fn finish(mut self, sync: bool) -> Result<PathBuf> {
        let target = self.target.clone();
        let ctx = || format!("writing {}", target.display());
        if sync {
            self.file.sync_all().with_context(ctx)?;
        }
        std::fs::rename(&self.partial, &self.target)
            .with_context(|| format!("renaming the finished file to {}", target.display()))?;
        self.committed = true;
        unregister(&self.partial);
        if sync {
            #[cfg(unix)]
            if let Ok(d) = File::open(parent_dir(&self.target)) {
                d.sync_all().with_context(ctx)?;
            }
        }
        Ok(target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.file.write(buf);
        r.map_err(|e| self.named(e))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = self.file.write_all(buf);
        r.map_err(|e| self.named(e))
    }
    fn flush(&mut self) -> io::Result<()> {
        let r = self.file.flush();
        r.map_err(|e| self.named(e))
    }
}

impl io::Seek for AtomicFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let r = self.file.seek(pos);
        r.map_err(|e| self.named(e))
    }
}

impl AtomicFile {
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("writing {}: {e}", self.target.display()))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
            unregister(&self.partial);
        }
    }
}

/// The buffered writer that [`write_with`] hands out.
pub type Writer<'a> = io::BufWriter<&'a mut AtomicFile>;

/// Writes a whole file at once through `write`, atomically.
pub fn write_with(path: &Path, write: impl FnOnce(&mut Writer) -> Result<()>) -> Result<PathBuf> {
    write_all_at_once(path, write, false)
}

/// Writes `value` as pretty JSON with a final newline, all at once ([`write_with`]).
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<PathBuf> {
    write_with(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")?;
        Ok(())
    })
}

/// As [`write_with`], and forced to disk before and after the rename (see
/// [`AtomicFile::commit_synced`]).
pub(crate) fn write_synced(
    path: &Path,
    write: impl FnOnce(&mut Writer) -> Result<()>,
) -> Result<PathBuf> {
    write_all_at_once(path, write, true)
}

fn write_all_at_once(
    path: &Path,
    write: impl FnOnce(&mut Writer) -> Result<()>,
    sync: bool,
) -> Result<PathBuf> {
    let mut f = AtomicFile::create(path)?;
    {
        let mut w = io::BufWriter::new(&mut f);
        // I/O errors already name the file (see the Write impl).
        write(&mut w)?;
        w.flush()?;
    }
    f.finish(sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn outputs_are_not_private_and_are_named_after_their_target() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let t = AtomicFile::create(&d.path().join("x.npy")).unwrap();
        let mode = std::fs::metadata(t.partial_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode & 0o044, 0o044 & !umask(), "mode {mode:o}");
        let name = t.partial_path().file_name().unwrap().to_str().unwrap();
        assert_eq!(
            partial_pid(name, "x.npy"),
            Some(std::process::id()),
            "{name}"
        );
    }

    #[test]
    fn commit_replaces_and_drop_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        write_with(&p, |w| Ok(w.write_all(b"new")?)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"synced").unwrap();
        f.commit_synced().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"synced");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_partials_of_dead_writers_are_removed() {
        let d = tempfile::tempdir().unwrap();
        // pid 0x7ffffff0 is above Linux's pid_max: no such process.
        let stale = d.path().join("w.h5.partial-2147483632-0");
        let live = d
            .path()
            .join(format!("w.h5.partial-{}-999999", std::process::id()));
        let other = d.path().join("v.h5.partial-2147483632-0");
        for p in [&stale, &live, &other] {
            std::fs::write(p, b"").unwrap();
        }
        let f = AtomicFile::create(&d.path().join("w.h5")).unwrap();
        assert!(!stale.exists());
        assert!(live.exists(), "a running writer's file is left alone");
        assert!(other.exists(), "another target's file is left alone");
        drop(f);
    }

    #[test]
    fn partial_names_parse() {
        assert_eq!(partial_pid("a.npy.partial-12-3", "a.npy"), Some(12));
        assert_eq!(partial_pid("a.npy.partial-x-3", "a.npy"), None);
        assert_eq!(partial_pid("b.npy.partial-12-3", "a.npy"), None);
        assert_eq!(partial_pid("a.npy", "a.npy"), None);
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
