"""Model owner's side of MDE, in three steps.

    python examples/model_owner.py build --workdir deal/    # publish deal/artifact.mde
    python examples/data_owner.py score --workdir deal/     # (the data owner, elsewhere)
    python examples/model_owner.py open --workdir deal/     # price deal/score.mdeseal
    python examples/data_owner.py deliver --workdir deal/   # (the data owner accepts)
    python examples/model_owner.py settle --workdir deal/   # verify the records, settle
    python examples/data_owner.py accept --workdir deal/    # (the data owner records it)

The private file deal/proxy.mdeproxy holds w: it never leaves the model owner.
The model owner's ledger ($MDE_HOME/owner-ledger.sqlite) keeps the artifact's secrets, the
one evaluation, the quote and the settlement.
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

PRICING = LinearPricing(rate=500.0, floor=10.0, cap=400.0)


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
                "buyer_key": proxy.identity.public_hex,
            }
        )
    )


def open_score(workdir: str) -> None:
    proxy = mde.load_proxy(os.path.join(workdir, "proxy.mdeproxy"))
    with open(os.path.join(workdir, "score.mdeseal"), "rb") as fh:
        report = proxy.open(fh.read())  # the evaluation is recorded in the ledger
    with open(os.path.join(workdir, "report.json"), "w") as fh:
        fh.write(report.model_dump_json())
    # a provisional, signed quote: the delivery is verified before anything is paid
    proxy.quote(report, PRICING).write(os.path.join(workdir, "quote.mdequote"))
    print(PRICING.quote(report).model_dump_json())


def settle(workdir: str) -> None:
    proxy = mde.load_proxy(os.path.join(workdir, "proxy.mdeproxy"))
    with open(os.path.join(workdir, "delivery.mdedel"), "rb") as fh:
        settlement = proxy.settle(fh.read(), PRICING)  # re-checks commitment, screens, values
    settlement.write(os.path.join(workdir, "settlement.mdesettle"))
    print(settlement.model_dump_json())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["build", "open", "settle"])
    ap.add_argument("--workdir", default=".")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    {"build": build, "open": open_score, "settle": settle}[a.step](a.workdir)
