"""Data owner's side of MDE: score local data against a published artifact, deliver it
once a quote is accepted, and record the settlement.

    python examples/data_owner.py score --workdir deal/     # deal/score.mdeseal
    python examples/data_owner.py deliver --workdir deal/   # deal/delivery.mdedel
    python examples/data_owner.py accept --workdir deal/    # records deal/settlement.mdesettle

The data never leaves before the quote: the model owner learns only the score. The data
owner's ledger ($MDE_HOME/data-owner-ledger.sqlite) keeps the buyer's pinned key, the
guard's budgets, the commitment's salt seed and the settlement.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from sklearn.datasets import load_digits

import mde


def my_records() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    mine = np.random.default_rng(0).permutation(len(y))[1000:1400]  # not the model owner's
    return X[mine], y[mine]


def session(workdir: str) -> mde.Scorer:
    # checks the signature and every hash, pins the buyer's key on first use, admits the graph
    scorer = mde.load_artifact(os.path.join(workdir, "artifact.mde"), buyer="model-owner")
    if not isinstance(scorer, mde.Scorer):
        raise mde.ArtifactError("this example scores sealed-value artifacts only.")
    return scorer


def score(workdir: str) -> None:
    scorer = session(workdir)
    print(
        "artifact reveals:",
        scorer.manifest.model_dump(include={"proxy_kind", "n_features", "psi_dim", "classes"}),
    )
    sealed = scorer.score(*my_records())
    with open(os.path.join(workdir, "score.mdeseal"), "wb") as fh:
        fh.write(sealed.to_bytes())
    print(json.dumps({"n_records": sealed.n_records, "commitment": sealed.commitment}))


def deliver(workdir: str) -> None:
    with open(os.path.join(workdir, "quote.mdequote"), "rb") as fh:
        quote = fh.read()
    delivery = session(workdir).deliver(quote, *my_records())  # all records + the salt seed
    delivery.write(os.path.join(workdir, "delivery.mdedel"))
    print(json.dumps({"delivered": delivery.n_delivered}))


def accept(workdir: str) -> None:
    with open(os.path.join(workdir, "settlement.mdesettle"), "rb") as fh:
        settlement = session(workdir).accept_settlement(fh.read())
    print(json.dumps({"price": settlement.price, "quoted_price": settlement.quoted_price}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["score", "deliver", "accept"])
    ap.add_argument("--workdir", default=".")
    a = ap.parse_args()
    {"score": score, "deliver": deliver, "accept": accept}[a.step](a.workdir)
