"""The data owner's guard budgets: artifacts per buyer, numbers per buyer and data set,
buyers per data set, hidden-mode decryptions, pins; checked and recorded atomically in the
ledger (also across processes), and refused by the Scorer before any record is scored when
no data could change the answer."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mde
from mde.data_owner.ledger import DataOwnerLedger
from mde.data_owner.policy import GuardPolicy
from mde.data_owner.sealed import Scorer
from mde.wire.artifact import read_artifact
from mde.wire.signing import SigningKey

KEYS = [SigningKey.generate().public_hex for _ in range(6)]
_COMMITMENTS = itertools.count()


def _answer(
    book: DataOwnerLedger,
    policy: GuardPolicy,
    *,
    buyer: str = KEYS[0],
    artifact: str = "artifact-0",
    dataset: str = "dataset-0",
    numbers: int = 1,
    n_records: int = 100,
    buyer_name: str | None = None,
    decryption: tuple[str, str] | None = None,
) -> None:
    """Record one answer (each with a fresh commitment and salt seed)."""
    c = f"commitment-{next(_COMMITMENTS)}"
    book.record_answer(
        buyer=buyer,
        artifact=artifact,
        dataset=dataset,
        numbers=numbers,
        n_records=n_records,
        commitment=c,
        seed=c.encode(),
        policy=policy,
        buyer_name=buyer_name,
        decryption=decryption,
    )


@pytest.fixture()
def book(tmp_path) -> DataOwnerLedger:
    return DataOwnerLedger(tmp_path / "ledger.sqlite")


# -- the ledger's budgets (no crypto) ----------------------------------------------------
def test_max_artifacts_refuses_a_new_artifact_and_records_nothing(book):
    policy = GuardPolicy(max_artifacts=2, max_numbers=1000)
    _answer(book, policy, artifact="a1")
    _answer(book, policy, artifact="a2")
    before = book.answers()
    with pytest.raises(mde.BudgetError, match="max_artifacts=2"):
        _answer(book, policy, artifact="a3", dataset="another")
    assert book.answers() == before
    # a repeat of an answered artifact is not a new one (also about another data set)
    _answer(book, policy, artifact="a1")
    _answer(book, policy, artifact="a2", dataset="another")
    assert [a["artifact"] for a in book.answers()] == ["a1", "a2", "a1", "a2"]
    with pytest.raises(mde.BudgetError):
        _answer(book, policy, artifact="a3")
    # artifacts are counted per buyer: another key has its own
    _answer(book, policy, buyer=KEYS[1], artifact="a3")
    assert len(book.answers(KEYS[0])) == 4 and len(book.answers(KEYS[1])) == 1


def test_max_numbers_exactly_the_budget_passes(book):
    policy = GuardPolicy(max_numbers=5)
    _answer(book, policy, numbers=3)
    _answer(book, policy, numbers=2)  # 5 of 5
    with pytest.raises(mde.BudgetError, match="already has 5 and its budget is 5"):
        _answer(book, policy, numbers=1)
    assert sum(a["numbers"] for a in book.answers()) == 5
    # one answer of budget + 1 numbers is refused on a data set with nothing spent
    with pytest.raises(mde.BudgetError):
        _answer(book, policy, dataset="fresh", numbers=6)
    assert book.answers(KEYS[0]) == book.answers() and len(book.answers()) == 2
    # numbers are per data set and per buyer
    _answer(book, policy, dataset="fresh", numbers=5)
    _answer(book, policy, buyer=KEYS[1], numbers=5)
    assert [(a["dataset"], a["numbers"]) for a in book.answers()][2:] == [
        ("fresh", 5),
        ("dataset-0", 5),
    ]


def test_default_numbers_budget_is_n_records_plus_16(book):
    policy = GuardPolicy(max_artifacts=100)
    assert policy.numbers_budget(40) == 56
    _answer(book, policy, numbers=40, n_records=40)  # one per-record answer
    for i in range(16):  # then 16 totals, each from another artifact
        _answer(book, policy, artifact=f"t{i % 4}", n_records=40)
    with pytest.raises(mde.BudgetError, match="budget is 56"):
        _answer(book, policy, n_records=40)
    # the 27-artifact attack of issue 14: a second per-record answer is refused
    other = "dataset-1"
    _answer(book, policy, dataset=other, numbers=40, n_records=40)
    with pytest.raises(mde.BudgetError):
        _answer(book, policy, artifact="a-2", dataset=other, numbers=40, n_records=40)


def test_max_buyers_per_data_set(book):
    policy = GuardPolicy(max_buyers=2, max_numbers=100)
    _answer(book, policy, buyer=KEYS[0])
    _answer(book, policy, buyer=KEYS[1])
    with pytest.raises(mde.BudgetError, match="max_buyers=2"):
        _answer(book, policy, buyer=KEYS[2])
    assert {a["buyer"] for a in book.answers()} == {KEYS[0], KEYS[1]}
    _answer(book, policy, buyer=KEYS[1])  # a known buyer is still answered
    _answer(book, policy, buyer=KEYS[2], dataset="dataset-1")  # another data set: its own
    with pytest.raises(mde.BudgetError):
        _answer(book, policy, buyer=KEYS[3])
    assert len(book.answers()) == 4 and book.answers(KEYS[3]) == []


def test_max_requests_counts_decryptions_per_buyer_and_data_set(book):
    policy = GuardPolicy(max_requests=2, max_buyers=10, max_numbers=100)
    _answer(book, policy, decryption=("r1", "s1"))
    _answer(book, policy)  # a sealed answer is not a decryption
    _answer(book, policy, decryption=("r2", "s2"))
    assert book.decrypted("r1") and book.decrypted("r2")
    with pytest.raises(mde.BudgetError, match="max_requests=2"):
        _answer(book, policy, decryption=("r3", "s3"))
    assert not book.decrypted("r3") and len(book.answers()) == 3
    _answer(book, policy)  # sealed answers still pass
    _answer(book, policy, dataset="dataset-1", decryption=("r3", "s3"))  # another data set
    _answer(book, policy, buyer=KEYS[1], decryption=("r4", "s4"))  # another buyer
    assert book.decrypted("r3") and book.decrypted("r4")
    assert len(book.answers()) == 6


def test_a_request_is_decrypted_once(book):
    policy = GuardPolicy(max_buyers=10)
    _answer(book, policy, decryption=("r1", "s1"))
    before = book.answers()
    for buyer, dataset in ((KEYS[0], "dataset-0"), (KEYS[1], "dataset-1")):
        with pytest.raises(mde.ProtocolError, match="already decrypted"):
            _answer(book, policy, buyer=buyer, dataset=dataset, decryption=("r1", "s2"))
    assert book.answers() == before


def test_require_pinned_answers_pinned_buyers_only(book):
    policy = GuardPolicy(require_pinned=True)
    with pytest.raises(mde.IdentityError, match="not pinned"):
        _answer(book, policy)
    with pytest.raises(mde.IdentityError, match="not pinned"):
        book.precheck(KEYS[0], "artifact-0", policy)
    assert book.answers() == []
    book.pin("bob", KEYS[0])
    book.precheck(KEYS[0], "artifact-0", policy)
    _answer(book, policy)
    assert len(book.answers()) == 1
    # precheck refuses a name not pinned before, and pins nothing
    with pytest.raises(mde.IdentityError, match="not pinned"):
        book.precheck(KEYS[1], "artifact-0", policy, buyer_name="carol")
    assert book.buyer_name(KEYS[1]) is None


def test_require_pinned_is_not_satisfied_by_the_answers_own_pin(book):
    policy = GuardPolicy(require_pinned=True)
    with pytest.raises(mde.IdentityError, match="not pinned"):
        book.precheck(KEYS[1], "artifact-0", policy, buyer_name="carol")
    with pytest.raises(mde.IdentityError, match="not pinned"):
        _answer(book, policy, buyer=KEYS[1], buyer_name="carol")
    assert book.buyer_name(KEYS[1]) is None and book.answers() == []


def test_buyer_name_pinned_to_another_key_is_refused(book):
    policy = GuardPolicy()
    book.pin("alice", KEYS[0])
    for buyer, name in ((KEYS[1], "alice"), (KEYS[0], "mallory")):
        with pytest.raises(mde.IdentityError, match="pinned to key"):
            book.precheck(buyer, "artifact-0", policy, buyer_name=name)
        with pytest.raises(mde.IdentityError, match="pinned to key"):
            _answer(book, policy, buyer=buyer, buyer_name=name)
    assert book.answers() == [] and book.buyer_name(KEYS[1]) is None
    # the right pair is answered; a new name is pinned with its first answer (TOFU)
    _answer(book, policy, buyer=KEYS[0], buyer_name="alice")
    _answer(book, policy, buyer=KEYS[1], buyer_name="carol")
    assert (book.buyer_name(KEYS[0]), book.buyer_name(KEYS[1])) == ("alice", "carol")
    # a refused answer rolls back its pin too
    with pytest.raises(mde.BudgetError):
        _answer(book, policy, buyer=KEYS[2], buyer_name="dave", numbers=10**6)
    assert book.buyer_name(KEYS[2]) is None


def test_precheck_records_nothing(book):
    policy = GuardPolicy(max_artifacts=1)
    book.precheck(KEYS[0], "a1", policy, buyer_name="alice")
    book.precheck(KEYS[0], "a2", policy)
    assert book.answers() == [] and book.buyer_name(KEYS[0]) is None
    _answer(book, policy, artifact="a1")
    book.precheck(KEYS[0], "a1", policy)  # the answered artifact
    with pytest.raises(mde.BudgetError, match="max_artifacts=1"):
        book.precheck(KEYS[0], "a2", policy)
    # precheck does not look at numbers (they need the data)
    spent = GuardPolicy(max_artifacts=1, max_numbers=1)
    book.precheck(KEYS[0], "a1", spent)
    with pytest.raises(mde.BudgetError):
        _answer(book, spent, artifact="a1")
    assert len(book.answers()) == 1


# -- concurrency ---------------------------------------------------------------------------
_WORKER = r"""
import json, os, sys, time
from mde.data_owner.ledger import DataOwnerLedger
from mde.data_owner.policy import GuardPolicy
from mde.errors import BudgetError

path, go, worker, attempts, budget = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
book = DataOwnerLedger(path)
policy = GuardPolicy(max_numbers=budget)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
out = []
for i in range(attempts):
    try:
        book.record_answer(buyer="k" * 64, artifact="a", dataset="d", numbers=1, n_records=10,
                           commitment=f"{worker}-{i}", seed=None, policy=policy)
        out.append("ok")
    except BudgetError:
        out.append("refused")
print(json.dumps(out), flush=True)
os._exit(0)  # skip the interpreter teardown (seconds of imported libraries)
"""


def test_concurrent_processes_never_pass_the_budget(tmp_path):
    path, go = tmp_path / "shared.sqlite", tmp_path / "go"
    DataOwnerLedger(path)  # created once; every worker opens the same file
    workers, attempts, budget = 3, 80, 131
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), str(go), str(w), str(attempts), str(budget)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(workers)
    ]
    try:
        for p in procs:  # all imported and holding the ledger: start them together
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        outcomes = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            outcomes += json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert len(outcomes) == workers * attempts
    assert outcomes.count("ok") == budget
    assert outcomes.count("refused") == workers * attempts - budget
    answers = DataOwnerLedger(path).answers()
    assert len(answers) == budget and sum(a["numbers"] for a in answers) == budget


# -- end to end with the Scorer ---------------------------------------------------------
def test_second_per_record_answer_is_refused_after_scoring(artifact, digits):
    """Numbers need the data: the numbers budget is checked after the records are read, so
    a malformed data set is an InputError, not a BudgetError."""
    X, y = digits.Xc[:40], digits.yc[:40]
    scorer = mde.load_artifact(artifact)
    book = DataOwnerLedger()  # this test's MDE_HOME, as the scorer's
    scorer.score(X, y, per_record=True)
    assert [a["numbers"] for a in book.answers()] == [40]
    with pytest.raises(mde.BudgetError, match="already has 40 and its budget is 56"):
        scorer.score(X, y, per_record=True)
    assert len(book.answers()) == 1
    for _ in range(16):  # the default budget n + 16 leaves 16 totals
        scorer.score(X, y)
    with pytest.raises(mde.BudgetError, match="already has 56"):
        scorer.score(X, y)
    with pytest.raises(mde.InputError):
        scorer.score(X[:, :10], y)
    assert sum(a["numbers"] for a in book.answers()) == 56
    # another data set has its own budget
    scorer.score(digits.Xc[40:80], digits.yc[40:80], per_record=True)
    assert len(book.answers()) == 18


def test_artifacts_budget_is_refused_before_the_records_are_read(fresh_proxy, digits, tmp_path):
    for name in ("a1.mde", "a2.mde"):
        fresh_proxy.export(tmp_path / name)
    policy = GuardPolicy(max_artifacts=1)
    X, y = digits.Xc[:20], digits.yc[:20]
    first = mde.load_artifact(tmp_path / "a1.mde", policy=policy)
    first.score(X, y)
    second = mde.load_artifact(tmp_path / "a2.mde", policy=policy)
    for bad in (X[:, :10], np.full((20, 64), np.nan)):
        with pytest.raises(mde.BudgetError, match="max_artifacts=1"):
            second.score(bad, y)  # a malformed data set: refused before validation
    with pytest.raises(mde.BudgetError, match="max_artifacts=1"):
        second.score(X, y)
    # the same malformed data, unspent budgets: it would have been an InputError
    elsewhere = mde.load_artifact(tmp_path / "a2.mde", policy=policy, ledger=tmp_path / "o.sql")
    with pytest.raises(mde.InputError):
        elsewhere.score(X[:, :10], y)
    book = DataOwnerLedger()
    assert len(book.answers()) == 1
    first.score(digits.Xc[20:40], digits.yc[20:40])  # the answered artifact is still answered
    assert {a["artifact"] for a in book.answers()} == {first.manifest_sha256}


def test_pins_are_checked_before_the_records_are_read(fresh_proxy, digits, tmp_path):
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    X, y = digits.Xc[:20], digits.yc[:20]
    book = DataOwnerLedger()
    pinned_only = GuardPolicy(require_pinned=True)
    scorer = mde.load_artifact(path, policy=pinned_only)
    with pytest.raises(mde.IdentityError, match="not pinned"):
        scorer.score(X[:, :10], y)
    mde.load_artifact(path, policy=pinned_only, buyer="bob").score(X, y)  # pinned on load
    assert book.buyer_name(fresh_proxy.identity.public_hex) == "bob"
    scorer.score(X, y)  # the key is pinned now: the unnamed session is answered too
    # a buyer name pinned to another key: refused on load, and by the session itself
    book.pin("alice", KEYS[0])
    with pytest.raises(mde.IdentityError, match="pinned to key"):
        mde.load_artifact(path, buyer="alice")
    direct = Scorer(read_artifact(path), ledger=book, buyer="alice")
    with pytest.raises(mde.IdentityError, match="pinned to key"):
        direct.score(X[:, :10], y)
    assert len(book.answers()) == 2


def test_a_fifth_buyer_with_a_fresh_key_is_refused(fresh_proxy, digits, tmp_path):
    X, y = digits.Xc[:30], digits.yc[:30]
    scorers = []
    for i in range(5):
        fresh_proxy.identity = SigningKey.generate()  # the buyer makes a fresh key
        fresh_proxy.export(tmp_path / f"a{i}.mde")
        scorers.append(mde.load_artifact(tmp_path / f"a{i}.mde"))
    assert len({s.buyer_key for s in scorers}) == 5
    for s in scorers[:4]:
        s.score(X, y)
    with pytest.raises(mde.BudgetError, match="max_buyers=4"):
        scorers[4].score(X, y)
    book = DataOwnerLedger()
    assert book.answers(scorers[4].buyer_key) == []
    scorers[0].score(X, y)  # a known buyer is still answered
    scorers[4].score(digits.Xc[30:60], digits.yc[30:60])  # about another data set
    assert len(book.answers()) == 6


@pytest.fixture(scope="module")
def poly(digits, model):
    return mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", random_state=0
    )


def test_hidden_decryptions_past_max_requests_are_refused(poly, digits, tmp_path):
    path = tmp_path / "hidden.mde"
    poly.export(path, mode="hidden")
    client = mde.load_artifact(path, policy=GuardPolicy(max_requests=2))
    X, y = digits.Xc[:20], digits.yc[:20]

    def round_trip(X, y):
        request = client.encrypt(X, y)
        return request, client.decrypt(poly.evaluate_hidden(request, allow_repeat=True))

    for _ in range(2):
        round_trip(X, y)
    request = client.encrypt(X, y)  # encrypting is not a decryption: allowed
    with pytest.raises(mde.BudgetError, match="max_requests=2"):
        client.decrypt(poly.evaluate_hidden(request, allow_repeat=True))
    book = DataOwnerLedger()
    assert not book.decrypted(request.request_id) and len(book.answers()) == 2
    request, partial = round_trip(digits.Xc[20:40], digits.yc[20:40])  # another data set
    assert book.decrypted(request.request_id) and partial.request_id == request.request_id
    assert [a["numbers"] for a in book.answers()] == [1, 1, 1]


def test_hidden_encrypt_prechecks_the_artifacts_budget(poly, digits, tmp_path):
    for name in ("h1.mde", "h2.mde"):
        poly.export(tmp_path / name, mode="hidden")
    policy = GuardPolicy(max_artifacts=1)
    X, y = digits.Xc[:20], digits.yc[:20]
    first = mde.load_artifact(tmp_path / "h1.mde", policy=policy)
    first.decrypt(poly.evaluate_hidden(first.encrypt(X, y), allow_repeat=True))
    second = mde.load_artifact(tmp_path / "h2.mde", policy=policy)
    with pytest.raises(mde.BudgetError, match="max_artifacts=1"):
        second.encrypt(X[:, :10], y)  # refused before the records are read or encrypted
    assert not second.awaiting_reply and len(DataOwnerLedger().answers()) == 1
