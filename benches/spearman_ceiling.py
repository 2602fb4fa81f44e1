"""The most Spearman's correlation a prediction can reach against a rubric's dimension scores
when the prediction has no ties, beside what a model reached, per dimension.

A rubric scores many dimensions from a table of a few values (employment type: 0, 0.4 or 1),
so the held-out labels are mostly ties. Spearman (average ranks, as scipy's `spearmanr`) is
the Pearson correlation of the two rank vectors; against labels with average ranks `a`, a
prediction with distinct ranks `r` has cov(a, r) at most var(a) (within a tie `a` is constant,
so only the order between ties counts), and so a correlation of at most sd(a) / sd(r): the
ceiling, whatever the model. A prediction on the rubric's own levels can tie where the labels
tie and is not bound by it.

Run: `python benches/spearman_ceiling.py LABELS VALIDATION [MODEL_CARD]` with the label
stage's `golden.labels.jsonl` and the mix stage's `validation.jsonl` (the held-out real pairs),
and optionally a trained model's `rubric.json` or what `runtime/examples/remeasure.rs` printed
for it, whose `spearman.X` and `spearman.X.continuous` are printed beside. Needs numpy and
scipy (the metrics venv).
"""

import json
import sys

import numpy as np
from scipy.stats import rankdata, spearmanr


def ceiling(truth):
    a = rankdata(truth)  # average ranks, as spearmanr
    r = np.arange(1, len(truth) + 1, dtype=float)
    return float(np.std(a) / np.std(r))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    labels = {}
    with open(sys.argv[1]) as f:
        for line in f:
            row = json.loads(line)
            labels[row["id"]] = row["dimensions"]
    with open(sys.argv[2]) as f:
        held = [json.loads(line)["id"] for line in f]
    metrics = {}
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as f:
            metrics = json.load(f)["metrics"]
    dims = list(labels[held[0]].keys())
    rng = np.random.default_rng(0)
    print(f"{'dimension':<18} {'pairs':>5} {'values':>6} {'ceiling':>8} {'check':>7}"
          f" {'model':>7} {'continuous':>10}")
    ceilings = []
    for d in dims:
        t = np.array([labels[i][d] for i in held if labels[i][d] is not None], float)
        c = ceiling(t)
        # The closed form against scipy on the labels with their ties broken at random.
        check = spearmanr(t, t + rng.normal(0, 1e-9, len(t))).statistic
        ceilings.append(c)
        model = metrics.get(f"spearman.{d}")
        cont = metrics.get(f"spearman.{d}.continuous", model)
        show = lambda v: f"{v:>7.3f}" if v is not None else f"{'':>7}"
        print(f"{d:<18} {len(t):>5} {len(np.unique(t)):>6} {c:>8.3f} {check:>7.3f}"
              f" {show(model)} {show(cont):>10}")
    print(f"{'mean':<18} {'':>5} {'':>6} {np.mean(ceilings):>8.3f}", end="")
    if metrics:
        pa = metrics.get("policy_alignment")
        pc = metrics.get("policy_alignment.continuous", pa)
        print(f" {'':>7} {pa:>7.3f} {pc:>10.3f}")
    else:
        print()


if __name__ == "__main__":
    main()
