//! `synth`'s and `prepare`'s flags: the data stages.

use std::path::PathBuf;

use clap::Args;
use nerveseg::data::folder::FolderConfig;
use nerveseg::data::tiff::Compression;
use nerveseg::data::PrepareConfig;
use nerveseg::frame::FrameSize;
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
    /// Share of training frames that are label noise, as Kaggle's set has: a near repeat
    /// of the frame before whose mask disagrees (nerve removed, or a faint one added).
    /// They are listed in OUT/label_noise.csv; 0 for none.
    #[arg(long, value_name = "RATE", default_value_t = nerveseg::synth::noise::DEFAULT_RATE)]
    pub label_noise: f64,
}

/// `--compression`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TiffCompression {
    Lzw,
    None,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Folder in the Kaggle layout: train/SUBJECT_I.tif, train/SUBJECT_I_mask.tif, test/ID.tif.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "raw",
        conflicts_with = "images"
    )]
    pub raw: PathBuf,
    /// Your own frames instead of the Kaggle layout: a folder of PNG, JPEG, TIFF or BMP
    /// images of any one size (colour ones are made gray; see --size for mixed sizes).
    #[arg(long, value_name = "DIR", requires = "masks")]
    pub images: Option<PathBuf>,
    /// Their masks: x.png pairs with the mask x.png or x_mask.png (any of the formats).
    /// A pixel is nerve when it is >= 128, or == 1 in 0/1 masks; see --mask-class. May be
    /// the --images folder itself, holding x.png beside x_mask.png.
    #[arg(long, value_name = "DIR", requires = "images")]
    pub masks: Option<PathBuf>,
    /// Frames to predict later, written as imgs_test.npy with ids 1..N in name order.
    #[arg(long, value_name = "DIR", requires = "images")]
    pub test_images: Option<PathBuf>,
    /// In palette or label masks, the label of the nerve (usgra-seg: 1); other labels
    /// are background.
    #[arg(long, value_name = "K", requires = "images")]
    pub mask_class: Option<u8>,
    /// Resize every frame to rows x columns (bilinear images, nearest masks); needed
    /// when the frames differ in size.
    #[arg(long, value_name = "HxW", requires = "images")]
    pub size: Option<FrameSize>,
    /// A CSV of name,group rows (the name with or without its extension): the patient
    /// of each frame, for patient-wise splits. Without it, Kaggle-style names
    /// SUBJECT_I (e.g. 12_4) give their subject and other frames are each their own group.
    #[arg(long, value_name = "FILE.csv", requires = "images")]
    pub groups: Option<PathBuf>,
    /// Folder for imgs_train.npy, imgs_mask_train.npy, imgs_test.npy, imgs_id_test.npy.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Only the training part (imgs_train.npy, imgs_mask_train.npy).
    #[arg(long, conflicts_with_all = ["test_only", "images"])]
    pub train_only: bool,
    /// Only the test part (imgs_test.npy, imgs_id_test.npy).
    #[arg(long, conflicts_with = "images")]
    pub test_only: bool,
    #[command(flatten)]
    pub image_limit: super::shared::ImageLimitArgs,
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
            label_noise: self.label_noise,
            quiet,
        }
    }
}

/// Where `prepare` reads from.
pub enum PrepareFrom {
    Kaggle(PrepareConfig),
    Folders(FolderConfig),
}

impl PrepareArgs {
    pub fn into_config(self, quiet: bool) -> PrepareFrom {
        if let (Some(images), Some(masks)) = (self.images, self.masks) {
            return PrepareFrom::Folders(FolderConfig {
                images,
                masks,
                test_images: self.test_images,
                out: self.out,
                mask_class: self.mask_class,
                size: self.size,
                groups: self.groups,
                quiet,
            });
        }
        PrepareFrom::Kaggle(PrepareConfig {
            raw: self.raw,
            out: self.out,
            train: !self.test_only,
            test: !self.train_only,
            quiet,
        })
    }
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Prepared training frames: uint8 (N, H, W).
    #[arg(long, value_name = "FILE", default_value = "imgs_train.npy")]
    pub images: PathBuf,
    /// Prepared training masks, the frames' shape.
    #[arg(long, value_name = "FILE", default_value = "imgs_mask_train.npy")]
    pub masks: PathBuf,
    /// The group (subject) of each frame, one per line; pairs are looked for within a
    /// group (default: imgs_groups_train.txt beside --images; without it, all frames).
    #[arg(long, value_name = "FILE")]
    pub groups: Option<PathBuf>,
    /// Frames are near duplicates below this distance: 1 - the correlation of their
    /// 32 x 32 thumbnails.
    #[arg(long, value_name = "D", default_value_t = nerveseg::clean::DEFAULT_THRESHOLD)]
    pub threshold: f64,
    /// Score the pairs found against synth's record of its label noise
    /// (RAW/label_noise.csv): precision and recall.
    #[arg(long, value_name = "FILE")]
    pub noise: Option<PathBuf>,
    /// Write a copy of the training arrays (and names and groups) without both frames of
    /// every pair into --out.
    #[arg(long, requires = "out")]
    pub drop: bool,
    /// Folder for the cleaned copy (not the folder of --images).
    #[arg(long, value_name = "DIR", requires = "drop")]
    pub out: Option<PathBuf>,
}

impl CleanArgs {
    pub fn into_config(self, quiet: bool) -> nerveseg::clean::CleanConfig {
        nerveseg::clean::CleanConfig {
            images: self.images,
            masks: self.masks,
            groups: self.groups,
            threshold: self.threshold,
            noise: self.noise,
            drop_to: self.out,
            quiet,
        }
    }
}
