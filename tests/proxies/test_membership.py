"""Membership sketch: copies and near-copies of training records score zero, on both sides."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.data_owner.ledger import DataOwnerLedger
from mde.proxies.membership import MembershipSketch
from mde.wire.artifact import read_artifact


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


def _brute_force_known(sketch: MembershipSketch, Xtr, ytr, X, y) -> np.ndarray:
    """Same rule with Python sets of (table, cell, label): no hashing."""

    def cells(A):
        z = (np.asarray(A, np.float32).astype(np.float64) - sketch.mean_) @ sketch.projection_
        return [np.floor(z + sketch.offsets_[t]).astype(np.int64) for t in range(sketch.n_tables)]

    occupied = {
        (t, tuple(c), int(lab)) for t, cs in enumerate(cells(Xtr)) for c, lab in zip(cs, ytr)
    }
    per_table = cells(X)
    return np.array(
        [
            any((t, tuple(per_table[t][i]), int(y[i])) in occupied for t in range(sketch.n_tables))
            for i in range(len(y))
        ]
    )


def test_sketch_matches_brute_force_cell_lookup(digits):
    sketch = MembershipSketch(n_components=12, width=0.7, n_tables=4).fit(digits.Xtr, digits.ytr, 0)
    rng = np.random.default_rng(1)
    near = digits.Xtr + rng.normal(0, 0.8, digits.Xtr.shape)
    for X, y in [(digits.Xtr, digits.ytr), (near, digits.ytr), (digits.Xc, digits.yc)]:
        got = sketch.known(X, y)
        np.testing.assert_array_equal(got, _brute_force_known(sketch, digits.Xtr, digits.ytr, X, y))
    assert sketch.known(digits.Xtr, digits.ytr).all()
    assert 0 < sketch.known(near, digits.ytr).sum() < len(near)  # the noisy check is not vacuous


def test_copies_and_near_copies_are_known_fresh_records_are_not(proxy, digits):
    rng = np.random.default_rng(0)
    near = np.clip(digits.Xtr + rng.normal(0, 0.3, digits.Xtr.shape), 0, 16)
    assert proxy.known(digits.Xtr, digits.ytr).all()
    assert proxy.known(near, digits.ytr).mean() > 0.9
    assert proxy.known(digits.Xc, digits.yc).mean() < 0.02
    # a copy with another label is new information, not a known record
    assert not proxy.known(digits.Xtr, (digits.ytr + 1) % 10).any()


def test_known_records_score_zero_in_plaintext_and_sealed(proxy, artifact, digits):
    X = np.vstack([digits.Xtr[:50], digits.Xc[:50]])
    y = np.r_[digits.ytr[:50], digits.yc[:50]]
    scores = proxy.record_scores(X, y)
    assert np.all(scores[:50] == 0.0)
    raw = proxy.record_scores(X, y, exclude=False)
    assert np.all(raw[:50] != 0.0)  # the sketch, not the proxy, zeroes them
    np.testing.assert_allclose(scores[50:], raw[50:])
    sealed = mde.load_artifact(artifact).score(X, y, per_record=True)
    report = proxy.open(sealed, allow_repeat=True)
    np.testing.assert_allclose(report.record_scores[:50], 0.0, atol=1e-4)
    assert report.efficacy == pytest.approx(scores.sum(), abs=1e-3)


def test_data_owner_ignoring_the_sketch_is_caught_at_delivery(fresh_proxy, digits, tmp_path):
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    scorer = mde.load_artifact(path)
    scorer._known = scorer._engine.sketch = None  # a dishonest scorer pricing copies of D_tr
    X, y = digits.Xtr[:100], digits.ytr[:100]
    report = fresh_proxy.open(scorer.score(X, y))
    assert abs(report.efficacy) > 1e-3
    with pytest.raises(mde.DeliveryError, match="efficacy"):
        fresh_proxy.verify_delivery(X, y, report, seed=_seed(report))


def test_exclude_known_switches(model, digits, tmp_path):
    off = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, exclude_known=False, random_state=0
    )
    assert off.known_ is None and off.record_scores(digits.Xtr[:20], digits.ytr[:20]).any()
    off.export(tmp_path / "off.mde")
    assert "known.npz" not in read_artifact(tmp_path / "off.mde").members
    assert not mde.load_artifact(tmp_path / "off.mde").has_membership_sketch
    on = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, random_state=0)
    on.export(tmp_path / "on.mde")
    assert "known.npz" in read_artifact(tmp_path / "on.mde").members
    assert mde.load_artifact(tmp_path / "on.mde").has_membership_sketch
    # "auto" declines when the data has too few directions for the cells to stay unlistable
    Xtr8, Xte8 = digits.Xtr[:, 20:28], digits.Xte[:, 20:28]
    few = mde.build_proxy(_model_few(digits), Xtr8, digits.ytr, Xte8, digits.yte, random_state=0)
    assert few.known_ is None
    forced = mde.build_proxy(
        _model_few(digits), Xtr8, digits.ytr, Xte8, digits.yte, exclude_known=True, random_state=0
    )
    assert forced.known(Xtr8, digits.ytr).all()
    with pytest.raises(mde.InputError, match="exclude_known"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, exclude_known="yes")


def _model_few(digits):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000).fit(digits.Xtr[:, 20:28], digits.ytr)


def test_sketch_survives_save_and_load_and_refuses_bad_bytes(proxy, digits, tmp_path):
    proxy.save(tmp_path / "p.zip")
    back = mde.load_proxy(tmp_path / "p.zip")
    X = np.vstack([digits.Xtr[:30], digits.Xc[:30]])
    y = np.r_[digits.ytr[:30], digits.yc[:30]]
    np.testing.assert_array_equal(back.known(X, y), proxy.known(X, y))
    blob = proxy.known_.to_bytes()
    with pytest.raises(mde.ArtifactError, match="does not fit"):
        MembershipSketch.from_bytes(blob, n_features=63)
    with pytest.raises(mde.ArtifactError, match="damaged"):
        MembershipSketch.from_bytes(blob[: len(blob) // 2], n_features=64)


def test_tree_proxy_uses_the_sketch_too(model, digits):
    tree = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="tree",
        n_samples=2000,
        random_state=0,
    )
    assert np.all(tree.record_scores(digits.Xtr[:40], digits.ytr[:40]) == 0.0)
    assert np.any(tree.record_scores(digits.Xc[:40], digits.yc[:40]) != 0.0)


def _first_coordinate(sketch: MembershipSketch, X: np.ndarray) -> np.ndarray:
    """Grid coordinate 0 of table 0 of each record, computed as the sketch computes it (the
    record's cell there is its floor)."""
    return sketch._project(np.atleast_2d(X))[0][:, 0] + sketch.offsets_[0, 0]


def _half_float32_step(v: float) -> float:
    """Half the smaller gap between the float32 value ``v`` and its two float32 neighbours:
    a float64 number closer than this to ``v`` rounds to ``v``."""
    f = np.float32(v)
    gaps = [abs(float(np.nextafter(f, np.float32(s)) - f)) for s in (-np.inf, np.inf)]
    return min(gaps) / 2


def _edge_record(
    sketch: MembershipSketch, Xtr: np.ndarray, ytr: np.ndarray, i: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, r)``: a float64 record ``x`` and its float32 rounding ``r`` on the two sides of a
    cell edge of the sketch's only grid, one of the two in training record ``i``'s cell.

    Record i slides along grid coordinate 0 alone (the projection's columns are orthogonal,
    so the other coordinates stay in their cells) to the edge whose far cell holds no
    training record of its label; rounded to float32 it lands within rounding error of the
    edge. One feature j is then set to the float32 value nearest the edge, which leaves
    ``r`` less than half a float32 step of feature j from it, and ``x`` is put on the other
    side of the edge, still less than half a step from ``r`` (so that it rounds to ``r``)."""
    assert sketch.n_tables == 1
    P = sketch.projection_
    x0, y0 = Xtr[i], ytr[i]
    a0 = _first_coordinate(sketch, x0)[0]
    cells = np.floor(sketch._project(Xtr[ytr == y0])[0] + sketch.offsets_[0])
    occupied = {tuple(c) for c in cells.astype(np.int64)}
    cell = np.floor(sketch._project(x0[None])[0][0] + sketch.offsets_[0]).astype(np.int64)
    unit = np.eye(len(cell), dtype=np.int64)[0]
    if tuple(cell + unit) not in occupied:
        edge, far = np.floor(a0) + 1.0, cell + unit
    else:
        edge, far = np.floor(a0), cell - unit
    assert tuple(far) not in occupied  # the cell across the edge is empty for this label
    d = P[:, 0] / (P[:, 0] @ P[:, 0])  # moves coordinate 0 by one per unit, the others not
    r = (x0 + (edge - a0) * d).astype(np.float32).astype(np.float64)
    half = np.array([_half_float32_step(v) for v in r])
    j = int(np.argmax(np.abs(P[:, 0]) * half))  # the feature whose float32 step moves a most
    r[j] = float(np.float32(r[j] + (edge - _first_coordinate(sketch, r)[0]) / P[j, 0]))
    h = _half_float32_step(r[j])
    u = (_first_coordinate(sketch, r)[0] - edge) / P[j, 0]  # r's distance from the edge, in x_j
    assert 0 < abs(u) < h
    x = r.copy()
    x[j] = r[j] - u - np.sign(u) * (h - abs(u)) / 2  # across the edge, (h + |u|) / 2 from r_j
    return x[None, :], r[None, :]


def test_delivery_recomputes_the_sketch_on_the_float32_records_that_were_scored(
    fresh_proxy, digits, tmp_path
):
    # one grid, so that crossing one cell edge changes whether the record is known
    Xtr, ytr = fresh_proxy.validate(digits.Xtr, digits.ytr)
    sketch = MembershipSketch(n_components=12, n_tables=1).fit(Xtr, ytr, 0)
    fresh_proxy.proxy.known_ = sketch
    x, r = _edge_record(sketch, Xtr, ytr, 0)
    np.testing.assert_array_equal(x.astype(np.float32).astype(np.float64), r)  # r rounds x
    a = _first_coordinate(sketch, np.vstack([x, r]))
    assert np.floor(a[0]) != np.floor(a[1])  # x and r lie on the two sides of a cell edge
    y = digits.ytr[:1]
    known64, known32 = sketch.known(x, ytr[:1])[0], sketch.known(r, ytr[:1])[0]
    assert known64 != known32  # one of them is in training record 0's cell, the other is not
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    report = fresh_proxy.open(mde.load_artifact(path).score(x, y, per_record=True))
    plain64 = fresh_proxy.record_scores(x, y)[0]
    plain32 = fresh_proxy.record_scores(x.astype(np.float32), y)[0]
    assert (plain64 == 0.0) == known64 and (plain32 == 0.0) == known32
    assert abs(plain64 - plain32) > 1e-3  # the two roundings disagree on this record
    assert report.record_scores[0] == pytest.approx(plain32, abs=1e-4)  # it scored float32
    fresh_proxy.verify_delivery(
        x, y, report, seed=_seed(report)
    )  # the honest data owner is not accused


# -- outlier screen: records far from the training data's principal subspace -----------------


def _brute_force_distance(Xtr: np.ndarray, k: int, X: np.ndarray) -> np.ndarray:
    """Distance of each record from D_tr's top-k principal subspace, by explicit projection."""
    mu = Xtr.mean(axis=0)
    V = np.linalg.svd(Xtr - mu, full_matrices=False)[2][:k]
    C = X - mu
    return np.linalg.norm(C - (C @ V.T) @ V, axis=1)


def test_outlier_screen_matches_explicit_projection(digits):
    sketch = MembershipSketch(n_components=12, outlier_margin=1.1).fit(digits.Xtr, digits.ytr, 0)
    d_tr = _brute_force_distance(digits.Xtr, 12, digits.Xtr)
    assert sketch.outlier_threshold_ == pytest.approx(1.1 * d_tr.max(), rel=1e-9)
    rng = np.random.default_rng(2)
    X = np.vstack([digits.Xc, rng.uniform(0, 16, (50, 64)), digits.Xc[:50] * 1.6])
    d = _brute_force_distance(digits.Xtr, 12, X)
    np.testing.assert_allclose(
        np.sqrt(np.maximum(sketch._project(X)[1], 0)), d, rtol=1e-7, atol=1e-6
    )
    np.testing.assert_array_equal(sketch.outside(X), d > sketch.outlier_threshold_)
    assert not sketch.outside(digits.Xtr).any()  # a margin >= 1 keeps every training record
    assert sketch.outside(X[300:350]).all()  # uniform noise images: far from the digits' subspace
    assert sketch.outside(digits.Xc).mean() < 0.02
    # the scaled digits straddle the threshold: a real test
    assert 0 < sketch.outside(X[350:]).sum() < 50
    y = np.r_[digits.yc, np.zeros(100, dtype=int)]
    np.testing.assert_array_equal(sketch.excluded(X, y), sketch.known(X, y) | sketch.outside(X))


def test_records_inside_the_subspace_are_never_outside(digits):
    sketch = MembershipSketch(n_components=12).fit(digits.Xtr, digits.ytr, 0)
    mu = digits.Xtr.mean(axis=0)
    V = np.linalg.svd(digits.Xtr - mu, full_matrices=False)[2][:12]
    far_along = mu + 1e3 * V[0] - 7e2 * V[5]  # far away, but along the principal directions
    assert not sketch.outside(far_along[None, :])[0]


def test_outlier_screen_switches_off(digits):
    off = MembershipSketch(outlier_margin=None).fit(digits.Xtr, digits.ytr, 0)
    assert off.outlier_threshold_ == np.inf
    # every direction kept: distances from the subspace are rounding error, so no screen
    full = MembershipSketch(n_components=64).fit(digits.Xtr[:, 20:28], digits.ytr, 0)
    assert full.outlier_threshold_ == np.inf and not full.outside(digits.Xc[:, 20:28] * 50).any()
    for bad in (0.5, float("nan"), "1.1"):
        with pytest.raises(mde.InputError, match="outlier_margin"):
            MembershipSketch(outlier_margin=bad).fit(digits.Xtr, digits.ytr, 0)


def test_outliers_score_zero_on_both_sides_and_the_threshold_travels(proxy, artifact, digits):
    rng = np.random.default_rng(3)
    X = np.vstack([rng.uniform(0, 16, (40, 64)), digits.Xc[:40]])
    y = np.r_[rng.integers(0, 10, 40), digits.yc[:40]]
    scores = proxy.record_scores(X, y)
    assert proxy.excluded(X, y)[:40].all() and np.all(scores[:40] == 0.0)
    assert np.all(proxy.record_scores(X, y, exclude=False)[:40] != 0.0)  # the screen zeroes them
    scorer = mde.load_artifact(artifact)
    np.testing.assert_array_equal(scorer.excluded(X, y), proxy.excluded(X, y))
    shipped = MembershipSketch.from_bytes(read_artifact(artifact).members["known.npz"], 64)
    assert shipped.outlier_threshold_ == proxy.known_.outlier_threshold_ < np.inf
    report = proxy.open(scorer.score(X, y, per_record=True), allow_repeat=True)
    np.testing.assert_allclose(report.record_scores[:40], 0.0, atol=1e-4)
    proxy.verify_delivery(X, y, report, seed=_seed(report))


def test_sketch_bytes_from_before_the_screen_load_without_it(proxy):
    import io

    s = proxy.known_
    buf = io.BytesIO()
    np.savez(
        buf,
        mean=s.mean_,
        projection=s.projection_,
        offsets=s.offsets_,
        multipliers=s.multipliers_,
        hashes=s.hashes_,
        config=np.array([s.n_components, s.width, s.n_tables], dtype=np.float64),
    )
    old = MembershipSketch.from_bytes(buf.getvalue(), n_features=64)
    assert old.outlier_threshold_ == np.inf and old.outlier_margin is None


def test_outlier_screen_is_stable_under_a_large_offset(digits):
    """Distances come from centred records: a feature offset of 1e4 (spread ~5) must not turn
    rounding error into outliers, neither for rank-deficient data nor for float32 records."""
    shifted = digits.Xtr + 1e4
    sketch = MembershipSketch(n_components=12).fit(shifted, digits.ytr, 0)
    d_tr = _brute_force_distance(shifted, 12, shifted)
    assert sketch.outlier_threshold_ == pytest.approx(1.1 * d_tr.max(), rel=1e-6)
    assert not sketch.outside(shifted.astype(np.float32)).any()
    assert sketch.outside(digits.Xc[:50] + 1e4).mean() < 0.05
    rng = np.random.default_rng(4)
    # rank 10 <= 16 directions
    low_rank = rng.normal(size=(300, 10)) @ rng.normal(size=(10, 64)) + 1e3
    full = MembershipSketch(n_components=16).fit(low_rank, digits.ytr, 0)
    assert full.outlier_threshold_ == np.inf
    fresh = rng.normal(size=(200, 10)) @ rng.normal(size=(10, 64)) + 1e3
    assert not full.outside(fresh).any()
    with pytest.raises(mde.InputError, match="outlier_margin"):
        # checked even when the screen is off
        MembershipSketch(n_components=16, outlier_margin=0.5).fit(low_rank, digits.ytr, 0)
