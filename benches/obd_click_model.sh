#!/usr/bin/env bash
# The feature click model against scikit-learn's logistic regression on the real Open Bandit
# sample, in one invocation: this script owns only running the pair and printing their lines.
# Both read the random-policy "all" campaign from the pinned obp-0.4.1 wheel and split it by time
# (first 80% train, last 20% test): `runtime/examples/obd_click_model.rs` (ours, candle) then
# `benches/obd_logreg.py` (scikit-learn). Prints both result lines, the wall time of each command,
# the CPU and the date. The Rust example is built first, so its wall time is the run's, not the
# compile's.
#
# Run: `bash benches/obd_click_model.sh`. Environment: RUBRIC_OBP_WHEEL (default
# ~/.cache/rubric/obp/obp-0.4.1-py3-none-any.whl), RUBRIC_METRICS_VENV (default
# ~/.cache/rubric/metrics-venv, scikit-learn 1.9.1).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${RUBRIC_METRICS_VENV:-$HOME/.cache/rubric/metrics-venv}
python=$venv/bin/python
if ! "$python" -c 'import sklearn' 2>/dev/null; then
  echo "no scikit-learn at $python: create the venv with scikit-learn 1.9.1 (RUBRIC_METRICS_VENV)" >&2
  exit 1
fi

echo "== building the example (release)" >&2
cargo build --release -q -p rubric-runtime --example obd_click_model

out=$(mktemp /tmp/rubric-obd-click.XXXXXX)
times=$(mktemp /tmp/rubric-obd-click-times.XXXXXX)
trap 'rm -f "$out" "$times"' EXIT

echo "== cargo run --release -p rubric-runtime --example obd_click_model" >&2
/usr/bin/time -f %e -o "$times" \
  cargo run --release -q -p rubric-runtime --example obd_click_model | tee -a "$out"
rust_wall=$(tail -n 1 "$times")

echo "== $python benches/obd_logreg.py" >&2
/usr/bin/time -f %e -o "$times" "$python" benches/obd_logreg.py | tee -a "$out"
python_wall=$(tail -n 1 "$times")

echo
grep -E '^(rubric feature model|sklearn logistic regression):' "$out"
echo "wall time: rubric example ${rust_wall}s (cargo run, already built), scikit-learn script ${python_wall}s"
lscpu | grep 'Model name'
echo "nproc: $(nproc)"
date -u '+date: %Y-%m-%d %H:%M:%S UTC'
