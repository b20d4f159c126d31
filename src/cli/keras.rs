//! Flags of the Keras file tools, `convert` and `inspect`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nerveseg::keras::{ConvertReport, Format};

use super::parse_format;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The weight file to read (any supported layout).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// The file to write.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Layout to write: keras2 (tf-keras full-model file, what Keras's load_weights and
    /// load_model read), keras2-weights (save_weights layout) or keras3 (.weights.h5).
    /// Default: keras3 when OUT ends in .weights.h5, else keras2.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The weight file to describe.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl ConvertArgs {
    /// The layout to write: `--format`, else from the output name.
    pub fn format(&self) -> Format {
        self.format.unwrap_or_else(|| {
            if self.output.to_string_lossy().ends_with(".weights.h5") {
                Format::Keras3Weights
            } else {
                Format::Keras2Model
            }
        })
    }

    pub fn run(self) -> Result<ConvertReport> {
        nerveseg::keras::convert(&self.input, &self.output, self.format())
    }
}

impl InspectArgs {
    /// The file's summary, and the run's history when a history.csv lies beside it.
    pub fn run(self) -> Result<String> {
        let mut s = nerveseg::keras::describe(&nerveseg::keras::read(&self.file)?);
        let dir = nerveseg::atomic::parent_dir(&self.file);
        if let Some(h) = nerveseg::train::folder::history_summary(dir) {
            s.push_str(&format!("\nhistory.csv beside it: {h}"));
        }
        Ok(s)
    }
}
