//! The tutorial's U-Net declared once: its weighted layers with their Keras names, kinds
//! and channels, in the order `get_unet` creates them. The builder (`model/mod.rs`), the
//! Keras `model_config` and the shape checks of a file being loaded (`keras/load.rs`) all
//! read this table, so a file is checked against exactly what would be built.
//!
//! Reference: the tutorial's `get_unet`,
//! <https://github.com/jocicmarko/ultrasound-nerve-segmentation/blob/master/train.py>.

use super::UNetConfig;

/// The Conv2D layers in Keras creation order, with the base-width multiple of their
/// output channels and their kernel size. `conv2d_19` is the 1x1 sigmoid output.
pub const CONVS: [(&str, i64, i64); 19] = [
    ("conv2d_1", 1, 3), // conv1 = Conv2D(32, (3, 3), activation='relu', padding='same')(inputs)
    ("conv2d_2", 1, 3), // conv1 = Conv2D(32, ...)(conv1)
    ("conv2d_3", 2, 3), // conv2 = Conv2D(64, ...)(pool1)
    ("conv2d_4", 2, 3),
    ("conv2d_5", 4, 3), // conv3 = Conv2D(128, ...)(pool2)
    ("conv2d_6", 4, 3),
    ("conv2d_7", 8, 3), // conv4 = Conv2D(256, ...)(pool3)
    ("conv2d_8", 8, 3),
    ("conv2d_9", 16, 3), // conv5 = Conv2D(512, ...)(pool4)
    ("conv2d_10", 16, 3),
    ("conv2d_11", 8, 3), // conv6 = Conv2D(256, ...)(up6)
    ("conv2d_12", 8, 3),
    ("conv2d_13", 4, 3), // conv7 = Conv2D(128, ...)(up7)
    ("conv2d_14", 4, 3),
    ("conv2d_15", 2, 3), // conv8 = Conv2D(64, ...)(up8)
    ("conv2d_16", 2, 3),
    ("conv2d_17", 1, 3), // conv9 = Conv2D(32, ...)(up9)
    ("conv2d_18", 1, 3),
    ("conv2d_19", 0, 1), // conv10 = Conv2D(1, (1, 1), activation='sigmoid')(conv9): 1 channel
];

/// The Conv2DTranspose layers in creation order, with the multiple of their output
/// channels: up6 = concatenate([Conv2DTranspose(256, (2, 2), strides=(2, 2),
/// padding='same')(conv5), conv4], axis=3), and so on.
pub const TRANSPOSES: [(&str, i64); 4] = [
    ("conv2d_transpose_1", 8),
    ("conv2d_transpose_2", 4),
    ("conv2d_transpose_3", 2),
    ("conv2d_transpose_4", 1),
];

/// The presence head's Dense layer (`train --presence-head`), after the U-Net's layers.
pub const HEAD: &str = "presence";
/// The weightless global average pooling of conv5 that feeds the head.
pub const HEAD_POOL: &str = "global_average_pooling2d_1";

/// The head's kernel shape, (16 w, 1): the same in Keras's layout and ours (the head
/// multiplies the pooled features by it).
pub fn head_kernel(cfg: &UNetConfig) -> [i64; 2] {
    [16 * cfg.base_width, 1]
}

/// The widest base width nerveseg builds: 8x the tutorial's, about 500 million weights.
/// A file claiming more is refused before anything is allocated.
pub const MAX_BASE_WIDTH: i64 = 256;

/// One weighted layer of the U-Net.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Its Keras 2.0 name, also its VarStore path.
    pub name: &'static str,
    /// Conv2DTranspose (2x2, stride 2) rather than Conv2D.
    pub transpose: bool,
    pub c_in: i64,
    pub c_out: i64,
    /// Kernel side.
    pub k: i64,
}

impl Layer {
    /// libtorch's weight shape: (out, in, k, k) for a Conv2D, (in, out, k, k) for a
    /// Conv2DTranspose.
    pub fn weight_shape(&self) -> [i64; 4] {
        if self.transpose {
            [self.c_in, self.c_out, self.k, self.k]
        } else {
            [self.c_out, self.c_in, self.k, self.k]
        }
    }
}

/// The weighted layers at `cfg`'s width in Keras creation order: conv2d_1..10, then per
/// decoder level the transposed convolution before its two convolutions, then conv2d_19.
pub fn layers(cfg: &UNetConfig) -> Vec<Layer> {
    let w = cfg.base_width;
    let channels = |mult: i64| if mult == 0 { 1 } else { w * mult };
    let mut out = Vec::with_capacity(CONVS.len() + TRANSPOSES.len());
    let mut c_in = 1;
    for (i, &(name, mult, k)) in CONVS.iter().enumerate() {
        // After conv2d_10, 12, 14 and 16 comes an up-sampling and a concatenation with
        // the skip connection of the same width: the next conv sees twice the channels.
        if i >= 10 && i % 2 == 0 && i < 18 {
            let (up_name, up_mult) = TRANSPOSES[(i - 10) / 2];
            out.push(Layer {
                name: up_name,
                transpose: true,
                c_in,
                c_out: w * up_mult,
                k: 2,
            });
            c_in = 2 * w * up_mult;
        }
        let c_out = channels(mult);
        out.push(Layer {
            name,
            transpose: false,
            c_in,
            c_out,
            k,
        });
        c_in = c_out;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_tutorials_unet() {
        let l = layers(&UNetConfig::default());
        assert_eq!(l.len(), 23);
        let params: i64 = l
            .iter()
            .map(|l| l.weight_shape().iter().product::<i64>() + l.c_out)
            .sum();
        assert_eq!(params, 7_759_521);
        let names: Vec<&str> = l.iter().map(|l| l.name).collect();
        assert_eq!(
            &names[9..13],
            ["conv2d_10", "conv2d_transpose_1", "conv2d_11", "conv2d_12"]
        );
        let t1 = l[10];
        assert_eq!(t1.weight_shape(), [512, 256, 2, 2]);
        assert_eq!(l[11].weight_shape(), [256, 512, 3, 3]);
        assert_eq!(l[22].weight_shape(), [1, 32, 1, 1]);
    }
}
