#!/usr/bin/env bash
# Peak memory of `rubric data clean` (job_match's clean block) on large click logs, to show it
# grows with distinct sessions, not rows: 1M and 10M rows over the same 100k sessions, and 10M
# rows over 1M sessions. The logs are written by a fast streaming generator (below: rows of the
# documented click format, sessions interleaved round-robin as a live log is, 2% bot sessions that
# click every result twice a second, 0.5% of human clicks with a dwell of a day); the release
# binary runs under /usr/bin/time -v and the peak RSS is reported.
#
#   benches/clean_memory.sh [WORKDIR]     (default: a temporary directory; needs ~3.5 GB of disk)
#
# Environment: SIZES="rows:sessions ..." to change the runs (default below).
set -euo pipefail
cd "$(dirname "$0")/.."

work="${1:-$(mktemp -d)}"
mkdir -p "$work"
sizes="${SIZES:-1000000:100000 10000000:100000 10000000:1000000}"

cargo build --release --quiet --bin rubric
rubric="target/release/rubric"

generate() { # rows sessions out
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
rows, sessions, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(7)
base = 1793520000.0  # 2026-11-01T08:00:00Z
bot = [s % 50 == 0 for s in range(sessions)]
start = [base + rng.uniform(0, 86400) for _ in range(sessions)]
step = [0.5 if b else 20.0 for b in bot]
query = [f"q-{rng.randrange(5000)}" for _ in range(sessions)]
import time
def ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
with open(out, "w", buffering=1 << 20) as f:
    buf = []
    for i in range(rows):
        s = i % sessions
        k = i // sessions
        t = start[s] + k * step[s]
        pos = k % 10 + 1
        clicked = bot[s] or rng.random() < 0.3 / pos
        row = (f'{{"query_id":"{query[s]}","candidate_id":"c-{(s * 31 + k) % 200000}",'
               f'"ts":"{ts(t)}","position":{pos},"clicked":{"true" if clicked else "false"},'
               f'"session":"s-{s}"')
        if clicked:
            dwell = 1.0 if bot[s] else (86400.0 if rng.random() < 0.005 else round(rng.lognormvariate(3.2, 0.9), 1))
            row += f',"dwell_seconds":{dwell}'
        buf.append(row + f',"propensity":{1.0 / pos:.6f}}}\n')
        if len(buf) == 65536:
            f.write("".join(buf))
            buf.clear()
    f.write("".join(buf))
PY
}

printf "%-12s %-10s %-10s %-12s %-10s %s\n" rows sessions log_MB peak_RSS_MB seconds dropped
for size in $sizes; do
  rows="${size%%:*}"
  sessions="${size##*:}"
  log="$work/clicks-$rows-$sessions.jsonl"
  [ -f "$log" ] || generate "$rows" "$sessions" "$log"
  /usr/bin/time -v "$rubric" data clean --pipeline policies/job_match.policy --clicks "$log" \
    --out "$work/clean.jsonl" --report "$work/report-$rows-$sessions.json" \
    2>"$work/time-$rows-$sessions.txt" >/dev/null
  rss_kb=$(grep "Maximum resident set size" "$work/time-$rows-$sessions.txt" | awk '{print $NF}')
  wall=$(grep "Elapsed (wall clock)" "$work/time-$rows-$sessions.txt" | awk '{print $NF}')
  dropped=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['rows']['dropped'], 'of', r['rows']['in'])" "$work/report-$rows-$sessions.json")
  printf "%-12s %-10s %-10s %-12s %-10s %s\n" "$rows" "$sessions" \
    "$(( $(stat -c %s "$log") / 1000000 ))" "$(( rss_kb / 1024 ))" "$wall" "$dropped"
  rm -f "$work/clean.jsonl"
done
