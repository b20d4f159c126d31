//! A run's folder belongs to one run. A fresh `train` refuses a folder that holds
//! another run's checkpoints or history (it would replace them without a word) unless
//! `--overwrite` or `--resume` says so, and every run holds an advisory lock on its
//! folder for its whole life, so a second command on the same folder is refused while
//! the first runs. The kernel releases the lock when the process ends, however it ends.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Result};

use super::{read_history, BEST, HISTORY, LAST};

/// The lock on a run's folder, held until it is dropped (or the process ends).
#[derive(Debug)]
pub struct RunLock {
    _dir: File,
}

/// Locks the folder `dir` (which must exist) for this run; refused, naming the process
/// that holds it, while another run has it. The lock is on the folder itself, so it
/// leaves no file behind.
pub fn lock(dir: &Path) -> Result<RunLock> {
    use std::os::fd::AsRawFd;
    let file = File::open(dir).map_err(|e| anyhow::anyhow!("opening {}: {e}", dir.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(RunLock { _dir: file });
    }
    let e = std::io::Error::last_os_error();
    if e.kind() != std::io::ErrorKind::WouldBlock {
        bail!("locking {} for this run: {e}", dir.display());
    }
    let who = holder(dir).map_or_else(
        || "another nerveseg run".to_owned(),
        |pid| format!("another nerveseg run (pid {pid})"),
    );
    bail!(
        "{} is in use by {who}: wait for it to finish, or choose another --out-dir",
        dir.display()
    )
}

/// The process holding a lock on `dir`, from /proc/locks (Linux), when it can be found.
fn holder(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(dir).ok()?.ino().to_string();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF"
        let f: Vec<&str> = line.split_whitespace().collect();
        let same = f.get(5)?.rsplit(':').next()? == inode;
        (f.get(1) == Some(&"FLOCK") && same).then(|| f.get(4)?.parse().ok())?
    })
}

/// Refuses to start a fresh run in `dir` when it holds another run's files, saying what
/// that run is and what to do. `--resume` and `--overwrite` skip this.
pub(crate) fn check_unclaimed(dir: &Path) -> Result<()> {
    let found: Vec<&str> = [BEST, LAST, HISTORY]
        .into_iter()
        .filter(|f| dir.join(f).exists())
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    bail!(
        "{} holds another run ({}): pass --overwrite to replace it, --resume to continue \
         it, or choose another --out-dir",
        dir.display(),
        describe(dir, &found)
    )
}

/// "20 epochs, best val_dice_coef 0.6123 at epoch 14", from the run's history; else the
/// files found.
fn describe(dir: &Path, found: &[&str]) -> String {
    history_summary(dir).unwrap_or_else(|| found.join(", "))
}

/// "20 epochs, best val_dice_coef 0.6123 at epoch 14", from `dir`'s history.csv, when
/// it has one that reads.
pub fn history_summary(dir: &Path) -> Option<String> {
    let path = dir.join(HISTORY);
    let rows = std::fs::read_to_string(&path)
        .ok()?
        .lines()
        .count()
        .saturating_sub(1);
    let history = read_history(&path, rows).ok()?;
    let epochs = history.len();
    let plural = if epochs == 1 { "" } else { "s" };
    let best = history
        .iter()
        .filter_map(|l| Some((l.epoch, l.val_dice_coef?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    Some(match best {
        Some((epoch, dice)) => format!(
            "{epochs} epoch{plural}, best val_dice_coef {dice:.4} at epoch {}",
            epoch + 1
        ),
        None => format!("{epochs} epoch{plural}, without validation"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let e = lock(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is in use by another nerveseg run"), "{e}");
        assert!(e.contains(&format!("(pid {})", std::process::id())), "{e}");
        drop(first);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn a_folder_with_a_run_is_described() {
        let dir = tempfile::tempdir().unwrap();
        check_unclaimed(dir.path()).unwrap();
        std::fs::write(dir.path().join(BEST), b"").unwrap();
        let e = check_unclaimed(dir.path()).unwrap_err().to_string();
        assert!(e.contains("holds another run (weights.h5)"), "{e}");
        let rows = [(0, Some(0.2)), (1, Some(0.5)), (2, Some(0.4))].map(|(epoch, v)| {
            super::super::EpochLog {
                epoch,
                val_dice_coef: v,
                val_loss: v.map(|v| -v),
                ..Default::default()
            }
        });
        super::super::write_history(&dir.path().join(HISTORY), &rows).unwrap();
        let e = check_unclaimed(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("(3 epochs, best val_dice_coef 0.5000 at epoch 2): pass --overwrite"),
            "{e}"
        );
    }
}
