#!/usr/bin/env python3
"""Seconds per training step of IntelAI's 2D U-Net in Keras, for `cargo xtask train --bench-steps`.

Builds the same architecture as crates/unet-train/src/model.rs (NHWC here, as Keras does):
two 3x3 same ReLU convs per level, 2x2 max pooling, 2x2/2 transposed convs (or nearest
upsampling), [up, skip] concatenation, spatial dropout 0.2 after the first conv of levels C
and D, a 1x1 sigmoid head; the -log soft Dice loss with smooth 1e-4; Adam with epsilon 1e-7.
Prints one JSON line: {"tensorflow", "onednn", "median_step_seconds", "mean_step_seconds",
"inference_batch1_seconds", "params"}; "onednn" says whether TensorFlow's oneDNN custom operations
were on (its default only on CPUs with AVX512_VNNI, AVX512_BF16, AVX-VNNI or AMX; TF_ENABLE_ONEDNN_OPTS
overrides it), null where this TensorFlow cannot tell.
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build(tf, fms, size, upsampling):
    layers = tf.keras.layers
    conv = dict(kernel_size=3, activation="relu", padding="same", kernel_initializer="he_uniform")
    inputs = layers.Input((size, size, 1))

    def level(x, filters, dropout):
        x = layers.Conv2D(filters, **conv)(x)
        if dropout:
            x = layers.SpatialDropout2D(0.2)(x)
        return layers.Conv2D(filters, **conv)(x)

    def up(x, filters):
        if upsampling == "nearest":
            return layers.UpSampling2D(2)(x)
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)

    a = level(inputs, fms, False)
    b = level(layers.MaxPooling2D(2)(a), 2 * fms, False)
    c = level(layers.MaxPooling2D(2)(b), 4 * fms, True)
    d = level(layers.MaxPooling2D(2)(c), 8 * fms, True)
    e = level(layers.MaxPooling2D(2)(d), 16 * fms, False)
    x = level(layers.concatenate([up(e, 8 * fms), d]), 8 * fms, False)
    x = level(layers.concatenate([up(x, 4 * fms), c]), 4 * fms, False)
    x = level(layers.concatenate([up(x, 2 * fms), b]), 2 * fms, False)
    x = level(layers.concatenate([up(x, fms), a]), fms, False)
    out = layers.Conv2D(1, 1, activation="sigmoid")(x)
    return tf.keras.Model(inputs, out)


def dice_loss(tf):
    def loss(target, prediction):
        smooth = 1e-4
        inter = tf.reduce_sum(prediction * target, axis=(1, 2))
        p = tf.reduce_sum(prediction, axis=(1, 2))
        t = tf.reduce_sum(target, axis=(1, 2))
        num = tf.reduce_mean(inter + smooth)
        den = tf.reduce_mean(t + p + smooth)
        return -tf.math.log(2.0 * num) + tf.math.log(den)

    return loss


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--fms", type=int, default=16)
    parser.add_argument("--upsampling", choices=["transposed", "nearest"], default="transposed")
    args = parser.parse_args()
    try:
        import numpy as np
        import tensorflow as tf
    except ImportError as err:
        print(f"tensorflow is not installed: {err}", file=sys.stderr)
        return 2
    tf.random.set_seed(42)
    rng = np.random.default_rng(42)
    model = build(tf, args.fms, args.size, args.upsampling)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-4, epsilon=1e-7), loss=dice_loss(tf))
    shape = (args.batch_size, args.size, args.size, 1)
    x = rng.uniform(-1, 1, shape).astype("float32")
    y = np.zeros(shape, dtype="float32")
    y[:, args.size // 4 : args.size // 2, args.size // 3 : args.size // 2 + args.size // 8, :] = 1.0
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        elapsed = time.perf_counter() - start
        if i >= args.warmup:
            times.append(elapsed)
    x1 = x[:1]
    infer = tf.function(lambda t: model(t, training=False))
    infer(x1).numpy()
    reps = 5
    start = time.perf_counter()
    for _ in range(reps):
        infer(x1).numpy()
    inference = (time.perf_counter() - start) / reps
    try:
        from tensorflow.python.util import _pywrap_util_port
        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn = None
    print(json.dumps({
        "tensorflow": tf.__version__,
        "onednn": onednn,
        "median_step_seconds": statistics.median(times),
        "mean_step_seconds": statistics.fmean(times),
        "inference_batch1_seconds": inference,
        "params": int(model.count_params()),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
