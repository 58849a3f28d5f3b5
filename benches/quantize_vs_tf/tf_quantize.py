"""TensorFlow's converter on IntelAI's 2D U-Net, for `benches/quantize_vs_tf/run.sh`.

    python3 tf_quantize.py --out DIR --float-only          # just DIR/tf_fp32.tflite
    python3 tf_quantize.py --calib CALIB.npy --out DIR [--size 128] [--fms 16]

Builds the U-Net in Keras (fms=16, 1x128x128, Conv2DTranspose upsampling: 1,940,817
parameters, seeded random weights), writes its float model (DIR/tf_fp32.tflite, which
`cargo xtask quantize --model` can quantise too), then times TFLiteConverter's full-int8
post-training quantisation with the slices of CALIB.npy ([N,H,W] or [N,H,W,1] float32) as the
representative dataset, int8 input and output, and writes DIR/tf_int8.tflite.
Prints one JSON line: conversion seconds (int8 conversion alone, as TF's 8.4 s figure), sizes,
operator counts.

Needs `python3 -m pip install tensorflow-cpu` (not installed by CI).
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calib")
    parser.add_argument("--float-only", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--fms", type=int, default=16)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    model = unet(args.size, args.fms)
    float_bytes = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    fp32_path = os.path.join(args.out, "tf_fp32.tflite")
    with open(fp32_path, "wb") as f:
        f.write(float_bytes)
    if args.float_only:
        return
    if not args.calib:
        parser.error("--calib is required unless --float-only")
    calib = np.load(args.calib).astype(np.float32)
    calib = calib.reshape(calib.shape[0], args.size, args.size, 1)

    def representative():
        for x in calib:
            yield [x[None]]

    start = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8_bytes = converter.convert()
    seconds = time.perf_counter() - start
    int8_path = os.path.join(args.out, "tf_int8.tflite")
    with open(int8_path, "wb") as f:
        f.write(int8_bytes)
    print(json.dumps({
        "tensorflow": tf.__version__,
        "parameters": int(model.count_params()),
        "calibration_slices": int(calib.shape[0]),
        "tf_int8_conversion_s": round(seconds, 3),
        "tf_int8_bytes": len(int8_bytes),
        "tf_fp32_bytes": len(float_bytes),
        "tf_int8_ops": op_counts(int8_path),
        "tf_fp32_ops": op_counts(fp32_path),
    }))


if __name__ == "__main__":
    main()
