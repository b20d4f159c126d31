//! The `nerveseg` binary: parse the command line, run, print the error chain on failure.

mod cli;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};

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

fn main() {
    keep_freed_memory();
    // Exact float32 on NVIDIA GPUs by default, the parity mode: without this, cuDNN
    // convolutions on Ampere and newer use TF32 and predictions differ from Keras by
    // about 1e-4 (measured on an H200) instead of 2e-7. Set NVIDIA_TF32_OVERRIDE
    // yourself to choose otherwise. It must be set before CUDA starts.
    if std::env::var_os("NVIDIA_TF32_OVERRIDE").is_none() {
        std::env::set_var("NVIDIA_TF32_OVERRIDE", "0");
    }
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(err) = run(cli) {
        eprintln!("nerveseg: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Synth(args) => {
            let cfg = args.into_config(quiet);
            let r = nerveseg::synth::synth(&cfg)?;
            if !quiet {
                println!(
                    "wrote {} training pairs ({} with a nerve) and {} test images to {} in {:.1} s",
                    r.train_pairs,
                    r.train_with_nerve,
                    r.test_images,
                    cfg.out.display(),
                    r.seconds
                );
            }
        }
        Command::Prepare(args) => {
            let cfg = args.into_config(quiet);
            let r = nerveseg::data::prepare(&cfg)?;
            if !quiet {
                for p in &r.written {
                    println!("wrote {}", p.display());
                }
                println!(
                    "{} training and {} test images in {:.1} s",
                    r.train_images, r.test_images, r.seconds
                );
            }
        }
        Command::Train(args) => {
            let cfg = args.into_config(quiet);
            let r = nerveseg::train::train(&cfg)?;
            let best = cfg.out_dir.join(nerveseg::train::BEST);
            if r.interrupted {
                eprintln!(
                    "interrupted; the best checkpoint {} is intact. Run the same command with \
                     --resume to continue from epoch {}",
                    best.display(),
                    r.history.len() + 1
                );
                std::process::exit(130);
            }
            if !quiet {
                if let Some(e) = r.best_epoch {
                    let row = r.history.iter().find(|l| l.epoch == e);
                    match row.and_then(|l| l.val_dice_coef) {
                        Some(d) => println!(
                            "best epoch {} (val_dice_coef {d:.4}) saved to {}",
                            e + 1,
                            best.display()
                        ),
                        None => println!("last epoch {} saved to {}", e + 1, best.display()),
                    }
                }
            }
        }
        Command::Predict(args) => {
            let cfg = args.into_config(quiet);
            let n = nerveseg::predict::predict(&cfg)?;
            if !quiet {
                println!(
                    "predicted {n} images with {} -> {}",
                    cfg.weights.display(),
                    cfg.out.display()
                );
            }
        }
        Command::Submit(args) => {
            let cfg = args.into_config();
            let (rows, nonempty) = nerveseg::submission::submit(&cfg)?;
            if !quiet {
                println!(
                    "wrote {} ({rows} rows, {nonempty} with a mask)",
                    cfg.out.display()
                );
            }
        }
        Command::Evaluate(args) => {
            let json = args.json;
            let submission = args.submission.clone();
            let cfg = args.into_config(quiet);
            let (scores, dice_coef, sweep) = match submission {
                Some(csv) => (
                    nerveseg::evaluate::score_submission(&csv, &cfg.masks)?,
                    None,
                    Vec::new(),
                ),
                None => {
                    let e = nerveseg::evaluate::evaluate(&cfg)?;
                    (e.scores, Some(e.dice_coef), e.sweep)
                }
            };
            if json {
                println!(
                    "{}",
                    nerveseg::evaluate::to_json(&scores, dice_coef, &cfg.rule, &sweep)
                );
            } else {
                println!(
                    "{}",
                    nerveseg::evaluate::to_table(&scores, dice_coef, &cfg.rule, &sweep)
                );
            }
        }
        Command::Plot(args) => {
            nerveseg::pictures::plot_history(&args.history, &args.out)?;
            if !quiet {
                println!("wrote {}", args.out.display());
            }
        }
        Command::Demo(args) => {
            let cfg = nerveseg::demo::DemoConfig {
                out: args.out,
                device: args.device,
                subjects: args.subjects,
                epochs: args.epochs,
                quiet,
            };
            nerveseg::demo::demo(&cfg)?;
        }
        Command::Convert(args) => {
            let format = args.format();
            let report = nerveseg::keras::convert(&args.input, &args.output, format)?;
            if !quiet {
                println!(
                    "wrote {} ({format}, {} layers) from {}",
                    args.output.display(),
                    report.applied.len(),
                    args.input.display()
                );
            }
        }
        Command::Inspect(args) => {
            let file = nerveseg::keras::read(&args.file)?;
            println!("{}", nerveseg::keras::describe(&file));
        }
        Command::Info => println!("{}", nerveseg::info::Info::collect()),
        Command::Bench(args) => println!("{}", args.run()?),
    }
    Ok(())
}
