#!/usr/bin/env bash
# Training and forward pairs per second of our pair encoder (`ml/benches/train_speed.rs`, candle)
# against the same architecture in PyTorch (`benches/teacher_speed.py`), at the teacher's and the
# students' shapes, in one invocation: shape by shape, candle then PyTorch, so both see the same
# machine load. Ends with a table of both and the ratio candle / PyTorch, the CPU, the torch
# version and the date. Outside CI: PyTorch is a 5.4 GB virtual environment (its CUDA wheels; no
# CPU-only wheel is reachable) and the default run takes minutes on 2 cores.
#
# Run: `bash benches/teacher_speed.sh [SHAPE ...]` (shapes `LAYERSxHIDDEN[hHEADS]`, default
# `6x384h12 4x256h4 2x128h4`). Environment: STEPS (10), WARMUP (2), BATCH (32), SEQ (128),
# VOCAB (8192), RAYON_NUM_THREADS (all cores; PyTorch gets as many threads),
# RUBRIC_TORCH_VENV (/tmp/rubric-torch-venv), TORCH_VERSION (2.15.0).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${RUBRIC_TORCH_VENV:-/tmp/rubric-torch-venv}
want=${TORCH_VERSION:-2.15.0}
if [ "$#" -gt 0 ]; then
  shapes=("$@")
else
  read -r -a shapes <<<"${SHAPES:-6x384h12 4x256h4 2x128h4}"
fi
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-$(nproc)}

if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "== installing torch into $venv (about 5.4 GB)" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  if ! "$venv/bin/pip" install --no-cache-dir "torch==$want" numpy; then
    echo "== torch $want is not available: installing the newest torch" >&2
    "$venv/bin/pip" install --no-cache-dir torch numpy
  fi
fi
torch_version=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
echo "== torch $torch_version" >&2

echo "== building the candle bench (release)" >&2
bench=$(cargo bench -p rubric-ml --bench train_speed --no-run --message-format=json \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "train_speed" and m.get("executable"):
        print(m["executable"])')
[ -x "$bench" ] || { echo "no train_speed bench binary was built" >&2; exit 1; }

out=$(mktemp /tmp/rubric-teacher-speed.XXXXXX)
trap 'rm -f "$out"' EXIT
for shape in "${shapes[@]}"; do
  "$bench" "$shape" | tee -a "$out"
  "$venv/bin/python" benches/teacher_speed.py "$shape" | tee -a "$out"
done

echo
python3 - "$out" <<'PY'
import sys

rows = {}
for line in open(sys.argv[1]):
    words = line.split()
    if len(words) < 2 or not words[1].startswith("shape="):
        continue
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    rows.setdefault(fields["shape"], {})[words[0]] = (
        float(fields["train_pairs_per_s"]),
        float(fields["forward_pairs_per_s"]),
    )
print(f"{'shape':<8} {'candle train':>12} {'torch train':>12} {'ratio':>6}   "
      f"{'candle fwd':>10} {'torch fwd':>10} {'ratio':>6}")
for shape, r in rows.items():
    (ct, cf), (pt, pf) = r.get("candle", (0.0, 0.0)), r.get("pytorch", (0.0, 0.0))
    ratio = lambda a, b: f"{a / b:6.2f}" if b else "     -"
    print(f"{shape:<8} {ct:12.2f} {pt:12.2f} {ratio(ct, pt)}   {cf:10.2f} {pf:10.2f} {ratio(cf, pf)}")
PY
echo "(pairs per second, batch ${BATCH:-32}, ${SEQ:-128} tokens, ${RAYON_NUM_THREADS} threads; ratio = candle / PyTorch)"
lscpu | grep 'Model name' || true
echo "torch $torch_version"
date -u '+%Y-%m-%d %H:%M UTC'
