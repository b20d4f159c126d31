//! Progress bars for long work, drawn on stderr only when it is a terminal and the user
//! did not ask for quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps with a label, counts, rate and time left.
pub fn bar(len: u64, label: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if quiet {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>9} [{bar:32}] {pos}/{len} {per_sec:.dim} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(label.to_owned());
    pb
}

/// The log target of the lines a command prints as it works (an epoch's figures, a
/// fold starting, the split made): the binary prints them on standard output unless
/// `--quiet`; a program using the library sees them in its own logger, or not at all.
pub const SAY: &str = "nerveseg::say";

/// A line of what a command is doing, for [`SAY`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { log::info!(target: $crate::progress::SAY, $($arg)*) };
}
