"""The LiteRT oracle of the workspace: every comparison with LiteRT's Python interpreter
(pip ai-edge-litert) goes through this one script, run by the `litert-oracle` crate as
`python3 -c SCRIPT COMMAND ARGS...`.

RESOLVER is `ref` (OpResolverType.BUILTIN_REF: LiteRT's reference kernels, the bit-exact target)
or `default` (the default resolver: XNNPACK delegate where it applies).

    run MANIFEST.json
        MANIFEST: [{"name", "model", "inputs": [npy...], "out_prefix"}]. Runs every model with
        `ref` and writes PREFIX.ref.K.npy, then with `default` (1 thread) and writes
        PREFIX.xnn.K.npy, or PREFIX.xnn.err when that path fails. A `ref` failure is fatal
        (non-zero exit naming the case).

    batch MODEL INPUTS.npy OUTPUTS.npy RESOLVER THREADS
        INPUTS holds N samples of the first input, already in its dtype; each is reshaped to the
        input's shape and run; the N first outputs are saved stacked.

    signature MODEL INPUT.f32 OUTPUT.f32
        Runs the `serving_default` signature with its `input` argument (raw little-endian f32,
        reshaped to the input's shape) and writes its `output` as raw little-endian f32.

    time MODEL RUNS WARMUP [THREADS]
        Prints JSON with the median/min/mean invoke time in ms of `ref` and of `default`
        (1 thread, and THREADS threads when given and above 1), on seeded random inputs.

    describe MODEL
        Prints JSON: every tensor (name, shape, dtype, quantisation), inputs, outputs, signatures.

    compare MODEL_A MODEL_B
        Runs both (`ref`) on the same seeded random inputs; prints JSON: identical, max_abs_diff.
"""
import json
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def load(path, resolver="ref", threads=1):
    if resolver == "ref":
        interp = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    elif resolver == "default":
        interp = Interpreter(model_path=path, num_threads=int(threads))
    else:
        raise SystemExit(f"unknown resolver {resolver!r} (ref or default)")
    interp.allocate_tensors()
    return interp


def random_input(rng, detail):
    dtype = np.dtype(detail["dtype"])
    shape = detail["shape"]
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def run_case(case, resolver):
    interp = load(case["model"], resolver)
    details = interp.get_input_details()
    if len(details) != len(case["inputs"]):
        raise RuntimeError(f"{case['name']}: model has {len(details)} inputs, manifest {len(case['inputs'])}")
    for detail, path in zip(details, case["inputs"]):
        interp.set_tensor(detail["index"], np.load(path).reshape(detail["shape"]))
    interp.invoke()
    tag = "ref" if resolver == "ref" else "xnn"
    for k, detail in enumerate(interp.get_output_details()):
        np.save(f"{case['out_prefix']}.{tag}.{k}.npy", interp.get_tensor(detail["index"]))


def run(manifest):
    with open(manifest) as f:
        cases = json.load(f)
    for case in cases:
        try:
            run_case(case, "ref")
        except Exception as e:  # noqa: BLE001 - report which case failed
            print(f"BUILTIN_REF failed on {case['name']} ({case['model']}): {e}", file=sys.stderr)
            sys.exit(1)
        try:
            run_case(case, "default")
        except Exception as e:  # noqa: BLE001
            with open(f"{case['out_prefix']}.xnn.err", "w") as f:
                f.write(str(e))


def batch(model, inputs, outputs, resolver, threads):
    interp = load(model, resolver, threads)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    results = []
    for x in np.load(inputs):
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"]))
        interp.invoke()
        results.append(interp.get_tensor(out["index"]).copy())
    np.save(outputs, np.stack(results))


def signature(model, inputs, outputs):
    interp = Interpreter(model_path=model)
    interp.allocate_tensors()
    runner = interp.get_signature_runner("serving_default")
    detail = interp.get_input_details()[0]
    x = np.fromfile(inputs, dtype="<f4").reshape(detail["shape"])
    result = runner(input=x)
    np.asarray(result["output"], dtype="<f4").tofile(outputs)


def time_model(path, runs, warmup, threads=1):
    result = {}
    variants = [("builtin_ref", "ref", 1), ("xnnpack_1thread", "default", 1)]
    if threads > 1:
        variants.append((f"xnnpack_{threads}threads", "default", threads))
    for name, resolver, n in variants:
        interp = load(path, resolver, n)
        rng = np.random.default_rng(0)
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], random_input(rng, d))
        for _ in range(warmup):
            interp.invoke()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            interp.invoke()
            times.append((time.perf_counter() - t0) * 1e3)
        result[name] = {
            "median_ms": float(np.median(times)),
            "min_ms": float(np.min(times)),
            "mean_ms": float(np.mean(times)),
            "runs": runs,
        }
    print(json.dumps(result))


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
    print(json.dumps({
        "tensors": tensors,
        "inputs": [int(d["index"]) for d in interp.get_input_details()],
        "outputs": [int(d["index"]) for d in interp.get_output_details()],
        "signatures": interp.get_signature_list(),
    }))


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
    print(json.dumps({
        "identical": identical,
        "max_abs_diff": max_diff,
        "n_outputs": len(a.get_output_details()),
        "n_values": n_values,
    }))


COMMANDS = {
    "run": (run, 1),
    "batch": (batch, 5),
    "signature": (signature, 3),
    "time": (lambda m, r, w, t="1": time_model(m, int(r), int(w), int(t)), (3, 4)),
    "describe": (describe, 1),
    "compare": (compare, 2),
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.exit(f"usage: COMMAND ARGS... with COMMAND one of {', '.join(COMMANDS)}\n\n{__doc__}")
    command, arity = COMMANDS[argv[0]]
    low, high = arity if isinstance(arity, tuple) else (arity, arity)
    if not low <= len(argv) - 1 <= high:
        sys.exit(f"{argv[0]} takes {arity} arguments, got {len(argv) - 1}\n\n{__doc__}")
    command(*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
