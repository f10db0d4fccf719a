"""Seeded fuzz of the protocol steps that consume what the other party sends.

A cheating party signs what it crafts with its own, pinned key, so these mutations are
re-signed with the *sender's real key*: they pass the signature and identity checks and
reach the checks of the step itself (the guard's graph admission, decryption, commitments,
Merkle proofs, prices, ledgers). Each step must refuse with an MDEError or succeed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mde
from mde.data_owner.ledger import DataOwnerLedger
from mde.wire.envelope import Envelope
from mde.wire.signing import SigningKey
from tests.fuzz.harness import PRICING, Corpus, Tally, cases, format_of, home
from tests.fuzz.mutations import mutate_inside


class Step:
    """A step run on the data, remade from scratch after every success (a success changes
    state, e.g. settles the quote, and later cases must meet the same checks)."""

    def __init__(self, make: Callable[[], Callable[[bytes], object]]) -> None:
        self.make = make
        self.run = make()

    def __call__(self, data: bytes) -> object:
        out = self.run(data)
        self.run = self.make()
        return out


def _steps(c: Corpus, tmp: Path) -> dict[str, tuple[str, SigningKey, float, Step]]:
    """name -> (corpus file, its sender's key, weight, step)."""
    f, X, y = c.files, c.X, c.y
    n = [0]

    def fresh(name: str) -> Path:
        n[0] += 1
        path = tmp / f"{n[0]}-{Path(name).name}"
        shutil.copy(c.paths[name], path)
        return path

    def guard() -> Callable[[bytes], object]:
        ledger = DataOwnerLedger(tmp / "guard.sqlite")

        def run(data: bytes) -> object:
            session = mde.load_artifact(data, identity=c.do_key, ledger=ledger)
            if isinstance(session, mde.Scorer):
                session.score(X, y, per_record=True)
            return session

        return run

    def owner(proxy: str = "proxy.mdeproxy", ledger: str = "owner-ledger.sqlite") -> Any:
        return mde.load_proxy(fresh(proxy), ledger=fresh(ledger), identity=c.mo_key)

    def data_owner(artifact: str, ledger: str = "data-owner-ledger.sqlite") -> Any:
        return mde.load_artifact(f[artifact], identity=c.do_key, ledger=fresh(ledger))

    def open_sealed() -> Callable[[bytes], object]:
        o = owner()
        return lambda b: o.open(b, allow_repeat=True)

    def open_partial() -> Callable[[bytes], object]:
        return owner("poly.mdeproxy", "mo-before-settle.sqlite").open

    def settle() -> Callable[[bytes], object]:
        o = owner(ledger="mo-before-settle.sqlite")
        return lambda b: o.settle(b, c.objects["pricing"], spec=PRICING)

    def deliver() -> Callable[[bytes], object]:
        s = data_owner("artifact.mde", "do-before-accept.sqlite")
        return lambda b: s.deliver(b, X, y)

    def accept() -> Callable[[bytes], object]:
        return data_owner("artifact.mde", "do-before-accept.sqlite").accept_settlement

    def decrypt() -> Callable[[bytes], object]:
        client = data_owner("hidden.mde", "do-before-decrypt.sqlite")
        client.load_key(fresh("key.mdekey"))
        return client.decrypt

    def evaluate() -> Callable[[bytes], object]:
        o = owner("poly.mdeproxy")
        return lambda b: o.evaluate_hidden(b, allow_repeat=True)

    mo, do = c.mo_key, c.do_key
    return {
        "data owner: load_artifact + score": ("artifact.mde", mo, 0.5, Step(guard)),
        "data owner: load_artifact (hidden)": ("hidden.mde", mo, 0.5, Step(guard)),
        "model owner: open sealed score": ("score.mdeseal", do, 1.0, Step(open_sealed)),
        "model owner: open partial result": ("partial.mdepart", do, 0.5, Step(open_partial)),
        "data owner: deliver against quote": ("quote.mdequote", mo, 1.0, Step(deliver)),
        "model owner: settle delivery (all)": ("delivery.mdedel", do, 1.0, Step(settle)),
        "model owner: settle delivery (subset)": ("subset.mdedel", do, 1.0, Step(settle)),
        "data owner: accept settlement": ("settlement.mdesettle", mo, 1.0, Step(accept)),
        "data owner: decrypt masked result": ("result.mderes", mo, 0.5, Step(decrypt)),
        "model owner: evaluate encrypted records": ("request.mdereq", do, 0.05, Step(evaluate)),
    }


STEPS = [
    "data owner: load_artifact + score",
    "data owner: load_artifact (hidden)",
    "model owner: open sealed score",
    "model owner: open partial result",
    "data owner: deliver against quote",
    "model owner: settle delivery (all)",
    "model owner: settle delivery (subset)",
    "data owner: accept settlement",
    "data owner: decrypt masked result",
    "model owner: evaluate encrypted records",
]


@pytest.mark.parametrize("step", STEPS)
def test_each_step_refuses_crafted_messages_with_mde_errors(  # type: ignore[no-untyped-def]
    corpus: Corpus, tally: Tally, tmp_path, step: str
):
    name, key, weight, run = _steps(corpus, tmp_path)[step]
    n = cases(weight, least=1)
    data = corpus.files[name]
    assert run(data) is not None  # the genuine message passes the step
    env = Envelope.from_bytes(data, format_of(data), mde.MDEError)
    rng = np.random.default_rng([7, STEPS.index(step)])
    with home(tmp_path / "home"):
        out = tally.run(
            f"{step} [signed by sender]", run, (mutate_inside(env, rng, key) for _ in range(n))
        )
    assert out.other == 0, tally.failures
    assert out.refused >= n * 0.2, step
