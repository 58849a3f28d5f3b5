#!/usr/bin/env bash
# Wall time of the whole `cargo xtask quantize` against TensorFlow's converter, same machine, same run.
#
#   benches/quantize_vs_tf/run.sh [OUT_DIR]        (default artifacts/quantize_vs_tf)
#
# 1. tf_quantize.py --float-only: IntelAI's U-Net in Keras (fms=16, 128x128, seeded random weights)
#    -> OUT/tf_fp32.tflite (the same float model for both quantisers).
# 2. Timed: the release xtask binary quantises OUT/tf_fp32.tflite end to end (100 synthetic
#    calibration slices, auto observer, verification on 32 held-out slices, report, model writes),
#    saving the calibration slices to OUT/calib.npy.
# 3. Timed inside Python: TFLiteConverter full-int8 PTQ with the same 100 slices.
# Needs `python3 -m pip install tensorflow-cpu`; prints both times and writes OUT/timings.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-artifacts/quantize_vs_tf}
mkdir -p "$OUT"
python3 -c "import tensorflow" 2>/dev/null || { echo "skipped: python3 -c 'import tensorflow' failed (pip install tensorflow-cpu)"; exit 0; }
cargo build --release -p xtask
XTASK="${CARGO_TARGET_DIR:-target}/release/xtask"
python3 benches/quantize_vs_tf/tf_quantize.py --float-only --out "$OUT"
start=$(date +%s.%N)
"$XTASK" quantize --model "$OUT/tf_fp32.tflite" --out "$OUT/ours" --save-calib "$OUT/calib.npy"
end=$(date +%s.%N)
ours=$(python3 -c "print(round($end - $start, 3))")
# TensorFlow prints its own lines to stdout during conversion; the JSON is the last line.
tf_json=$(python3 benches/quantize_vs_tf/tf_quantize.py --calib "$OUT/calib.npy" --out "$OUT" | tail -n 1)
echo "$tf_json"
python3 - "$ours" "$tf_json" "$OUT" <<'PY'
import json, os, sys
ours, tf, out = float(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
result = {"ours_whole_xtask_quantize_s": ours, "cpus": os.cpu_count(), **tf,
          "ours_over_tf": round(ours / tf["tf_int8_conversion_s"], 3),
          "ours_int8_bytes": os.path.getsize(os.path.join(out, "ours", "unet_int8.tflite"))}
json.dump(result, open(os.path.join(out, "timings.json"), "w"), indent=2)
print(f"cargo xtask quantize (whole command): {ours:.2f} s; TF converter (int8 conversion only): "
      f"{tf['tf_int8_conversion_s']:.2f} s; ratio {result['ours_over_tf']:.3f}")
PY
