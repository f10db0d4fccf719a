"""Streamed offers score exactly as in memory: arrays, memory maps, batches and Parquet."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np
import pytest

import mde
from mde.numerics import ExactSum
from mde.offers import offer_batches
from mde.proxies.repeats import RepeatTracker, SeenKeys, offer_repeats
from mde.validation import record_digests
from mde.wire.commitment import Fingerprint

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SEED = bytes(range(32))


def _offer(digits):  # type: ignore[no-untyped-def]
    """300 fresh digits, 40 exact copies of the first 40 (later, in other batches) and 20 of
    the owner's training records (known to the sketch)."""
    X = np.vstack([digits.Xc, digits.Xc[:40], digits.Xtr[:20]])
    y = np.concatenate([digits.yc, digits.yc[:40], digits.ytr[:20]])
    return X, y


def _write_parquet(path, X, y, row_group_size=97, names=None):  # type: ignore[no-untyped-def]
    names = names or [f"f{j}" for j in range(X.shape[1])]
    table = pa.table({**{n: X[:, j] for j, n in enumerate(names)}, "label": y})
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


def _summary(scorer, *args, **kwargs):  # type: ignore[no-untyped-def]
    sealed = scorer.score(*args, seed=SEED, **kwargs)
    return sealed, scorer.last_summary


def test_every_source_and_batch_size_gives_the_same_total_and_commitment(
    proxy, artifact, digits, tmp_path
):  # type: ignore[no-untyped-def]
    X, y = _offer(digits)
    scorer = mde.load_artifact(artifact)
    _, ref = _summary(scorer, X, y)
    assert ref.n_records == 360 and ref.n_zero >= 60  # 40 copies + 20 known records
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    pqf = _write_parquet(tmp_path / "offer.parquet", X, y)
    sources = [
        ((X, y), {"batch_size": 7}),
        ((X, y), {"batch_size": 100_000}),
        ((np.load(tmp_path / "X.npy", mmap_mode="r"), y), {"batch_size": 50}),
        ((str(tmp_path / "X.npy"), str(tmp_path / "y.npy")), {"batch_size": 64}),
        (([(X[i : i + 33], y[i : i + 33]) for i in range(0, 360, 33)],), {}),
        ((pqf,), {"batch_size": 40}),
    ]
    for args, kwargs in sources:
        _, got = _summary(scorer, *args, **kwargs)
        assert got.commitment == ref.commitment
        assert got.n_zero == ref.n_zero
        np.testing.assert_array_equal(got.psi_total, ref.psi_total)  # bit for bit
    # and the total is the plaintext proxy's on the same records
    assert ref.psi_total @ proxy.w_ == pytest.approx(proxy.efficacy(X, y), rel=1e-5)


def test_per_record_scores_stream_in_order_across_ciphertext_groups(proxy, artifact, digits):  # type: ignore[no-untyped-def]
    X, y = _offer(digits)
    scorer = mde.load_artifact(artifact)
    report = proxy.open(scorer.score(X, y, per_record=True, batch_size=13), allow_repeat=True)
    np.testing.assert_allclose(report.record_scores, proxy.record_scores(X, y), atol=1e-4)


def test_parquet_columns_are_aligned_by_the_artifacts_feature_names(digits, tmp_path):  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression

    names = [f"px{j}" for j in range(64)]
    frame = pd.DataFrame(digits.Xtr, columns=names)
    model = LogisticRegression(C=0.05, max_iter=3000).fit(frame, digits.ytr)
    owner = mde.build_proxy(
        model, frame, digits.ytr, pd.DataFrame(digits.Xte, columns=names), digits.yte,
        n_components=8, random_state=0,
    )  # fmt: skip
    owner.export(tmp_path / "a.mde")
    scorer = mde.load_artifact(tmp_path / "a.mde")
    X, y = digits.Xc, digits.yc
    _, ref = _summary(scorer, pd.DataFrame(X, columns=names), y)
    shuffled = list(reversed(names))  # the file's columns in another order
    pqf = _write_parquet(tmp_path / "r.parquet", X[:, ::-1], y, names=shuffled)
    _, got = _summary(scorer, pqf)
    np.testing.assert_array_equal(got.psi_total, ref.psi_total)
    assert got.commitment == ref.commitment
    pqm = _write_parquet(tmp_path / "m.parquet", X[:, :63], y, names=names[:63])
    with pytest.raises(mde.InputError, match="px63"):
        scorer.score(pqm)


def test_parquet_errors_name_the_record_and_column(artifact, digits, tmp_path):  # type: ignore[no-untyped-def]
    scorer = mde.load_artifact(artifact)
    X, y = digits.Xc[:50], digits.yc[:50]
    names = [f"f{j}" for j in range(64)]
    cols = {n: pa.array(X[:, j]) for j, n in enumerate(names)}
    cols["f5"] = pa.array([None if i == 17 else v for i, v in enumerate(X[:, 5])])
    pq.write_table(pa.table({**cols, "label": y}), tmp_path / "null.parquet", row_group_size=10)
    with pytest.raises(mde.InputError, match=r"record 17, column 'f5'"):
        scorer.score(str(tmp_path / "null.parquet"))
    cols = {n: pa.array(X[:, j]) for j, n in enumerate(names)}
    cols["f3"] = pa.array(["a"] * 50)
    pq.write_table(pa.table({**cols, "label": y}), tmp_path / "text.parquet")
    with pytest.raises(mde.InputError, match="'f3' is not numeric"):
        scorer.score(str(tmp_path / "text.parquet"))
    pqf = _write_parquet(tmp_path / "ok.parquet", X, y)
    with pytest.raises(mde.InputError, match="label column 'target'"):
        scorer.score(pqf, label_column="target")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(mde.InputError, match="Parquet"):
        scorer.score(str(tmp_path / "bad.parquet"))
    Xnan = X.copy()
    Xnan[31, 2] = np.inf
    with pytest.raises(mde.InputError, match="record 31"):
        scorer.score(_write_parquet(tmp_path / "inf.parquet", Xnan, y, row_group_size=8))


def test_batch_sources_are_refused_when_malformed(artifact, digits):  # type: ignore[no-untyped-def]
    scorer = mde.load_artifact(artifact)
    X, y = digits.Xc[:20], digits.yc[:20]
    with pytest.raises(mde.InputError, match="not an \\(X, y\\) pair"):
        scorer.score([X])
    with pytest.raises(mde.InputError, match="no batches"):
        scorer.score(iter([]))
    with pytest.raises(mde.InputError, match="batch 1 has 10 records"):
        scorer.score([(X[:10], y[:10]), (X[10:], y[:3])])
    with pytest.raises(mde.InputError, match="labels are missing"):
        scorer.score(X)
    with pytest.raises(mde.InputError, match="batch_size"):
        scorer.score(X, y, batch_size=0)


def test_seen_keys_match_a_brute_force_first_occurrence() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 50, 2000).astype(np.uint64)  # many repeats
    expected = np.array([k in set(keys[:i].tolist()) for i, k in enumerate(keys)])
    seen = SeenKeys()
    got = np.concatenate([seen.update(keys[i : i + s]) for i, s in _chunks(len(keys))])
    np.testing.assert_array_equal(got, expected)
    assert len(seen) == len(np.unique(keys))


def _chunks(n: int) -> list[tuple[int, int]]:
    out, i, s = [], 0, 1
    while i < n:
        out.append((i, s))
        i, s = i + s, (s * 3) % 17 + 1  # uneven batch sizes
    return out


def test_the_streamed_repeat_rule_is_the_one_batch_rule(proxy, digits) -> None:  # type: ignore[no-untyped-def]
    X, y = _offer(digits)
    rng = np.random.default_rng(0)
    X = np.vstack([X, X[:30] + rng.normal(0.0, 0.01, (30, 64))])  # near-copies, last batch
    y = np.concatenate([y, y[:30]])
    sketch = proxy.known_
    whole = offer_repeats(X, y, sketch)
    assert whole[300:340].all() and whole[-30:].all() and not whole[:300].any()
    tracker = RepeatTracker(sketch)
    parts = []
    for i in range(0, len(y), 37):
        xb, yb = X[i : i + 37], y[i : i + 37]
        parts.append(tracker.update(record_digests(xb, yb), sketch.screen(xb, yb)[0]))
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_exact_sum_is_exact_and_independent_of_batching() -> None:
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((3000, 4)) * np.exp(rng.uniform(-60, 60, (3000, 4)))).astype(
        np.float32
    )
    a[0, 0], a[1, 1], a[2, 2], a[3, 3] = 1e-45, -3e38, 3e38, -0.0  # subnormal, extremes
    exact = np.array([float(sum(Fraction(float(v)) for v in a[:, j])) for j in range(4)])
    whole = ExactSum(4)
    whole.add(a)
    np.testing.assert_array_equal(whole.value(), exact)
    parts = ExactSum(4)
    for i, s in _chunks(3000):
        piece = ExactSum(4)
        piece.add(a[::-1][i : i + s])
        parts.merge(piece)
    np.testing.assert_array_equal(parts.value(), exact)
    with pytest.raises(ValueError, match="float32"):
        ExactSum(4).add(a.astype(np.float64))


def test_a_spilled_fingerprint_is_the_in_memory_one(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits.Xc, digits.yc
    whole = Fingerprint(64)
    whole.update(X, y)
    spilled = Fingerprint(64, memory_records=25)
    for i in range(0, 300, 11):
        spilled.update(X[i : i + 11], y[i : i + 11])
    assert spilled.hexdigest() == whole.hexdigest()
    # the definition: SHA-256 of the tag, the shape and the sorted 16-byte BLAKE2b digests
    rows = [
        hashlib.blake2b(
            (X[i].astype("<f4") + np.float32(0)).tobytes() + int(y[i]).to_bytes(8, "little"),
            digest_size=16,
        ).digest()
        for i in range(300)
    ]
    h = hashlib.sha256(b"mde-fingerprint-v2-multiset-f32" + b"300:64" + b"".join(sorted(rows)))
    assert whole.hexdigest() == h.hexdigest()
    spilled.close()


def test_offer_batches_never_copy_a_memory_map_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    X = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    batches = list(offer_batches(mm, np.zeros(40), n_features=3, batch_size=16))
    assert [b.start for b in batches] == [0, 16, 32]
    assert all(np.shares_memory(b.X, mm) for b in batches)  # views of the map, read lazily


def test_prefetch_keeps_order_raises_in_order_and_stops_its_reader() -> None:
    import threading

    from mde.data_owner.batch_work import prefetch

    def source():  # type: ignore[no-untyped-def]
        yield from range(3)
        raise mde.InputError("record 3 is bad")

    got = []
    with pytest.raises(mde.InputError, match="record 3"):
        for item in prefetch(source(), depth=1):  # type: ignore[arg-type]
            got.append(item)
    assert got == [0, 1, 2]
    endless = prefetch(iter(range(10**9)), depth=2)  # type: ignore[arg-type]
    assert next(endless) == 0
    endless.close()  # the consumer stops early: the reader thread ends too
    assert not any(t.name == "mde-offer-reader" and t.is_alive() for t in threading.enumerate())


def test_a_fingerprint_whose_last_batch_spilled_still_answers(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits.Xc[:5], digits.yc[:5]
    whole = Fingerprint(64)
    whole.update(X, y)
    spilled = Fingerprint(64, memory_records=4)
    spilled.update(X, y)  # 5 > 4: this batch spills, nothing stays held
    assert spilled.hexdigest() == whole.hexdigest() == spilled.hexdigest()
    spilled.close()


def test_parquet_features_keep_the_widest_column_type(digits, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import mde.offers.parquet as parquet

    monkeypatch.setattr(parquet, "_COLUMNS_PER_READ", 8)  # the first block: float16 columns
    X = digits.Xc[:20] + np.linspace(0.0, 1.0, 64) * 1e-3  # values float16 cannot hold
    cols = {
        f"f{j}": pa.array(X[:, j].astype(np.float16 if j < 8 else np.float64)) for j in range(64)
    }
    pq.write_table(pa.table({**cols, "label": digits.yc[:20]}), tmp_path / "mixed.parquet")
    (batch,) = parquet.ParquetOffer(str(tmp_path / "mixed.parquet")).batches(100, 64)
    np.testing.assert_array_equal(batch.X[:, 8:], X[:, 8:])  # float64 columns exact
    np.testing.assert_array_equal(batch.X[:, :8], X[:, :8].astype(np.float16))
