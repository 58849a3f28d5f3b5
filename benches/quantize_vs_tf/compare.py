"""Accuracy of quantised U-Nets against their float original, through LiteRT, for run.sh.

    python3 compare.py --fp32 tf_fp32.tflite --model ours=ours/unet_int8.tflite --model tf=tf_int8.tflite \
        --images test_images.npy --masks test_masks.npy --out accuracy.json

Every model runs in LiteRT on the same held-out slices: the float model with LiteRT's builtin
kernels (no delegate, so its intermediate tensors stay readable), each quantised model with
the reference kernels (`BUILTIN_REF`, the semantics both quantisers target). Per model:
- output SQNR: 10·log10(Σ f² / Σ (f − dequant(q))²) over every output pixel of every slice;
- Dice: mean per-slice Dice of the mask (probability > 0.5) against the ground truth,
  (2·|P∩T| + 1e-4) / (|P| + |T| + 1e-4), the definition `cargo xtask quantize` reports;
- mask agreement: share of pixels where the quantised and the float masks agree;
- per-layer SQNR: every operator output against the float model's, operators matched by type
  and order (QUANTIZE/DEQUANTIZE and the float model's shape ops are skipped). A model quantised
  by `cargo xtask quantize` holds its equalised concatenation inputs rescaled per channel; with
  `--report NAME=quant_report.json` those channels are divided back by the factors the report
  lists, so the comparison is with the original float tensor.
Prints a Markdown table and writes the JSON.
"""
import argparse
import json
import re

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

SKIPPED = {"QUANTIZE", "DEQUANTIZE", "SHAPE", "STRIDED_SLICE", "PACK"}
LAYER = re.compile(r"(encode[0-9E][ab]|decode[0-9][ab]|up[0-9]|concat[0-9]|pool[0-9]|PredictionMask)")


def interpreter(path, resolver):
    interp = Interpreter(model_path=path, experimental_op_resolver_type=resolver,
                         experimental_preserve_all_tensors=True)
    inp = interp.get_input_details()[0]
    if list(inp["shape"]) != [1, 128, 128, 1] and -1 in list(inp.get("shape_signature", [])):
        interp.resize_tensor_input(inp["index"], [1] + list(inp["shape"][1:]))
    interp.allocate_tensors()
    return interp


def layer_ops(interp):
    """(op name, output tensor index) of every operator that computes a layer, in order."""
    return [(op["op_name"], op["outputs"][0]) for op in interp._get_ops_details() if op["op_name"] not in SKIPPED]


def label(name, op, k):
    m = LAYER.search(name)
    return m.group(1) if m else f"{op}#{k}"


def quantize(x, detail):
    scale, zp = detail["quantization"]
    if scale == 0:
        return x.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(detail["dtype"])


def dequantize(q, detail):
    scale, zp = detail["quantization"]
    if scale == 0:
        return q.astype(np.float32)
    return (q.astype(np.float32) - zp) * scale


def dice(prob, mask):
    p, t = prob > 0.5, mask == 1.0
    return (2.0 * np.sum(p & t) + 1e-4) / (np.sum(p) + np.sum(t) + 1e-4)


def sqnr(signal, noise):
    return None if noise <= 0 else 10.0 * np.log10(max(signal, 1e-300) / noise)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH")
    parser.add_argument("--images", required=True)
    parser.add_argument("--masks", required=True)
    parser.add_argument("--report", action="append", default=[], help="NAME=quant_report.json")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rescaled, notes = {}, []
    for spec in args.report:
        name, path = spec.split("=", 1)
        per_tensor = {}
        report = json.load(open(path))
        for l in report.get("logistic_inputs", []):
            lo, hi = l["chosen_range"]
            notes.append(f"{name} clips `{l['name']}` to [{lo:.2f}, {hi:.2f}] on purpose: the LOGISTIC input range is "
                         f"chosen against the error after the sigmoid, so that tensor's own SQNR is low by design")
        for e in report.get("equalized", []):
            f = np.asarray(e["factors"], dtype=np.float64)
            per_tensor.setdefault(e["tensor"], []).append((0, f))
            per_tensor.setdefault(e["concatenation"], []).append((e["offset"], f))
        rescaled[name] = per_tensor
    images = np.load(args.images).astype(np.float32)
    masks = np.load(args.masks).astype(np.float32)
    images = images.reshape(images.shape[0], 128, 128, 1)
    masks = masks.reshape(images.shape)

    fp = interpreter(args.fp32, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    fp_ops = layer_ops(fp)
    fp_in, fp_out = fp.get_input_details()[0], fp.get_output_details()[0]
    float_layers, float_outputs = [], []
    for x in images:
        fp.set_tensor(fp_in["index"], x[None])
        fp.invoke()
        float_outputs.append(fp.get_tensor(fp_out["index"]).reshape(-1).copy())
        float_layers.append([fp.get_tensor(t).copy() for _, t in fp_ops])
    fp_details = {d["index"]: d for d in fp.get_tensor_details()}
    labels, seen = [], {}
    for op, t in fp_ops:
        seen[op] = seen.get(op, 0) + 1
        labels.append(label(fp_details[t]["name"], op, seen[op]))

    results = {"slices": int(images.shape[0]), "models": {}}
    dice_fp32 = float(np.mean([dice(f, m.reshape(-1)) for f, m in zip(float_outputs, masks)]))
    results["dice_fp32"] = dice_fp32
    for spec in args.model:
        name, path = spec.split("=", 1)
        q = interpreter(path, OpResolverType.BUILTIN_REF)
        q_ops = layer_ops(q)
        kinds = [op for op, _ in q_ops]
        if kinds != [op for op, _ in fp_ops]:
            raise SystemExit(f"{path}: its operators {kinds} do not match the float model's {[o for o, _ in fp_ops]}")
        q_details = {d["index"]: d for d in q.get_tensor_details()}
        q_in, q_out = q.get_input_details()[0], q.get_output_details()[0]
        sig, noise = np.zeros(len(q_ops)), np.zeros(len(q_ops))
        out_sig = out_noise = 0.0
        agree = pixels = 0
        dices = []
        for i, x in enumerate(images):
            q.set_tensor(q_in["index"], quantize(x[None], q_in))
            q.invoke()
            out = dequantize(q.get_tensor(q_out["index"]), q_out).reshape(-1)
            f = float_outputs[i]
            out_sig += float(np.sum(f.astype(np.float64) ** 2))
            out_noise += float(np.sum((f.astype(np.float64) - out) ** 2))
            agree += int(np.sum((f > 0.5) == (out > 0.5)))
            pixels += f.size
            dices.append(dice(out, masks[i].reshape(-1)))
            for k, (_, t) in enumerate(q_ops):
                d = dequantize(q.get_tensor(t), q_details[t]).astype(np.float64)
                for offset, f in rescaled.get(name, {}).get(q_details[t]["name"], []):
                    d[..., offset:offset + f.size] /= f
                fl = float_layers[i][k].astype(np.float64)
                sig[k] += np.sum(fl ** 2)
                noise[k] += np.sum((fl - d) ** 2)
        results["models"][name] = {
            "path": path,
            "output_sqnr_db": sqnr(out_sig, out_noise),
            "dice": float(np.mean(dices)),
            "dice_delta": float(np.mean(dices)) - dice_fp32,
            "mask_agreement": agree / pixels,
            "per_layer_sqnr_db": [
                {"layer": labels[k], "op": fp_ops[k][0], "sqnr_db": sqnr(sig[k], noise[k])} for k in range(len(q_ops))
            ],
        }
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)

    names = list(results["models"])
    fmt = lambda v: "exact" if v is None else f"{v:.1f}"
    print(f"held-out slices: {results['slices']}; fp32 Dice {dice_fp32:.4f}\n")
    print("| | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    rows = [("output SQNR (dB)", lambda m: fmt(m["output_sqnr_db"])),
            ("Dice vs ground truth", lambda m: f"{m['dice']:.4f}"),
            ("ΔDice vs fp32", lambda m: f"{m['dice_delta']:+.4f}"),
            ("mask agreement", lambda m: f"{100 * m['mask_agreement']:.3f} %")]
    for title, cell in rows:
        print(f"| {title} | " + " | ".join(cell(results["models"][n]) for n in names) + " |")
    print("\nper-layer SQNR (dB)\n")
    print("| layer | op | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 2) + "|")
    for k, lab in enumerate(labels):
        cells = [fmt(results["models"][n]["per_layer_sqnr_db"][k]["sqnr_db"]) for n in names]
        print(f"| {lab} | {fp_ops[k][0]} | " + " | ".join(cells) + " |")
    for note in notes:
        print(f"\nnote: {note}")


if __name__ == "__main__":
    main()
