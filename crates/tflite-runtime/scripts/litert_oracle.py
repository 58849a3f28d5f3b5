"""LiteRT oracle for tflite-runtime: its tests and `cargo xtask runtime-bench` run it.

    python3 litert_oracle.py run MANIFEST.json
        MANIFEST: [{"name", "model", "inputs": [npy...], "out_prefix"}]
        Runs every model with OpResolverType.BUILTIN_REF (reference kernels, the bit-exact
        target) and writes PREFIX.ref.K.npy; then with the default resolver (XNNPACK delegate,
        num_threads=1) and writes PREFIX.xnn.K.npy, or PREFIX.xnn.err when that path fails.
        A BUILTIN_REF failure is fatal (non-zero exit naming the case).

    python3 litert_oracle.py time MODEL RUNS WARMUP
        Prints JSON with the median/min/mean invoke time in ms of BUILTIN_REF and of the default
        path (XNNPACK, 1 thread), on random inputs.
"""
import json
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def load(path, ref):
    if ref:
        interp = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    else:
        interp = Interpreter(model_path=path, num_threads=1)
    interp.allocate_tensors()
    return interp


def run_case(case, ref):
    interp = load(case["model"], ref)
    details = interp.get_input_details()
    if len(details) != len(case["inputs"]):
        raise RuntimeError(f"{case['name']}: model has {len(details)} inputs, manifest {len(case['inputs'])}")
    for detail, path in zip(details, case["inputs"]):
        interp.set_tensor(detail["index"], np.load(path).reshape(detail["shape"]))
    interp.invoke()
    tag = "ref" if ref else "xnn"
    for k, detail in enumerate(interp.get_output_details()):
        np.save(f"{case['out_prefix']}.{tag}.{k}.npy", interp.get_tensor(detail["index"]))


def run(manifest):
    with open(manifest) as f:
        cases = json.load(f)
    for case in cases:
        try:
            run_case(case, True)
        except Exception as e:  # noqa: BLE001 - report which case failed
            print(f"BUILTIN_REF failed on {case['name']} ({case['model']}): {e}", file=sys.stderr)
            sys.exit(1)
        try:
            run_case(case, False)
        except Exception as e:  # noqa: BLE001
            with open(f"{case['out_prefix']}.xnn.err", "w") as f:
                f.write(str(e))


def random_inputs(interp, rng):
    out = []
    for d in interp.get_input_details():
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "f":
            out.append(rng.standard_normal(d["shape"]).astype(dtype))
        else:
            info = np.iinfo(dtype)
            out.append(rng.integers(info.min, info.max, size=d["shape"], endpoint=True).astype(dtype))
    return out


def time_model(path, runs, warmup):
    result = {}
    for name, ref in (("builtin_ref", True), ("xnnpack_1thread", False)):
        interp = load(path, ref)
        rng = np.random.default_rng(0)
        for d, x in zip(interp.get_input_details(), random_inputs(interp, rng)):
            interp.set_tensor(d["index"], x)
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


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    elif sys.argv[1] == "time":
        time_model(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
