#!/usr/bin/env bash
# Our quantizer against TensorFlow's converter on TensorFlow's own trained U-Net: accuracy and
# time, same machine, same run, same calibration slices.
#
#   benches/quantize_vs_tf/run.sh [OUT_DIR]        (default artifacts/quantize_vs_tf)
#
# Environment: TRAIN_STEPS (default 100, batch 8), TRAIN_SLICES (512), EVAL_SLICES (64),
# INT16X8=1 to add TF's 16x8 conversion to the table.
#
# 1. `cargo xtask data export`: TRAIN_SLICES phantom slices (train split, seed 42) and EVAL_SLICES
#    held-out ones (test split) with their masks, as .npy.
# 2. tf_quantize.py train: IntelAI's U-Net in Keras (fms=16, 128x128, 1,940,817 parameters),
#    trained TRAIN_STEPS seeded steps on those slices, then TF's float model OUT/tf_fp32.tflite.
# 3. Timed: the release xtask binary quantises OUT/tf_fp32.tflite end to end with its defaults
#    (100 calibration slices: the first 100 of the same train split; its own verification on the
#    first 32 of the same test split), saving the calibration slices to OUT/calib.npy.
# 4. Timed inside Python: TFLiteConverter full-int8 PTQ with those same 100 slices.
# 5. compare.py: both int8 models (and TF's 16x8) against the float model in LiteRT on the
#    held-out slices: output SQNR, Dice, mask agreement, per-layer SQNR.
# 6. Arm Vela (`cargo xtask bench --backends vela:...`): each model's ethos-u55-256 and
#    ethos-u65-256 estimate and how many of its operators stay on the CPU.
# Needs `python3 -m pip install tensorflow-cpu ai-edge-litert`; writes OUT/results.json and
# OUT/results.md and prints the tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-artifacts/quantize_vs_tf}
TRAIN_STEPS=${TRAIN_STEPS:-100}
TRAIN_SLICES=${TRAIN_SLICES:-512}
EVAL_SLICES=${EVAL_SLICES:-64}
mkdir -p "$OUT"
python3 -c "import tensorflow" 2>/dev/null || { echo "skipped: python3 -c 'import tensorflow' failed (pip install tensorflow-cpu)"; exit 0; }
cargo build --release -p xtask
XTASK="${CARGO_TARGET_DIR:-target}/release/xtask"
"$XTASK" data export --split train --count "$TRAIN_SLICES" --out "$OUT/train"
"$XTASK" data export --split test --count "$EVAL_SLICES" --out "$OUT/test"
train_json=$(python3 benches/quantize_vs_tf/tf_quantize.py train --images "$OUT/train_images.npy" \
  --masks "$OUT/train_masks.npy" --steps "$TRAIN_STEPS" --out "$OUT" | tail -n 1)
echo "$train_json"

start=$(date +%s.%N)
"$XTASK" quantize --model "$OUT/tf_fp32.tflite" --out "$OUT/ours" --save-calib "$OUT/calib.npy" \
  | tee "$OUT/ours.log"
end=$(date +%s.%N)
ours=$(python3 -c "print(round($end - $start, 3))")

extra=()
models=(--model "ours int8=$OUT/ours/unet_int8.tflite" --model "TF int8=$OUT/tf_int8.tflite")
reports=(--report "ours int8=$OUT/ours/quant_report.json")
if [ "${INT16X8:-0}" = 1 ]; then
  extra=(--int16x8)
  # Ours in int16x8 and mixed, from the same 100 calibration slices (a second, untimed run).
  "$XTASK" quantize --model "$OUT/tf_fp32.tflite" --out "$OUT/ours16" --calib npy \
    --data-path "$OUT/calib.npy" --precision int16x8,mixed --vela | tee "$OUT/ours16.log"
  models+=(--model "ours int16x8=$OUT/ours16/unet_int16x8.tflite" \
    --model "ours mixed=$OUT/ours16/unet_mixed.tflite" --model "TF 16x8=$OUT/tf_int16x8.tflite")
  reports+=(--report "ours int16x8=$OUT/ours16/quant_report.json" \
    --report "ours mixed=$OUT/ours16/quant_report_mixed.json")
fi
# TensorFlow prints its own lines to stdout during conversion; the JSON is the last line.
tf_json=$(python3 benches/quantize_vs_tf/tf_quantize.py convert --calib "$OUT/calib.npy" --out "$OUT" \
  "${extra[@]}" | tail -n 1)
echo "$tf_json"

python3 benches/quantize_vs_tf/compare.py --fp32 "$OUT/tf_fp32.tflite" "${models[@]}" \
  "${reports[@]}" \
  --images "$OUT/test_images.npy" --masks "$OUT/test_masks.npy" --out "$OUT/accuracy.json" \
  | tee "$OUT/accuracy.md"

# Arm Vela's estimate of each quantised model (and its CPU fallback ops), through `cargo xtask bench`.
for spec in "${models[@]}"; do
  [ "$spec" = --model ] && continue
  name=${spec%%=*}; path=${spec#*=}
  "$XTASK" bench --model "$path" --backends vela:ethos-u55-256,vela:ethos-u65-256 \
    --out "$OUT/vela/${name// /_}" > /dev/null
done

python3 - "$ours" "$train_json" "$tf_json" "$OUT" <<'PY'
import json, os, re, sys
ours, train, tf, out = float(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
acc = json.load(open(os.path.join(out, "accuracy.json")))
vela = {}
for name in acc["models"]:
    path = os.path.join(out, "vela", name.replace(" ", "_"), "report.json")
    if os.path.exists(path):
        rows = json.load(open(path))["rows"]
        vela[name] = {r["backend"].split(":", 1)[1]: r.get("details", {}).get("estimate") or {"status": r["status"], "reason": r.get("reason")}
                      for r in rows}
log = open(os.path.join(out, "ours.log")).read()
floor = re.search(r"compute floor: .*", log)
result = {"cpus": os.cpu_count(), "training": train, "tensorflow": tf, "accuracy": acc,
          "ours_whole_xtask_quantize_s": ours,
          "ours_over_tf_conversion": round(ours / tf["tf_int8_conversion_s"], 3),
          "ours_compute_floor": floor.group(0) if floor else None,
          "ours_int8_bytes": os.path.getsize(os.path.join(out, "ours", "unet_int8.tflite")), "vela": vela}
json.dump(result, open(os.path.join(out, "results.json"), "w"), indent=2)
m = acc["models"]
ours_db, tf_db = m["ours int8"]["output_sqnr_db"], m["TF int8"]["output_sqnr_db"]
lines = [
    f"Keras U-Net trained {train['train_steps']} steps (batch {train['train_batch']}, {train['train_s']} s); "
    f"{acc['slices']} held-out slices, fp32 Dice {acc['dice_fp32']:.4f}",
    f"output SQNR: ours {ours_db:.2f} dB, TF {tf_db:.2f} dB (ours - TF = {ours_db - tf_db:+.2f} dB)",
    f"time: cargo xtask quantize (whole command) {ours:.2f} s; TF converter (int8 conversion only) "
    f"{tf['tf_int8_conversion_s']:.2f} s; ratio {result['ours_over_tf_conversion']:.3f}",
]
if floor:
    lines.append(floor.group(0))
lines.append("")
lines.append("| model | output SQNR | Dice | mask agreement | size | ops (QUANTIZE) | ethos-u55-256 | ethos-u65-256 |")
lines.append("|---|---|---|---|---|---|---|---|")
from ai_edge_litert.interpreter import Interpreter
def op_counts(path):
    if not os.path.exists(path):
        return "–"
    ops = [o["op_name"] for o in Interpreter(model_path=path)._get_ops_details()]
    return f"{len(ops)} ({ops.count('QUANTIZE')})"
sizes = {"ours int8": os.path.join(out, "ours", "unet_int8.tflite"), "TF int8": os.path.join(out, "tf_int8.tflite"),
         "TF 16x8": os.path.join(out, "tf_int16x8.tflite"),
         "ours int16x8": os.path.join(out, "ours16", "unet_int16x8.tflite"),
         "ours mixed": os.path.join(out, "ours16", "unet_mixed.tflite")}
for name, mm in m.items():
    def est(acc_name):
        e = vela.get(name, {}).get(acc_name)
        if not e or "inference_ms" not in e:
            return "–"
        return f"{e['inference_ms']:.2f} ms ({e['npu_ops']} NPU / {e['cpu_ops']} CPU ops)"
    size = os.path.getsize(sizes[name]) if name in sizes and os.path.exists(sizes[name]) else 0
    lines.append(f"| {name} | {mm['output_sqnr_db']:.2f} dB | {mm['dice']:.4f} | {100 * mm['mask_agreement']:.3f} % | "
                 f"{size:,} B | {op_counts(sizes.get(name, ''))} | {est('ethos-u55-256')} | {est('ethos-u65-256')} |")
open(os.path.join(out, "results.md"), "w").write("\n".join(lines) + "\n\n" + open(os.path.join(out, "accuracy.md")).read())
print("\n".join(lines))
PY
