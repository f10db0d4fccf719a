"""Data owner's side of MDE: score local data against a published artifact.

    python examples/data_owner.py --workdir deal/

Reads deal/artifact.mde, scores this owner's records on this machine, and writes
deal/score.mdeseal: one encrypted, masked score and a commitment to the records. The data
never leaves; the model owner learns only the score.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from sklearn.datasets import load_digits

import mde

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--per-record", action="store_true")
    a = ap.parse_args()

    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    mine = idx[1000:1400]  # records the model owner does not have

    scorer = mde.load_artifact(os.path.join(a.workdir, "artifact.mde"))  # checks every hash
    print(
        "artifact reveals:",
        scorer.manifest.model_dump(include={"proxy_kind", "n_features", "psi_dim", "classes"}),
    )
    sealed = scorer.score(X[mine], y[mine], per_record=a.per_record)
    with open(os.path.join(a.workdir, "score.mdeseal"), "wb") as fh:
        fh.write(sealed.to_bytes())
    np.savez(
        os.path.join(a.workdir, "delivery.npz"), X=X[mine], y=y[mine]
    )  # handed over after payment
    print(json.dumps({"n_records": sealed.n_records, "commitment": sealed.commitment}))
