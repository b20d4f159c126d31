//! One interrupt policy for every subcommand. The first SIGINT or SIGTERM asks the work
//! to stop at its next safe point (between batches, chunks or files): the command returns
//! an [`Interrupted`] error that says what was kept, its partial files are removed as the
//! writers drop, every earlier output stays as it was, and the process exits with 130.
//! A second signal exits at once, after removing the partial files (`atomic.rs`).
//!
//! The binary installs the handler once ([`install`]); the library only asks
//! [`check`] at its safe points.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

/// Signals received so far.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// The exit code of an interrupted run (128 + SIGINT, as shells report it).
pub const EXIT_CODE: i32 = 130;

/// The work stopped because the user asked it to; `kept` says what it left behind.
#[derive(Debug, Default)]
pub struct Interrupted {
    kept: Option<String>,
}

impl Interrupted {
    /// What the command kept, when it said.
    pub fn kept(&self) -> Option<&str> {
        self.kept.as_deref()
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")?;
        if let Some(k) = &self.kept {
            write!(f, "; {k}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Interrupted {}

/// Installs the SIGINT/SIGTERM handler. Call once, before the work starts.
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "\nnerveseg: stopping at the next safe point (press Ctrl-C again to stop at once)"
            );
        } else {
            crate::atomic::remove_all_partials();
            eprintln!("nerveseg: stopped at once; partial files removed");
            // SAFETY: _exit ends the process without running destructors or atexit
            // handlers, which other threads (libtorch, rayon) may still be using.
            unsafe { libc::_exit(EXIT_CODE) };
        }
    })?;
    Ok(())
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// A safe point: an [`Interrupted`] error once a stop was asked for.
pub fn check() -> Result<()> {
    if requested() {
        return Err(Interrupted::default().into());
    }
    Ok(())
}

/// The interrupt in `e`, if `e` is one (through any context added on the way up).
pub fn find(e: &anyhow::Error) -> Option<&Interrupted> {
    e.downcast_ref::<Interrupted>()
}

/// Says what was kept when `e` is an interrupt; `kept` gets what an inner command
/// already said. Any other error comes back as it was.
pub fn keep(e: anyhow::Error, kept: impl FnOnce(Option<&str>) -> String) -> anyhow::Error {
    match find(&e) {
        Some(i) => Interrupted {
            kept: Some(kept(i.kept())),
        }
        .into(),
        None => e,
    }
}

/// Adds what was kept to an interrupted result.
pub fn keeping<T>(r: Result<T>, kept: impl FnOnce(Option<&str>) -> String) -> Result<T> {
    r.map_err(|e| keep(e, kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn interrupts_are_found_through_context_and_say_what_was_kept() {
        let e = anyhow::Error::from(Interrupted::default()).context("reading x.npy");
        assert!(find(&e).is_some());
        let e = keep(e, |_| "nothing was written".to_owned());
        assert_eq!(e.to_string(), "interrupted; nothing was written");
        let e = keep(e, |inner| {
            format!("during prepare: {}", inner.unwrap_or(""))
        });
        assert_eq!(
            find(&e).unwrap().to_string(),
            "interrupted; during prepare: nothing was written"
        );
        let other = keep(anyhow::anyhow!("disk full"), |_| "x".to_owned());
        assert!(find(&other).is_none());
        assert_eq!(other.to_string(), "disk full");
        let r: Result<()> = Err(anyhow::anyhow!("bad")).context("y");
        assert_eq!(
            format!("{:#}", keeping(r, |_| "z".into()).unwrap_err()),
            "y: bad"
        );
    }
}
