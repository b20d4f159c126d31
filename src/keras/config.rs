//! A network's graph as Keras describes it: the `model_config` JSON that tf-keras stores
//! in a full-model file, so that `tf_keras.models.load_model` can rebuild the model from
//! a nerveseg checkpoint, written layer by layer from `model/topology.rs`. Names follow
//! Keras 2.0 (`conv2d_1` .., `max_pooling2d_1` .., `input_1`).

use serde_json::{json, Value};

use crate::model::topology::{class_name, Act, Graph, Op, BN_EPSILON, BN_MOMENTUM};
use crate::model::{UNetConfig, HEAD};

/// The name Keras 3 (and tf-keras) gives a layer in a fresh session: the first of a kind
/// has no number, then `_1`, `_2`.. (Keras 2.0 started at `_1`).
pub(crate) fn keras3_name(keras2: &str) -> String {
    // Keras 3 names a layer's group by its class (Dense -> `dense`), not its name.
    if keras2 == HEAD {
        return "dense".to_owned();
    }
    match keras2
        .rsplit_once('_')
        .map(|(base, n)| (base, n.parse::<u32>()))
    {
        Some((base, Ok(1))) => base.to_owned(),
        Some((base, Ok(n))) => format!("{base}_{}", n - 1),
        _ => keras2.to_owned(),
    }
}

fn node(inputs: &[&str]) -> Value {
    let refs: Vec<Value> = inputs.iter().map(|n| json!([n, 0, 0, {}])).collect();
    json!([refs])
}

fn conv(name: &str, filters: i64, k: i64, activation: &str, input: &str) -> Value {
    json!({
        "class_name": "Conv2D",
        "config": {
            "name": name, "trainable": true, "dtype": "float32",
            "filters": filters, "kernel_size": [k, k], "strides": [1, 1],
            "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1],
            "groups": 1, "activation": activation, "use_bias": true,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": null, "bias_regularizer": null,
            "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null
        },
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

fn transpose(name: &str, filters: i64, input: &str) -> Value {
    json!({
        "class_name": "Conv2DTranspose",
        "config": {
            "name": name, "trainable": true, "dtype": "float32",
            "filters": filters, "kernel_size": [2, 2], "strides": [2, 2],
            "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1],
            "groups": 1, "activation": "linear", "use_bias": true,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": null, "bias_regularizer": null,
            "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null,
            "output_padding": null
        },
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

fn pool(name: &str, input: &str) -> Value {
    json!({
        "class_name": "MaxPooling2D",
        "config": {
            "name": name, "trainable": true, "dtype": "float32",
            "pool_size": [2, 2], "padding": "valid", "strides": [2, 2],
            "data_format": "channels_last"
        },
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

fn concat(name: &str, up: &str, skip: &str) -> Value {
    json!({
        "class_name": "Concatenate",
        "config": {"name": name, "trainable": true, "dtype": "float32", "axis": 3},
        "name": name,
        "inbound_nodes": node(&[up, skip]),
    })
}

fn global_pool(name: &str, input: &str) -> Value {
    json!({
        "class_name": "GlobalAveragePooling2D",
        "config": {"name": name, "trainable": true, "dtype": "float32",
                   "data_format": "channels_last", "keepdims": false},
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

/// The presence head: Dense(1, sigmoid).
fn dense(name: &str, input: &str) -> Value {
    json!({
        "class_name": "Dense",
        "config": {
            "name": name, "trainable": true, "dtype": "float32", "units": 1,
            "activation": "sigmoid", "use_bias": true,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": null, "bias_regularizer": null,
            "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null
        },
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

fn batch_norm(name: &str, input: &str) -> Value {
    json!({
        "class_name": "BatchNormalization",
        "config": {
            "name": name, "trainable": true, "dtype": "float32", "axis": [3],
            "momentum": BN_MOMENTUM, "epsilon": BN_EPSILON, "center": true, "scale": true,
            "beta_initializer": {"class_name": "Zeros", "config": {}},
            "gamma_initializer": {"class_name": "Ones", "config": {}},
            "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
            "moving_variance_initializer": {"class_name": "Ones", "config": {}},
            "beta_regularizer": null, "gamma_regularizer": null,
            "beta_constraint": null, "gamma_constraint": null
        },
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

fn activation(name: &str, act: Act, input: &str) -> Value {
    json!({
        "class_name": "Activation",
        "config": {"name": name, "trainable": true, "dtype": "float32",
                   "activation": act.name()},
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

fn spatial_dropout(name: &str, rate: f64, input: &str) -> Value {
    json!({
        "class_name": "SpatialDropout2D",
        "config": {"name": name, "trainable": true, "dtype": "float32", "rate": rate,
                   "noise_shape": null, "seed": null},
        "name": name,
        "inbound_nodes": node(&[input]),
    })
}

fn input_layer(name: &str, cfg: &UNetConfig) -> Value {
    json!({
        "class_name": "InputLayer",
        "config": {
            "batch_input_shape": [null, cfg.input.height, cfg.input.width, 1],
            "dtype": "float32", "sparse": false, "ragged": false, "name": name
        },
        "name": name,
        "inbound_nodes": [],
    })
}

/// One layer of `g` as Keras describes it.
fn layer(g: &Graph, i: usize, cfg: &UNetConfig) -> Value {
    let n = &g.nodes[i];
    let name = n.name.as_str();
    let input = |k: usize| g.nodes[n.inputs[k]].name.as_str();
    let v = match n.op {
        Op::Input => input_layer(name, cfg),
        Op::Conv { c_out, k, act, .. } => conv(name, c_out, k, act.name(), input(0)),
        Op::BatchNorm { .. } => batch_norm(name, input(0)),
        Op::Activation(act) => activation(name, act, input(0)),
        Op::Dropout(rate) => spatial_dropout(name, rate, input(0)),
        Op::Pool => pool(name, input(0)),
        Op::Transpose { c_out, .. } => transpose(name, c_out, input(0)),
        Op::Concat => concat(name, input(0), input(1)),
        Op::GlobalPool => global_pool(name, input(0)),
        Op::Dense { .. } => dense(name, input(0)),
    };
    debug_assert_eq!(v["class_name"], class_name(&n.op));
    v
}

/// The `model_config` JSON of `cfg`'s functional model (two outputs, mask and presence,
/// with a presence head).
pub fn model_config(cfg: &UNetConfig) -> String {
    let g = crate::model::graph(cfg);
    let layers: Vec<Value> = (0..g.nodes.len()).map(|i| layer(&g, i, cfg)).collect();
    let mut outputs = vec![json!([g.nodes[g.mask].name, 0, 0])];
    if let Some(h) = g.head {
        outputs.push(json!([g.nodes[h].name, 0, 0]));
    }
    json!({
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": layers,
            "input_layers": [[g.nodes[0].name, 0, 0]],
            "output_layers": outputs,
        },
        "keras_version": super::WRITTEN_KERAS_VERSION,
        "backend": "tensorflow",
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras3_names_drop_one() {
        assert_eq!(keras3_name("conv2d_1"), "conv2d");
        assert_eq!(keras3_name("conv2d_19"), "conv2d_18");
        assert_eq!(keras3_name("conv2d_transpose_1"), "conv2d_transpose");
        assert_eq!(keras3_name("conv2d_transpose_4"), "conv2d_transpose_3");
        assert_eq!(keras3_name("presence"), "dense");
    }

    #[test]
    fn model_config_lists_the_graph() {
        let v: Value = serde_json::from_str(&model_config(&UNetConfig::default())).unwrap();
        let layers = v["config"]["layers"].as_array().unwrap();
        // input, 19 convs, 4 pools, 4 transposes, 4 concatenations.
        assert_eq!(layers.len(), 1 + 19 + 4 + 4 + 4);
        let c = layers
            .iter()
            .find(|l| l["name"] == "concatenate_1")
            .unwrap();
        assert_eq!(c["inbound_nodes"][0][0][0], "conv2d_transpose_1");
        assert_eq!(c["inbound_nodes"][0][1][0], "conv2d_8");
        let last = layers.last().unwrap();
        assert_eq!(last["config"]["activation"], "sigmoid");
        assert_eq!(last["inbound_nodes"][0][0][0], "conv2d_18");
    }
}
