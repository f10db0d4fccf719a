"""Seeded mutation fuzz of every loader of a wire format: damaged, crafted or foreign bytes
raise an MDEError (or load, if the mutation kept the file valid), never another exception.

Families: ``bytes`` (the file's bytes damaged), ``inside`` (a header field or a member
changed anywhere, then re-signed by a forger so the envelope checks pass and the structured
fields are what is checked), ``layout`` (the same members in a non-canonical zip) and
``foreign`` (every other file of the corpus, and garbage).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import mde
from mde.wire import read_message
from mde.wire.artifact import HiddenArtifact, SealedArtifact, read_artifact
from mde.wire.deal import Delivery, Settlement, SignedQuote
from mde.wire.envelope import Envelope
from mde.wire.messages import DataOwnerKey, EncryptedRecords, MaskedResult, PartialResult
from mde.wire.sealed_score import SealedScore
from tests.fuzz.harness import FORGER, Corpus, Tally, cases, format_of, home
from tests.fuzz.mutations import garbage, mutate, mutate_inside, mutate_layout

Loader = Callable[[bytes], object]


def _light_request(c: Corpus) -> bytes:
    """The encrypted records' header with small members: its loader reads the header only,
    and the real request is tens of MB."""
    env = Envelope.from_bytes(c.files["request.mdereq"], "mde-encrypted-records", mde.MDEError)
    light = {name: blob[:64] for name, blob in env.members.items()}
    return Envelope(env.format, dict(env.header), light).signed(c.do_key).to_bytes()


def loaders(c: Corpus, tmp: Path) -> dict[str, tuple[bytes, Loader, set[str]]]:
    """Every loader with the good bytes it is fuzzed from and the corpus files it accepts."""
    f = c.files

    def through(name: str, load: Callable[[Path], object]) -> Loader:
        path = tmp / name

        def run(data: bytes) -> object:
            path.write_bytes(data)
            return load(path)

        return run

    with home(c.do):
        client = mde.load_artifact(f["hidden.mde"], identity=c.do_key, ledger=tmp / "do.sqlite")
    assert isinstance(client, mde.HiddenClient)

    def proxy(path: Path) -> object:
        return mde.load_proxy(path, ledger=tmp / "mo.sqlite", identity=c.mo_key)

    artifacts = ("artifact.mde", "hidden.mde")
    table: list[tuple[str, str, Loader, tuple[str, ...]]] = [
        ("artifact: read_artifact", "artifact.mde", read_artifact, artifacts),
        ("artifact: SealedArtifact.from_bytes", "artifact.mde", SealedArtifact.from_bytes, ()),
        ("hidden artifact: read_artifact", "hidden.mde", read_artifact, artifacts),
        ("hidden artifact: HiddenArtifact.from_bytes", "hidden.mde", HiddenArtifact.from_bytes, ()),
        ("sealed score: SealedScore.from_bytes", "score.mdeseal", SealedScore.from_bytes, ()),
        ("sealed score: read_message", "score.mdeseal", read_message, ("partial.mdepart",)),
        ("partial result: read_message", "partial.mdepart", read_message, ("score.mdeseal",)),
        ("partial result: from_bytes", "partial.mdepart", PartialResult.from_bytes, ()),
        ("encrypted records: from_bytes", "request.mdereq", EncryptedRecords.from_bytes, ()),
        ("masked result: from_bytes", "result.mderes", MaskedResult.from_bytes, ()),
        ("data owner key v2: from_bytes", "key.mdekey", DataOwnerKey.from_bytes, ()),
        ("key file: HiddenClient.load_key", "key.mdekey", through("k", client.load_key), ()),
        (
            "quote: SignedQuote.from_bytes",
            "quote.mdequote",
            SignedQuote.from_bytes,
            (),
        ),
        ("delivery (all): from_bytes + arrays", "delivery.mdedel", _delivery, _DELIVERIES),
        ("delivery (subset): from_bytes + arrays", "subset.mdedel", _delivery, _DELIVERIES),
        ("settlement: from_bytes", "settlement.mdesettle", Settlement.from_bytes, ()),
        ("proxy file: load_proxy", "proxy.mdeproxy", through("p", proxy), ("poly.mdeproxy",)),
        (
            "proxy file (hidden): load_proxy",
            "poly.mdeproxy",
            through("h", proxy),
            ("proxy.mdeproxy",),
        ),
    ]
    light = {"request.mdereq": _light_request(c)}
    return {
        name: (light.get(good, f[good]), loader, {good, *also})
        for name, good, loader, also in table
    }


_DELIVERIES = ("delivery.mdedel", "subset.mdedel")


def _delivery(data: bytes) -> object:
    return Delivery.from_bytes(data).arrays()


FAMILIES = {"bytes": 1.0, "inside": 1.0, "layout": 0.25}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_loader_raises_only_mde_errors(corpus: Corpus, tally: Tally, tmp_path, family: str):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng([2026, sorted(FAMILIES).index(family)])
    n = cases(FAMILIES[family])
    low = []
    before = len(tally.failures)
    for name, (good, loader, _) in loaders(corpus, tmp_path).items():
        if family == "bytes":
            samples = (mutate(good, rng) for _ in range(n))
        elif family == "inside":
            env = Envelope.from_bytes(good, format_of(good), mde.MDEError)
            samples = (mutate_inside(env, rng, FORGER) for _ in range(n))
        else:
            samples = (mutate_layout(good, rng) for _ in range(n))
        out = tally.run(f"{name} [{family}]", loader, samples)
        assert out.cases == n
        # damaged or re-laid-out bytes are refused; a change inside may keep the file valid
        # (a member the loader does not parse, a price still >= 0), but most are refused
        if out.refused < n * (0.9 if family != "inside" else 0.2):
            low.append(name)
    assert tally.failures[before:] == []  # every loader ran: all its failures are listed
    assert low == []


def test_foreign_files_and_garbage_are_refused(corpus: Corpus, tally: Tally, tmp_path):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    junk = [garbage(rng) for _ in range(cases(0.25))]
    before = len(tally.failures)
    for name, (_, loader, accepts) in loaders(corpus, tmp_path).items():
        others = [data for file, data in sorted(corpus.files.items()) if file not in accepts]
        out = tally.run(f"{name} [foreign]", loader, others + junk)
        assert out.loaded == 0, name
        assert tally.run(
            f"{name} [valid]", loader, [corpus.files[a] for a in accepts]
        ).loaded == len(accepts)
    assert tally.failures[before:] == []
