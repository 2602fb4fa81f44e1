"""The reference values of rubric-ml's metrics: scikit-learn's and scipy's, on the cases
tests/metrics_reference.rs sends as JSON on standard input; one JSON list of results out."""
import json
import sys

from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score, log_loss, ndcg_score, roc_auc_score

cases = json.load(sys.stdin)
out = []
for case in cases:
    kind = case["kind"]
    if kind == "spearman":
        out.append(float(spearmanr(case["a"], case["b"]).statistic))
    elif kind == "kappa":
        weights = {"unweighted": None, "linear": "linear", "quadratic": "quadratic"}[case["weights"]]
        labels = list(range(case["classes"]))
        out.append(float(cohen_kappa_score(case["a"], case["b"], labels=labels, weights=weights)))
    elif kind == "auc":
        out.append(float(roc_auc_score(case["labels"], case["scores"])))
    elif kind == "log_loss":
        out.append(float(log_loss(case["labels"], case["probabilities"], labels=[0, 1])))
    elif kind == "ndcg":
        out.append(float(ndcg_score([case["relevance"]], [case["scores"]], k=case["k"])))
    else:
        raise SystemExit(f"unknown case {kind}")
json.dump(out, sys.stdout)
