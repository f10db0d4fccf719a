"""Shapley estimators against closed-form values on toy games and brute force."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from pricing.shapley import (
    compressive_shapley,
    exact_shapley,
    group_testing_count,
    group_testing_shapley,
    knn_shapley,
    largest_subset_shapley,
    permutation_count,
    permutation_shapley,
    uniform_shapley,
)

COSTS = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 5.0, 8.0, 9.0])


def airport(S):
    return float(COSTS[list(S)].max()) if S else 0.0


def airport_closed_form(c):
    n = len(c)
    prev = np.r_[0.0, c[:-1]]
    steps = (c - prev) / (n - np.arange(n))  # (c_j - c_{j-1}) / (n - j + 1), 1-based j
    return np.cumsum(steps)


def voting(S, quota=5):
    return 1.0 if len(S) >= quota else 0.0


def test_exact_matches_closed_forms():
    np.testing.assert_allclose(exact_shapley(airport, 8).as_array(), airport_closed_form(COSTS), atol=1e-12)
    np.testing.assert_allclose(exact_shapley(voting, 8).as_array(), np.full(8, 1 / 8), atol=1e-12)
    assert exact_shapley(airport, 8).n_evaluations == 2**8


def test_permutation_sampling_within_its_error():
    truth = airport_closed_form(COSTS)
    res = permutation_shapley(airport, 8, n_permutations=2000, random_state=0)
    err = np.abs(res.as_array() - truth)
    assert np.all(err <= 4 * np.asarray(res.stderr) + 1e-9)
    # the (epsilon, delta) count of section 4.1 delivers its guarantee on the voting game
    m = permutation_count(8, epsilon=0.1, delta=0.05, utility_range=1.0)
    res = permutation_shapley(voting, 8, epsilon=0.1, delta=0.05, utility_range=1.0, random_state=1)
    assert res.params["n_permutations"] == m
    assert np.linalg.norm(res.as_array() - 1 / 8) <= 0.1


def test_group_testing_within_epsilon():
    truth = airport_closed_form(COSTS)
    r = COSTS.max()
    res = group_testing_shapley(airport, 8, n_tests=20000, epsilon=0.5, utility_range=r, random_state=0)
    assert abs(sum(res.values) - airport(tuple(range(8)))) < 1e-9  # group rationality from the LP
    assert np.linalg.norm(res.as_array() - truth) <= 0.5
    assert group_testing_count(8, 0.5, 0.05, r) > 0


def test_compressive_sampling_recovers_sparse_values_from_fewer_measurements():
    """Values = mean + a 3-sparse deviation (seed 002, section 4.3): 20 measurements of 40
    players recover them (Theorem 4 with sigma_K = 0); a symmetric voting term adds the
    sampling noise of real marginals, and the error stays near permutation sampling's."""
    n = 40
    v = np.full(n, 0.05)
    v[[3, 17, 29]] += [1.0, -0.6, -0.4]  # deviations sum to zero: exactly 3-sparse around the mean

    def additive(S):
        return float(v[list(S)].sum())

    exact = compressive_shapley(additive, n, n_measurements=20, n_permutations=5, epsilon=1e-6, random_state=0)
    np.testing.assert_allclose(exact.as_array(), v, atol=1e-3)

    def game(S):
        return additive(S) + (1.0 if len(S) >= n // 2 else 0.0)

    truth = v + 1 / n
    comp = compressive_shapley(game, n, n_measurements=30, n_permutations=100, epsilon=0.001, random_state=0)
    perm = permutation_shapley(game, n, n_permutations=100, random_state=0)
    err_c, err_p = np.linalg.norm(comp.as_array() - truth), np.linalg.norm(perm.as_array() - truth)
    assert err_c < 0.2 and err_c < 2 * err_p


def test_uniform_and_largest_subset_are_exact_where_they_should_be():
    np.testing.assert_allclose(uniform_shapley(voting, 8).as_array(), exact_shapley(voting, 8).as_array())
    v = np.array([0.5, -0.2, 1.0, 0.0, 2.0])

    def additive(S):
        return float(v[list(S)].sum())

    np.testing.assert_allclose(largest_subset_shapley(additive, 5).as_array(), v, atol=1e-12)
    np.testing.assert_allclose(exact_shapley(additive, 5).as_array(), v, atol=1e-12)


def test_knn_shapley_equals_brute_force():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 2)), rng.integers(0, 2, 8)
    Xt, yt = rng.normal(size=(5, 2)), rng.integers(0, 2, 5)
    K = 3

    def knn_utility(S):
        if not S:
            return 0.0
        S = np.array(S)
        total = 0.0
        for x, t in zip(Xt, yt):
            d = ((X[S] - x) ** 2).sum(axis=1)
            near = S[np.argsort(d, kind="stable")[:K]]
            total += (y[near] == t).sum() / K
        return total / len(yt)

    np.testing.assert_allclose(knn_shapley(X, y, Xt, yt, k=K).as_array(), exact_shapley(knn_utility, 8).as_array(),
                               atol=1e-12)


def test_bad_arguments():
    with pytest.raises(mde.InputError, match="2\\^"):
        exact_shapley(voting, 25)
    with pytest.raises(mde.InputError, match="positive"):
        permutation_shapley(voting, 0)
    with pytest.raises(mde.InputError, match="finite"):
        exact_shapley(lambda S: float("nan"), 3)
    with pytest.raises(mde.InputError):
        knn_shapley(np.zeros((0, 2)), np.zeros(0), np.zeros((1, 2)), np.zeros(1))


def test_proxy_utilities_match_their_proxies(digits, model):
    from mde.utility import proxy_utility

    tree = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="tree", max_leaves=16,
                           n_samples=2000, random_state=0)
    U = proxy_utility(tree, digits.Xc[:8], digits.yc[:8], digits.Xte, digits.yte)
    scores = tree.record_scores(digits.Xc[:8], digits.yc[:8])
    for i in range(8):  # a single record's utility is its exact leaf-refit score
        assert U((i,)) == pytest.approx(scores[i], abs=1e-12)
    shap = exact_shapley(U, 8)
    assert sum(shap.values) == pytest.approx(U(tuple(range(8))), abs=1e-12)

    head = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0)
    Uh = proxy_utility(head, digits.Xc[:8], digits.yc[:8], digits.Xte, digits.yte, X_train=digits.Xtr)
    s = head.record_scores(digits.Xc[:8], digits.yc[:8])
    for i in range(8):  # a Newton step of one record agrees with its first-order score up to
        # second-order terms (a missing 1/n_train or a sign error would be off by 300x or flip)
        assert Uh((i,)) == pytest.approx(s[i], rel=0.3, abs=1e-6)
    assert Uh(tuple(range(8))) != pytest.approx(sum(Uh((i,)) for i in range(8)), rel=1e-6)  # not additive


def test_head_newton_step_is_exact_for_copies_of_the_training_set(digits, model):
    """S = D_tr: S's Hessian is D_tr's exactly, so the step is the true Newton step on the union."""
    from mde.influence import _head_psi, head_hessian
    from mde.utility import HeadNewtonStep

    head = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8,
                           exclude_known=False, random_state=0)
    newton = HeadNewtonStep(head, digits.Xtr)
    phi = head._phi(digits.Xtr)
    g = _head_psi(phi, head.theta_, digits.ytr).sum(axis=0)
    n = len(digits.ytr)
    for copies in (1, 3):
        H_union = head_hessian(np.vstack([phi] * (copies + 1)), head.theta_, 0.0) * (copies + 1) + head.l2 * np.eye(g.size)
        exact = np.linalg.solve(H_union, copies * g / n)
        np.testing.assert_allclose(newton(copies * g, np.array([copies * n]))[0], exact, rtol=1e-8, atol=1e-12)
    # an empty S (size 0) is the plain influence step H^-1 g / n
    H = head_hessian(phi, head.theta_, head.l2)
    np.testing.assert_allclose(newton(g, np.array([0]))[0], np.linalg.solve(H, g / n), rtol=1e-8, atol=1e-12)


def test_group_testing_with_its_theorem_3_count_meets_epsilon():
    T = group_testing_count(8, epsilon=0.5, delta=0.05, utility_range=1.0)
    res = group_testing_shapley(voting, 8, epsilon=0.5, delta=0.05, utility_range=1.0, random_state=3)
    assert res.params["n_tests"] == T
    assert np.linalg.norm(res.as_array() - 1 / 8) <= 0.5


def test_compressive_sampling_on_the_voting_game_with_fewer_measurements_than_players():
    """Voting values equal their mean (0-sparse deviation): 6 measurements for 8 players suffice."""
    res = compressive_shapley(voting, 8, n_measurements=6, n_permutations=500, epsilon=1e-3, random_state=0)
    assert np.linalg.norm(res.as_array() - 1 / 8) <= 0.05
    assert sum(res.values) == pytest.approx(1.0, abs=0.05)


def test_influence_heuristics_on_the_tree_refit_utility(digits, model):
    """The tree's leaf-refit utility is exact, so all-subsets sampling converges to exact Shapley."""
    from mde.utility import influence_shapley, proxy_utility

    tree = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="tree", max_leaves=8,
                           n_samples=1000, random_state=0)
    X, y = digits.Xc[:7], digits.yc[:7]
    truth = exact_shapley(proxy_utility(tree, X, y, digits.Xte, digits.yte), 7).as_array()
    res = influence_shapley(tree, X, y, digits.Xte, digits.yte, n_permutations=3000, random_state=0)
    assert np.all(np.abs(res.as_array() - truth) <= 4 * np.asarray(res.stderr) + 1e-12)
    loo = influence_shapley(tree, X, y, digits.Xte, digits.yte, method="largest_subset")
    assert sum(loo.values) == pytest.approx(truth.sum(), abs=1e-12)


def test_permutation_sampling_is_reproducible_across_workers():
    a = permutation_shapley(airport, 8, n_permutations=50, random_state=7)
    b = permutation_shapley(airport, 8, n_permutations=50, random_state=7, n_jobs=2)
    np.testing.assert_allclose(a.as_array(), b.as_array(), atol=1e-12)
    res = group_testing_shapley(voting, 8, n_tests=55227, epsilon=0.5, random_state=3)
    assert res.params["feasible"] == (res.params["max_violation"] <= 0.5 / (2 * np.sqrt(8)))
