//! The one value that describes a network of the family: the tutorial's U-Net and its
//! variants (input size, BatchNorm, ELU, spatial dropout, a presence head). Everything
//! else (the layers, the forward pass, the Keras `model_config`, the shape checks of a
//! file) is derived from it in `topology.rs`. A checkpoint records it (`keras/`), so a
//! file alone says which network to build.

use std::fmt;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::frame::FrameSize;

/// The widest base width nerveseg builds: 8x the tutorial's, about 500 million weights.
/// A file claiming more is refused before anything is allocated.
pub const MAX_BASE_WIDTH: i64 = 256;

/// The largest input side nerveseg builds (a Kaggle frame is 420 x 580).
pub const MAX_INPUT_SIDE: usize = 1024;

/// The tutorial's input: every frame is resized to 96 x 96.
pub const TUTORIAL_INPUT: FrameSize = FrameSize {
    height: 96,
    width: 96,
};

/// Levels of the tutorial's U-Net (four poolings): input sides must be multiples of 16.
pub const LEVELS: usize = 5;

/// Normalisation after each 3x3 convolution, before its activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Norm {
    /// None: the tutorial's.
    #[default]
    None,
    /// Keras BatchNormalization (momentum 0.99, epsilon 1e-3): batch statistics in
    /// training, the moving statistics in validation and prediction.
    Batch,
}

/// The activation of each 3x3 convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// The tutorial's.
    #[default]
    Relu,
    /// Keras's elu with alpha 1.
    Elu,
}

impl Norm {
    pub fn name(self) -> &'static str {
        match self {
            Norm::None => "none",
            Norm::Batch => "batch",
        }
    }
}

impl Activation {
    /// Keras's name of the activation.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Elu => "elu",
        }
    }
}

/// A network of the family; the defaults are the tutorial's `get_unet`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UNetConfig {
    /// Channels of the first level (32); level k has `base_width << k` channels.
    pub base_width: i64,
    /// The network's input in pixels (96 x 96); frames are resized to it.
    pub input: FrameSize,
    pub norm: Norm,
    pub activation: Activation,
    /// The rate of a SpatialDropout2D after each encoder level (0: none, the tutorial's).
    pub dropout: f64,
    /// A presence head beside the mask (`train --presence-head`): global average pooling
    /// of the bottleneck, then Dense(1, sigmoid) named `presence`. Off: the tutorial's.
    pub presence_head: bool,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig::width(32)
    }
}

impl UNetConfig {
    /// The tutorial's U-Net at base width `w`, without a presence head.
    pub const fn width(w: i64) -> UNetConfig {
        UNetConfig {
            base_width: w,
            input: TUTORIAL_INPUT,
            norm: Norm::None,
            activation: Activation::Relu,
            dropout: 0.0,
            presence_head: false,
        }
    }

    /// Whether this is the tutorial's network (at any width, with or without a head):
    /// everything a file's shapes cannot say is the tutorial's.
    pub(crate) fn is_tutorial(&self) -> bool {
        let UNetConfig {
            base_width: _,
            presence_head: _,
            input,
            norm,
            activation,
            dropout,
        } = *self;
        input == TUTORIAL_INPUT
            && norm == Norm::None
            && activation == Activation::Relu
            && dropout == 0.0
    }

    /// Refuses a network nerveseg cannot build, saying why.
    pub fn check(&self) -> Result<()> {
        if !(1..=MAX_BASE_WIDTH).contains(&self.base_width) {
            bail!(
                "base width {} is outside 1..={MAX_BASE_WIDTH}",
                self.base_width
            );
        }
        check_input(self.input)?;
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("a dropout rate of {}: it must be in [0, 1)", self.dropout);
        }
        Ok(())
    }

    /// The record a checkpoint keeps (`nerveseg_network`), as JSON.
    pub fn to_json(&self) -> String {
        json!({
            "base_width": self.base_width,
            "levels": LEVELS,
            "input": [self.input.height, self.input.width],
            "norm": self.norm.name(),
            "activation": self.activation.name(),
            "dropout": self.dropout,
            "presence_head": self.presence_head,
        })
        .to_string()
    }

    /// Reads a record written by [`UNetConfig::to_json`], refusing anything nerveseg
    /// cannot build (unknown keys, other levels, sizes, names).
    pub(crate) fn from_json(s: &str) -> Result<UNetConfig> {
        let v: Value = serde_json::from_str(s).context("not JSON")?;
        let obj = v.as_object().context("not a JSON object")?;
        const KEYS: [&str; 7] = [
            "base_width",
            "levels",
            "input",
            "norm",
            "activation",
            "dropout",
            "presence_head",
        ];
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            bail!("an unknown field '{k}'");
        }
        let field = |k: &str| obj.get(k).with_context(|| format!("no field '{k}'"));
        let int = |k: &str| -> Result<i64> {
            field(k)?
                .as_i64()
                .with_context(|| format!("'{k}' is not an integer"))
        };
        let levels = int("levels")?;
        if levels != LEVELS as i64 {
            bail!("{levels} levels: nerveseg builds U-Nets of {LEVELS}");
        }
        let input = match field("input")?.as_array().map(Vec::as_slice) {
            Some([h, w]) => match (h.as_u64(), w.as_u64()) {
                (Some(h), Some(w)) => FrameSize::new(h as usize, w as usize)?,
                _ => bail!("'input' is not two sizes"),
            },
            _ => bail!("'input' is not [height, width]"),
        };
        let text = |k: &str| -> Result<String> {
            Ok(field(k)?
                .as_str()
                .with_context(|| format!("'{k}' is not a string"))?
                .to_owned())
        };
        let cfg = UNetConfig {
            base_width: int("base_width")?,
            input,
            norm: parse_norm(&text("norm")?)?,
            activation: parse_activation(&text("activation")?)?,
            dropout: field("dropout")?
                .as_f64()
                .context("'dropout' is not a number")?,
            presence_head: field("presence_head")?
                .as_bool()
                .context("'presence_head' is not true or false")?,
        };
        cfg.check()?;
        Ok(cfg)
    }
}

/// The network a command asks for: each part `None` where no flag (or recipe) set it,
/// so that a checkpoint to start from decides it and a fresh model takes the
/// tutorial's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetworkChoice {
    pub base_width: Option<i64>,
    pub input: Option<FrameSize>,
    pub norm: Option<Norm>,
    pub activation: Option<Activation>,
    pub dropout: Option<f64>,
}

impl NetworkChoice {
    /// A fresh model's network: what was asked, the tutorial's elsewhere.
    pub fn fresh(&self, presence_head: bool) -> UNetConfig {
        let t = UNetConfig::default();
        UNetConfig {
            base_width: self.base_width.unwrap_or(t.base_width),
            input: self.input.unwrap_or(t.input),
            norm: self.norm.unwrap_or(t.norm),
            activation: self.activation.unwrap_or(t.activation),
            dropout: self.dropout.unwrap_or(t.dropout),
            presence_head,
        }
    }

    /// What was asked that `net` (a checkpoint's network) is not, as flags:
    /// "--base-width 8 (the checkpoint's is 4)".
    pub(crate) fn disagreements(&self, net: &UNetConfig) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |flag: &str, asked: Option<String>, have: String| {
            if let Some(a) = asked.filter(|a| *a != have) {
                out.push(format!("{flag} {a} (the checkpoint's is {have})"));
            }
        };
        let show = |v: f64| format!("{v}");
        differ(
            "--base-width",
            self.base_width.map(|w| w.to_string()),
            net.base_width.to_string(),
        );
        let size = |s: FrameSize| format!("{}x{}", s.height, s.width);
        differ("--input-size", self.input.map(size), size(net.input));
        differ(
            "--norm",
            self.norm.map(|n| n.name().to_owned()),
            net.norm.name().to_owned(),
        );
        differ(
            "--activation",
            self.activation.map(|a| a.name().to_owned()),
            net.activation.name().to_owned(),
        );
        differ("--dropout", self.dropout.map(show), show(net.dropout));
        out
    }
}

/// Refuses an input size the U-Net cannot take: each side a multiple of 16 (four
/// poolings), at least 16 and at most [`MAX_INPUT_SIDE`].
pub fn check_input(size: FrameSize) -> Result<()> {
    let step = 1 << (LEVELS - 1);
    for side in [size.height, size.width] {
        if side % step != 0 || !(step..=MAX_INPUT_SIDE).contains(&side) {
            bail!(
                "an input of {size}: each side must be a multiple of {step} from {step} to \
                 {MAX_INPUT_SIDE} (the U-Net halves it {} times)",
                LEVELS - 1
            );
        }
    }
    Ok(())
}

/// `none` or `batch`.
pub(crate) fn parse_norm(s: &str) -> Result<Norm> {
    match s {
        "none" => Ok(Norm::None),
        "batch" => Ok(Norm::Batch),
        _ => bail!("normalisation '{s}' is not one nerveseg builds (none or batch)"),
    }
}

/// `relu` or `elu`.
pub(crate) fn parse_activation(s: &str) -> Result<Activation> {
    match s {
        "relu" => Ok(Activation::Relu),
        "elu" => Ok(Activation::Elu),
        _ => bail!("activation '{s}' is not one nerveseg builds (relu or elu)"),
    }
}

/// One line a user reads: "U-Net, width 32, input 96 x 96, ReLU" and what differs.
impl fmt::Display for UNetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "U-Net of {LEVELS} levels, base width {}, input {}",
            self.base_width, self.input
        )?;
        if self.norm == Norm::Batch {
            f.write_str(", BatchNorm")?;
        }
        write!(f, ", {}", self.activation.name())?;
        if self.dropout > 0.0 {
            write!(f, ", spatial dropout {}", self.dropout)?;
        }
        if self.presence_head {
            f.write_str(", presence head")?;
        }
        if self.is_tutorial() && self.base_width == 32 {
            f.write_str(" (the tutorial's)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_refuses_what_cannot_be_built() {
        let cfg = UNetConfig {
            base_width: 8,
            input: FrameSize::new(96, 128).unwrap(),
            norm: Norm::Batch,
            activation: Activation::Elu,
            dropout: 0.1,
            presence_head: true,
        };
        assert_eq!(UNetConfig::from_json(&cfg.to_json()).unwrap(), cfg);
        let bad = |from: &str, to: &str| {
            let s = cfg.to_json().replace(from, to);
            assert_ne!(s, cfg.to_json(), "{from}");
            format!("{:#}", UNetConfig::from_json(&s).unwrap_err())
        };
        assert!(bad("\"levels\":5", "\"levels\":6").contains("6 levels"));
        assert!(bad("[96,128]", "[96,100]").contains("multiple of 16"));
        assert!(bad("\"batch\"", "\"group\"").contains("'group'"));
        assert!(bad("\"elu\"", "\"gelu\"").contains("'gelu'"));
        assert!(bad("\"base_width\":8", "\"base_width\":0").contains("base width 0"));
        assert!(bad("\"dropout\":0.1", "\"dropout\":1.0").contains("dropout"));
        assert!(bad("\"dropout\"", "\"drop\"").contains("unknown field 'drop'"));
        assert!(UNetConfig::from_json("[]").is_err());
    }

    #[test]
    fn a_choice_fills_in_the_tutorial_and_names_what_a_checkpoint_contradicts() {
        let asked = NetworkChoice {
            base_width: Some(8),
            norm: Some(Norm::Batch),
            ..Default::default()
        };
        let fresh = asked.fresh(true);
        assert_eq!(fresh.base_width, 8);
        assert_eq!(fresh.input, TUTORIAL_INPUT);
        assert!(fresh.presence_head);
        assert!(asked.disagreements(&fresh).is_empty());
        let d = asked.disagreements(&UNetConfig::width(4));
        assert_eq!(
            d,
            [
                "--base-width 8 (the checkpoint's is 4)",
                "--norm batch (the checkpoint's is none)"
            ]
        );
    }

    #[test]
    fn only_the_tutorials_shape_is_the_tutorial() {
        assert!(UNetConfig::width(4).is_tutorial());
        let mut c = UNetConfig::width(4);
        c.presence_head = true;
        assert!(c.is_tutorial());
        c.input = FrameSize::new(128, 128).unwrap();
        assert!(!c.is_tutorial());
        assert_eq!(
            UNetConfig::default().to_string(),
            "U-Net of 5 levels, base width 32, input 96 x 96, relu (the tutorial's)"
        );
    }
}
