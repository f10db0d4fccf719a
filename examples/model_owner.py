"""Model owner's side of MDE, in two steps.

    python examples/model_owner.py build --workdir deal/   # publish deal/artifact.mde
    python examples/data_owner.py --workdir deal/          # (the data owner, elsewhere)
    python examples/model_owner.py open --workdir deal/    # price deal/score.mdeseal

The private file deal/proxy.mdeproxy holds the secret key: it never leaves the model owner.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

import mde
from pricing import LinearPricing


def build(workdir: str) -> None:
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    train, test = idx[:500], idx[500:1000]  # the model owner's own data; the rest is not theirs
    model = RandomForestClassifier(n_estimators=200, random_state=0).fit(X[train], y[train])
    proxy = mde.build_proxy(model, X[train], y[train], X[test], y[test], random_state=0)
    artifact_id = proxy.export(os.path.join(workdir, "artifact.mde"))
    proxy.save(os.path.join(workdir, "proxy.mdeproxy"))
    print(
        json.dumps(
            {
                "artifact_id": artifact_id,
                "fidelity": round(proxy.fidelity_, 3),
                "psi_dim": proxy.psi_dim_,
            }
        )
    )


def open_score(workdir: str) -> None:
    proxy = mde.load_proxy(os.path.join(workdir, "proxy.mdeproxy"))
    with open(os.path.join(workdir, "score.mdeseal"), "rb") as fh:
        report = proxy.open(fh.read())
    proxy.save(os.path.join(workdir, "proxy.mdeproxy"))  # remember: this artifact is spent
    quote = LinearPricing(rate=500.0, floor=10.0, cap=400.0).quote(report)
    with open(os.path.join(workdir, "report.json"), "w") as fh:
        fh.write(report.model_dump_json())
    print(quote.model_dump_json())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["build", "open"])
    ap.add_argument("--workdir", default=".")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    build(a.workdir) if a.step == "build" else open_score(a.workdir)
