"""Hypothesis strategies for the structured fields of every wire format: artifact manifests,
sealed score headers, hidden-mode messages, quotes, deliveries, settlements and reports.

Each strategy starts from a genuine header and replaces fields (at any depth) with values of
the wrong type, huge or negative integers, NaN or infinite floats, unicode, or nested junk,
drops fields or adds unknown ones. A loader must refuse with an MDEError or load; what loads
must encode again to the same header (nothing it accepted is unusable). Runs are
deterministic (``derandomize=True``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mde
from mde.report import EfficacyReport
from mde.wire.artifact import read_artifact
from mde.wire.deal import Delivery, Settlement, SignedQuote
from mde.wire.envelope import Envelope
from mde.wire.messages import DataOwnerKey, EncryptedRecords, MaskedResult, PartialResult
from mde.wire.sealed_score import SealedScore
from tests.fuzz.harness import CASES, FORGER, Corpus, Tally

SETTINGS = settings(
    derandomize=True,
    max_examples=max(20, CASES),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

HUGE = st.sampled_from([2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400])
INTS = st.integers(min_value=-(2**70), max_value=2**70) | HUGE
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.nan, -math.inf])
TEXT = (
    st.text(max_size=40)
    | st.text("0123456789abcdefABCDEF", min_size=63, max_size=65)  # near a hex key or hash
    | st.sampled_from(["", "\ud800", "\x00", "é" * 64, "\u202e" * 3, "a" * 10_000])
)
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=8,
)


def near(value: Any) -> st.SearchStrategy[Any]:
    """Other values for a field that holds ``value``: the same type, any value (a dict field
    changed inside, recursively), or anything at all."""
    if isinstance(value, bool):
        same: st.SearchStrategy[Any] = st.booleans()
    elif isinstance(value, int):
        same = INTS
    elif isinstance(value, float):
        same = FLOATS
    elif isinstance(value, str):
        same = TEXT
    elif isinstance(value, dict):
        same = structured(value)
    elif isinstance(value, list):
        same = st.lists(near(value[0]) if value else JUNK, max_size=6)
    else:
        same = JUNK
    return same | JUNK


def structured(good: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Headers derived from ``good``: one to three fields changed (:func:`near`) or dropped,
    perhaps an unknown field added; the rest as they were."""
    keys = sorted(good)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out = dict(good)
        changed = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True))
        for k in changed if keys else []:
            if draw(st.integers(0, 5)) == 0:
                del out[k]
            else:
                out[k] = draw(near(good[k]), label=k)
        out.update(draw(st.dictionaries(st.sampled_from(["extra", "x"]), JUNK, max_size=1)))
        return out

    return build() if keys else st.dictionaries(TEXT, JUNK, max_size=3)


def _finite(obj: Any) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite(v) for v in obj)
    return True


# format -> (corpus file, loader from bytes, loader from a parsed envelope or None)
FORMATS: dict[str, tuple[str, Callable[[bytes], Any], Callable[[Envelope], Any] | None]] = {
    "artifact manifest": ("artifact.mde", read_artifact, None),
    "hidden artifact manifest": ("hidden.mde", read_artifact, None),
    "sealed score header": ("score.mdeseal", SealedScore.from_bytes, SealedScore.from_envelope),
    "encrypted records": (
        "request.mdereq",
        EncryptedRecords.from_bytes,
        EncryptedRecords.from_envelope,
    ),
    "masked result": ("result.mderes", MaskedResult.from_bytes, MaskedResult.from_envelope),
    "partial result": ("partial.mdepart", PartialResult.from_bytes, PartialResult.from_envelope),
    "data owner key v2": ("key.mdekey", DataOwnerKey.from_bytes, DataOwnerKey.from_envelope),
    "quote": ("quote.mdequote", SignedQuote.from_bytes, SignedQuote.from_envelope),
    "delivery": ("subset.mdedel", Delivery.from_bytes, Delivery.from_envelope),
    "settlement": ("settlement.mdesettle", Settlement.from_bytes, Settlement.from_envelope),
}


_GENUINE: dict[str, Envelope] = {}


def _genuine(corpus: Corpus, name: str) -> Envelope:
    """The corpus file ``name`` parsed (once per session)."""
    if name not in _GENUINE:
        data = corpus.files[name]
        fmts = [f for f in mde.wire.FORMAT_VERSIONS if f.encode() in data[:400]]
        env = Envelope.from_bytes(data, tuple(fmts), mde.MDEError)
        if name == "request.mdereq":  # its loader reads the header only; the request is MBs
            env = Envelope(env.format, env.header, {k: v[:32] for k, v in env.members.items()})
        _GENUINE[name] = env
    return _GENUINE[name]


def _check(tally: Tally, what: str, load: Callable[[], Any], again: bool = True) -> None:
    """``load()`` refuses with an MDEError or loads something that encodes again (and, with
    ``again``, reads back to the same bytes)."""

    def run(_: bytes) -> object:
        obj = load()
        blob = obj.to_bytes()
        if again and hasattr(type(obj), "from_bytes"):
            assert type(obj).from_bytes(blob).to_bytes() == blob
        return obj

    out = tally.run(what, run, [b""])
    assert out.other == 0, tally.failures[-1:]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@SETTINGS
@given(data=st.data())
def test_structured_fields(corpus: Corpus, tally: Tally, fmt: str, data: st.DataObject) -> None:
    name, from_bytes, from_envelope = FORMATS[fmt]
    env = _genuine(corpus, name)
    header = data.draw(structured(dict(env.header)), label="header")
    crafted = Envelope(env.format, header, dict(env.members))
    if _finite(header):  # canonical JSON has no NaN: these travel as bytes
        blob = crafted.signed(FORGER).to_bytes()
        _check(tally, f"hypothesis: {fmt} (bytes)", lambda: from_bytes(blob))
    if from_envelope is not None:  # NaN and infinity only reach a loader in memory
        _check(tally, f"hypothesis: {fmt} (envelope)", lambda: from_envelope(crafted), again=False)


REPORT_FIELDS = {
    "efficacy": FLOATS,
    "n_records": INTS,
    "record_scores": st.none() | st.lists(FLOATS, max_size=14) | JUNK,
    "record_noise": st.none() | FLOATS,
    "first_order": st.none() | FLOATS,
    "pairwise": st.none() | FLOATS,
    "dp_noise": st.none() | FLOATS,
    "dp_clip": st.none() | FLOATS,
    "artifact_id": TEXT,
    "commitment": TEXT,
    "seller": st.none() | TEXT,
    "format_version": INTS | JUNK,
}


@SETTINGS
@given(data=st.data())
def test_report_fields(corpus: Corpus, tally: Tally, data: st.DataObject) -> None:
    import json

    doc = corpus.objects["report"].model_dump(mode="json")
    for key in data.draw(st.lists(st.sampled_from(sorted(REPORT_FIELDS)), max_size=4)):
        doc[key] = data.draw(REPORT_FIELDS[key] | JUNK, label=key)
    text = json.dumps(doc)  # Python's JSON writes NaN and Infinity; the reader must refuse them

    def load() -> EfficacyReport:
        report = EfficacyReport.from_json(text)
        assert math.isfinite(report.efficacy) and report.n_records >= 1
        return report

    def run() -> Any:
        report = load()
        assert EfficacyReport.from_json(report.model_dump_json()) == report
        return report

    out = tally.run("hypothesis: report JSON", lambda _: run(), [b""])
    assert out.other == 0, tally.failures[-1:]
