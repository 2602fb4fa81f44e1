#!/usr/bin/env bash
# Growth of `rubric check` (and `rubric fmt --check` where the file fits its 1 MiB limit) with
# the size of one kind of declaration: rules, fields of one entity, and diagnostics (one unknown
# field per rule), at a quarter, a half and all of the sizes issue 11 measured (100,000 rules:
# 39 s, 88,000 fields: 15.7 s, 17,000 diagnostics: 45 s, growing quadratically). Linear growth
# doubles the time from one size to the next; quadratic quadruples it.
#
# Run: `cargo build --release && bash benches/scale.sh` (outside CI: it takes about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
rubric=${RUBRIC:-target/release/rubric}
work=$(mktemp -d /tmp/rubric-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT

generate() { # kind n
  python3 - "$1" "$2" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
fields = "a: number"
if kind == "fields":
    fields = " ".join(f"f{i}: number" for i in range(n))
out = ["policy p version 1 {", f"  entity Q {{ {fields} }}", "  entity C { b: number }",
       "  pair query: Q, candidate: C",
       "  dimension d weight 100%% { score = clamp(query.%s, 0, 1) }" % ("f0" if kind == "fields" else "a")]
if kind == "rules":
    out += [f'  rule r{i} {{ when query.a > {i} cap overall at 0.5 because "x" }}' for i in range(n)]
if kind == "diagnostics":
    out += [f'  rule r{i} {{ when query.zz{i} > 1 cap overall at 0.5 because "x" }}' for i in range(n)]
out += ["  grade overall { good when overall >= 0.5  poor otherwise }", "}"]
print("\n".join(out))
PY
}

seconds() { # command...: wall seconds of the best of three runs
  local best=""
  for _ in 1 2 3; do
    local start end t
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc -l)
    if [ -z "$best" ] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
  done
  printf '%.3f' "$best"
}

printf '| case | n | bytes | check (s) | check --error-format json (s) |\n| --- | ---: | ---: | ---: | ---: |\n'
for spec in "rules 100000" "fields 88000" "diagnostics 17000"; do
  set -- $spec
  kind=$1 full=$2
  for n in $((full / 4)) $((full / 2)) "$full"; do
    file="$work/$kind-$n.policy"
    generate "$kind" "$n" >"$file"
    human=$(seconds "$rubric" check --max-file-bytes 67108864 "$file")
    json=$(seconds "$rubric" check --max-file-bytes 67108864 --error-format json "$file")
    printf '| %s | %d | %d | %s | %s |\n' "$kind" "$n" "$(stat -c %s "$file")" "$human" "$json"
  done
done
