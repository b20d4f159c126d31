//! The `nerveseg` binary: parse the command line, install the interrupt handler, run,
//! print the command's report, or its error chain on one line (exit 1), or what an
//! interrupt kept (exit 130).

mod cli;

/// Keeps glibc's allocator from handing freed memory back to the system between
/// batches. libtorch frees and re-allocates the same large activation buffers every
/// step; by default glibc serves blocks over 128 KiB with fresh mmap calls and trims the
/// heap top, so each step pays page faults and zeroing again (15-25% of a CPU training
/// step here, for tch and PyTorch alike). Set at start-up so users need no MALLOC_*
/// environment variable; an explicit one still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    if std::env::var_os("MALLOC_MMAP_MAX_").is_some()
        || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some()
    {
        return;
    }
    // SAFETY: mallopt only sets allocator parameters; called before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// One line instead of a panic's message and backtrace (a panic is a bug: every error a
/// user can cause is reported as an error). It still says "panicked", so tests notice.
fn one_line_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let first = msg.lines().next().unwrap_or("");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("nerveseg: internal error (a bug, please report it): panicked{at}: {first}");
    }));
}

fn main() {
    keep_freed_memory();
    // Exact float32 on NVIDIA GPUs by default, the parity mode: without this, cuDNN
    // convolutions on Ampere and newer use TF32 and predictions differ from Keras by
    // about 1e-4 (measured on an H200) instead of 2e-7. Set NVIDIA_TF32_OVERRIDE
    // yourself to choose otherwise. It must be set before CUDA starts.
    if std::env::var_os("NVIDIA_TF32_OVERRIDE").is_none() {
        std::env::set_var("NVIDIA_TF32_OVERRIDE", "0");
    }
    let cli = cli::parse();
    if cli.flush_denormals() && !nerveseg::denormal::flush_to_zero() {
        eprintln!("nerveseg: --flush-denormals is for x86-64 CPUs; ignored here");
    }
    Said::install(cli.quiet || cli.stdout_is_data());
    one_line_panics();
    if let Err(e) = nerveseg::interrupt::install() {
        log::warn!("Ctrl-C will stop at once, without cleaning up: {e}");
    }
    let quiet = cli.quiet;
    match cli::run(cli) {
        Ok(out) => {
            if let Some(note) = out.note_text(quiet) {
                eprintln!("{note}");
            }
            if let Some(text) = out.text(quiet) {
                // A reader that went away (`nerveseg evaluate --json | head -c 10`) is
                // not an error of ours: say nothing and exit as the work succeeded.
                use std::io::Write;
                let mut stdout = std::io::stdout().lock();
                if let Err(e) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        eprintln!("nerveseg: error: writing the output: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
        Err(err) => {
            if let Some(i) = nerveseg::interrupt::find(&err) {
                eprintln!("nerveseg: {i}");
                std::process::exit(nerveseg::interrupt::EXIT_CODE);
            }
            eprintln!("nerveseg: error: {err:#}");
            std::process::exit(1);
        }
    }
}

/// The logger: env_logger (RUST_LOG, warnings by default) and, unless `--quiet`, the
/// library's [`nerveseg::progress::SAY`] lines as they are, on standard output.
struct Said {
    logger: env_logger::Logger,
    quiet: bool,
}

impl Said {
    fn install(quiet: bool) {
        let env = env_logger::Env::default().default_filter_or("warn");
        let logger = env_logger::Builder::from_env(env).build();
        let level = match quiet {
            true => logger.filter(),
            false => logger.filter().max(log::LevelFilter::Info),
        };
        if log::set_boxed_logger(Box::new(Said { logger, quiet })).is_ok() {
            log::set_max_level(level);
        }
    }

    fn said(&self, metadata: &log::Metadata) -> bool {
        !self.quiet && metadata.target() == nerveseg::progress::SAY
    }
}

impl log::Log for Said {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.said(metadata) || self.logger.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if self.said(record.metadata()) {
            println!("{}", record.args());
        } else {
            self.logger.log(record);
        }
    }

    fn flush(&self) {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        self.logger.flush();
    }
}
