//! `synth`'s and `prepare`'s flags: the data stages.

use std::path::PathBuf;

use clap::Args;
use nerveseg::data::tiff::Compression;
use nerveseg::data::PrepareConfig;
use nerveseg::synth::SynthConfig;

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Folder to write train/, test/ (and test_masks/) into.
    #[arg(long, value_name = "DIR", default_value = "raw")]
    pub out: PathBuf,
    /// Number of training subjects (patients), as in the Kaggle set.
    #[arg(long, value_name = "N", default_value_t = 47, value_parser = clap::value_parser!(u32).range(1..))]
    pub subjects: u32,
    /// Training images per subject (47 x 120 = 5,640 pairs, Kaggle has 5,635).
    #[arg(long, value_name = "N", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub per_subject: u32,
    /// Number of test images (ids 1..N), as in the Kaggle set.
    #[arg(long, value_name = "N", default_value_t = 5508)]
    pub test: u32,
    /// Random seed; the same seed gives the same files.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub seed: u64,
    /// Also write the test ground truth to test_masks/{id}_mask.tif, so a submission can be scored.
    #[arg(long)]
    pub test_masks: bool,
    /// Replace Kaggle-named files already in the output folders.
    #[arg(long)]
    pub overwrite: bool,
    /// How the TIFFs are stored: lzw (compression 5, one strip, as the Kaggle TIFFs) or
    /// none (uncompressed).
    #[arg(long, value_name = "KIND", value_enum, default_value_t = TiffCompression::Lzw)]
    pub compression: TiffCompression,
}

/// `--compression`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TiffCompression {
    Lzw,
    None,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Folder in the Kaggle layout: train/{subject}_{n}.tif, train/{subject}_{n}_mask.tif, test/{id}.tif.
    #[arg(long, value_name = "DIR", default_value = "raw")]
    pub raw: PathBuf,
    /// Folder for imgs_train.npy, imgs_mask_train.npy, imgs_test.npy, imgs_id_test.npy.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Only the training part (imgs_train.npy, imgs_mask_train.npy).
    #[arg(long, conflicts_with = "test_only")]
    pub train_only: bool,
    /// Only the test part (imgs_test.npy, imgs_id_test.npy).
    #[arg(long)]
    pub test_only: bool,
}

impl SynthArgs {
    pub fn into_config(self, quiet: bool) -> SynthConfig {
        SynthConfig {
            out: self.out,
            subjects: self.subjects,
            per_subject: self.per_subject,
            test: self.test,
            seed: self.seed,
            test_masks: self.test_masks,
            overwrite: self.overwrite,
            compression: match self.compression {
                TiffCompression::Lzw => Compression::Lzw,
                TiffCompression::None => Compression::None,
            },
            quiet,
        }
    }
}

impl PrepareArgs {
    pub fn into_config(self, quiet: bool) -> PrepareConfig {
        PrepareConfig {
            raw: self.raw,
            out: self.out,
            train: !self.test_only,
            test: !self.train_only,
            quiet,
        }
    }
}
