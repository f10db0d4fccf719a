"""Extracted-tree proxy against exact answers: brute-force leaf refits, exact ONNX leaves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import mde
from mde.proxies.tree import leaf_refit_values


def _mean_test_loss(train_counts, test_counts, alpha):
    p = (train_counts + alpha) / (train_counts + alpha).sum(axis=1, keepdims=True)
    return -(test_counts * np.log(p)).sum() / test_counts.sum()


def test_leaf_refit_values_equal_brute_force():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 6, (5, 3)).astype(float)
    test = rng.integers(0, 4, (5, 3)).astype(float)
    w = leaf_refit_values(train, test, alpha=0.5)
    base = _mean_test_loss(train, test, 0.5)
    for leaf in range(5):
        for c in range(3):
            plus = train.copy()
            plus[leaf, c] += 1
            assert w[leaf, c] == pytest.approx(base - _mean_test_loss(plus, test, 0.5), abs=1e-12)


def test_record_score_is_the_refit_change_of_test_loss(digits, model):
    owner = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="tree",
        max_leaves=16,
        n_samples=3000,
        random_state=0,
    )
    proxy = owner.proxy  # the tree itself: its leaf lookup is the reference here
    k = len(proxy.classes_)
    test_counts = np.zeros((proxy.n_leaves_, k))
    np.add.at(test_counts, (proxy._leaf(digits.Xte), digits.yte), 1)
    base = _mean_test_loss(proxy.leaf_counts_, test_counts, proxy.alpha)
    scores = proxy.record_scores(digits.Xc[:20], digits.yc[:20])
    for i in range(20):
        plus = proxy.leaf_counts_.copy()
        plus[proxy._leaf(digits.Xc[i : i + 1])[0], digits.yc[i]] += 1
        want = base - _mean_test_loss(plus, test_counts, proxy.alpha)
        assert scores[i] == pytest.approx(want, abs=1e-12)


def test_onnx_leaves_are_exact_at_split_thresholds(digits, model, tmp_path):
    proxy = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="tree",
        max_leaves=32,
        n_samples=2000,
        random_state=1,
    )
    t = proxy.tree_.tree_
    internal = np.flatnonzero(t.children_left != -1)
    X = np.repeat(digits.Xc[: len(internal)], 3, axis=0).astype(np.float64)
    for j, node in enumerate(internal):  # records exactly on, just below and just above each split
        thr = np.float32(t.threshold[node])
        near = (thr, np.nextafter(thr, np.float32(-1e9)), np.nextafter(thr, np.float32(1e9)))
        for r, v in enumerate(near):
            X[3 * j + r, t.feature[node]] = float(v)
    y = np.zeros(len(X), dtype=int)
    proxy.export(tmp_path / "t.mde")
    got = mde.load_artifact(tmp_path / "t.mde").psi(X, y)
    np.testing.assert_array_equal(got, proxy.psi(X, y))
    assert np.all(got.sum(axis=1) == 1)  # exactly one cell per record


def test_single_leaf_tree(tmp_path):
    X = np.random.default_rng(0).random((60, 4))
    const = mde.wrap(lambda Z: np.tile([0.9, 0.1], (len(Z), 1)), classes=[0, 1], n_features=4)
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    proxy = mde.build_proxy(
        const, X[:40], y[:40], X[40:], y[40:], kind="tree", n_samples=100, random_state=0
    )
    assert proxy.n_leaves_ == 1
    proxy.export(tmp_path / "one.mde")
    got = mde.load_artifact(tmp_path / "one.mde").psi(X, y)
    np.testing.assert_array_equal(got, proxy.psi(X, y))
    np.testing.assert_array_equal(got.sum(axis=1), np.ones(len(y)))


def test_extraction_beats_relabelled_training_set_when_data_is_scarce(digits):
    """Bastani et al.: with few training records, sampling the input distribution helps."""
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(digits.Xtr, digits.ytr)
    proxy = mde.build_proxy(
        rf,
        digits.Xtr[:80],
        digits.ytr[:80],
        digits.Xte,
        digits.yte,
        kind="tree",
        max_leaves=32,
        n_samples=20000,
        random_state=0,
    )
    assert proxy.fidelity_ > proxy.baseline_fidelity_
    assert proxy.summary()["baseline_fidelity"] == proxy.baseline_fidelity_


def test_large_training_sets_grow_the_tree_on_a_subsample_but_count_every_record(
    digits, model, monkeypatch
):  # type: ignore[no-untyped-def]
    import mde.proxies.tree as tree_module

    monkeypatch.setattr(tree_module, "GROW_RECORDS", 120)
    p = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="tree", n_samples=200,
        max_leaves=8, random_state=0,
    ).proxy  # fmt: skip
    assert p.tree_.tree_.n_node_samples[0] == 120 + 200  # grown on 120 records + samples
    np.testing.assert_array_equal(p.leaf_counts_.sum(axis=1), np.bincount(
        p._leaf(digits.Xtr), minlength=p.n_leaves_))  # fmt: skip
    assert p.leaf_counts_.sum() == len(digits.ytr)  # every training record in its leaf
