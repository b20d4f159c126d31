//! Loading a Keras file into the U-Net: the width is inferred from the first Conv2D and
//! bounded, then EVERY layer's shapes are checked against the U-Net of that width
//! (`model/topology.rs`) before a VarStore is built or a value is read, so a hostile or
//! foreign file costs nothing but its error. Layers are matched by kind (Conv2D or
//! Conv2DTranspose) and order, never by name.

use anyhow::{anyhow, bail, Context, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::{kernel_to_tch, shape_str, FileLayer, KerasFile};
use crate::model::{self, Layer, UNet, UNetConfig, MAX_BASE_WIDTH};

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

/// A file whose shapes were all checked against the U-Net of its width: which of its
/// layers goes where.
#[derive(Debug)]
pub struct Checked<'a> {
    pub cfg: UNetConfig,
    pairs: Vec<(Layer, &'a FileLayer)>,
    /// The file's presence head (its one Dense layer), when it has one.
    head: Option<&'a FileLayer>,
    pub report: LoadReport,
}

/// A U-Net with a file's weights.
#[derive(Debug)]
pub struct Loaded {
    pub vs: VarStore,
    pub net: UNet,
    pub cfg: UNetConfig,
    pub report: LoadReport,
}

/// A layer's kernel shape in Keras layout: Conv2D (kh, kw, in, out), Conv2DTranspose
/// (kh, kw, out, in), both the libtorch shape permuted by (2, 3, 1, 0).
fn keras_kernel(l: &Layer) -> Vec<usize> {
    let s = l.weight_shape();
    [s[2], s[3], s[1], s[0]]
        .iter()
        .map(|&d| d as usize)
        .collect()
}

impl KerasFile {
    /// The base width, read off the first convolution's kernel (3, 3, 1, width) and
    /// bounded by [`MAX_BASE_WIDTH`].
    pub fn base_width(&self) -> Result<i64> {
        let path = self.path.display();
        let first = self
            .layers
            .iter()
            .find(|l| !l.transpose && !is_dense(l))
            .ok_or_else(|| anyhow!("{path}: no Conv2D layer found"))?;
        let w = match first.kernel.shape.as_slice() {
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
                shape_str(&first.kernel.shape)
            );
        }
        Ok(w as i64)
    }

    /// Weights the file claims to hold (from its shapes; saturating).
    pub fn parameter_count(&self) -> usize {
        let count = |s: &[usize]| s.iter().fold(1usize, |a, &d| a.saturating_mul(d));
        self.layers.iter().fold(0usize, |a, l| {
            a.saturating_add(count(&l.kernel.shape))
                .saturating_add(count(&l.bias.shape))
        })
    }

    /// Matches the file's layers to the U-Net of its width and checks every shape.
    /// Anything missing or left over is an error unless `allow_partial`.
    pub fn check(&self, allow_partial: bool) -> Result<Checked<'_>> {
        let path = self.path.display();
        let head = self.head()?;
        let cfg = UNetConfig {
            base_width: self.base_width()?,
            presence_head: head.is_some(),
        };
        if let Some(h) = head {
            let want = model::head_kernel(&cfg).map(|d| d as usize);
            if h.kernel.shape != want || h.bias.shape != [1] {
                bail!(
                    "{path}: the presence head {} has kernel {} and bias {}, expected {} and \
                     (1) for base width {}",
                    h.name,
                    shape_str(&h.kernel.shape),
                    shape_str(&h.bias.shape),
                    shape_str(&want),
                    cfg.base_width
                );
            }
        }
        let convs: Vec<&FileLayer> = self.layers.iter().filter(|l| !is_dense(l)).collect();
        let ours = model::layers(&cfg);
        let mut report = LoadReport::default();
        let mut pairs = Vec::new();
        let mut counts = Vec::new();
        for transpose in [false, true] {
            let ours: Vec<&Layer> = ours.iter().filter(|l| l.transpose == transpose).collect();
            let theirs: Vec<&FileLayer> = convs
                .iter()
                .filter(|l| l.transpose == transpose)
                .copied()
                .collect();
            for (i, l) in ours.iter().enumerate() {
                match theirs.get(i) {
                    Some(t) => pairs.push((**l, *t)),
                    None => report.missing.push(l.name.to_owned()),
                }
            }
            report
                .unused
                .extend(theirs.iter().skip(ours.len()).map(|l| l.name.clone()));
            counts.push((ours.len(), theirs.len()));
        }
        if !allow_partial && (!report.missing.is_empty() || !report.unused.is_empty()) {
            let list = |what: &str, v: &[String]| {
                if v.is_empty() {
                    String::new()
                } else {
                    format!("; {what}: {}", v.join(", "))
                }
            };
            bail!(
                "{path}: not the tutorial's U-Net: expected {} Conv2D and {} Conv2DTranspose \
                 layers, found {} and {}{}{} (--allow-partial loads what matches)",
                counts[0].0,
                counts[1].0,
                counts[0].1,
                counts[1].1,
                list("missing", &report.missing),
                list("extra", &report.unused),
            );
        }
        for (ours, theirs) in &pairs {
            let want = keras_kernel(ours);
            let want_bias = [ours.c_out as usize];
            if theirs.kernel.shape != want || theirs.bias.shape != want_bias {
                bail!(
                    "{path}: layer {} (ours {}): kernel {} and bias {}, expected {} and {} for \
                     base width {}: a different architecture or width",
                    theirs.name,
                    ours.name,
                    shape_str(&theirs.kernel.shape),
                    shape_str(&theirs.bias.shape),
                    shape_str(&want),
                    shape_str(&want_bias),
                    cfg.base_width
                );
            }
            report
                .applied
                .push((ours.name.to_owned(), theirs.name.clone()));
        }
        if let Some(h) = head {
            report
                .applied
                .push((model::HEAD.to_owned(), h.name.clone()));
        }
        Ok(Checked {
            cfg,
            pairs,
            head,
            report,
        })
    }

    /// The presence head: the file's one Dense layer (a 2-D kernel), if any; more than
    /// one is not a file nerveseg or its fixtures write.
    fn head(&self) -> Result<Option<&FileLayer>> {
        let dense: Vec<&FileLayer> = self.layers.iter().filter(|l| is_dense(l)).collect();
        match dense.as_slice() {
            [] => Ok(None),
            [h] => Ok(Some(h)),
            many => bail!(
                "{}: {} Dense layers ({}); the U-Net with a presence head has one",
                self.path.display(),
                many.len(),
                many.iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A Dense layer: its kernel is 2-D (convolutions have 4-D kernels).
fn is_dense(l: &FileLayer) -> bool {
    l.kernel.shape.len() == 2
}

impl Checked<'_> {
    /// Reads the checked layers' values and copies them into `vs`, a U-Net of
    /// `self.cfg` (from `model::unet`).
    pub fn copy_into(&self, file: &KerasFile, vs: &VarStore) -> Result<()> {
        let mut layers: Vec<&FileLayer> = self.pairs.iter().map(|p| p.1).collect();
        layers.extend(self.head);
        let mut values = file.read_values(&layers)?;
        let head_values = self.head.and_then(|_| values.pop());
        let vars = vs.variables();
        let var = |name: String| {
            vars.get(&name)
                .map(Tensor::shallow_clone)
                .ok_or_else(|| anyhow!("the model has no variable {name}"))
        };
        tch::no_grad(|| -> Result<()> {
            for ((ours, _), (kernel, bias)) in self.pairs.iter().zip(values) {
                let mut w = var(format!("{}.weight", ours.name))?;
                let mut b = var(format!("{}.bias", ours.name))?;
                let ctx = || format!("loading {} into {}", file.path.display(), ours.name);
                w.f_copy_(&kernel_to_tch(&kernel)?).with_context(ctx)?;
                b.f_copy_(&Tensor::f_from_slice(&bias.data)?)
                    .with_context(ctx)?;
            }
            if let Some((kernel, bias)) = &head_values {
                let mut w = var(format!("{}.weight", model::HEAD))?;
                let mut b = var(format!("{}.bias", model::HEAD))?;
                let ctx = || format!("loading {} into {}", file.path.display(), model::HEAD);
                let k =
                    Tensor::f_from_slice(&kernel.data)?.f_view([kernel.data.len() as i64, 1])?;
                w.f_copy_(&k).with_context(ctx)?;
                b.f_copy_(&Tensor::f_from_slice(&bias.data)?)
                    .with_context(ctx)?;
            }
            Ok(())
        })
    }
}

/// Checks `file`, then builds the U-Net of its width on `device` and loads the weights.
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

/// Loads `file` into `vs`, an existing U-Net, which must have the file's width.
pub fn apply(file: &KerasFile, vs: &mut VarStore, allow_partial: bool) -> Result<LoadReport> {
    let checked = file.check(allow_partial)?;
    let first = vs
        .variables()
        .get("conv2d_1.weight")
        .map(|t| t.size()[0])
        .ok_or_else(|| anyhow!("the model has no variable conv2d_1.weight"))?;
    let has_head = vs
        .variables()
        .contains_key(&format!("{}.weight", model::HEAD));
    if has_head != checked.cfg.presence_head {
        bail!(
            "{}: {} a presence head, but the model {}",
            file.path.display(),
            if checked.cfg.presence_head {
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
    if first != checked.cfg.base_width {
        bail!(
            "{}: base width {}, but the model has width {first}",
            file.path.display(),
            checked.cfg.base_width
        );
    }
    checked.copy_into(file, vs)?;
    Ok(checked.report)
}
