//! Listing the weighted layers of a Keras weight file with the shapes it claims: Keras 2
//! layer groups (`layer_names`, `weight_names`) and Keras 3 `layers/<name>/vars/`. No
//! values are read here: `read.rs` reads them once `load.rs` has checked every shape.

use anyhow::{anyhow, bail, ensure, Context, Result};
use hdf5::types::{FixedAscii, FixedUnicode, VarLenAscii, VarLenUnicode};

use super::declared::KerasConfig;
use super::{FileLayer, Stored};
use crate::model::LayerKind;

/// Names in a list attribute (`layer_names`, `weight_names`): the tutorial's U-Net has 36
/// layers; a list far longer is not a Keras model of it.
const MAX_NAMES: usize = 4096;

/// Reads a string-list attribute (`layer_names`, `weight_names`).
fn read_str_list(loc: &hdf5::Location, name: &str) -> Result<Option<Vec<String>>> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    let n = attr.size();
    if n == 0 {
        return Ok(Some(Vec::new()));
    }
    ensure!(
        n <= MAX_NAMES,
        "attribute {name} lists {n} names, more than any Keras U-Net has"
    );
    if let Ok(v) = attr.read_raw::<VarLenUnicode>() {
        return Ok(Some(v.iter().map(|s| s.as_str().to_owned()).collect()));
    }
    if let Ok(v) = attr.read_raw::<VarLenAscii>() {
        return Ok(Some(v.iter().map(|s| s.as_str().to_owned()).collect()));
    }
    if let Ok(v) = attr.read_raw::<FixedAscii<256>>() {
        return Ok(Some(v.iter().map(|s| s.as_str().to_owned()).collect()));
    }
    if let Ok(v) = attr.read_raw::<FixedUnicode<256>>() {
        return Ok(Some(v.iter().map(|s| s.as_str().to_owned()).collect()));
    }
    let kind = attr
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map(|d| format!("{d}"));
    bail!(
        "attribute {name} is not a list of strings ({})",
        kind.unwrap_or_else(|e| e.to_string())
    )
}

/// Where a dataset is and the shape it claims; no values are read.
fn stored(ds: &hdf5::Dataset) -> Stored {
    Stored {
        dataset: ds.name(),
        shape: ds.shape(),
    }
}

/// Lists the weighted layers of a Keras 2 file, in the order `layer_names` gives.
pub(super) fn read_keras2(
    group: &hdf5::Group,
    config: Option<&KerasConfig>,
) -> Result<Vec<FileLayer>> {
    let names = read_str_list(group, "layer_names")?
        .ok_or_else(|| anyhow!("model_weights has no layer_names attribute"))?;
    let mut layers = Vec::new();
    for name in &names {
        let g = group
            .group(name)
            .with_context(|| format!("layer {name} is listed but has no group"))?;
        if let Some(l) = read_keras2_layer(&g, name, config)? {
            layers.push(l);
        }
    }
    Ok(layers)
}

/// Classifies a layer by its class in `model_config` when the file has one, else by
/// its weights and name: BatchNormalization has a gamma, Dense a 2-D kernel, and Keras
/// names Conv2DTranspose layers `conv2d_transpose*`.
fn kind_of(name: &str, vars: &[(String, Stored)], config: Option<&KerasConfig>) -> LayerKind {
    let class = config.and_then(|c| c.classes.get(name));
    if let Some(k) = class.and_then(|c| LayerKind::ALL.into_iter().find(|k| k.class() == c)) {
        return k;
    }
    let has = |v: &str| vars.iter().any(|(n, _)| n == v);
    let kernel_dims = vars
        .iter()
        .find(|(n, _)| n == "kernel")
        .map(|(_, s)| s.shape.len());
    if has("gamma") || has("moving_mean") {
        LayerKind::BatchNorm
    } else if kernel_dims == Some(2) {
        LayerKind::Dense
    } else if name.contains("transpose") {
        LayerKind::Transpose
    } else {
        LayerKind::Conv
    }
}

/// The Keras name of a weight from its HDF5 name: `conv2d_1/kernel:0` -> `kernel`.
fn weight_name(full: &str) -> String {
    let leaf = full.rsplit('/').next().unwrap_or(full);
    leaf.split(':').next().unwrap_or(leaf).to_owned()
}

/// Lists the weights of a Keras 2 layer group (`weight_names` names its datasets).
fn read_keras2_layer(
    group: &hdf5::Group,
    name: &str,
    config: Option<&KerasConfig>,
) -> Result<Option<FileLayer>> {
    let weight_names = read_str_list(group, "weight_names")?.unwrap_or_default();
    if weight_names.is_empty() {
        return Ok(None);
    }
    let mut vars = Vec::new();
    for w in &weight_names {
        let ds = group
            .dataset(w)
            .with_context(|| format!("layer {name}: weight {w} is listed but missing"))?;
        vars.push((weight_name(w), stored(&ds)));
    }
    let kind = kind_of(name, &vars, config);
    let want: &[&str] = match kind {
        LayerKind::BatchNorm => &["gamma", "beta", "moving_mean", "moving_variance"],
        _ => &["kernel", "bias"],
    };
    if let Some(w) = want.iter().find(|w| !vars.iter().any(|(n, _)| n == *w)) {
        bail!(
            "layer {name}: a {} needs a weight named {w}, found weights {weight_names:?}",
            kind.class()
        );
    }
    Ok(Some(FileLayer {
        name: name.to_owned(),
        kind,
        vars,
    }))
}

/// The number in a Keras layer name (`conv2d` -> 0, `conv2d_7` -> 7): Keras 3 files list
/// layer groups alphabetically, so creation order is recovered from it.
fn name_number(name: &str) -> u64 {
    name.rsplit_once('_')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// The kind of a Keras 3 layer group, from the name Keras 3 gives it (its class in
/// snake case, then `_N`): nerveseg's head is a `dense`.
fn keras3_kind(name: &str, n_vars: usize) -> LayerKind {
    if name.starts_with("batch_normalization") || n_vars == 4 {
        LayerKind::BatchNorm
    } else if name.starts_with("dense") || name == crate::model::HEAD {
        LayerKind::Dense
    } else if name.contains("transpose") {
        LayerKind::Transpose
    } else {
        LayerKind::Conv
    }
}

/// The Keras names of a Keras 3 layer's `vars/0`, `/1`, .. (Keras's order of weights).
fn keras3_vars(kind: LayerKind) -> &'static [&'static str] {
    match kind {
        LayerKind::BatchNorm => &["gamma", "beta", "moving_mean", "moving_variance"],
        _ => &["kernel", "bias"],
    }
}

/// Lists the weighted layers of a Keras 3 `.weights.h5` in creation order.
pub(super) fn read_keras3(file: &hdf5::File) -> Result<Vec<FileLayer>> {
    let layers = file.group("layers")?;
    let names = layers.member_names()?;
    ensure!(
        names.len() <= MAX_NAMES,
        "{} layer groups, more than any Keras U-Net has",
        names.len()
    );
    let mut out = Vec::new();
    for name in names {
        let g = layers.group(&name)?;
        let Ok(vars) = g.group("vars") else { continue };
        let n_vars = vars.member_names()?.len();
        if n_vars == 0 {
            continue;
        }
        let kind = keras3_kind(&name, n_vars);
        let want = keras3_vars(kind);
        ensure!(
            n_vars == want.len(),
            "layer {name}: expected {} variables ({}), found {n_vars}",
            want.len(),
            want.join(", ")
        );
        let mut v = Vec::new();
        for (i, w) in want.iter().enumerate() {
            let ds = vars
                .dataset(&i.to_string())
                .with_context(|| format!("layer {name}: {w}"))?;
            v.push(((*w).to_owned(), stored(&ds)));
        }
        out.push(FileLayer {
            name,
            kind,
            vars: v,
        });
    }
    // Keras 3 lists groups alphabetically: creation order comes back from the numbers,
    // within each kind (layers are matched by kind and order).
    out.sort_by_key(|l| (l.kind as u8, name_number(&l.name)));
    Ok(out)
}
