//! The per-epoch figures of a run: Keras's own averages, the line printed after each
//! epoch, and `history.csv` with Keras CSVLogger's columns (plus seconds), which
//! `--resume` reads back and refuses when it is missing or malformed.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Keras's figures for one epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpochLog {
    /// 0-based, as Keras's CSVLogger writes it.
    pub epoch: usize,
    pub loss: f64,
    pub dice_coef: f64,
    pub val_loss: Option<f64>,
    pub val_dice_coef: Option<f64>,
    /// The learning rate of the epoch, when a schedule (ReduceLROnPlateau) set it.
    pub lr: Option<f64>,
    pub seconds: f64,
}

/// Batch-size-weighted loss and plain-mean Dice over a pass, as Keras averages them.
#[derive(Default)]
pub(crate) struct Averages {
    loss_sum: f64,
    pub samples: usize,
    dice_sum: f64,
    batches: usize,
}

impl Averages {
    /// The averages of a pass from its batches' (loss, -dice_coef) and sizes (the two
    /// are one number unless the model has a presence head).
    pub fn of(losses: &[(f64, f64)], sizes: impl Iterator<Item = usize>) -> Averages {
        let mut avg = Averages::default();
        for (&(l, d), n) in losses.iter().zip(sizes) {
            avg.loss_sum += l * n as f64;
            avg.samples += n;
            avg.dice_sum += -d;
            avg.batches += 1;
        }
        avg
    }
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }
    pub fn dice(&self) -> f64 {
        self.dice_sum / self.batches.max(1) as f64
    }
}

/// The line printed after an epoch.
pub(crate) fn format_epoch(l: &EpochLog, epochs: usize, saved: bool) -> String {
    let mut s = format!(
        "epoch {}/{epochs}: loss {:.6} dice_coef {:.6}",
        l.epoch + 1,
        l.loss,
        l.dice_coef
    );
    if let (Some(vl), Some(vd)) = (l.val_loss, l.val_dice_coef) {
        s += &format!(" val_loss {vl:.6} val_dice_coef {vd:.6}");
    }
    s += &format!(" ({:.1} s)", l.seconds);
    if saved {
        s += " saved";
    }
    s
}

const HEADER: [&str; 6] = [
    "epoch",
    "dice_coef",
    "loss",
    "val_dice_coef",
    "val_loss",
    "seconds",
];

/// With a learning-rate schedule: Keras's `lr` among the sorted metrics.
const HEADER_LR: [&str; 7] = [
    "epoch",
    "dice_coef",
    "loss",
    "lr",
    "val_dice_coef",
    "val_loss",
    "seconds",
];

/// Keras CSVLogger's columns (epoch, then the metrics sorted by name), plus seconds;
/// rewritten whole, atomically and forced to disk each epoch, before `last.h5`.
pub(crate) fn write_history(path: &Path, rows: &[EpochLog]) -> Result<()> {
    let with_lr = rows.iter().any(|r| r.lr.is_some());
    crate::atomic::write_synced(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        if with_lr {
            w.write_record(HEADER_LR)?;
        } else {
            w.write_record(HEADER)?;
        }
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for r in rows {
            let mut rec = vec![
                r.epoch.to_string(),
                r.dice_coef.to_string(),
                r.loss.to_string(),
            ];
            if with_lr {
                rec.push(opt(r.lr));
            }
            rec.extend([
                opt(r.val_dice_coef),
                opt(r.val_loss),
                format!("{:.3}", r.seconds),
            ]);
            w.write_record(rec)?;
        }
        w.flush()?;
        Ok(())
    })?;
    Ok(())
}

/// Reads the first `epochs` rows of a history written by [`write_history`]. A missing
/// file, another header, a short history or a value that is not a number is an error:
/// a resumed run must not continue from a history it cannot trust.
pub(crate) fn read_history(path: &Path, epochs: usize) -> Result<Vec<EpochLog>> {
    let ctx = || format!("reading {}", path.display());
    let mut r = csv::Reader::from_path(path).with_context(ctx)?;
    let headers = r.headers().with_context(ctx)?.clone();
    let found: Vec<&str> = headers.iter().collect();
    let names: &[&str] = if found == HEADER {
        &HEADER
    } else if found == HEADER_LR {
        &HEADER_LR
    } else {
        bail!(
            "{}: not a nerveseg history (header {found:?}, expected {})",
            path.display(),
            HEADER.join(",")
        );
    };
    let col = |name: &str| names.iter().position(|n| *n == name);
    let mut out = Vec::new();
    for (i, rec) in r.records().take(epochs).enumerate() {
        let rec = rec.with_context(ctx)?;
        let line = i + 2;
        let num = |name: &str| -> Result<f64> {
            let s = col(name).and_then(|c| rec.get(c)).unwrap_or("");
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => bail!(
                    "{} line {line}: {name} is {s:?}, not a number",
                    path.display()
                ),
            }
        };
        let opt = |name: &str| -> Result<Option<f64>> {
            match col(name).and_then(|c| rec.get(c)) {
                Some("") | None => Ok(None),
                _ => num(name).map(Some),
            }
        };
        let epoch = num("epoch")?;
        if epoch != i as f64 {
            bail!(
                "{} line {line}: epoch {epoch}, expected {i}",
                path.display()
            );
        }
        out.push(EpochLog {
            epoch: i,
            dice_coef: num("dice_coef")?,
            loss: num("loss")?,
            val_dice_coef: opt("val_dice_coef")?,
            val_loss: opt("val_loss")?,
            lr: opt("lr")?,
            seconds: num("seconds")?,
        });
    }
    if out.len() < epochs {
        bail!(
            "{}: {} epochs recorded, but the checkpoint is at epoch {epochs}",
            path.display(),
            out.len()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_round_trip_and_bad_ones_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("history.csv");
        let rows: Vec<EpochLog> = (0..3)
            .map(|e| EpochLog {
                epoch: e,
                loss: -0.5 - e as f64,
                dice_coef: 0.5,
                val_loss: (e != 1).then_some(-0.25),
                val_dice_coef: (e != 1).then_some(0.25),
                lr: None,
                seconds: 1.5,
            })
            .collect();
        write_history(&p, &rows).unwrap();
        assert_eq!(read_history(&p, 3).unwrap(), rows);
        assert_eq!(read_history(&p, 2).unwrap(), rows[..2]);
        let e = read_history(&p, 4).unwrap_err().to_string();
        assert!(
            e.contains("3 epochs recorded, but the checkpoint is at epoch 4"),
            "{e}"
        );
        let text = std::fs::read_to_string(&p).unwrap().replace("-1.5", "oops");
        std::fs::write(&p, text).unwrap();
        let e = read_history(&p, 3).unwrap_err().to_string();
        assert!(e.contains("line 3: loss is \"oops\", not a number"), "{e}");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        assert!(read_history(&p, 1).is_err());
        std::fs::remove_file(&p).unwrap();
        let e = format!("{:#}", read_history(&p, 1).unwrap_err());
        assert!(e.contains("reading") && e.contains("history.csv"), "{e}");
    }

    #[test]
    fn a_scheduled_rate_is_keras_lr_column() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("history.csv");
        let rows: Vec<EpochLog> = (0..2)
            .map(|e| EpochLog {
                epoch: e,
                loss: -0.5,
                dice_coef: 0.5,
                val_loss: Some(-0.25),
                val_dice_coef: Some(0.25),
                lr: Some(1e-3 / (1 + e) as f64),
                seconds: 1.5,
            })
            .collect();
        write_history(&p, &rows).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with(
                "epoch,dice_coef,loss,lr,val_dice_coef,val_loss,seconds\n0,0.5,-0.5,0.001,"
            ),
            "{text}"
        );
        assert_eq!(read_history(&p, 2).unwrap(), rows);
    }
}
