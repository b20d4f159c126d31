//! `export --torchscript model.pt`: the network as a traced TorchScript module that
//! Python's `torch.jit.load` (or libtorch in C++) runs without nerveseg: float32
//! (N, 1, 96, 96) standardised frames in, (N, 1, 96, 96) probabilities out. Beside it,
//! `model.json` says how to make the input (mean, std, the resize) and how the masks
//! are made from the output (threshold, minimum size, the frame size trained on).
//!
//! The module is traced on the CPU in float32 and NCHW, the parity layout; the file is
//! loaded back and checked against the network it came from before it is put in place.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use tch::{CModule, Device, Kind, TchError, Tensor};

use crate::model::Speed;
use crate::predict::{load, StatsSource};
use crate::submission::MaskRule;

/// What `export` reads and writes.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    pub weights: PathBuf,
    pub torchscript: PathBuf,
    pub stats: StatsSource,
    pub rule: MaskRule,
    pub quiet: bool,
}

/// What `export` wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub torchscript: PathBuf,
    pub sidecar: PathBuf,
    /// Largest |difference| between the reloaded module and the network on a check batch.
    pub max_diff: f64,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {} and {} (reloaded: max |diff| {:.1e} from the network)",
            self.torchscript.display(),
            self.sidecar.display(),
            self.max_diff
        )
    }
}

/// The JSON beside `model.pt`: `model.json`.
pub(crate) fn sidecar_path(torchscript: &Path) -> PathBuf {
    torchscript.with_extension("json")
}

fn tch_err(what: &str) -> impl Fn(TchError) -> anyhow::Error + '_ {
    move |e| anyhow!("{what}: {}", crate::libtorch::first_line(&e))
}

/// Traces, saves, reloads and checks the module, then writes the sidecar.
pub fn export(cfg: &ExportConfig) -> Result<ExportReport> {
    if let Some(g) = cfg.rule.presence.filter(|g| g.source.needs_head()) {
        bail!(
            "--presence {}: the TorchScript module traces the mask's output alone, without the \
             presence head; use --presence mask, or --onnx, whose graph holds the head",
            g.source.name()
        );
    }
    if cfg.torchscript.extension().is_some_and(|e| e == "json") {
        bail!(
            "{}: the module would be overwritten by its own sidecar; name it model.pt",
            cfg.torchscript.display()
        );
    }
    let plain = Speed {
        channels_last: false,
        bf16: false,
    };
    let mut loaded = load(&cfg.weights, Device::Cpu, false, plain)?;
    // The weights become constants of the traced graph, which the tracer takes only
    // from tensors that need no gradient.
    loaded.vs.freeze();
    let input = loaded.cfg.input;
    let stats = cfg.stats.resolve(&loaded.file, input, cfg.quiet)?;
    let (h, w) = (input.height as i64, input.width as i64);
    let example = Tensor::zeros([1, 1, h, w], (Kind::Float, Device::Cpu));
    let mut failure = None;
    let module =
        tch::no_grad(|| {
            CModule::create_by_tracing("UNet", "forward", &[example], &mut |x: &[Tensor]| {
                match loaded.net.forward(&x[0]) {
                    Ok(y) => vec![y.mask],
                    Err(e) => {
                        failure = Some(e);
                        vec![x[0].shallow_clone()]
                    }
                }
            })
        })
        .map_err(tch_err("tracing the network"))?;
    if let Some(e) = failure {
        return Err(tch_err("tracing the network")(e));
    }
    let dir = crate::atomic::parent_dir(&cfg.torchscript);
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
    let mut file = crate::atomic::AtomicFile::create(&cfg.torchscript)?;
    let max_diff = save(&module, &mut file, &cfg.torchscript, &loaded.net)?;
    if max_diff > 1e-6 {
        bail!(
            "{}: the traced module differs from the network by {max_diff:e}; not written",
            cfg.torchscript.display()
        );
    }
    let json = sidecar(cfg, stats, &loaded.cfg, &loaded.file.meta);
    let sidecar = sidecar_path(&cfg.torchscript);
    crate::atomic::write_json(&sidecar, &json)?;
    crate::interrupt::check()?;
    let torchscript = file.commit()?;
    Ok(ExportReport {
        torchscript,
        sidecar,
        max_diff,
    })
}

/// Saves `module` into `file` (the partial file of `target`), checked against `net`;
/// returns the check's largest |difference|. On Linux it is saved in memory and
/// written by us, so that a full disk is an error rather than libtorch's abort.
#[cfg(target_os = "linux")]
fn save(
    module: &CModule,
    file: &mut crate::atomic::AtomicFile,
    target: &Path,
    net: &crate::model::UNet,
) -> Result<f64> {
    let mut mem = crate::memfile::MemFile::new("nerveseg-export")?;
    module
        .save(mem.path())
        .map_err(tch_err(&format!("writing {}", target.display())))?;
    let max_diff = check(&mem.path(), net)?;
    std::io::Write::write_all(file, &mem.bytes()?)?;
    Ok(max_diff)
}

#[cfg(not(target_os = "linux"))]
fn save(
    module: &CModule,
    file: &mut crate::atomic::AtomicFile,
    target: &Path,
    net: &crate::model::UNet,
) -> Result<f64> {
    module
        .save(file.partial_path())
        .map_err(tch_err(&format!("writing {}", target.display())))?;
    check(file.partial_path(), net)
}

/// Loads a saved module and compares it with `net` on a seeded batch of 3 frames (not
/// the traced batch size): the largest |difference|.
pub fn check(path: &Path, net: &crate::model::UNet) -> Result<f64> {
    let m = CModule::load(path).map_err(tch_err(&format!("loading {}", path.display())))?;
    tch::manual_seed(7);
    let input = net.config().input;
    let (h, w) = (input.height as i64, input.width as i64);
    let x = Tensor::randn([3, 1, h, w], (Kind::Float, Device::Cpu));
    let diff = tch::no_grad(|| -> Result<f64, TchError> {
        let a = m.forward_ts(&[&x])?;
        let b = net.forward(&x)?.mask;
        a.f_sub(&b)?.f_abs()?.f_max()?.f_double_value(&[])
    })
    .map_err(tch_err(&format!("running {}", path.display())))?;
    Ok(diff)
}

fn sidecar(
    cfg: &ExportConfig,
    stats: crate::dataset::Stats,
    network: &crate::model::UNetConfig,
    meta: &crate::keras::Meta,
) -> serde_json::Value {
    let (h, w) = (network.input.height, network.input.width);
    serde_json::json!({
        "format": "nerveseg U-Net, traced TorchScript",
        "nerveseg_version": env!("CARGO_PKG_VERSION"),
        "weights": cfg.weights.display().to_string(),
        "base_width": network.base_width,
        "network": network.to_string(),
        "input": {
            "shape": ["N", 1, h, w],
            "dtype": "float32",
            "layout": "NCHW",
            "preprocess": format!("resize the uint8 frame to {h} x {w} with skimage.transform.resize(frame, ({h}, {w}), preserve_range=True), store into uint8 (truncate), then (x - mean) / std"),
        },
        "mean": stats.mean,
        "std": stats.std,
        "output": {
            "shape": ["N", 1, h, w],
            "what": "probability of nerve per pixel (sigmoid)",
            "postprocess": "mask = p > threshold; enlarge to the frame's size with skimage.transform.resize (order 1) and keep > 0.5; a mask with fewer than min_size pixels is empty",
        },
        "threshold": cfg.rule.threshold,
        "min_size": cfg.rule.min_size,
        "keep_above_zero": cfg.rule.keep_above_zero,
        "presence": cfg.rule.presence.map(|g| g.to_string()),
        "frame_size": meta.frame_size.map(|s| [s.height, s.width]),
        "epoch": meta.epoch,
    })
}
