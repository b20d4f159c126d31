//! Loading a Keras file into a network of the family: the network comes from the file
//! (`declared.rs`; its width bounded), then EVERY weight's shape is checked against the
//! network's graph (`model/topology.rs`) before a VarStore is built or a value is read,
//! so a hostile or foreign file costs nothing but its error. Layers are matched by kind
//! (Conv2D, Conv2DTranspose, BatchNormalization, Dense) and order, never by name.

use anyhow::{anyhow, bail, Context, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::{shape_str, to_tch, FileLayer, KerasFile};
use crate::model::{self, Layer, LayerKind, UNet, UNetConfig, MAX_BASE_WIDTH};

/// What loading did.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// (our layer, the file's layer) pairs that were loaded.
    pub applied: Vec<(String, String)>,
    /// Our layers the file had nothing for.
    pub missing: Vec<String>,
    /// The file's layers nothing of ours took.
    pub unused: Vec<String>,
}

/// A file whose shapes were all checked against the network it holds: which of its
/// layers goes where.
#[derive(Debug)]
pub struct Checked<'a> {
    pub cfg: UNetConfig,
    pairs: Vec<(Layer, &'a FileLayer)>,
    pub report: LoadReport,
}

/// A network with a file's weights.
#[derive(Debug)]
pub struct Loaded {
    pub vs: VarStore,
    pub net: UNet,
    pub cfg: UNetConfig,
    pub report: LoadReport,
}

impl KerasFile {
    /// The base width, read off the first convolution's kernel (3, 3, 1, width) and
    /// bounded by [`MAX_BASE_WIDTH`].
    pub fn base_width(&self) -> Result<i64> {
        let path = self.path.display();
        let first = self
            .layers
            .iter()
            .find(|l| l.kind == LayerKind::Conv)
            .ok_or_else(|| anyhow!("{path}: no Conv2D layer found"))?;
        let w = match first.kernel_shape() {
            [3, 3, 1, w] => *w,
            s => bail!(
                "{path}: the first Conv2D ({}) has kernel {}, expected (3, 3, 1, width): not the \
                 tutorial's U-Net",
                first.name,
                shape_str(s)
            ),
        };
        if !(1..=MAX_BASE_WIDTH as usize).contains(&w) {
            bail!(
                "{path}: the first Conv2D ({}) has kernel {}: a base width of {w}, outside \
                 1..={MAX_BASE_WIDTH}",
                first.name,
                shape_str(first.kernel_shape())
            );
        }
        Ok(w as i64)
    }

    /// Weights the file claims to hold (from its shapes; saturating).
    pub fn parameter_count(&self) -> usize {
        let count = |s: &[usize]| s.iter().fold(1usize, |a, &d| a.saturating_mul(d));
        self.layers
            .iter()
            .flat_map(|l| &l.vars)
            .fold(0usize, |a, (_, v)| a.saturating_add(count(&v.shape)))
    }

    /// Matches the file's layers to the network it holds and checks every shape.
    /// Anything missing or left over is an error unless `allow_partial`.
    pub fn check(&self, allow_partial: bool) -> Result<Checked<'_>> {
        let path = self.path.display();
        let dense = self.layers.iter().filter(|l| l.kind == LayerKind::Dense);
        if dense.clone().count() > 1 {
            let names: Vec<&str> = dense.map(|l| l.name.as_str()).collect();
            bail!(
                "{path}: {} Dense layers ({}); the U-Net with a presence head has one",
                names.len(),
                names.join(", ")
            );
        }
        let cfg = self.network()?;
        let ours = model::graph(&cfg).layers();
        let mut report = LoadReport::default();
        let mut pairs = Vec::new();
        let mut counts = Vec::new();
        for kind in LayerKind::ALL {
            let ours: Vec<&Layer> = ours.iter().filter(|l| l.kind == kind).collect();
            let theirs: Vec<&FileLayer> = self.layers.iter().filter(|l| l.kind == kind).collect();
            for (i, l) in ours.iter().enumerate() {
                match theirs.get(i) {
                    Some(t) => pairs.push(((*l).clone(), *t)),
                    None => report.missing.push(l.name.clone()),
                }
            }
            report
                .unused
                .extend(theirs.iter().skip(ours.len()).map(|l| l.name.clone()));
            if !ours.is_empty() || !theirs.is_empty() {
                counts.push((kind, ours.len(), theirs.len()));
            }
        }
        if !allow_partial && (!report.missing.is_empty() || !report.unused.is_empty()) {
            bail!(
                "{path}: not the {}: {} (--allow-partial loads what matches)",
                if cfg.is_tutorial() {
                    "tutorial's U-Net".to_owned()
                } else {
                    format!("network it declares ({cfg})")
                },
                count_mismatch(&counts, &report)
            );
        }
        for (ours, theirs) in &pairs {
            check_shapes(ours, theirs, &cfg).with_context(|| path.to_string())?;
            report
                .applied
                .push((ours.name.clone(), theirs.name.clone()));
        }
        Ok(Checked { cfg, pairs, report })
    }
}

/// "expected 19 Conv2D and 4 Conv2DTranspose layers, found 18 and 4; missing: .."
fn count_mismatch(counts: &[(LayerKind, usize, usize)], report: &LoadReport) -> String {
    let join = |v: Vec<String>| match v.as_slice() {
        [rest @ .., last] if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => v.join(""),
    };
    let ours = join(
        counts
            .iter()
            .map(|(k, n, _)| format!("{n} {}", k.class()))
            .collect(),
    );
    let theirs = join(counts.iter().map(|(_, _, n)| n.to_string()).collect());
    let list = |what: &str, v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!("; {what}: {}", v.join(", "))
        }
    };
    format!(
        "expected {ours} layers, found {theirs}{}{}",
        list("missing", &report.missing),
        list("extra", &report.unused)
    )
}

/// Every weight of our layer `ours` in the file's layer `theirs`, with its shape.
fn check_shapes(ours: &Layer, theirs: &FileLayer, cfg: &UNetConfig) -> Result<()> {
    let mut found = Vec::new();
    let mut want = Vec::new();
    let mut differ = false;
    for v in &ours.vars {
        let Some(f) = theirs.var(v.keras) else {
            bail!(
                "layer {} (ours {}) has no {}",
                theirs.name,
                ours.name,
                v.keras
            );
        };
        differ |= f.shape != v.keras_shape();
        found.push(format!("{} {}", v.keras, shape_str(&f.shape)));
        want.push(shape_str(&v.keras_shape()));
    }
    if differ {
        let w = cfg.base_width;
        let (found, want) = (found.join(" and "), want.join(" and "));
        match ours.kind {
            LayerKind::Dense => bail!(
                "the presence head {} has {found}, expected {want} for base width {w}",
                theirs.name
            ),
            _ => bail!(
                "layer {} (ours {}): {found}, expected {want} for base width {w}: a different \
                 architecture or width",
                theirs.name,
                ours.name
            ),
        }
    }
    Ok(())
}

impl Checked<'_> {
    /// Reads the checked layers' values and copies them into `vs`, a network of
    /// `self.cfg` (from `model::unet`).
    pub(crate) fn copy_into(&self, file: &KerasFile, vs: &VarStore) -> Result<()> {
        let wanted: Vec<(&FileLayer, Vec<&str>)> = self
            .pairs
            .iter()
            .map(|(ours, theirs)| (*theirs, ours.vars.iter().map(|v| v.keras).collect()))
            .collect();
        let values = file.read_values(&wanted)?;
        let vars = vs.variables();
        tch::no_grad(|| -> Result<()> {
            for ((ours, _), arrays) in self.pairs.iter().zip(values) {
                let ctx = || format!("loading {} into {}", file.path.display(), ours.name);
                for (v, a) in ours.vars.iter().zip(arrays) {
                    let name = format!("{}.{}", ours.name, v.tch);
                    let mut t = vars
                        .get(&name)
                        .map(Tensor::shallow_clone)
                        .ok_or_else(|| anyhow!("the model has no variable {name}"))?;
                    t.f_copy_(&to_tch(&a)?).with_context(ctx)?;
                }
            }
            Ok(())
        })
    }
}

/// Checks `file`, then builds its network on `device` and loads the weights.
pub fn load(file: &KerasFile, device: Device, allow_partial: bool) -> Result<Loaded> {
    let checked = file.check(allow_partial)?;
    let vs = VarStore::new(device);
    let net = model::unet(&vs.root(), &checked.cfg).map_err(|e| {
        crate::libtorch::explain(
            e,
            "building the model",
            device,
            crate::libtorch::Advice::BaseWidth(checked.cfg.base_width),
        )
    })?;
    checked.copy_into(file, &vs)?;
    Ok(Loaded {
        vs,
        net,
        cfg: checked.cfg,
        report: checked.report,
    })
}

/// Loads `file` into `vs`, an existing network, which must have the file's width, head
/// and normalisation (what its variables show). Only tests build a network first; a
/// program loads with [`load`], where the file decides the network.
#[cfg(test)]
pub(crate) fn apply(
    file: &KerasFile,
    vs: &mut VarStore,
    allow_partial: bool,
) -> Result<LoadReport> {
    let checked = file.check(allow_partial)?;
    let path = file.path.display();
    let theirs = checked.cfg;
    let vars = vs.variables();
    let first = vars
        .get("conv2d_1.weight")
        .map(|t| t.size()[0])
        .ok_or_else(|| anyhow!("the model has no variable conv2d_1.weight"))?;
    let has_head = vars.contains_key(&format!("{}.weight", model::HEAD));
    if has_head != theirs.presence_head {
        bail!(
            "{path}: {} a presence head, but the model {}",
            if theirs.presence_head {
                "has"
            } else {
                "has no"
            },
            if has_head {
                "has one (--presence-head)"
            } else {
                "has none"
            }
        );
    }
    if first != theirs.base_width {
        bail!(
            "{path}: base width {}, but the model has width {first}",
            theirs.base_width
        );
    }
    let normalised = vars.contains_key("batch_normalization_1.weight");
    if normalised != (theirs.norm == model::Norm::Batch) {
        bail!("{path} holds {theirs}, but the model's normalisation differs");
    }
    checked.copy_into(file, vs)?;
    Ok(checked.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head-less file refuses a model with a head, naming both.
    #[test]
    fn a_file_without_a_head_refuses_a_model_with_one() {
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras");
        let plain = super::super::read(&fixtures.join("train_init_w4.h5")).unwrap();
        let mut vs = VarStore::new(Device::Cpu);
        let with_head = UNetConfig {
            presence_head: true,
            ..UNetConfig::width(4)
        };
        let _net = model::unet(&vs.root(), &with_head).unwrap();
        let err = apply(&plain, &mut vs, false).unwrap_err().to_string();
        assert!(
            err.contains("has no a presence head") || err.contains("presence head"),
            "{err}"
        );
    }
}
