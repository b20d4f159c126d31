//! `inspect`: a human-readable summary of a weight file: format, layers, shapes,
//! parameters, the network, metadata.

use std::fmt::Write;

use super::{shape_str, KerasFile};

/// The summary, one fact a line.
pub fn describe(file: &KerasFile) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "file: {}", file.path.display());
    let _ = writeln!(s, "format: {}", file.format);
    if let Some(v) = &file.keras_version {
        let _ = writeln!(s, "keras_version: {v}");
    }
    let _ = writeln!(
        s,
        "layers ({} with weights, in file order):",
        file.layers.len()
    );
    for l in &file.layers {
        let shapes: Vec<String> = l
            .vars
            .iter()
            .map(|(name, v)| format!("{name} {:<18}", shape_str(&v.shape)))
            .collect();
        let _ = writeln!(
            s,
            "  {:<22} {:<16} {}",
            l.name,
            l.kind.class(),
            shapes.join(" ").trim_end()
        );
    }
    let _ = writeln!(s, "parameters: {}", file.parameter_count());
    match file.base_width() {
        Ok(w) => {
            let _ = writeln!(s, "base width: {w}");
        }
        Err(e) => {
            let _ = writeln!(s, "base width: unknown ({e:#})");
        }
    }
    match file.network() {
        Ok(n) => {
            let _ = writeln!(s, "network: {n}");
        }
        Err(e) => {
            let _ = writeln!(s, "network: not one nerveseg builds ({e:#})");
        }
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "not stored".to_owned(), |x| format!("{x}"));
    let _ = writeln!(s, "mean: {}", opt(file.meta.stats.map(|s| s.mean)));
    let _ = writeln!(s, "std: {}", opt(file.meta.stats.map(|s| s.std)));
    if let Some(size) = file.meta.frame_size {
        let _ = writeln!(s, "trained on frames of: {size}");
    }
    let _ = write!(
        s,
        "epoch: {}",
        file.meta
            .epoch
            .map_or_else(|| "not stored".to_owned(), |e| e.to_string())
    );
    if let (Some(e), Some(l)) = (file.meta.best_epoch, file.meta.best_val_loss) {
        let _ = write!(s, "\nbest so far: epoch {e}, val_loss {l:.6}");
    }
    if let Some(run) = &file.meta.run {
        let _ = write!(s, "\n{}", describe_run(run));
    }
    s
}

/// The training run a checkpoint records, as lines of the summary.
fn describe_run(run: &super::RunRecord) -> String {
    let split = match run.folds {
        Some((k, i)) => format!("fold {} of {k} by group", i + 1),
        None => format!(
            "the last {}% of the samples",
            (run.validation_split * 1000.0).round() / 10.0
        ),
    };
    let options = match run.options.to_string() {
        o if o.is_empty() => "none (the tutorial's run)".to_owned(),
        o => o,
    };
    let lr = run
        .lr
        .map_or_else(|| "not recorded".to_owned(), |lr| format!("{lr:e}"));
    format!(
        "run: validation on {split}; seed {}; {}; batch size {}; learning rate {lr}\n\
         run options: {options}\n\
         training data: {} samples, fingerprint {}",
        run.seed,
        if run.shuffle {
            "shuffled"
        } else {
            "--no-shuffle"
        },
        run.batch_size,
        run.samples,
        run.fingerprint
    )
}
