//! `clean --drop --out DIR`: the training arrays without the dropped frames, with the
//! names and groups files kept aligned. Every output is written under a temporary name
//! and renamed into place only after all the rows were copied.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::CleanConfig;
use crate::atomic::parent_dir;
use crate::data::npy::{NpyReader, NpyWriter};
use crate::data::{IMGS_GROUPS_TRAIN, IMGS_MASK_TRAIN, IMGS_NAMES_TRAIN, IMGS_TRAIN};

/// Refuses to write the cleaned copy over the arrays it is made from.
pub(super) fn check_out(out: &Path, images: &Path) -> Result<()> {
    if crate::atomic::same_place(out, parent_dir(images)) {
        bail!(
            "--out {} holds the arrays being cleaned: choose another folder (the originals \
             are kept)",
            out.display()
        );
    }
    Ok(())
}

/// Copies every frame not in `drop` into `out`; returns how many were kept.
pub(super) fn without(
    cfg: &CleanConfig,
    groups: &[String],
    drop: &HashSet<usize>,
    out: &Path,
) -> Result<usize> {
    std::fs::create_dir_all(out).map_err(|e| anyhow!("creating {}: {e}", out.display()))?;
    let mut images = NpyReader::open(&cfg.images)?;
    let mut masks = NpyReader::open(&cfg.masks)?;
    let n = images.shape[0] as usize;
    let kept: Vec<usize> = (0..n).filter(|i| !drop.contains(i)).collect();
    let mut shape = images.shape.clone();
    shape[0] = kept.len() as u64;
    let mut img_out = NpyWriter::<u8>::create(&out.join(IMGS_TRAIN), &shape)?;
    let mut mask_out = NpyWriter::<u8>::create(&out.join(IMGS_MASK_TRAIN), &shape)?;
    let mut row = vec![0u8; images.row_len()];
    for i in 0..n {
        crate::interrupt::check()?;
        images.read_rows(&mut row)?;
        if !drop.contains(&i) {
            img_out.push_row(&row)?;
        }
        masks.read_rows(&mut row)?;
        if !drop.contains(&i) {
            mask_out.push_row(&row)?;
        }
    }
    let names_in = parent_dir(&cfg.images).join(IMGS_NAMES_TRAIN);
    let names: Option<Vec<String>> = std::fs::read_to_string(&names_in)
        .ok()
        .map(|t| t.lines().map(str::to_owned).collect())
        .filter(|v: &Vec<String>| v.len() == n);
    let lines =
        |all: &[String]| -> String { kept.iter().map(|&i| format!("{}\n", all[i])).collect() };
    let groups_text = lines(groups);
    let names_text = names.as_deref().map(lines);
    img_out.finish()?;
    mask_out.finish()?;
    let text = |name: &str, body: &str| -> Result<()> {
        crate::atomic::write_with(&out.join(name), |w| {
            w.write_all(body.as_bytes())?;
            Ok(())
        })?;
        Ok(())
    };
    if groups.iter().any(|g| !g.is_empty()) {
        text(IMGS_GROUPS_TRAIN, &groups_text)?;
    }
    if let Some(body) = names_text {
        text(IMGS_NAMES_TRAIN, &body)?;
    }
    Ok(kept.len())
}
