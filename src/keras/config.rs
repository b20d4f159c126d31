//! The tutorial's graph as Keras describes it: layer names in creation order and the
//! `model_config` JSON that tf-keras stores in a full-model file, so that
//! `tf_keras.models.load_model` can rebuild the model from a nerveseg checkpoint.
//! Names follow Keras 2.0 (`conv2d_1` .., `max_pooling2d_1` .., `input_1`).

use serde_json::{json, Value};

use crate::model::{UNetConfig, CONVS, HEAD, HEAD_POOL, INPUT_SIZE, TRANSPOSES};

/// Weighted layers in the order `get_unet` creates them: conv2d_1..10, then per decoder
/// level the transposed convolution before its two convolutions, then conv2d_19.
pub fn creation_order() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = CONVS[..10].iter().map(|c| c.0).collect();
    for (level, t) in TRANSPOSES.iter().enumerate() {
        out.push(t.0);
        out.extend(CONVS[10 + 2 * level..12 + 2 * level].iter().map(|c| c.0));
    }
    out.push(CONVS[18].0);
    out
}

/// The name Keras 3 (and tf-keras) gives a layer in a fresh session: the first of a kind
/// has no number, then `_1`, `_2`.. (Keras 2.0 started at `_1`).
pub fn keras3_name(keras2: &str) -> String {
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

/// The presence head on `conv5`: GlobalAveragePooling2D, then Dense(1, sigmoid).
fn presence_head(conv5: &str) -> [Value; 2] {
    [
        json!({
            "class_name": "GlobalAveragePooling2D",
            "config": {"name": HEAD_POOL, "trainable": true, "dtype": "float32",
                       "data_format": "channels_last", "keepdims": false},
            "name": HEAD_POOL,
            "inbound_nodes": node(&[conv5]),
        }),
        json!({
            "class_name": "Dense",
            "config": {
                "name": HEAD, "trainable": true, "dtype": "float32", "units": 1,
                "activation": "sigmoid", "use_bias": true,
                "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}},
                "bias_initializer": {"class_name": "Zeros", "config": {}},
                "kernel_regularizer": null, "bias_regularizer": null,
                "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null
            },
            "name": HEAD,
            "inbound_nodes": node(&[HEAD_POOL]),
        }),
    ]
}

/// The `model_config` JSON of the tutorial's functional model at `cfg`'s width (two
/// outputs, mask and presence, with a presence head).
pub fn model_config(cfg: &UNetConfig) -> String {
    let w = cfg.base_width;
    let mut layers = vec![json!({
        "class_name": "InputLayer",
        "config": {
            "batch_input_shape": [null, INPUT_SIZE, INPUT_SIZE, 1],
            "dtype": "float32", "sparse": false, "ragged": false, "name": "input_1"
        },
        "name": "input_1",
        "inbound_nodes": [],
    })];
    let mut prev = "input_1".to_owned();
    let mut skips = Vec::new();
    // Encoder: conv2d_1..10 with a pool after each pair but the last.
    for level in 0..5 {
        for j in 0..2 {
            let (name, mult, k) = CONVS[2 * level + j];
            layers.push(conv(name, w * mult, k, "relu", &prev));
            prev = name.to_owned();
        }
        if level < 4 {
            skips.push(prev.clone());
            let p = format!("max_pooling2d_{}", level + 1);
            layers.push(pool(&p, &prev));
            prev = p;
        }
    }
    // Decoder: up-sample, concatenate (up, skip), two convs.
    for (level, &(tname, mult)) in TRANSPOSES.iter().enumerate() {
        layers.push(transpose(tname, w * mult, &prev));
        let c = format!("concatenate_{}", level + 1);
        let skip = skips.pop().unwrap_or_default();
        layers.push(concat(&c, tname, &skip));
        prev = c;
        for j in 0..2 {
            let (name, mult, k) = CONVS[10 + 2 * level + j];
            layers.push(conv(name, w * mult, k, "relu", &prev));
            prev = name.to_owned();
        }
    }
    let (out, _, k) = CONVS[18];
    layers.push(conv(out, 1, k, "sigmoid", &prev));
    let mut outputs = vec![json!([out, 0, 0])];
    if cfg.presence_head {
        layers.extend(presence_head(CONVS[9].0));
        outputs.push(json!([HEAD, 0, 0]));
    }
    json!({
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": layers,
            "input_layers": [["input_1", 0, 0]],
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
    fn creation_order_interleaves_transposes() {
        let o = creation_order();
        assert_eq!(o.len(), 23);
        assert_eq!(
            &o[9..13],
            ["conv2d_10", "conv2d_transpose_1", "conv2d_11", "conv2d_12"]
        );
        assert_eq!(
            &o[19..],
            ["conv2d_transpose_4", "conv2d_17", "conv2d_18", "conv2d_19"]
        );
    }

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
