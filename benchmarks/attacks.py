"""Issue 14's attacks, re-run against the current protocol: the price or leakage each reaches.

Each attack is played end to end with the library's own parties (a model owner built with
:func:`mde.build_proxy`, a data owner from :func:`mde.load_artifact` with its own Ed25519
identity and ledger, the pricing functions of :mod:`pricing`), on the test suite's digits
problem (``tests/conftest.py``: scikit-learn's 8x8 digits, ``LogisticRegression(C=0.05)``
on 300 digits, 400 test digits, an offer of 300 candidate records; influence proxy with 16
components, order 1, and order 2 for the pairwise attack; ``influence-poly`` in hidden mode).

For every attack the table prints what issue 14 measured on the old main (hard-coded
literature values, labelled as such; "-" where the issue gave none), what the attack reaches
now against an honest run (measured), and what stops it (the exception raised and the
mechanism). Attacks:

(a) offer plus 9 exact copies (priced once: the scorer counts copies once; a seller whose
    scorer skips that is caught at settlement); (b) the sealed score's header ``n_records``
    changed 300 -> 512 (without and with re-signing by the seller's own key); (c) the
    total and pairwise ciphertexts of an ``order=2`` score swapped (likewise); (d) 27 artifacts sent
    to one data owner asking per-record scores (one buyer key; a fresh key per artifact;
    fresh keys against ``require_pinned``; fresh keys against the DP mode); (e) an Identity
    psi graph (psi = X); (f) hidden mode: 16 results for one request, and 40 fresh requests
    on the same 20 records; (g) a replayed sealed score, also through an unsaved proxy file;
    (h) a delivery of other records than those scored (full and subset delivery);
    (i) a subset purchase under UniformPricing, and a seller delivering every record as the
    subset.

    python -m benchmarks.attacks     # ~1 minute on 2 cores

Writes benchmarks/results/attacks.txt.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from unittest import mock

import numpy as np

from benchmarks.common import RESULTS
from mde.proxies.repeats import RepeatTracker

N_ARTIFACTS = 27  # issue 14's many-artifacts attack
N_HIDDEN_RESULTS = 16  # issue 14's hidden-mode attack
N_HIDDEN_REQUESTS = 40
HIDDEN_RECORDS = 20


class NoRepeats(RepeatTracker):
    """A data owner's scorer that skips the repeat screen (the attack)."""

    def update(self, digests: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        return np.zeros(len(digests), dtype=bool)


@dataclass
class Row:
    """One line of the table."""

    attack: str
    before: str
    now: str
    stopped_by: str


@dataclass
class World:
    """The digits problem, the model owner's proxies and a scratch folder."""

    X: np.ndarray
    y: np.ndarray
    owner: Any  # order 1
    order2: Any
    poly: Any  # influence-poly, hidden mode
    tmp: str


def _world() -> World:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import mde

    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te, c = idx[:300], idx[300:700], idx[700:1000]
    model = LogisticRegression(C=0.05, max_iter=3000).fit(X[tr], y[tr])
    data = (X[tr], y[tr], X[te], y[te])
    return World(
        X[c],
        y[c],
        mde.build_proxy(model, *data, n_components=16, random_state=0),
        mde.build_proxy(model, *data, n_components=16, order=2, random_state=0),
        mde.build_proxy(model, *data, kind="influence-poly", random_state=0),
        tempfile.mkdtemp(),
    )


def _path(w: World, suffix: str = ".mde") -> str:
    return os.path.join(w.tmp, uuid.uuid4().hex + suffix)


def _seller(w: World) -> tuple[Any, Any]:
    """A data owner's identity and ledger of its own (fresh budgets)."""
    from mde.data_owner.ledger import DataOwnerLedger
    from mde.wire.signing import SigningKey

    return SigningKey.generate(), DataOwnerLedger(_path(w, ".sqlite"))


def _scorer(w: World, proxy: Any, seller: tuple[Any, Any], **options: Any) -> Any:
    """Export a fresh artifact of ``proxy`` and load it as the data owner ``seller``."""
    import mde

    path = _path(w)
    proxy.export(path)
    identity, ledger = seller
    return mde.load_artifact(path, identity=identity, ledger=ledger, **options)


def _attempt(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """``(result, None)``, or ``(None, the MDE error raised)``."""
    import mde

    try:
        return fn(), None
    except mde.MDEError as exc:
        return None, exc


def _stopped(
    exc: BaseException | None,
    expected: type[BaseException] | tuple[type[BaseException], ...] | None,
    how: str,
) -> str:
    """What stopped an attack: ``"<exception class>: <how>"``; ``expected=None`` marks an
    attack the configuration does not stop (``how`` says why)."""
    if expected is None:
        return f"not stopped: {how}" if exc is None else f"{type(exc).__name__}: {exc}"[:160]
    names = "/".join(e.__name__ for e in (expected if isinstance(expected, tuple) else (expected,)))
    if exc is None:
        return f"NOT STOPPED (expected {names})"
    if not isinstance(exc, expected):
        return f"{type(exc).__name__} (expected {names}): {exc}"[:160]
    return f"{type(exc).__name__}: {how}"


def _rebuild(sealed: Any, key: Any, ciphertexts: list[bytes] | None = None, **header: Any) -> Any:
    """The sealed score with header fields or ciphertexts changed, signed again by ``key``
    (the seller's own key: it can always re-sign what it sends)."""
    from mde.wire.sealed_score import SealedScore

    fields = sealed.header.model_dump() | header
    fields.pop("n_ciphertexts")
    cts = list(sealed.ciphertexts) if ciphertexts is None else ciphertexts
    return SealedScore.build(ciphertexts=cts, key=key, **fields)


def _unsigned(sealed: Any, ciphertexts: list[bytes] | None = None, **header: Any) -> Any:
    """The sealed score edited after signing, keeping the old signature."""
    from mde.wire.sealed_score import SealedScore

    head = sealed.header.model_copy(update=header)
    cts = list(sealed.ciphertexts) if ciphertexts is None else ciphertexts
    return SealedScore(head, cts, sealed.signer, sealed.signature)


# -- (a) copies --------------------------------------------------------------------------


def copies(w: World) -> list[Row]:
    import mde
    from pricing import LinearPricing, UniformPricing

    X10, y10 = np.vstack([w.X] * 10), np.concatenate([w.y] * 10)
    linear, uniform = LinearPricing(rate=10.0), UniformPricing(unit_price=1.0)
    seller = _seller(w)
    honest = w.owner.open(_scorer(w, w.owner, seller).score(w.X, w.y))
    padded = w.owner.open(_scorer(w, w.owner, seller).score(X10, y10))
    honest_u = w.owner.open(_scorer(w, w.owner, seller).score(w.X, w.y, per_record=True))
    padded_u = w.owner.open(_scorer(w, w.owner, seller).score(X10, y10, per_record=True))
    p = [linear.quote(r).price for r in (honest, padded)]
    u = [uniform.quote(r).price for r in (honest_u, padded_u)]
    rows = [
        Row(
            "(a) offer + 9 copies, honest scorer",
            "10x price (4.10 nats vs 0.41)",
            f"efficacy {padded.efficacy:.3f} vs {honest.efficacy:.3f} nats; Linear(rate 10) "
            f"{p[1]:.2f} vs {p[0]:.2f} ({p[1] / p[0]:.2f}x); Uniform(1/record) {u[1]:.0f} vs "
            f"{u[0]:.0f} ({u[1] / u[0]:.2f}x)",
            "copies inside an offer score zero (scorer's RepeatTracker)",
        )
    ]
    # a seller whose scorer skips the deduplication
    seller = _seller(w)
    with mock.patch("mde.data_owner.offer_pass.RepeatTracker", NoRepeats):
        scorer = _scorer(w, w.owner, seller)
        inflated = w.owner.open(scorer.score(X10, y10))
    quote = w.owner.quote(inflated, linear)
    delivery = scorer.deliver(quote, X10, y10)
    settled, exc = _attempt(lambda: w.owner.settle(delivery, linear))
    rows.append(
        Row(
            "(a') offer + 9 copies, seller's scorer skips dedup",
            "10x price (4.10 nats vs 0.41)",
            f"opened {inflated.efficacy:.3f} nats ({inflated.efficacy / honest.efficacy:.1f}x), "
            f"quoted {quote.price:.2f}; settled: "
            + ("refused" if settled is None else f"{settled.price:.2f}"),
            _stopped(exc, mde.DeliveryError, "recomputed efficacy != sealed (at settle)"),
        )
    )
    return rows


# -- (b) header n_records, (c) swapped ciphertexts ----------------------------------------


def header(w: World) -> list[Row]:
    import mde
    from pricing import LinearPricing

    linear = LinearPricing(rate=10.0)
    identity, ledger = seller = _seller(w)
    scorer = _scorer(w, w.owner, seller)
    sealed = scorer.score(w.X, w.y)
    _, exc1 = _attempt(lambda: w.owner.open(_unsigned(sealed, n_records=512)))
    forged = _rebuild(sealed, identity, n_records=512)
    report = w.owner.open(forged)
    quote = w.owner.quote(report, linear)
    delivery = scorer.deliver(quote, w.X, w.y)
    settled, exc2 = _attempt(lambda: w.owner.settle(delivery, linear))
    honest = w.owner.efficacy(w.X, w.y)
    return [
        Row(
            "(b) header n_records 300 -> 512, old signature",
            "opened and verified",
            "refused at open",
            _stopped(exc1, mde.SealedScoreError, "signature covers the header"),
        ),
        Row(
            "(b') header n_records 300 -> 512, re-signed by seller",
            "opened and verified",
            f"opens (n_records {report.n_records}, efficacy {report.efficacy:.3f} = honest "
            f"{honest:.3f}, same 2^k band); settled: "
            + ("refused" if settled is None else f"{settled.price:.2f}"),
            _stopped(exc2, mde.DeliveryError, "delivery's count/commitment != report (settle)"),
        ),
    ]


def swapped(w: World) -> list[Row]:
    import mde

    identity, _ = seller = _seller(w)
    scorer = _scorer(w, w.order2, seller)
    sealed = scorer.score(w.X, w.y)
    cts = list(sealed.ciphertexts)[::-1]  # the first-order and the pairwise total swapped
    _, exc1 = _attempt(lambda: w.order2.open(_unsigned(sealed, cts)))
    _, exc2 = _attempt(lambda: w.order2.open(_rebuild(sealed, identity, cts)))
    genuine = w.order2.open(sealed)  # the refusals spent nothing: the honest score opens
    return [
        Row(
            "(c) total and pairwise ciphertexts swapped, old signature",
            "efficacy 0.219 -> 869,948",
            f"refused at open (honest score then opens: {genuine.efficacy:.3f})",
            _stopped(exc1, mde.SealedScoreError, "signature covers every ciphertext's position"),
        ),
        Row(
            "(c') total and pairwise ciphertexts swapped, re-signed",
            "efficacy 0.219 -> 869,948",
            "refused at open",
            _stopped(exc2, mde.SealedScoreError, "per-kind sentinel (ciphertexts reordered)"),
        ),
    ]


# -- (d) many artifacts --------------------------------------------------------------------


def _many(
    w: World, fresh_keys: bool, policy: Any = None, n_max: int = N_ARTIFACTS
) -> tuple[int, int, int | None, BaseException | None]:
    """Up to ``n_max`` artifacts against one data owner, each asking per-record scores of
    the same 300 records: ``(answered within the first N_ARTIFACTS, numbers released
    there, 1-based position of the first refusal, the refusal)``. Stops at the first
    refusal past N_ARTIFACTS."""
    from mde.wire.signing import SigningKey

    seller = _seller(w)
    answered = numbers = 0
    at: int | None = None
    first: BaseException | None = None
    buyer = w.owner.identity
    options = {} if policy is None else {"policy": policy}
    try:
        for i in range(1, n_max + 1):
            if fresh_keys:
                w.owner.identity = SigningKey.generate()  # a new buyer key per artifact
            scorer, exc = _attempt(partial(_scorer, w, w.owner, seller, **options))
            if exc is None:
                sealed, exc = _attempt(partial(scorer.score, w.X, w.y, per_record=True))
            if exc is None and i <= N_ARTIFACTS:
                answered += 1
                numbers += sealed.n_records
            elif exc is not None and first is None:
                at, first = i, exc
            if first is not None and i >= N_ARTIFACTS:
                break
    finally:
        w.owner.identity = buyer
    return answered, numbers, at, first


def many_artifacts(w: World) -> list[Row]:
    import mde
    from mde.data_owner.policy import composed_epsilon

    n = len(w.y)
    before = f"all {n} labels and 17 features per record recovered ({N_ARTIFACTS} x {n} numbers)"
    dp = mde.DPPolicy(epsilon=1.0)  # the defaults: delta 1e-6, epsilon_budget 8 per data set
    cases: list[tuple[str, bool, Any, Any, str, int]] = [
        ("one buyer key", False, None, mde.BudgetError, "numbers budget n + 16", N_ARTIFACTS),
        (
            "fresh buyer key each",
            True,
            None,
            mde.BudgetError,
            "max_buyers: 4 buyer keys per data set (fresh keys do not reset budgets)",
            N_ARTIFACTS,
        ),
        (
            "fresh keys, require_pinned",
            True,
            mde.GuardPolicy(require_pinned=True),
            mde.IdentityError,
            "unpinned buyer keys are not answered",
            N_ARTIFACTS,
        ),
        (
            f"fresh keys, DP eps {dp.epsilon:g} each (budget {dp.epsilon_budget:g})",
            True,
            mde.GuardPolicy(dp=dp, max_buyers=1000),  # DP alone, not the buyer cap
            mde.BudgetError,
            "data set's epsilon budget, composed over all buyers",
            100,
        ),
    ]
    rows = []
    for label, fresh, policy, expected, how, n_max in cases:
        answered, numbers, at, exc = _many(w, fresh, policy, n_max)
        now = (
            f"{answered}/{N_ARTIFACTS} answered, {numbers} numbers released "
            f"({numbers / n:.0f} per record)"
        )
        if policy is not None and policy.dp is not None:
            z = policy.dp.noise_multiplier
            eps = composed_epsilon([z] * answered, policy.dp.delta)
            sd = z * w.owner.psi_clip_ * float(np.linalg.norm(w.owner.w_))
            spread = float(np.std(w.owner.record_scores(w.X, w.y)))
            now += (
                f", each record's score noised (sd {sd:.2g} vs score spread {spread:.2g}); "
                f"composed eps {eps:.1f}; "
                + ("never refused" if at is None else f"refused from answer {at} on")
            )
        elif at is not None and answered:
            now += f"; refused from answer {at} on"
        rows.append(
            Row(
                f"(d) {N_ARTIFACTS} artifacts per-record, {label}",
                before,
                now,
                _stopped(exc, expected, how),
            )
        )
    return rows


# -- (e) Identity graph ------------------------------------------------------------------


def identity_graph(w: World) -> list[Row]:
    from onnx import TensorProto, helper

    import mde
    from mde.wire.artifact import SealedArtifact

    d = w.X.shape[1]
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", d])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, ["n"])
    psi = helper.make_tensor_value_info("psi", TensorProto.FLOAT, ["n", d])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["psi"])], "steal", [X, y], [psi]
    )
    path = _path(w)
    w.owner.export(path)
    with open(path, "rb") as f:
        art = SealedArtifact.from_bytes(f.read())
    members = {**art.members, "psi.onnx": bytes(helper.make_model(graph).SerializeToString())}
    crafted = SealedArtifact(art.manifest, members).signed(w.owner.identity).to_bytes()
    identity, ledger = _seller(w)
    _, exc = _attempt(lambda: mde.load_artifact(crafted, identity=identity, ledger=ledger))
    return [
        Row(
            "(e) Identity psi graph (psi = X), signed by the buyer",
            "3 exact pixels per record per artifact",
            "refused at load: 0 numbers released",
            _stopped(exc, mde.ArtifactError, "graph admission against the kind's template"),
        )
    ]


# -- (f) hidden mode -----------------------------------------------------------------------


def _hidden_client(path: str, identity: Any, ledger: Any) -> Any:
    import mde

    client = mde.load_artifact(path, identity=identity, ledger=ledger)
    if not isinstance(client, mde.HiddenClient):
        raise mde.ArtifactError("a hidden-mode artifact was read back as another kind.")
    return client


def hidden(w: World) -> list[Row]:
    import mde

    X, y = w.X[:HIDDEN_RECORDS], w.y[:HIDDEN_RECORDS]
    identity, ledger = _seller(w)
    path = _path(w)
    w.poly.export(path, mode="hidden")
    client = _hidden_client(path, identity, ledger)
    request = client.encrypt(X, y)
    results = [w.poly.evaluate_hidden(request, allow_repeat=i > 0) for i in range(N_HIDDEN_RESULTS)]
    partials, first = [], None
    for result in results:
        opened, exc = _attempt(partial(client.decrypt, result))
        if exc is None:
            partials.append(opened)
        elif first is None:
            first = exc
    decrypted = len(partials)
    report = w.poly.open(partials[0])
    rows = [
        Row(
            f"(f) hidden: {N_HIDDEN_RESULTS} results for one request",
            f"{N_HIDDEN_RESULTS} results decrypted: 64 pixels recovered",
            f"{decrypted}/{N_HIDDEN_RESULTS} decrypted (1 number; efficacy {report.efficacy:.4f})",
            _stopped(first, (mde.ProtocolError, mde.BudgetError), "one decryption per request"),
        )
    ]
    # fresh requests on the same records: one number each, up to the numbers budget
    identity, ledger = _seller(w)
    path = _path(w)
    w.poly.export(path, mode="hidden")
    client = _hidden_client(path, identity, ledger)
    answered, first = 0, None
    for i in range(N_HIDDEN_REQUESTS):
        result = w.poly.evaluate_hidden(client.encrypt(X, y), allow_repeat=i > 0)
        _, exc = _attempt(partial(client.decrypt, result))
        if exc is None:
            answered += 1
        elif first is None:
            first = exc
    policy = mde.GuardPolicy()
    budget = min(policy.max_requests, policy.numbers_budget(HIDDEN_RECORDS))
    rows.append(
        Row(
            f"(f') hidden: {N_HIDDEN_REQUESTS} fresh requests, same {HIDDEN_RECORDS} records",
            "-",
            f"{answered}/{N_HIDDEN_REQUESTS} decrypted ({answered} numbers; budget {budget})",
            _stopped(first, mde.BudgetError, "max_requests: 16 decryptions per buyer and data set"),
        )
    )
    return rows


# -- (g) replay ---------------------------------------------------------------------------


def replay(w: World) -> list[Row]:
    import mde

    seller = _seller(w)
    scorer = _scorer(w, w.owner, seller)
    first, second = scorer.score(w.X[:150], w.y[:150]), scorer.score(w.X[150:], w.y[150:])
    w.owner.open(first)
    _, exc1 = _attempt(lambda: w.owner.open(second))
    # an unsaved proxy: saved after export, reloaded after an open it never recorded
    scorer = _scorer(w, w.owner, seller)
    pfile = _path(w, ".mdeproxy")
    w.owner.save(pfile)
    first, second = scorer.score(w.X[:150], w.y[:150]), scorer.score(w.X[150:], w.y[150:])
    w.owner.open(first)
    reloaded = mde.load_proxy(pfile)  # its session has not seen the open
    seen = reloaded.opened_.get(scorer.artifact_id, 0)
    _, exc2 = _attempt(lambda: reloaded.open(second))
    return [
        Row(
            "(g) second sealed score for one artifact",
            "-",
            "1 open per artifact",
            _stopped(exc1, mde.ReplayError, "one-evaluation rule (owner's SQLite ledger)"),
        ),
        Row(
            "(g') replay through an unsaved proxy file",
            "unsaved replay accepted",
            f"1 open per artifact (the reloaded session had seen {seen})",
            _stopped(exc2, mde.ReplayError, "ledger persists across processes/reloads"),
        ),
    ]


# -- (h) other records delivered, (i) subsets -------------------------------------------------


def _swap_records(delivery: Any, X: np.ndarray, y: np.ndarray, key: Any) -> Any:
    """The delivery with its records replaced by ``(X, y)`` (class indices), signed again."""
    data = delivery.data | {
        "X.f4": np.ascontiguousarray(X, dtype="<f4").tobytes(),
        "y.i8": np.ascontiguousarray(y, dtype="<i8").tobytes(),
    }
    return delivery.model_copy(update={"data": data}).signed(key)


def other_records(w: World) -> list[Row]:
    import mde
    from pricing import BinaryPricing, UniformPricing

    binary, uniform = BinaryPricing(price=100.0), UniformPricing(unit_price=1.0)
    classes = list(w.owner.classes_)
    rows = []
    # full delivery: the seller scored 150 good records and delivers 150 others
    identity, _ = seller = _seller(w)
    scorer = _scorer(w, w.owner, seller)
    X, y, Xo, yo = w.X[:150], w.y[:150], w.X[150:], w.y[150:]
    quote = w.owner.quote(w.owner.open(scorer.score(X, y)), binary)
    genuine = scorer.deliver(quote, X, y)
    _, honest_refusal = _attempt(lambda: scorer.deliver(quote, Xo, yo))
    forged = _swap_records(genuine, Xo, np.array([classes.index(v) for v in yo]), identity)
    _, exc = _attempt(lambda: w.owner.settle(forged, binary))
    settled = w.owner.settle(genuine, binary)
    rows.append(
        Row(
            "(h) full delivery of 150 other records than scored",
            "-",
            f"settle refused; genuine delivery then settles at {settled.price:.0f} (client's "
            f"deliver refuses too: {type(honest_refusal).__name__})",
            _stopped(exc, mde.DeliveryError, "salted commitment of the records"),
        )
    )
    # subset delivery: one bought record replaced by a record that was not bought
    identity, _ = seller = _seller(w)
    scorer = _scorer(w, w.owner, seller)
    report = w.owner.open(scorer.score(w.X, w.y, per_record=True))
    quote = w.owner.quote(report, uniform)
    bought = np.array(uniform.quote(report).accepted_records)
    genuine = scorer.deliver(quote, w.X, w.y, indices=bought)
    Xd, yd, _ = genuine.arrays()
    other = int(np.setdiff1d(np.arange(len(w.y)), bought)[0])
    Xd, yd = Xd.copy(), yd.copy()
    Xd[0], yd[0] = w.X[other], classes.index(w.y[other])
    _, exc = _attempt(lambda: w.owner.settle(_swap_records(genuine, Xd, yd, identity), uniform))
    settled = w.owner.settle(genuine, uniform)
    rows.append(
        Row(
            "(h') subset delivery with one record swapped",
            "-",
            f"settle refused; genuine subset then settles at {settled.price:.0f}",
            _stopped(exc, mde.DeliveryError, "Merkle inclusion proof of each record"),
        )
    )
    return rows


def subsets(w: World) -> list[Row]:
    import mde
    from pricing import UniformPricing

    uniform = UniformPricing(unit_price=1.0)
    rows = []
    for label, every in (("the bought subset", False), ("every record as the 'subset'", True)):
        seller = _seller(w)
        scorer = _scorer(w, w.owner, seller)
        report = w.owner.open(scorer.score(w.X, w.y, per_record=True))
        whole = uniform.quote(report)
        quote = w.owner.quote(report, uniform)
        index = np.arange(len(w.y)) if every else np.array(whole.accepted_records)
        delivery = scorer.deliver(quote, w.X, w.y, indices=index)
        settled, exc = _attempt(partial(w.owner.settle, delivery, uniform))
        price = float("nan") if settled is None else settled.price
        ok = settled is not None and price <= whole.price
        rows.append(
            Row(
                f"(i) UniformPricing subset purchase: {label}",
                "-",
                f"{len(index)} records delivered, settled {price:.0f} <= whole-offer price "
                f"{whole.price:.0f} ({len(whole.accepted_records or [])} of {len(w.y)} bought)",
                (
                    "price counts verified records above threshold + 5 sigma"
                    if ok
                    else _stopped(exc, mde.DeliveryError, "")
                ),
            )
        )
    return rows


def _table(rows: list[Row]) -> str:
    cols = ["attack", "before (issue 14, old main)", "now (measured)", "stopped by"]
    cells = [[r.attack, r.before, r.now, r.stopped_by] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = ["| " + " | ".join(c.ljust(wd) for c, wd in zip(cols, widths)) + " |"]
    out.append("|" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    out += ["| " + " | ".join(c.ljust(wd) for c, wd in zip(row, widths)) + " |" for row in cells]
    return "\n".join(out)


def review_attacks() -> list[Callable[[World], list[Row]]]:
    """The red-team review's attacks (:mod:`benchmarks.attacks_review`)."""
    from benchmarks import attacks_review

    return [
        attacks_review.crafted_w,
        attacks_review.subset_whole_offer,
        attacks_review.seller_clip,
        attacks_review.mixing_graph,
        attacks_review.near_copies,
    ]


def main() -> str:
    os.environ["MDE_HOME"] = tempfile.mkdtemp(prefix="mde-home-")  # ledgers, identities
    t0 = time.perf_counter()
    w = _world()
    rows: list[Row] = []
    for attack in (
        copies,
        header,
        swapped,
        many_artifacts,
        identity_graph,
        hidden,
        replay,
        other_records,
        subsets,
        *review_attacks(),
    ):
        t = time.perf_counter()
        rows += attack(w)
        print(f"{attack.__name__}: {time.perf_counter() - t:.1f} s", flush=True)
    wall = time.perf_counter() - t0
    text = "\n".join(
        [
            "Attacks of issue 14 against the current protocol (digits, LogisticRegression(C=0.05) "
            "on 300, 400 test, offer of 300 records;",
            "influence proxy, 16 components; the 'before' column quotes issue 14's measurements "
            "on the old main, not re-measured).",
            "",
            _table(rows),
            "",
            f"wall time: {wall:.0f} s",
        ]
    )
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "attacks.txt"), "w") as f:
        f.write(text + "\n")
    return text


if __name__ == "__main__":
    main()
