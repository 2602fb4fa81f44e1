#!/usr/bin/env python3
"""Side by side: `rubric label` against the same labeling functions in Snorkel.

Labels N pairs (default 100,000) of `policies/job_match.policy` twice:

1. with the rubric binary (`target/release/rubric label --policy ... --pairs ... --out ...`),
   timed as a whole process, wall clock, best of `--repeat` (default 3);
2. with ten Snorkel labeling functions, one per job_match dimension returning the dimension's
   grade and one returning the overall grade, applied with Snorkel's `PandasLFApplier`, timed
   (a) for `.apply(df)` alone and (b) including reading the JSON lines and building the
   DataFrame, best of `--repeat` each.

Then it checks that Snorkel's label matrix equals rubric's grades, converted to the same
integers, on every pair, and exits non-zero (printing the first mismatches) if not. As an extra
check it also compares the dimension scores, the overall score and the list of applied rules
computed by the same Python functions with rubric's output (exact float equality).

Label encoding (Snorkel labels are integers; the grades are the ordinal labels):

- a dimension's LF returns the index of its grade band in declaration order (`skill_match`:
  strong 0, partial 1, weak 2), or ABSTAIN (-1) when the dimension abstains;
- the overall LF returns the index of the `grade overall` band (excellent 0, good 1, fair 2,
  poor 3; `set grade poor` gives 3), 4 for `excluded`, and ABSTAIN (-1) when the overall score
  abstains (voters below `min_coverage`).

The Python functions follow the policy and the standard library (`stdlib/std/*.policy`)
expression by expression, in 64-bit floats and in the same order of operations as rubric's
engine, so grades on band boundaries agree bit for bit. The two adjacency tables and the
dimension weights are read from the policy file; everything else is written out below.

Pairs are either read (`--pairs FILE`) or generated with a fixed seed, in the manner of
`rubric_runtime::random_pairs` (the rubric binary has no pair-generating subcommand): values drawn
from the policy's own literals plus a few strangers, numbers from the policy's thresholds and
their neighbours or uniform in [0, 50), optional fields absent or null a quarter of the time.
Half of the pairs are then nudged towards a match (same title family, the must-have skills,
same location in another case, adjacent seniority...) so that the floor and the upper grades
are exercised too; pure random pairs almost never reach them. Of the others, one in twenty loses
the evidence of the dimensions that can abstain, so that the overall score abstains too.

Not run in CI: needs Snorkel (and so torch) in a virtualenv; see README.md next to this file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "job_match.policy"
RUBRIC = REPO / "target" / "release" / "rubric"

ABSTAIN = -1

# --- The schema and the policy's constants --------------------------------------------------

SENIORITY = ["intern", "entry", "mid", "senior", "lead", "principal", "executive"]
EDUCATION = ["none", "high_school", "associate", "bachelor", "master", "doctorate"]
EMPLOYMENT = ["full_time", "part_time", "contract", "internship"]
SEN_RANK = {v: i for i, v in enumerate(SENIORITY)}
EDU_RANK = {v: i for i, v in enumerate(EDUCATION)}

# (name, type, optional); types: text, string, set, number, bool, or an enum's value list.
JOB = [
    ("title", "text", False),
    ("description", "text", False),
    ("title_family", "string", False),
    ("required_skills", "set", False),
    ("preferred_skills", "set", False),
    ("seniority", SENIORITY, False),
    ("min_years", "number", False),
    ("education", EDUCATION, False),
    ("industry", "string", False),
    ("location", "string", True),
    ("remote", "bool", False),
    ("employment_type", EMPLOYMENT, False),
    ("visa_sponsorship", "bool", False),
    ("start_within_weeks", "number", False),
]
CANDIDATE = [
    ("headline", "text", False),
    ("summary", "text", False),
    ("title_family", "string", False),
    ("skills", "set", False),
    ("seniority", SENIORITY, False),
    ("years_experience", "number", False),
    ("education", EDUCATION, False),
    ("industry", "string", False),
    ("location", "string", True),
    ("open_to_remote", "bool", False),
    ("willing_to_relocate", "bool", False),
    ("needs_sponsorship", "bool", False),
    ("available_in_weeks", "number", True),
    ("last_active_days", "number", False),
    ("preferred_employment", EMPLOYMENT, False),
]

# Grade bands in declaration order: (name, threshold of `score >= t`), `None` for `otherwise`.
BANDS = {
    "skill_match": [("strong", 0.8), ("partial", 0.5), ("weak", None)],
    "seniority": [("exact", 1.0), ("near", 0.6), ("stretch", 0.2), ("mismatch", None)],
    "industry": [("same", 1.0), ("adjacent", 0.5), ("distant", None)],
    "location": [("workable", 0.9), ("possible", 0.5), ("blocked", None)],
    "experience": [("meets", 1.0), ("close", 0.7), ("short", None)],
    "education": [("meets", 1.0), ("near", 0.5), ("below", None)],
    "title_similarity": [("same_family", 1.0), ("related", 0.5), ("unrelated", None)],
    "availability": [("ready", 0.8), ("soon", 0.5), ("unlikely", None)],
    "employment_type": [("wanted", 1.0), ("acceptable", 0.4), ("unwanted", None)],
}
OVERALL_BANDS = [("excellent", 0.85), ("good", 0.65), ("fair", 0.40), ("poor", None)]
OVERALL_NAMES = [b for b, _ in OVERALL_BANDS] + ["excluded"]
MIN_COVERAGE = 0.5

# Rules in declaration order, with their actions.
RULES = [
    ("sponsorship_unavailable", "exclude", None),
    ("onsite_needs_presence", "cap", 0.3),
    ("missing_most_required_skills", "cap", 0.35),
    ("far_below_seniority", "cap", 0.4),
    ("dormant_profile", "cap", 0.5),
    ("bullseye_floor", "floor", 0.65),
    ("internship_for_senior_professional", "set_grade", "poor"),
]


def read_policy(path: Path):
    """Weights, the two adjacency tables and the string literals of the policy."""
    src = path.read_text(encoding="utf-8")
    logic = src.split("// Examples", 1)[0]
    weights = {}
    for name, pct in re.findall(r"^\s*dimension (\w+) weight (\d+(?:\.\d+)?)%", logic, re.M):
        weights[name] = float(pct) / 100
    if list(weights) != list(BANDS):
        sys.exit(f"compare.py: the policy's dimensions {list(weights)} are not the ones this "
                 f"script implements {list(BANDS)}; update the labeling functions")
    tables = {}
    for name, default, body in re.findall(
        r"table (\w+): \(string, string\) -> number default ([0-9.]+) \{(.*?)\n  \}", logic, re.S
    ):
        entries = {}
        for a, b, v in re.findall(r'\("([^"]*)", "([^"]*)"\): ([0-9.]+)', body):
            entries[(a, b)] = float(v)
        tables[name] = (entries, float(default))
    if set(tables) != {"industry_adjacency", "title_family_adjacency"}:
        sys.exit(f"compare.py: unexpected tables {sorted(tables)}")
    literals = {s for (entries, _) in tables.values() for k in entries for s in k}
    literals.add("unclassified")
    return weights, tables, sorted(literals)


WEIGHTS, TABLES, LITERALS = read_policy(POLICY)
WEIGHT_ITEMS = list(WEIGHTS.items())
TOTAL_WEIGHT = 0.0
for _, _w in WEIGHT_ITEMS:
    TOTAL_WEIGHT += _w
IND_TABLE, IND_DEFAULT = TABLES["industry_adjacency"]
TIT_TABLE, TIT_DEFAULT = TABLES["title_family_adjacency"]

# --- The standard library, in 64-bit floats ----------------------------------------------------


def missing(v) -> bool:
    """An optional with no value: absent, null, or NaN once pandas has stored it in a column."""
    return v is None or (isinstance(v, float) and v != v)


def clamp(x, lo, hi):
    # rubric: x.max(lo).min(hi)
    return min(max(x, lo), hi)


def same_text(a, b) -> bool:
    return a.lower() == b.lower()


def coverage(required: set, have: set) -> float:
    if len(required) == 0:
        return 1.0
    return len(required & have) / len(required)


def seniority_gap(a, b) -> float:
    return float(abs(SEN_RANK[a] - SEN_RANK[b]))


def seniority_fit(have, want) -> float:
    return {0.0: 1.0, 1.0: 0.6, 2.0: 0.2}.get(seniority_gap(have, want), 0.0)


def years_fit(have, min_years) -> float:
    if min_years <= 0:
        return 1.0
    if have >= min_years:
        return 1.0
    return clamp(have / min_years, 0, 1)


def education_fit(have, want) -> float:
    if EDU_RANK[have] >= EDU_RANK[want]:
        return 1.0
    return {1: 0.5, 2: 0.2}.get(EDU_RANK[want] - EDU_RANK[have], 0.0)


def ramp(x, lo, hi) -> float:
    if hi - lo <= 0:
        return 1.0 if x >= hi else 0.0
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return clamp((x - lo) / (hi - lo), 0, 1)


def decay(age, half_life) -> float:
    if half_life <= 0:
        return 1.0 if age <= 0 else 0.0
    return clamp(half_life / (half_life + max(age, 0)), 0, 1)


def band(bands, score) -> int:
    for i, (_, t) in enumerate(bands):
        if t is None or score >= t:
            return i
    raise AssertionError("bands end with otherwise")


# --- The dimensions: score or None (abstain) --------------------------------------------------
# `x` is a flattened pair: `q_<field>` for the job, `c_<field>` for the candidate (a pandas row
# in Snorkel, a namespace in the score check).


def score_skill_match(x):
    req, pref, have = set(x.q_required_skills), set(x.q_preferred_skills), set(x.c_skills)
    required = coverage(req, have)
    preferred = coverage(pref, have)
    if len(req) == 0 and len(pref) == 0:
        return None
    if len(req) == 0:
        return preferred
    if len(pref) == 0:
        return required
    return 0.8 * required + 0.2 * preferred


def score_seniority(x):
    return seniority_fit(x.c_seniority, x.q_seniority)


def score_industry(x):
    q, c = x.q_industry, x.c_industry
    if same_text(c, q):
        return 1.0
    return max(IND_TABLE.get((q, c), IND_DEFAULT), IND_TABLE.get((c, q), IND_DEFAULT))


def score_location(x):
    if x.q_remote and x.c_open_to_remote:
        return 1.0
    if x.q_remote:
        return 0.5
    if missing(x.q_location):
        return None
    if missing(x.c_location) and x.c_willing_to_relocate:
        return 0.6
    if missing(x.c_location):
        return None
    if same_text(x.c_location, x.q_location):
        return 1.0
    if x.c_willing_to_relocate:
        return 0.6
    return 0.0


def score_experience(x):
    return years_fit(x.c_years_experience, x.q_min_years)


def score_education(x):
    if x.q_education == "none":
        return None
    return education_fit(x.c_education, x.q_education)


def score_title_similarity(x):
    q, c = x.q_title_family, x.c_title_family
    if q == "unclassified" or c == "unclassified":
        return None
    if q == c:
        return 1.0
    return max(TIT_TABLE.get((q, c), TIT_DEFAULT), TIT_TABLE.get((c, q), TIT_DEFAULT))


def score_availability(x):
    if missing(x.c_available_in_weeks):
        timing = 0.5
    else:
        timing = 1 - ramp(x.c_available_in_weeks, x.q_start_within_weeks, x.q_start_within_weeks + 8)
    activity = decay(x.c_last_active_days, 30)
    return 0.6 * timing + 0.4 * activity


def score_employment_type(x):
    if x.c_preferred_employment == x.q_employment_type:
        return 1.0
    if x.q_employment_type == "internship" or x.c_preferred_employment == "internship":
        return 0.0
    return 0.4


SCORES = {
    "skill_match": score_skill_match,
    "seniority": score_seniority,
    "industry": score_industry,
    "location": score_location,
    "experience": score_experience,
    "education": score_education,
    "title_similarity": score_title_similarity,
    "availability": score_availability,
    "employment_type": score_employment_type,
}


def dimension(name, x):
    """The dimension's score as rubric reports it: clamped to [0, 1], None when it abstains."""
    s = SCORES[name](x)
    if s is None or not math.isfinite(s):
        return None
    return clamp(s, 0.0, 1.0)


def fired_rules(x):
    q_loc, c_loc = x.q_location, x.c_location
    req, have = set(x.q_required_skills), set(x.c_skills)
    gap = seniority_gap(x.c_seniority, x.q_seniority)
    fired = []
    if x.c_needs_sponsorship and not x.q_visa_sponsorship:
        fired.append(0)
    if (not x.q_remote and not missing(q_loc) and not missing(c_loc)
            and not same_text(c_loc, q_loc) and not x.c_willing_to_relocate):
        fired.append(1)
    if len(req) >= 2 and coverage(req, have) < 0.5:
        fired.append(2)
    if SEN_RANK[x.c_seniority] < SEN_RANK[x.q_seniority] and gap >= 3:
        fired.append(3)
    if x.c_last_active_days > 365:
        fired.append(4)
    if (x.q_title_family == x.c_title_family and len(req) >= 3 and coverage(req, have) >= 0.8
            and gap <= 1 and x.c_last_active_days <= 365
            and (x.q_remote or x.c_willing_to_relocate
                 or (not missing(q_loc) and not missing(c_loc) and same_text(c_loc, q_loc)))):
        fired.append(5)
    if x.q_employment_type == "internship" and SEN_RANK[x.c_seniority] >= SEN_RANK["lead"]:
        fired.append(6)
    return fired


def overall(x):
    """(overall score or None, overall grade index or None, applied rule indices)."""
    total, weight = 0.0, 0.0
    for name, w in WEIGHT_ITEMS:
        s = dimension(name, x)
        if s is not None:
            total += w * s
            weight += w
    covered = weight / TOTAL_WEIGHT if TOTAL_WEIGHT > 0 else 0.0
    mean = total / weight if (weight > 0 and covered + 1e-12 >= MIN_COVERAGE) else None
    fired = fired_rules(x)
    excluded = [i for i in fired if RULES[i][1] == "exclude"]
    if excluded:
        return 0.0, OVERALL_NAMES.index("excluded"), excluded
    if mean is None:
        return None, None, []
    o = mean
    caps = [RULES[i][2] for i in fired if RULES[i][1] == "cap"]
    floors = [RULES[i][2] for i in fired if RULES[i][1] == "floor"]
    if caps:
        o = min(o, min(caps))
    if floors:
        o = max(o, max(floors))
    grade = band(OVERALL_BANDS, o)
    set_grades = [i for i in fired if RULES[i][1] == "set_grade"]
    if set_grades:
        grade = OVERALL_NAMES.index(RULES[set_grades[0]][2])
    applied = sorted(i for i in fired if RULES[i][1] in ("cap", "floor", "set_grade"))
    return o, grade, applied


# --- The Snorkel labeling functions ------------------------------------------------------------


def make_lfs():
    from snorkel.labeling import labeling_function

    def dimension_lf(name):
        bands = BANDS[name]

        @labeling_function(name=f"lf_{name}")
        def lf(x):
            s = dimension(name, x)
            return ABSTAIN if s is None else band(bands, s)

        return lf

    @labeling_function(name="lf_overall")
    def lf_overall(x):
        _, grade, _ = overall(x)
        return ABSTAIN if grade is None else grade

    return [dimension_lf(n) for n in BANDS] + [lf_overall]


COLUMNS = list(BANDS) + ["overall"]

# --- Pairs ------------------------------------------------------------------------------------


def policy_numbers():
    """Numbers the policy compares against, and their neighbours (as random_pairs does)."""
    nums = [0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 30.0, 100.0, 365.0, 1000.0, -1.0, 0.25]
    src = POLICY.read_text(encoding="utf-8").split("// Examples", 1)[0]
    code = "\n".join(line.split("//", 1)[0] for line in src.splitlines())
    code = re.sub(r'"[^"]*"', "", code)
    found = {float(n) for n in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w%])", code)}
    for n in sorted(found):
        nums += [n, n - 1, n + 1]
    return sorted(set(nums))


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.words = sorted(set(LITERALS) | {"zz_unknown", "other", "Berlin", "berlin", "", "Ünïcode"})
        self.numbers = policy_numbers()

    def value(self, ty):
        r = self.rng
        if ty == "number":
            if r.random() < 0.5:
                return r.choice(self.numbers)
            return round(r.uniform(0.0, 50.0) * 100.0) / 100.0
        if ty == "bool":
            return r.random() < 0.5
        if ty in ("string", "text"):
            return r.choice(self.words)
        if ty == "set":
            return [r.choice(self.words) for _ in range(r.randrange(6))]
        return r.choice(ty)

    def record(self, fields):
        out = {}
        for name, ty, optional in fields:
            if optional and self.rng.random() < 0.25:
                if self.rng.random() < 0.5:
                    out[name] = None
                continue
            out[name] = self.value(ty)
        return out

    def nudge(self, q, c):
        """Moves a random pair towards a match, each aspect independently."""
        r = self.rng
        case = lambda s: r.choice([s, s.lower(), s.upper(), s.title()])  # noqa: E731
        if r.random() < 0.6:
            c["title_family"] = q["title_family"]
        if r.random() < 0.5:
            q["required_skills"] = r.sample(self.words, r.randrange(2, 6))
        if r.random() < 0.6:
            req = list(dict.fromkeys(q["required_skills"]))
            keep = r.sample(req, max(0, len(req) - (r.random() < 0.3)))
            pref = [s for s in q["preferred_skills"] if r.random() < 0.5]
            c["skills"] = keep + pref + [r.choice(self.words) for _ in range(r.randrange(3))]
        if r.random() < 0.5:
            q["location"] = r.choice(["Berlin", "Munich", "San Francisco Bay Area", "london"])
            c["location"] = case(q["location"]) if r.random() < 0.7 else "Paris"
        if r.random() < 0.5:
            c["industry"] = case(q["industry"])
        if r.random() < 0.5:
            i = SEN_RANK[q["seniority"]] + r.choice([-1, 0, 0, 1])
            c["seniority"] = SENIORITY[min(max(i, 0), len(SENIORITY) - 1)]
        if r.random() < 0.5:
            c["last_active_days"] = r.choice([0.0, 1.0, 7.0, 10.0, 30.0])
        if r.random() < 0.5:
            c["needs_sponsorship"] = False
        if r.random() < 0.3:
            c["preferred_employment"] = q["employment_type"]

    def sparse(self, q, c):
        """Takes away the evidence of the dimensions that can abstain, so that the overall score
        abstains when none of them votes (they hold 55% of the weight)."""
        r = self.rng
        if r.random() < 0.8:
            q["required_skills"], q["preferred_skills"] = [], []
        if r.random() < 0.8:
            q["education"] = "none"
        if r.random() < 0.8:
            q["title_family"] = "unclassified"
        if r.random() < 0.8:
            q["remote"] = False
            q.pop("location", None)

    def pair(self, i):
        q, c = self.record(JOB), self.record(CANDIDATE)
        if self.rng.random() < 0.5:
            self.nudge(q, c)
        elif self.rng.random() < 0.05:
            self.sparse(q, c)
        return {"id": f"p-{i:07d}", "query": q, "candidate": c, "source": "synthetic"}


def write_pairs(path: Path, n: int, seed: int):
    g = Generator(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(g.pair(i), ensure_ascii=False))
            f.write("\n")


def flatten(pair):
    q, c = pair["query"], pair["candidate"]
    row = {"id": pair["id"]}
    for name, _, _ in JOB:
        row["q_" + name] = q.get(name)
    for name, _, _ in CANDIDATE:
        row["c_" + name] = c.get(name)
    return row


def load_rows(path: Path):
    with path.open(encoding="utf-8") as f:
        return [flatten(json.loads(line)) for line in f if line.strip()]


def load_dataframe(path: Path):
    import pandas as pd

    return pd.DataFrame(load_rows(path))


# --- Running ----------------------------------------------------------------------------------


CPU = {}


def cpu_now():
    """CPU seconds (user + system) of this process and of its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best_of(repeat, fn, label):
    """Best wall-clock time of `repeat` runs; the least CPU time of a run goes to CPU[label]."""
    times, cpus, result = [], [], None
    for _ in range(repeat):
        result = None
        c0, t0 = cpu_now(), time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_now() - c0)
    CPU[label] = min(cpus)
    return min(times), times, result


def build_rubric():
    for attempt in range(1, 6):
        p = subprocess.run(["cargo", "build", "--release", "--bin", "rubric"], cwd=REPO)
        if p.returncode == 0:
            return
        print(f"cargo build --release failed (attempt {attempt}); retrying in 60 s", file=sys.stderr)
        time.sleep(60)
    sys.exit("compare.py: cargo build --release keeps failing")


def rubric_matrix(out_path: Path, ids):
    """Rubric's grades as Snorkel-style integers, plus scores and rules for the extra check."""
    rows, extra = [], []
    rule_index = {name: i for i, (name, _, _) in enumerate(RULES)}
    with out_path.open(encoding="utf-8") as f:
        for k, line in enumerate(f):
            lab = json.loads(line)
            if lab["id"] != ids[k]:
                sys.exit(f"compare.py: rubric's line {k + 1} is `{lab['id']}`, expected `{ids[k]}`")
            row = []
            for name, bands in BANDS.items():
                g = lab["grades"][name]
                row.append(ABSTAIN if g is None else [b for b, _ in bands].index(g))
            og = lab["overall_grade"]
            row.append(ABSTAIN if og is None else OVERALL_NAMES.index(og))
            rows.append(row)
            extra.append((lab["dimensions"], lab["overall"], [rule_index[r] for r in lab["rules"]]))
    if len(rows) != len(ids):
        sys.exit(f"compare.py: rubric wrote {len(rows)} labels for {len(ids)} pairs")
    return rows, extra


def describe(col, v):
    if v == ABSTAIN:
        return "ABSTAIN"
    names = OVERALL_NAMES if col == "overall" else [b for b, _ in BANDS[col]]
    return f"{v} ({names[v]})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--pairs-count", type=int, default=100_000, help="pairs to generate")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--pairs", type=Path, help="label these JSON-lines pairs instead of generating")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each side (best is kept)")
    ap.add_argument("--rubric", type=Path, default=RUBRIC, help="the rubric binary")
    ap.add_argument("--no-build", action="store_true", help="do not run `cargo build --release`")
    ap.add_argument("--keep", type=Path, help="keep the pairs and labels in this directory")
    args = ap.parse_args()

    if not args.no_build:
        build_rubric()
    import numpy as np
    import pandas as pd
    import snorkel
    from snorkel.labeling import PandasLFApplier

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rubric-snorkel-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.pairs:
        pairs = args.pairs
    else:
        pairs = work / "pairs.jsonl"
        t0 = time.perf_counter()
        write_pairs(pairs, args.pairs_count, args.seed)
        print(f"generated {args.pairs_count} pairs (seed {args.seed}) in "
              f"{time.perf_counter() - t0:.1f} s: {pairs}")
    labels = work / "labels.jsonl"

    # rubric: the whole process (compile the policy, read, decode, label, write JSON lines).
    cmd = [str(args.rubric), "label", "--policy", str(POLICY), "--pairs", str(pairs), "--out", str(labels)]

    def run_rubric():
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit(f"compare.py: {' '.join(cmd)} failed:\n{p.stderr}")

    load_before = os.getloadavg()
    rubric_s, rubric_all, _ = best_of(args.repeat, run_rubric, "rubric")

    def run_rubric_1():
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"compare.py: {' '.join(cmd)} failed:\n{p.stderr}")

    rubric1_s, rubric1_all, _ = best_of(args.repeat, run_rubric_1, "rubric1")

    # Snorkel: .apply(df) alone, and with the JSON lines read into the DataFrame.
    lfs = make_lfs()
    applier = PandasLFApplier(lfs)
    load_s, load_all, df = best_of(args.repeat, lambda: load_dataframe(pairs), "load")
    n = len(df)
    apply_s, apply_all, L = best_of(args.repeat, lambda: applier.apply(df, progress_bar=False), "apply")

    def load_and_apply():
        return applier.apply(load_dataframe(pairs), progress_bar=False)

    total_s, total_all, L2 = best_of(args.repeat, load_and_apply, "total")

    # The comparison, on every pair.
    ids = list(df["id"])
    R, extra = rubric_matrix(labels, ids)
    R = np.asarray(R, dtype=L.dtype)
    bad = 0
    shown = 0
    lines = None
    for M, what in ((L, "apply(df)"), (L2, "load + apply")):
        if M.shape != R.shape:
            sys.exit(f"compare.py: Snorkel's matrix is {M.shape}, rubric's {R.shape}")
        rows = np.nonzero((M != R).any(axis=1))[0]
        if what == "apply(df)":
            bad = len(rows)
        for i in rows[: max(0, 10 - shown)]:
            if lines is None:
                lines = pairs.read_text(encoding="utf-8").splitlines()
            cols = [COLUMNS[j] for j in np.nonzero(M[i] != R[i])[0]]
            print(f"MISMATCH ({what}) on pair {ids[i]}:")
            for col in cols:
                j = COLUMNS.index(col)
                print(f"  {col}: snorkel {describe(col, int(M[i, j]))}, rubric {describe(col, int(R[i, j]))}")
            print(f"  pair: {lines[i]}")
            shown += 1
        if what != "apply(df)":
            bad = max(bad, len(rows))

    # Extra check: the scores and the applied rules, exactly.
    score_bad = 0
    for k, row in enumerate(df.to_dict("records") if bad == 0 else []):
        x = SimpleNamespace(**row)
        dims, o, rules = extra[k]
        mine = {name: dimension(name, x) for name in BANDS}
        mo, _, mrules = overall(x)
        if mine != dims or mo != o or mrules != rules:
            score_bad += 1
            if score_bad <= 5:
                print(f"SCORE MISMATCH on pair {ids[k]}: python {mine} {mo} {mrules}; "
                      f"rubric {dims} {o} {rules}")

    # Coverage of the comparison: how the labels spread.
    print()
    print("label distribution (rubric, per LF):")
    for j, col in enumerate(COLUMNS):
        vals, counts = np.unique(R[:, j], return_counts=True)
        print(f"  {col:17s} " + ", ".join(f"{describe(col, int(v))}: {c}" for v, c in zip(vals, counts)))
    rule_counts = [0] * len(RULES)
    for _, _, rules in extra:
        for r in rules:
            rule_counts[r] += 1
    print("  applied rules    " + ", ".join(f"{RULES[i][0]}: {c}" for i, c in enumerate(rule_counts)))

    fmt = lambda s: f"{s:.3f} s ({n / s:,.0f} pairs/s)"  # noqa: E731
    print()
    print(f"pairs: {n} ({pairs}); cores: {os.cpu_count()}; snorkel {snorkel.__version__}, "
          f"pandas {pd.__version__}, python {sys.version.split()[0]}")
    print(f"rubric label (whole process)        best {fmt(rubric_s)}  runs {['%.3f' % t for t in rubric_all]}")
    print(f"rubric label, RAYON_NUM_THREADS=1   best {fmt(rubric1_s)}  runs {['%.3f' % t for t in rubric1_all]}")
    print(f"snorkel PandasLFApplier.apply(df)   best {fmt(apply_s)}  runs {['%.3f' % t for t in apply_all]}")
    print(f"snorkel JSONL -> DataFrame only     best {load_s:.3f} s  runs {['%.3f' % t for t in load_all]}")
    print(f"snorkel JSONL -> DataFrame + apply  best {fmt(total_s)}  runs {['%.3f' % t for t in total_all]}")
    print("least CPU seconds (user + system) of one run: " + ", ".join(f"{k} {v:.3f}" for k, v in CPU.items()))
    print(f"ratio, snorkel apply only / rubric whole run:       {apply_s / rubric_s:.1f}x")
    print(f"ratio, snorkel load + apply / rubric whole run:     {total_s / rubric_s:.1f}x")
    print(f"ratio, snorkel load + apply / rubric on 1 thread:   {total_s / rubric1_s:.1f}x")
    print(f"load average before the runs {load_before}, after {os.getloadavg()}")
    print(f"grade mismatches: {bad} of {n} pairs; score/rule mismatches: {score_bad}")
    if bad or score_bad:
        sys.exit(1)
    print("the label matrices agree on every pair")


if __name__ == "__main__":
    main()
