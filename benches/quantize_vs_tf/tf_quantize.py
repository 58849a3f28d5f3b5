"""TensorFlow's side of `benches/quantize_vs_tf/run.sh`: a Keras U-Net and TF's converter.

    python3 tf_quantize.py train   --images TRAIN_images.npy --masks TRAIN_masks.npy --out DIR [--steps 300]
    python3 tf_quantize.py convert --calib CALIB.npy --out DIR

`train` builds IntelAI's 2D U-Net in Keras (fms=16, 1x128x128, Conv2DTranspose upsampling:
1,940,817 parameters), trains it briefly on the given slices (seeded, deterministic ops,
Adam 1e-3, batch 8, binary cross-entropy + soft Dice), saves it as DIR/tf_unet.keras and
converts it to the float model DIR/tf_fp32.tflite that both quantisers start from. `--steps 0`
keeps the seeded random weights. Prints one JSON line (training time and loss).

`convert` loads DIR/tf_unet.keras and times TFLiteConverter's full-int8 post-training
quantisation with the slices of CALIB.npy ([N,H,W] or [N,H,W,1] float32) as the representative
dataset, int8 input and output, and writes DIR/tf_int8.tflite. With `--int16x8` it also runs
TF's 16x8 mode (int16 activations, int8 weights) into DIR/tf_int16x8.tflite. Prints one JSON
line: conversion seconds (the conversion alone), sizes, operator counts.

Needs `python3 -m pip install tensorflow-cpu`.
"""
import argparse
import json
import os
import time

import numpy as np
import tensorflow as tf


def unet(size, fms):
    tf.keras.utils.set_random_seed(7)
    L = tf.keras.layers

    def conv(x, f, name):
        return L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer="he_uniform", name=name)(x)

    inputs = tf.keras.Input(shape=(size, size, 1), name="MRImages")
    skips = []
    x = inputs
    for level, mult in enumerate([1, 2, 4, 8]):
        x = conv(x, fms * mult, f"encode{level}a")
        x = conv(x, fms * mult, f"encode{level}b")
        skips.append(x)
        x = L.MaxPooling2D(2, name=f"pool{level}")(x)
    x = conv(x, fms * 16, "encodeEa")
    x = conv(x, fms * 16, "encodeEb")
    for level, mult in reversed(list(enumerate([1, 2, 4, 8]))):
        x = L.Conv2DTranspose(fms * mult, 2, strides=2, padding="same", name=f"up{level}")(x)
        x = L.Concatenate(axis=-1, name=f"concat{level}")([x, skips[level]])
        x = conv(x, fms * mult, f"decode{level}a")
        x = conv(x, fms * mult, f"decode{level}b")
    outputs = L.Conv2D(1, 1, activation="sigmoid", name="PredictionMask")(x)
    return tf.keras.Model(inputs, outputs, name="unet")


def op_counts(path):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=path)
    counts = {}
    for op in interp._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def load_slices(path, size):
    x = np.load(path).astype(np.float32)
    return x.reshape(x.shape[0], size, size, 1)


def bce_dice(y_true, y_pred):
    bce = tf.reduce_mean(tf.keras.losses.binary_crossentropy(y_true, y_pred))
    inter = tf.reduce_sum(y_true * y_pred)
    dice = (2.0 * inter + 1.0) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) + 1.0)
    return bce + 1.0 - dice


def train(args):
    tf.config.experimental.enable_op_determinism()
    model = unet(args.size, args.fms)
    seconds, last_loss = 0.0, None
    if args.steps > 0:
        images = load_slices(args.images, args.size)
        masks = load_slices(args.masks, args.size)
        rng = np.random.default_rng(7)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=bce_dice)
        start = time.perf_counter()
        losses = []
        for step in range(args.steps):
            idx = rng.choice(images.shape[0], size=args.batch, replace=False)
            losses.append(float(model.train_on_batch(images[idx], masks[idx])))
            if (step + 1) % 50 == 0:
                print(f"step {step + 1}/{args.steps}: loss {np.mean(losses[-50:]):.4f}", flush=True)
        seconds = time.perf_counter() - start
        last_loss = float(np.mean(losses[-20:]))
    model.save(os.path.join(args.out, "tf_unet.keras"))
    float_bytes = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with open(os.path.join(args.out, "tf_fp32.tflite"), "wb") as f:
        f.write(float_bytes)
    print(json.dumps({
        "tensorflow": tf.__version__,
        "parameters": int(model.count_params()),
        "train_steps": args.steps,
        "train_batch": args.batch,
        "train_s": round(seconds, 1),
        "train_final_loss": last_loss,
    }))


def convert(args):
    model = tf.keras.models.load_model(os.path.join(args.out, "tf_unet.keras"), compile=False)
    calib = load_slices(args.calib, args.size)

    def representative():
        for x in calib:
            yield [x[None]]

    def quantize(ops, io_type):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = ops
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
        start = time.perf_counter()
        out = converter.convert()
        return out, time.perf_counter() - start

    result = {"tensorflow": tf.__version__, "calibration_slices": int(calib.shape[0])}
    variants = [("int8", [tf.lite.OpsSet.TFLITE_BUILTINS_INT8], tf.int8)]
    if args.int16x8:
        variants.append(("int16x8", [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8],
                         tf.int16))
    for name, ops, io_type in variants:
        data, seconds = quantize(ops, io_type)
        path = os.path.join(args.out, f"tf_{name}.tflite")
        with open(path, "wb") as f:
            f.write(data)
        result[f"tf_{name}_conversion_s"] = round(seconds, 3)
        result[f"tf_{name}_bytes"] = len(data)
        result[f"tf_{name}_ops"] = op_counts(path)
    result["tf_fp32_ops"] = op_counts(os.path.join(args.out, "tf_fp32.tflite"))
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--images")
    t.add_argument("--masks")
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--batch", type=int, default=8)
    c = sub.add_parser("convert")
    c.add_argument("--calib", required=True)
    c.add_argument("--int16x8", action="store_true")
    for p in (t, c):
        p.add_argument("--out", required=True)
        p.add_argument("--size", type=int, default=128)
        p.add_argument("--fms", type=int, default=16)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.command == "train":
        if args.steps > 0 and not (args.images and args.masks):
            parser.error("train needs --images and --masks unless --steps 0")
        train(args)
    else:
        convert(args)


if __name__ == "__main__":
    main()
