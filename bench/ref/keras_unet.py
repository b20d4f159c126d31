"""The tutorial's U-Net in tf-keras (the Keras 2 API), timed.

The tf-keras side of nerveseg's A/B timings.

get_unet as the tutorial writes it (channels last, default initialisers, 7,759,521
parameters), compiled with Adam(learning_rate=1e-5) (tf-keras's epsilon 1e-7), loss
-dice_coef and metric dice_coef over the whole batch (smooth 1). Inputs are model-ready
float32 (N, 96, 96, 1) .npy files (from preprocess.py --save-images/--save-masks).

Subcommands:
  train-step  time model.train_on_batch (the compiled train function) per step
  infer       time model.predict_on_batch per batch

CPU only (tensorflow-cpu). TensorFlow's own defaults are kept (oneDNN on, inter-op
threads default); --threads sets only the intra-op pool. Last stdout line is one JSON
object; progress goes to stderr.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import argparse  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from common import (  # noqa: E402
    add_timing_subcommands,
    cycling_batch,
    emit,
    load_model_ready,
    time_runs,
    timing_summary,
)

IMG_ROWS = 96
IMG_COLS = 96
SMOOTH = 1.0
PARAMS = 7_759_521


def dice_coef(y_true, y_pred):
    y_true_f = tf.reshape(y_true, [-1])
    y_pred_f = tf.reshape(y_pred, [-1])
    intersection = tf.reduce_sum(y_true_f * y_pred_f)
    return (2.0 * intersection + SMOOTH) / (
        tf.reduce_sum(y_true_f) + tf.reduce_sum(y_pred_f) + SMOOTH
    )


def dice_coef_loss(y_true, y_pred):
    return -dice_coef(y_true, y_pred)


def get_unet():
    """The tutorial's get_unet, same layers in the same order."""
    L = keras.layers

    def conv(filters, x):
        return L.Conv2D(filters, (3, 3), activation="relu", padding="same")(x)

    def up(filters, x):
        return L.Conv2DTranspose(filters, (2, 2), strides=(2, 2), padding="same")(x)

    inputs = L.Input((IMG_ROWS, IMG_COLS, 1))
    conv1 = conv(32, conv(32, inputs))
    pool1 = L.MaxPooling2D(pool_size=(2, 2))(conv1)
    conv2 = conv(64, conv(64, pool1))
    pool2 = L.MaxPooling2D(pool_size=(2, 2))(conv2)
    conv3 = conv(128, conv(128, pool2))
    pool3 = L.MaxPooling2D(pool_size=(2, 2))(conv3)
    conv4 = conv(256, conv(256, pool3))
    pool4 = L.MaxPooling2D(pool_size=(2, 2))(conv4)
    conv5 = conv(512, conv(512, pool4))

    up6 = L.concatenate([up(256, conv5), conv4], axis=3)
    conv6 = conv(256, conv(256, up6))
    up7 = L.concatenate([up(128, conv6), conv3], axis=3)
    conv7 = conv(128, conv(128, up7))
    up8 = L.concatenate([up(64, conv7), conv2], axis=3)
    conv8 = conv(64, conv(64, up8))
    up9 = L.concatenate([up(32, conv8), conv1], axis=3)
    conv9 = conv(32, conv(32, up9))
    conv10 = L.Conv2D(1, (1, 1), activation="sigmoid")(conv9)

    model = keras.models.Model(inputs=[inputs], outputs=[conv10])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-5),
                  loss=dice_coef_loss, metrics=[dice_coef])
    assert model.count_params() == PARAMS, model.count_params()
    return model


def configure(args):
    """Threads (before TensorFlow starts its runtime) and seed; returns the intra-op
    thread count in use: T, or TensorFlow's default, one per schedulable CPU."""
    if args.device != "cpu":
        raise SystemExit("keras_unet.py runs on CPU only (tensorflow-cpu)")
    if args.threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    return args.threads if args.threads is not None else len(os.sched_getaffinity(0))


def train_step(args):
    threads = configure(args)
    x = load_model_ready(args.images, "images")
    y = load_model_ready(args.masks, "masks")
    if len(x) != len(y):
        raise SystemExit(f"{len(x)} images but {len(y)} masks")
    model = get_unet()
    b = args.batch_size

    def batch(k):
        idx = cycling_batch(k, b, len(x))
        return x[idx], y[idx]

    def step(xy):
        # train_on_batch returns NumPy values: the step is done when it returns.
        loss, _dice = model.train_on_batch(*xy)
        return f"loss {loss:.4f}"

    seconds = time_runs(args.warmup, args.steps, batch, step, "step")
    emit(timing_summary("train-step", "tf-keras", b, threads, args.device,
                        "step_seconds", seconds))


def infer(args):
    threads = configure(args)
    x = load_model_ready(args.images, "images")
    model = get_unet()
    b = args.batch_size
    def forward(xb):
        model.predict_on_batch(xb)  # returns NumPy: the batch is done when it returns

    seconds = time_runs(args.warmup, args.batches,
                        lambda k: x[cycling_batch(k, b, len(x))], forward, "batch")
    emit(timing_summary("infer", "tf-keras", b, threads, args.device,
                        "batch_seconds", seconds))


def add_common(p):
    p.add_argument("--threads", type=int, metavar="T",
                   help="tf.config.threading.set_intra_op_parallelism_threads(T) "
                        "(default: TensorFlow's default; inter-op always default)")
    p.add_argument("--device", choices=["cpu"], default="cpu", help="cpu only (default)")
    p.add_argument("--seed", type=int, default=0, help="seed for the initial weights (default: 0)")
    p.add_argument("--batch-size", type=int, default=32, metavar="B", help="default: 32")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    add_timing_subcommands(sub, add_common, train_step, infer,
                           "time model.train_on_batch per step",
                           "time model.predict_on_batch per batch")

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
