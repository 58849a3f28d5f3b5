"""LiteRT oracle for tflite-writer's tests (run by tests/litert.rs; not a user tool).

    python3 litert_probe.py describe MODEL        -> JSON: tensors, inputs, outputs, signatures
    python3 litert_probe.py compare MODEL_A MODEL_B -> JSON: both run on the same seeded inputs

Uses the BUILTIN_REF op resolver (reference kernels, no delegate), so every tensor of the model
stays visible and results are deterministic.
"""
import json
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def load(path):
    interp = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    return interp


def describe(path):
    interp = load(path)
    tensors = []
    for d in interp.get_tensor_details():
        q = d["quantization_parameters"]
        tensors.append({
            "index": int(d["index"]),
            "name": d["name"],
            "shape": [int(x) for x in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
            "scales": [float(s) for s in q["scales"]],
            "zero_points": [int(z) for z in q["zero_points"]],
            "quantized_dimension": int(q["quantized_dimension"]),
        })
    return {
        "tensors": tensors,
        "inputs": [int(d["index"]) for d in interp.get_input_details()],
        "outputs": [int(d["index"]) for d in interp.get_output_details()],
        "signatures": interp.get_signature_list(),
    }


def random_input(rng, detail):
    dtype = np.dtype(detail["dtype"])
    shape = detail["shape"]
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def compare(path_a, path_b, runs=3):
    a, b = load(path_a), load(path_b)
    rng = np.random.default_rng(1234)
    max_diff = 0.0
    identical = True
    n_values = 0
    for _ in range(runs):
        for da, db in zip(a.get_input_details(), b.get_input_details()):
            x = random_input(rng, da)
            a.set_tensor(da["index"], x)
            b.set_tensor(db["index"], x)
        a.invoke()
        b.invoke()
        for oa, ob in zip(a.get_output_details(), b.get_output_details()):
            ya, yb = a.get_tensor(oa["index"]), b.get_tensor(ob["index"])
            if ya.shape != yb.shape or ya.dtype != yb.dtype or not np.array_equal(ya, yb):
                identical = False
            if ya.shape == yb.shape:
                diff = np.abs(ya.astype(np.float64) - yb.astype(np.float64))
                max_diff = max(max_diff, float(diff.max()) if diff.size else 0.0)
            n_values += int(ya.size)
    return {
        "identical": identical,
        "max_abs_diff": max_diff,
        "n_outputs": len(a.get_output_details()),
        "n_values": n_values,
    }


def main():
    if sys.argv[1] == "describe":
        print(json.dumps(describe(sys.argv[2])))
    elif sys.argv[1] == "compare":
        print(json.dumps(compare(sys.argv[2], sys.argv[3])))
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
