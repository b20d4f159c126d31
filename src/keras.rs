//! Keras HDF5 weight files in and out: the only module that knows Keras.
//!
//! Reads, detecting the layout itself:
//! - tf-keras / Keras 2 full-model files (`model.save`, ModelCheckpoint): `model_weights/`
//!   with `layer_names`, one group per layer with `weight_names`;
//! - weights-only files (`save_weights`): the same groups at the root;
//! - Keras 3 `.weights.h5`: `layers/<name>/vars/0` (kernel) and `/1` (bias).
//!
//! Layer names differ by version (Keras 2.0: `conv2d_1` ..; tf-keras: `conv2d`,
//! `conv2d_1` ..) and by how many models a session built, so layers are matched by kind
//! (Conv2D or Conv2DTranspose) and order, never by name, and every shape is checked.
//! Kernels change layout on the way: Keras Conv2D (kh, kw, in, out) <-> libtorch
//! (out, in, kh, kw); Keras Conv2DTranspose (kh, kw, out, in) <-> libtorch
//! (in, out, kh, kw): the same permutation for both. No spatial flip is needed.
//!
//! Writes the tf-keras full-model layout, with nerveseg's metadata (normalisation
//! mean/std, epoch, base width) as extra root attributes that Keras ignores, or the
//! Keras 3 layout. Writes go to a temporary file that is renamed into place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use hdf5::types::{FixedAscii, FixedUnicode, VarLenAscii, VarLenUnicode};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::model::{UNetConfig, CONVS, TRANSPOSES};

/// The layouts nerveseg reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// tf-keras / Keras 2 `model.save` or ModelCheckpoint: `model_weights/`.
    Keras2Model,
    /// tf-keras / Keras 2 `save_weights`: layer groups at the root.
    Keras2Weights,
    /// Keras 3 `.weights.h5`: `layers/<name>/vars/<i>`.
    Keras3Weights,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Keras2Model => "Keras 2 / tf-keras full model (model_weights)",
            Format::Keras2Weights => "Keras 2 / tf-keras weights only (save_weights)",
            Format::Keras3Weights => "Keras 3 .weights.h5",
        })
    }
}

/// What nerveseg stores beside the weights (attributes Keras ignores).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// Mean and standard deviation of the training pixels, for standardising inputs.
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// The epoch (1-based) after which the weights were saved.
    pub epoch: Option<i64>,
}

const ATTR_MEAN: &str = "nerveseg_mean";
const ATTR_STD: &str = "nerveseg_std";
const ATTR_EPOCH: &str = "nerveseg_epoch";
const ATTR_WIDTH: &str = "nerveseg_base_width";
const ATTR_VERSION: &str = "nerveseg_version";

/// The tf-keras version whose layout we write (checked against it by the fixture script).
pub const WRITTEN_KERAS_VERSION: &str = "2.19.0";

/// One array in Keras layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// One weighted layer as the file has it.
#[derive(Clone, Debug)]
pub struct FileLayer {
    /// The layer's name in the file.
    pub name: String,
    pub transpose: bool,
    pub kernel: Array,
    pub bias: Array,
}

/// A Keras weight file, read.
#[derive(Clone, Debug)]
pub struct KerasFile {
    pub path: PathBuf,
    pub format: Format,
    pub keras_version: Option<String>,
    /// Weighted layers in the file's order.
    pub layers: Vec<FileLayer>,
    pub meta: Meta,
}

fn shape_str(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(usize::to_string).collect();
    format!("({})", dims.join(", "))
}

/// Reads a string attribute whatever way it was stored (fixed-length bytes as h5py
/// writes `np.bytes_`, or variable-length as h5py writes `str`).
fn read_str_attr(loc: &hdf5::Location, name: &str) -> Result<Option<String>> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    if let Ok(s) = attr.read_scalar::<VarLenUnicode>() {
        return Ok(Some(s.as_str().to_owned()));
    }
    if let Ok(s) = attr.read_scalar::<VarLenAscii>() {
        return Ok(Some(s.as_str().to_owned()));
    }
    if let Ok(s) = attr.read_scalar::<FixedAscii<1024>>() {
        return Ok(Some(s.as_str().to_owned()));
    }
    Ok(None)
}

/// Reads a string-list attribute (`layer_names`, `weight_names`).
fn read_str_list(loc: &hdf5::Location, name: &str) -> Result<Option<Vec<String>>> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    if attr.size() == 0 {
        return Ok(Some(Vec::new()));
    }
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

fn read_array(ds: &hdf5::Dataset) -> Result<Array> {
    let shape = ds.shape();
    let data = ds.read_raw::<f32>()?;
    Ok(Array { shape, data })
}

fn read_f64_attr(loc: &hdf5::Location, name: &str) -> Option<f64> {
    loc.attr(name).ok()?.read_scalar::<f64>().ok()
}

fn read_i64_attr(loc: &hdf5::Location, name: &str) -> Option<i64> {
    loc.attr(name).ok()?.read_scalar::<i64>().ok()
}

/// Classifies a layer by the class in `model_config` when the file has one, else by its
/// name: Keras names Conv2DTranspose layers `conv2d_transpose*`.
fn is_transpose(name: &str, classes: &HashMap<String, String>) -> bool {
    match classes.get(name) {
        Some(class) => class == "Conv2DTranspose",
        None => name.contains("transpose"),
    }
}

/// The layer classes named in a `model_config` JSON attribute.
fn layer_classes(root: &hdf5::Group) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Ok(Some(json)) = read_str_attr(root, "model_config") else {
        return out;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) else {
        return out;
    };
    if let Some(layers) = v.pointer("/config/layers").and_then(|l| l.as_array()) {
        for l in layers {
            let name = l
                .pointer("/config/name")
                .or_else(|| l.get("name"))
                .and_then(|n| n.as_str());
            let class = l.get("class_name").and_then(|c| c.as_str());
            if let (Some(n), Some(c)) = (name, class) {
                out.insert(n.to_owned(), c.to_owned());
            }
        }
    }
    out
}

/// Reads the weights of a Keras 2 layer group (`weight_names` lists its datasets).
fn read_keras2_layer(
    group: &hdf5::Group,
    name: &str,
    transpose: bool,
) -> Result<Option<FileLayer>> {
    let weight_names = read_str_list(group, "weight_names")?.unwrap_or_default();
    if weight_names.is_empty() {
        return Ok(None);
    }
    let mut arrays = Vec::new();
    for w in &weight_names {
        let ds = group
            .dataset(w)
            .with_context(|| format!("layer {name}: weight {w} is listed but missing"))?;
        arrays.push((
            w.clone(),
            read_array(&ds).with_context(|| format!("layer {name}: reading {w}"))?,
        ));
    }
    let pick = |suffix: &str| {
        arrays
            .iter()
            .find(|(w, _)| w.contains(suffix))
            .map(|(_, a)| a.clone())
    };
    let (Some(kernel), Some(bias)) = (pick("kernel"), pick("bias")) else {
        bail!("layer {name}: expected a kernel and a bias, found weights {weight_names:?}");
    };
    Ok(Some(FileLayer {
        name: name.to_owned(),
        transpose,
        kernel,
        bias,
    }))
}

/// The number in a Keras layer name (`conv2d` -> 0, `conv2d_7` -> 7): Keras 3 files list
/// layer groups alphabetically, so creation order is recovered from it.
fn name_number(name: &str) -> u64 {
    name.rsplit_once('_')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

fn read_keras3(file: &hdf5::File) -> Result<Vec<FileLayer>> {
    let layers = file.group("layers")?;
    let mut names = layers.member_names()?;
    names.sort_by_key(|n| (n.contains("transpose"), name_number(n)));
    let mut out = Vec::new();
    for name in names {
        let g = layers.group(&name)?;
        let Ok(vars) = g.group("vars") else { continue };
        let n_vars = vars.member_names()?.len();
        if n_vars == 0 {
            continue;
        }
        ensure!(
            n_vars == 2,
            "layer {name}: expected 2 variables (kernel, bias), found {n_vars}"
        );
        let kernel =
            read_array(&vars.dataset("0")?).with_context(|| format!("layer {name}: kernel"))?;
        let bias =
            read_array(&vars.dataset("1")?).with_context(|| format!("layer {name}: bias"))?;
        out.push(FileLayer {
            transpose: name.contains("transpose"),
            name,
            kernel,
            bias,
        });
    }
    Ok(out)
}

/// Reads a Keras weight file of any supported layout.
pub fn read(path: &Path) -> Result<KerasFile> {
    read_inner(path).with_context(|| format!("reading Keras weights {}", path.display()))
}

fn read_inner(path: &Path) -> Result<KerasFile> {
    if !path.is_file() {
        bail!("file not found");
    }
    let mut magic = [0u8; 8];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let n = f.read(&mut magic)?;
        ensure!(n == 8 && &magic == b"\x89HDF\r\n\x1a\n", "not an HDF5 file");
    }
    let file = hdf5::File::open(path)
        .map_err(|e| anyhow!("not a readable HDF5 file (truncated?): {e}"))?;
    let root: &hdf5::Group = &file;
    let keras_version = read_str_attr(root, "keras_version")?;
    let meta = Meta {
        mean: read_f64_attr(root, ATTR_MEAN),
        std: read_f64_attr(root, ATTR_STD),
        epoch: read_i64_attr(root, ATTR_EPOCH),
    };
    let (format, group) = if root.link_exists("model_weights") {
        (Format::Keras2Model, file.group("model_weights")?)
    } else if root.attr("layer_names").is_ok() {
        (Format::Keras2Weights, file.group("/")?)
    } else if root.link_exists("layers") {
        let layers = read_keras3(&file)?;
        return Ok(KerasFile {
            path: path.to_owned(),
            format: Format::Keras3Weights,
            keras_version,
            layers,
            meta,
        });
    } else {
        bail!("an HDF5 file without Keras weights (no model_weights group, no layer_names attribute, no layers group)");
    };
    let classes = layer_classes(root);
    let names = read_str_list(&group, "layer_names")?
        .ok_or_else(|| anyhow!("model_weights has no layer_names attribute"))?;
    let mut layers = Vec::new();
    for name in &names {
        let g = group
            .group(name)
            .with_context(|| format!("layer {name} is listed but has no group"))?;
        if let Some(l) = read_keras2_layer(&g, name, is_transpose(name, &classes))? {
            layers.push(l);
        }
    }
    Ok(KerasFile {
        path: path.to_owned(),
        format,
        keras_version,
        layers,
        meta,
    })
}

impl KerasFile {
    /// The base width, read off the first convolution's kernel (kh, kw, 1, width).
    pub fn base_width(&self) -> Result<i64> {
        let first = self
            .layers
            .iter()
            .find(|l| !l.transpose)
            .ok_or_else(|| anyhow!("{}: no Conv2D layer found", self.path.display()))?;
        match first.kernel.shape.as_slice() {
            [3, 3, 1, w] => Ok(*w as i64),
            s => bail!(
                "{}: the first Conv2D ({}) has kernel {}, expected (3, 3, 1, width): not the tutorial's U-Net",
                self.path.display(),
                first.name,
                shape_str(s)
            ),
        }
    }

    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.kernel.data.len() + l.bias.data.len())
            .sum()
    }
}

/// What [`apply`] did.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// (our layer, the file's layer) pairs that were loaded.
    pub applied: Vec<(String, String)>,
    /// Our layers the file had nothing for.
    pub missing: Vec<String>,
    /// The file's layers nothing of ours took.
    pub unused: Vec<String>,
}

/// Our layer names by kind, in Keras creation order.
fn our_layers() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        CONVS.iter().map(|c| c.0).collect(),
        TRANSPOSES.iter().map(|t| t.0).collect(),
    )
}

/// Keras layout -> libtorch layout, for a Conv2D kernel (kh, kw, in, out) -> (out, in, kh, kw)
/// and for a Conv2DTranspose kernel (kh, kw, out, in) -> (in, out, kh, kw) alike.
pub fn kernel_to_tch(a: &Array) -> Tensor {
    let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&a.data)
        .view(dims.as_slice())
        .permute([3, 2, 0, 1])
        .contiguous()
}

/// libtorch layout -> Keras layout (the inverse of [`kernel_to_tch`]).
pub fn kernel_to_keras(t: &Tensor) -> Result<Array> {
    let k = t
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .permute([2, 3, 1, 0])
        .contiguous();
    tensor_array(&k)
}

fn tensor_array(t: &Tensor) -> Result<Array> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([-1]);
    let data = Vec::<f32>::try_from(&flat)?;
    Ok(Array { shape, data })
}

/// Copies the file's weights into `vs` (a U-Net from `model::unet`), matching layers by
/// kind and order and checking every shape. Anything missing or left over is an error
/// unless `allow_partial`.
pub fn apply(file: &KerasFile, vs: &mut VarStore, allow_partial: bool) -> Result<LoadReport> {
    let path = file.path.display();
    let vars = vs.variables();
    let (convs, ups) = our_layers();
    let theirs_conv: Vec<&FileLayer> = file.layers.iter().filter(|l| !l.transpose).collect();
    let theirs_up: Vec<&FileLayer> = file.layers.iter().filter(|l| l.transpose).collect();
    let mut report = LoadReport::default();
    let mut pairs = Vec::new();
    for (ours, theirs) in [(&convs, &theirs_conv), (&ups, &theirs_up)] {
        for (i, name) in ours.iter().enumerate() {
            match theirs.get(i) {
                Some(l) => pairs.push((*name, *l)),
                None => report.missing.push((*name).to_owned()),
            }
        }
        report
            .unused
            .extend(theirs.iter().skip(ours.len()).map(|l| l.name.clone()));
    }
    if !allow_partial && (!report.missing.is_empty() || !report.unused.is_empty()) {
        bail!(
            "{path}: not the tutorial's U-Net: expected {} Conv2D and {} Conv2DTranspose layers, \
             found {} and {}{}{} (--allow-partial loads what matches)",
            convs.len(),
            ups.len(),
            theirs_conv.len(),
            theirs_up.len(),
            if report.missing.is_empty() {
                String::new()
            } else {
                format!("; missing: {}", report.missing.join(", "))
            },
            if report.unused.is_empty() {
                String::new()
            } else {
                format!("; extra: {}", report.unused.join(", "))
            },
        );
    }
    tch::no_grad(|| -> Result<()> {
        for (ours, theirs) in pairs {
            let w = &vars[&format!("{ours}.weight")];
            let b = &vars[&format!("{ours}.bias")];
            let want_kernel: Vec<usize> = {
                let s = w.size();
                [s[2], s[3], s[1], s[0]]
                    .iter()
                    .map(|&d| d as usize)
                    .collect()
            };
            if theirs.kernel.shape != want_kernel || theirs.bias.shape != [b.size()[0] as usize] {
                bail!(
                    "{path}: layer {} (ours {ours}): kernel {} and bias {}, expected {} and ({}): \
                     a different architecture or width",
                    theirs.name,
                    shape_str(&theirs.kernel.shape),
                    shape_str(&theirs.bias.shape),
                    shape_str(&want_kernel),
                    b.size()[0]
                );
            }
            let mut w = w.shallow_clone();
            let mut b = b.shallow_clone();
            w.copy_(&kernel_to_tch(&theirs.kernel));
            b.copy_(&Tensor::from_slice(&theirs.bias.data));
            report.applied.push((ours.to_owned(), theirs.name.clone()));
        }
        Ok(())
    })?;
    Ok(report)
}

/// Writes `vs` (a U-Net of `cfg`) to `path` in `format`, atomically: a temporary file in
/// the same folder, renamed into place only once complete, so an interrupted save never
/// destroys the previous file.
pub fn write(
    path: &Path,
    vs: &VarStore,
    cfg: &UNetConfig,
    meta: &Meta,
    format: Format,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".nerveseg-")
        .suffix(".h5.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?
        .into_temp_path();
    let layers = export_layers(vs)?;
    (|| -> Result<()> {
        let file = hdf5::File::create(&tmp)?;
        match format {
            Format::Keras2Model => {
                write_root_attrs(&file, cfg, meta)?;
                let json = crate::keras_config::model_config(cfg);
                write_str_attr(&file, "model_config", &json)?;
                let mw = file.create_group("model_weights")?;
                write_str_attr(&mw, "keras_version", WRITTEN_KERAS_VERSION)?;
                write_str_attr(&mw, "backend", "tensorflow")?;
                write_keras2_layers(&mw, &layers)?;
            }
            Format::Keras2Weights => {
                write_root_attrs(&file, cfg, meta)?;
                write_keras2_layers(&file, &layers)?;
            }
            Format::Keras3Weights => {
                write_meta_attrs(&file, cfg, meta)?;
                write_keras3_layers(&file, &layers)?;
            }
        }
        file.close()?;
        Ok(())
    })()
    .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming the finished file to {}", path.display()))?;
    Ok(())
}

/// Our weighted layers in Keras creation order (the order `get_unet` builds them:
/// conv2d_1..10, then each decoder level's transpose before its two convs), with
/// kernels in Keras layout.
fn export_layers(vs: &VarStore) -> Result<Vec<(&'static str, Array, Array)>> {
    let vars = vs.variables();
    let mut out = Vec::new();
    for name in crate::keras_config::creation_order() {
        let w = vars
            .get(&format!("{name}.weight"))
            .ok_or_else(|| anyhow!("the model has no layer {name}"))?;
        let b = vars
            .get(&format!("{name}.bias"))
            .ok_or_else(|| anyhow!("the model has no bias for {name}"))?;
        out.push((name, kernel_to_keras(w)?, tensor_array(b)?));
    }
    Ok(out)
}

fn write_str_attr(loc: &hdf5::Location, name: &str, value: &str) -> Result<()> {
    let v: VarLenUnicode = value
        .parse()
        .map_err(|e| anyhow!("attribute {name}: {e:?}"))?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&v)?;
    Ok(())
}

/// A list of names as h5py writes `np.array([b'..'])`: fixed-length ASCII.
fn write_str_list(loc: &hdf5::Location, name: &str, values: &[String]) -> Result<()> {
    let v: Vec<FixedAscii<64>> = values
        .iter()
        .map(|s| FixedAscii::from_ascii(s.as_bytes()).map_err(|e| anyhow!("name {s}: {e:?}")))
        .collect::<Result<_>>()?;
    loc.new_attr::<FixedAscii<64>>()
        .shape(v.len())
        .create(name)?
        .write_raw(&v)?;
    Ok(())
}

fn write_meta_attrs(loc: &hdf5::Location, cfg: &UNetConfig, meta: &Meta) -> Result<()> {
    write_str_attr(loc, ATTR_VERSION, env!("CARGO_PKG_VERSION"))?;
    loc.new_attr::<i64>()
        .create(ATTR_WIDTH)?
        .write_scalar(&cfg.base_width)?;
    if let Some(m) = meta.mean {
        loc.new_attr::<f64>().create(ATTR_MEAN)?.write_scalar(&m)?;
    }
    if let Some(s) = meta.std {
        loc.new_attr::<f64>().create(ATTR_STD)?.write_scalar(&s)?;
    }
    if let Some(e) = meta.epoch {
        loc.new_attr::<i64>().create(ATTR_EPOCH)?.write_scalar(&e)?;
    }
    Ok(())
}

fn write_root_attrs(file: &hdf5::File, cfg: &UNetConfig, meta: &Meta) -> Result<()> {
    write_str_attr(file, "keras_version", WRITTEN_KERAS_VERSION)?;
    write_str_attr(file, "backend", "tensorflow")?;
    write_meta_attrs(file, cfg, meta)
}

fn write_dataset(g: &hdf5::Group, name: &str, a: &Array) -> Result<()> {
    g.new_dataset::<f32>()
        .shape(a.shape.as_slice())
        .create(name)?
        .write_raw(&a.data)?;
    Ok(())
}

/// `layer_names`, then one group per layer with `weight_names` and the two datasets at
/// `<layer>/<layer>/kernel:0` and `bias:0`, as tf-keras writes them.
fn write_keras2_layers(g: &hdf5::Group, layers: &[(&str, Array, Array)]) -> Result<()> {
    let names: Vec<String> = layers.iter().map(|l| l.0.to_owned()).collect();
    write_str_list(g, "layer_names", &names)?;
    for (name, kernel, bias) in layers {
        let lg = g.create_group(name)?;
        write_str_list(
            &lg,
            "weight_names",
            &[format!("{name}/kernel:0"), format!("{name}/bias:0")],
        )?;
        let inner = lg.create_group(name)?;
        write_dataset(&inner, "kernel:0", kernel)?;
        write_dataset(&inner, "bias:0", bias)?;
    }
    Ok(())
}

/// `layers/<name>/vars/0` and `/1` with the names Keras 3 gives in a fresh session
/// (`conv2d`, `conv2d_1`, .., `conv2d_transpose`, ..), which its loader matches.
fn write_keras3_layers(file: &hdf5::File, layers: &[(&str, Array, Array)]) -> Result<()> {
    let lg = file.create_group("layers")?;
    for (name, kernel, bias) in layers {
        let vars = lg
            .create_group(&crate::keras_config::keras3_name(name))?
            .create_group("vars")?;
        write_dataset(&vars, "0", kernel)?;
        write_dataset(&vars, "1", bias)?;
    }
    file.create_group("vars")?;
    Ok(())
}

/// Converts any supported file to `format`, keeping nerveseg's metadata.
pub fn convert(input: &Path, output: &Path, format: Format) -> Result<LoadReport> {
    let file = read(input)?;
    let cfg = UNetConfig {
        base_width: file.base_width()?,
    };
    let mut vs = VarStore::new(tch::Device::Cpu);
    let _net = crate::model::unet(&vs.root(), &cfg);
    let report = apply(&file, &mut vs, false)?;
    write(output, &vs, &cfg, &file.meta, format)?;
    Ok(report)
}

/// A human-readable summary of a weight file: format, layers, shapes, parameters, metadata.
pub fn describe(file: &KerasFile) -> String {
    use std::fmt::Write;
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
        let kind = if l.transpose {
            "Conv2DTranspose"
        } else {
            "Conv2D"
        };
        let _ = writeln!(
            s,
            "  {:<22} {:<16} kernel {:<18} bias {}",
            l.name,
            kind,
            shape_str(&l.kernel.shape),
            shape_str(&l.bias.shape)
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
    let opt = |v: Option<f64>| v.map_or_else(|| "not stored".to_owned(), |x| format!("{x}"));
    let _ = writeln!(s, "mean: {}", opt(file.meta.mean));
    let _ = writeln!(s, "std: {}", opt(file.meta.std));
    let _ = write!(
        s,
        "epoch: {}",
        file.meta
            .epoch
            .map_or_else(|| "not stored".to_owned(), |e| e.to_string())
    );
    s
}
