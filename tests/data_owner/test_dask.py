"""A Dask cluster (LocalCluster, two worker processes on loopback) scores a Parquet offer
exactly as one process does, and runs the model owner's joblib work."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mde
from mde.cli import main

pytest.importorskip("distributed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SEED = bytes(range(32))


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    from mde.cluster import dask_client

    with dask_client(n_workers=2) as c:
        yield c


def _parquet(path, X, y, row_group_size):  # type: ignore[no-untyped-def]
    table = pa.table({**{f"f{j}": X[:, j] for j in range(X.shape[1])}, "label": y})
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


def _offer(digits):  # type: ignore[no-untyped-def]
    X = np.vstack([digits.Xc, digits.Xc[:40], digits.Xtr[:20]])  # copies across partitions
    return X, np.concatenate([digits.yc, digits.yc[:40], digits.ytr[:20]])


def test_the_cluster_seals_what_one_process_seals(client, proxy, artifact, digits, tmp_path):  # type: ignore[no-untyped-def]
    from mde.data_owner.dask_scoring import score_on_dask

    X, y = _offer(digits)
    path = _parquet(tmp_path / "offer.parquet", X, y, row_group_size=45)  # 8 partitions
    scorer = mde.load_artifact(artifact)
    local = scorer.score(X, y, seed=SEED)
    ref = scorer.last_summary
    sealed = score_on_dask(scorer, path, client, seed=SEED, batch_size=16)
    got = scorer.last_summary
    assert len(client.scheduler_info()["workers"]) == 2
    assert sealed.commitment == local.commitment == got.commitment == ref.commitment
    assert got.n_zero == ref.n_zero >= 60
    np.testing.assert_array_equal(got.psi_total, ref.psi_total)  # bit for bit
    a = proxy.open(local, allow_repeat=True)
    b = proxy.open(sealed, allow_repeat=True)
    assert b.efficacy == pytest.approx(a.efficacy, abs=1e-4)
    # per record: the same records in the same order
    rec = proxy.open(
        score_on_dask(scorer, path, client, per_record=True, seed=SEED), allow_repeat=True
    )
    np.testing.assert_allclose(rec.record_scores, proxy.record_scores(X, y), atol=1e-4)


def test_a_workers_input_error_reaches_the_caller(client, artifact, digits, tmp_path):  # type: ignore[no-untyped-def]
    from mde.data_owner.dask_scoring import score_on_dask

    X, y = digits.Xc[:60].copy(), digits.yc[:60]
    X[47, 9] = np.inf
    path = _parquet(tmp_path / "bad.parquet", X, y, row_group_size=20)
    with pytest.raises(mde.InputError, match="record 47"):
        score_on_dask(mde.load_artifact(artifact), path, client)


def test_joblib_work_runs_on_the_cluster_with_the_same_result(client, digits):  # type: ignore[no-untyped-def]
    import joblib
    from sklearn.linear_model import LogisticRegression

    from mde.valuation.retrain import retrain_utility

    sets = [(digits.Xc[i : i + 50], digits.yc[i : i + 50]) for i in range(0, 200, 50)]
    args = (digits.Xtr, digits.ytr, digits.Xte, digits.yte, sets)

    def factory(seed: int) -> LogisticRegression:
        return LogisticRegression(C=0.05, max_iter=500, random_state=seed)

    serial = retrain_utility(factory, *args, seeds=2)
    with joblib.parallel_config(backend="dask"):
        on_cluster = retrain_utility(factory, *args, seeds=2, n_jobs=2)
    np.testing.assert_array_equal(serial[0], on_cluster[0])


def test_mde_score_with_the_dask_engine(artifact, digits, tmp_path, capsys):  # type: ignore[no-untyped-def]
    X, y = digits.Xc, digits.yc
    path = _parquet(tmp_path / "offer.parquet", X, y, row_group_size=100)
    out = tmp_path / "s.mdeseal"
    code = main(
        ["score", "--artifact", artifact, "--data", path, "--engine", "dask", "--workers", "2"]
        + ["--out", str(out), "--quiet"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["n_records"] == 300
    code = main(
        ["score", "--artifact", artifact, "--data", str(tmp_path / "x.npz"), "--engine", "dask"]
        + ["--out", str(tmp_path / "t.mdeseal")]
    )
    assert code == 2
