"""Data owner, sealed-value mode: the Scorer commits to exactly what it scored, checks its
inputs, and its message opens to the plaintext efficacy."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.wire.artifact import read_artifact
from mde.wire.commitment import Committer, commit


@pytest.fixture(scope="module")
def scorer(artifact) -> mde.Scorer:
    return mde.load_artifact(artifact)


def test_load_artifact_gives_a_scorer(scorer, artifact):
    assert isinstance(scorer, mde.Scorer) and isinstance(scorer, mde.DataOwnerSession)
    assert scorer.mode == "sealed-value"
    assert scorer.manifest_sha256 == read_artifact(artifact).digest
    assert scorer.classes == list(range(10)) and scorer.has_membership_sketch


def test_commitment_is_salted_and_binds_the_scored_records(scorer, digits):
    a = scorer.score(digits.Xc, digits.yc, batch_size=7).commitment
    b = scorer.score(digits.Xc, digits.yc, batch_size=1000).commitment
    assert a != b  # fresh salts each time: a buyer cannot confirm a guessed data set
    X32 = digits.Xc.astype(np.float32)
    for c, batch in ((a, 7), (b, 1000)):  # each binds the float32 records and class indices
        seed = scorer.ledger.seed(c)
        assert c == commit(X32, digits.yc, seed)
        streamed = Committer(X32.shape[1], seed)
        for i in range(0, len(X32), batch):
            streamed.update(X32[i : i + batch], digits.yc[i : i + batch])
        assert streamed.hexdigest() == c  # independent of batching
        assert c != commit(X32[1:], digits.yc[1:], seed)
        assert c != commit(X32, (digits.yc + 1) % 10, seed)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "8"])
def test_bad_batch_size(scorer, digits, batch_size):
    with pytest.raises(mde.InputError, match="batch_size"):
        scorer.score(digits.Xc, digits.yc, batch_size=batch_size)


def test_bad_records_are_refused_before_anything_is_sealed(scorer, digits):
    with pytest.raises(mde.InputError):
        scorer.score(digits.Xc[:, :63], digits.yc)
    bad = digits.Xc[:10].copy()
    bad[3, 5] = np.nan
    with pytest.raises(mde.InputError, match="NaN"):
        scorer.score(bad, digits.yc[:10])
    with pytest.raises(mde.LabelError):
        scorer.score(digits.Xc[:10], np.full(10, 11))


def test_known_records_are_excluded_and_score_zero(proxy, scorer, digits):
    """Training records are recognised by the membership sketch: they are worth nothing."""
    np.testing.assert_array_equal(
        scorer.known(digits.Xtr[:50], digits.ytr[:50]),
        proxy.known(digits.Xtr[:50], digits.ytr[:50]),
    )
    assert scorer.known(digits.Xtr[:50], digits.ytr[:50]).all()
    np.testing.assert_array_equal(
        scorer.excluded(digits.Xc, digits.yc), proxy.excluded(digits.Xc, digits.yc)
    )
    assert not scorer.known(digits.Xc, digits.yc).all()


def test_sealed_scores_are_randomised(scorer, digits):
    """Two seals of the same records share their header but no commitment (fresh salts) and
    no ciphertext byte string (fresh masks and re-randomisation)."""
    a = scorer.score(digits.Xc[:20], digits.yc[:20])
    b = scorer.score(digits.Xc[:20], digits.yc[:20])
    assert a.header.model_dump(exclude={"commitment"}) == b.header.model_dump(
        exclude={"commitment"}
    )
    assert a.ciphertexts != b.ciphertexts
