//! Which network a file holds. nerveseg's own record (`nerveseg_network`) says it all;
//! a Keras `model_config` says the input size, the activation and the dropout, and its
//! layers are counted by class against the network they describe; a file with neither
//! (weights only) is the tutorial's network at the width, normalisation and head its
//! shapes show. A description nerveseg cannot build is refused, naming the file.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{Declared, KerasFile};
use crate::frame::FrameSize;
use crate::model::topology::{BN_EPSILON, BN_MOMENTUM};
use crate::model::{self, Activation, LayerKind, Norm, UNetConfig, TUTORIAL_INPUT};

/// What a Keras `model_config` says of the network.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KerasConfig {
    /// Each layer's class, by name.
    pub classes: BTreeMap<String, String>,
    /// Layers of each class.
    pub counts: BTreeMap<String, usize>,
    /// The input's rows and columns, when the InputLayer gives them.
    pub input: Option<FrameSize>,
    /// The activation of the hidden layers (not the output's sigmoid).
    pub activation: Option<Activation>,
    /// SpatialDropout2D's rate (0 without).
    pub dropout: f64,
    /// What nerveseg cannot build, as a user would read it.
    pub problems: Vec<String>,
}

/// The classes nerveseg builds.
const KNOWN: [&str; 10] = [
    "InputLayer",
    "Conv2D",
    "MaxPooling2D",
    "Conv2DTranspose",
    "Concatenate",
    "BatchNormalization",
    "Activation",
    "SpatialDropout2D",
    "GlobalAveragePooling2D",
    "Dense",
];

impl KerasConfig {
    /// Reads a `model_config` JSON; `None` when it is not one (no layer list).
    pub fn parse(json: &str) -> Option<KerasConfig> {
        let v: Value = serde_json::from_str(json).ok()?;
        let layers = v.pointer("/config/layers")?.as_array()?;
        let mut out = KerasConfig::default();
        for l in layers {
            let name = l
                .pointer("/config/name")
                .or_else(|| l.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let class = l.get("class_name").and_then(Value::as_str).unwrap_or("?");
            out.classes.insert(name.to_owned(), class.to_owned());
            *out.counts.entry(class.to_owned()).or_insert(0) += 1;
            let config = l.get("config").unwrap_or(&Value::Null);
            out.layer(name, class, config);
        }
        Some(out)
    }

    /// Notes what one layer says.
    fn layer(&mut self, name: &str, class: &str, config: &Value) {
        let get = |k: &str| config.get(k);
        match class {
            "InputLayer" => {
                let shape = get("batch_input_shape").or_else(|| get("batch_shape"));
                match shape.and_then(Value::as_array).map(Vec::as_slice) {
                    Some([_, h, w, c]) if c.as_u64() == Some(1) => {
                        if let (Some(h), Some(w)) = (h.as_u64(), w.as_u64()) {
                            match FrameSize::new(h as usize, w as usize) {
                                Ok(s) => self.input = Some(s),
                                Err(e) => self.problems.push(format!("input {name}: {e}")),
                            }
                        }
                    }
                    Some(s) => self.problems.push(format!(
                        "input {name} has shape {}: nerveseg builds one-channel inputs \
                         (None, H, W, 1)",
                        Value::from(s.to_vec())
                    )),
                    None => {}
                }
            }
            "Conv2D" | "Activation" => {
                let act = get("activation")
                    .and_then(Value::as_str)
                    .unwrap_or("linear");
                if !matches!(act, "linear" | "sigmoid") {
                    match model::network::parse_activation(act) {
                        Ok(a) if self.activation.is_none_or(|b| b == a) => {
                            self.activation = Some(a)
                        }
                        Ok(a) => self.problems.push(format!(
                            "layer {name} uses {} where others use {}",
                            a.name(),
                            self.activation.map_or("", Activation::name)
                        )),
                        Err(e) => self.problems.push(format!("layer {name}: {e}")),
                    }
                }
            }
            "BatchNormalization" => {
                let num = |k: &str| get(k).and_then(Value::as_f64);
                let (m, e) = (num("momentum"), num("epsilon"));
                let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
                if !near(m, BN_MOMENTUM) || !near(e, BN_EPSILON) {
                    self.problems.push(format!(
                        "layer {name} has momentum {m:?} and epsilon {e:?}; nerveseg builds \
                         BatchNormalization with Keras's {BN_MOMENTUM} and {BN_EPSILON}"
                    ));
                }
            }
            "SpatialDropout2D" => {
                if let Some(r) = get("rate").and_then(Value::as_f64) {
                    self.dropout = r;
                }
            }
            c if !KNOWN.contains(&c) => self.problems.push(format!(
                "layer {name} is a {c}, which nerveseg does not build"
            )),
            _ => {}
        }
    }
}

impl KerasFile {
    /// The network this file holds: its record, else its `model_config` checked
    /// against the layers it counts, else the tutorial's at the shapes' width,
    /// normalisation and head. Refused, naming the file, when nerveseg cannot build it.
    pub fn network(&self) -> Result<UNetConfig> {
        let path = self.path.display();
        self.declared_network()
            .with_context(|| format!("{path}: not a network nerveseg can build"))
    }

    fn declared_network(&self) -> Result<UNetConfig> {
        let has = |k: LayerKind| self.layers.iter().any(|l| l.kind == k);
        let shapes = UNetConfig {
            base_width: self.base_width()?,
            norm: if has(LayerKind::BatchNorm) {
                Norm::Batch
            } else {
                Norm::None
            },
            presence_head: has(LayerKind::Dense),
            ..UNetConfig::default()
        };
        let cfg = match &self.declared {
            Declared::Record(cfg) => *cfg,
            Declared::Nothing => shapes,
            Declared::Config(k) => {
                if let Some(p) = k.problems.first() {
                    bail!("{p}");
                }
                let cfg = UNetConfig {
                    input: k.input.unwrap_or(TUTORIAL_INPUT),
                    activation: k.activation.unwrap_or_default(),
                    dropout: k.dropout,
                    ..shapes
                };
                cfg.check()?;
                let ours: BTreeMap<String, usize> = model::graph(&cfg)
                    .class_counts()
                    .into_iter()
                    .map(|(c, n)| (c.to_owned(), n))
                    .collect();
                if ours != k.counts {
                    bail!(
                        "its model_config has {} layers where the network it describes \
                         ({cfg}) has {}",
                        counts(&k.counts),
                        counts(&ours)
                    );
                }
                cfg
            }
        };
        cfg.check()?;
        Ok(cfg)
    }
}

/// "19 Conv2D, 4 MaxPooling2D, .." in class order.
fn counts(c: &BTreeMap<String, usize>) -> String {
    c.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cfg: &UNetConfig) -> KerasConfig {
        KerasConfig::parse(&crate::keras::model_config(cfg)).unwrap()
    }

    #[test]
    fn our_model_config_says_what_it_describes() {
        let cfg = UNetConfig {
            base_width: 4,
            input: FrameSize::new(64, 80).unwrap(),
            norm: Norm::Batch,
            activation: Activation::Elu,
            dropout: 0.25,
            presence_head: true,
        };
        let k = config(&cfg);
        assert!(k.problems.is_empty(), "{:?}", k.problems);
        assert_eq!(k.input, Some(cfg.input));
        assert_eq!(k.activation, Some(Activation::Elu));
        assert_eq!(k.dropout, 0.25);
        assert_eq!(k.counts["BatchNormalization"], 18);
        let plain = config(&UNetConfig::width(4));
        assert_eq!(plain.activation, Some(Activation::Relu));
        assert_eq!(plain.input, Some(TUTORIAL_INPUT));
    }

    #[test]
    fn what_nerveseg_cannot_build_is_a_problem() {
        let json = crate::keras::model_config(&UNetConfig::width(4));
        let k = KerasConfig::parse(&json.replace("\"relu\"", "\"selu\"")).unwrap();
        assert!(k.problems[0].contains("'selu'"), "{:?}", k.problems);
        let k =
            KerasConfig::parse(&json.replace("\"MaxPooling2D\"", "\"AveragePooling2D\"")).unwrap();
        assert!(
            k.problems[0].contains("is a AveragePooling2D, which nerveseg does not build"),
            "{:?}",
            k.problems
        );
        let k = KerasConfig::parse(&json.replace("[null,96,96,1]", "[null,96,96,3]")).unwrap();
        assert!(k.problems[0].contains("one-channel"), "{:?}", k.problems);
        assert!(KerasConfig::parse("{}").is_none());
    }
}
