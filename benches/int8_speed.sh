#!/usr/bin/env bash
# The student's forward pass, pairs per second, side by side in one invocation: our inference
# encoder (f32, int8, and candle's Q8_0 QMatMul in its layers; `runtime/examples/int8_speed.rs`)
# against ONNX Runtime on the same model exported from the safetensors and quantized with its
# `quantize_dynamic` (per channel; `benches/onnx_peer.py`), batch size by batch size, ours then
# theirs, so both see the same machine load. Both use every core (ONNX Runtime intra-op threads
# = rayon threads). Ends with a table and the ratios. Outside CI: ONNX Runtime lives in a venv
# under /tmp.
#
# Run: `bash benches/int8_speed.sh MODEL_DIR [PRUNED_DIR]` — MODEL_DIR a distill stage's
# `model/`, PRUNED_DIR a quantize stage's. Environment: BATCHES (1 32 100), SEQ (96), SECONDS_EACH
# (3), RUBRIC_ONNX_VENV (/tmp/rubric-onnx-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:?usage: bash benches/int8_speed.sh MODEL_DIR [PRUNED_DIR]}
pruned=${2:-}
venv=${RUBRIC_ONNX_VENV:-/tmp/rubric-onnx-venv}
threads=${RAYON_NUM_THREADS:-$(nproc)}
export RAYON_NUM_THREADS=$threads
read -r -a batches <<<"${BATCHES:-1 32 100}"
seq=${SEQ:-96}
seconds=${SECONDS_EACH:-3}

if ! "$venv/bin/python" -c 'import onnx, onnxruntime, safetensors, numpy' 2>/dev/null; then
  echo "== installing onnx 1.23.2 and onnxruntime 1.31.1 into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet onnx==1.23.2 onnxruntime==1.31.1 numpy safetensors
fi
echo "== building the example (release)" >&2
cargo build --release --quiet -p rubric-runtime --example int8_speed
ours=target/release/examples/int8_speed
out=$(mktemp -d)
# Export and quantize once; time batch by batch.
"$venv/bin/python" benches/onnx_peer.py --model "$model" --out "$out/onnx" --check --no-bench >&2

results="$out/results.jsonl"
for b in "${batches[@]}"; do
  echo "== batch $b" >&2
  args=("$model" --batches "$b" --seq "$seq" --seconds "$seconds")
  [ -n "$pruned" ] && args+=(--pruned "$pruned")
  "$ours" "${args[@]}" | tee -a "$results"
  "$venv/bin/python" benches/onnx_peer.py --model "$model" --out "$out/onnx" --threads "$threads" \
    --batches "$b" --seq "$seq" --seconds "$seconds" | grep '^{"peer"' | tee -a "$results"
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows:
    by[(r["peer"], r["precision"], r["batch"])] = r["pairs_per_second"]
batches = sorted({r["batch"] for r in rows})
models = [(p, q) for p, q in dict.fromkeys((r["peer"], r["precision"]) for r in rows)]
print()
print("| model | " + " | ".join(f"batch {b}" for b in batches) + " |")
print("| --- | " + " | ".join("---:" for _ in batches) + " |")
for p, q in models:
    print(f"| {p} {q} | " + " | ".join(f"{by.get((p, q, b), float('nan')):.0f}" for b in batches) + " |")
print()
for b in batches:
    ours, f32, ort8, ortf = (by.get(k) for k in [("rubric", "int8", b), ("rubric", "f32", b), ("onnxruntime", "int8", b), ("onnxruntime", "f32", b)])
    parts = []
    if ours and f32: parts.append(f"int8/f32 {ours / f32:.2f}x")
    if ours and ort8: parts.append(f"int8/ORT int8 {ours / ort8:.2f}x")
    if ours and ortf: parts.append(f"int8/ORT f32 {ours / ortf:.2f}x")
    q8 = by.get(("rubric", "candle_q8_0", b))
    if ours and q8: parts.append(f"int8/candle Q8_0 {ours / q8:.2f}x")
    print(f"batch {b}: " + ", ".join(parts))
PY
echo "pairs of $seq word pieces, $threads threads; $(lscpu | grep 'Model name' | sed 's/  */ /g'); $(date -u +%F)"
rm -rf "$out"
