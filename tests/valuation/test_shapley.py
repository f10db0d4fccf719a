"""Shapley estimators against closed-form values on toy games and brute force."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.proxies.heads import HeadNewtonStep, head_hessian, head_psi
from mde.valuation import (
    PrefixUtility,
    SubsetPrefixUtility,
    compressive_shapley,
    exact_shapley,
    group_testing_count,
    group_testing_shapley,
    influence_shapley,
    knn_shapley,
    largest_subset_shapley,
    permutation_count,
    permutation_shapley,
    proxy_utility,
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
    np.testing.assert_allclose(
        exact_shapley(airport, 8).as_array(), airport_closed_form(COSTS), atol=1e-12
    )
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
    res = group_testing_shapley(
        airport, 8, n_tests=20000, epsilon=0.5, utility_range=r, random_state=0
    )
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

    exact = compressive_shapley(
        additive, n, n_measurements=20, n_permutations=5, epsilon=1e-6, random_state=0
    )
    np.testing.assert_allclose(exact.as_array(), v, atol=1e-3)

    def game(S):
        return additive(S) + (1.0 if len(S) >= n // 2 else 0.0)

    truth = v + 1 / n
    comp = compressive_shapley(
        game, n, n_measurements=30, n_permutations=100, epsilon=0.001, random_state=0
    )
    perm = permutation_shapley(game, n, n_permutations=100, random_state=0)
    err_c, err_p = np.linalg.norm(comp.as_array() - truth), np.linalg.norm(perm.as_array() - truth)
    assert err_c < 0.2 and err_c < 2 * err_p


def test_uniform_and_largest_subset_are_exact_where_they_should_be():
    np.testing.assert_allclose(
        uniform_shapley(voting, 8).as_array(), exact_shapley(voting, 8).as_array()
    )
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

    np.testing.assert_allclose(
        knn_shapley(X, y, Xt, yt, k=K).as_array(),
        exact_shapley(knn_utility, 8).as_array(),
        atol=1e-12,
    )


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
    tree = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="tree",
        max_leaves=16,
        n_samples=2000,
        random_state=0,
    )
    U = proxy_utility(tree.proxy, digits.Xc[:8], digits.yc[:8], digits.Xte, digits.yte)
    scores = tree.record_scores(digits.Xc[:8], digits.yc[:8])
    for i in range(8):  # a single record's utility is its exact leaf-refit score
        assert U((i,)) == pytest.approx(scores[i], abs=1e-12)
    shap = exact_shapley(U, 8)
    assert sum(shap.values) == pytest.approx(U(tuple(range(8))), abs=1e-12)

    head = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0
    )
    Uh = proxy_utility(
        head.proxy, digits.Xc[:8], digits.yc[:8], digits.Xte, digits.yte, X_train=digits.Xtr
    )
    s = head.record_scores(digits.Xc[:8], digits.yc[:8])
    for i in range(8):  # a Newton step of one record agrees with its first-order score up to
        # second-order terms (a missing 1/n_train or a sign error would be off by 300x or flip)
        assert Uh((i,)) == pytest.approx(s[i], rel=0.3, abs=1e-6)
    # not additive
    assert Uh(tuple(range(8))) != pytest.approx(sum(Uh((i,)) for i in range(8)), rel=1e-6)
    with pytest.raises(mde.InputError, match="X_train"):
        proxy_utility(head.proxy, digits.Xc[:8], digits.yc[:8], digits.Xte, digits.yte)
    with pytest.raises(mde.InputError, match="no subset utility"):
        proxy_utility(object(), digits.Xc[:8], digits.yc[:8], digits.Xte, digits.yte)


def test_head_newton_step_is_exact_for_copies_of_the_training_set(digits, model):
    """S = D_tr: S's Hessian is D_tr's exactly, so the step is the true Newton step on the union."""
    head = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        n_components=8,
        exclude_known=False,
        random_state=0,
    ).proxy
    newton = HeadNewtonStep(head, digits.Xtr)
    phi = head.features(digits.Xtr)
    g = head_psi(phi, head.theta_, digits.ytr).sum(axis=0)
    n = len(digits.ytr)
    for copies in (1, 3):
        H_union = head_hessian(np.vstack([phi] * (copies + 1)), head.theta_, 0.0) * (
            copies + 1
        ) + head.l2 * np.eye(g.size)
        exact = np.linalg.solve(H_union, copies * g / n)
        np.testing.assert_allclose(
            newton(copies * g, np.array([copies * n]))[0], exact, rtol=1e-8, atol=1e-12
        )
    # an empty S (size 0) is the plain influence step H^-1 g / n
    H = head_hessian(phi, head.theta_, head.l2)
    np.testing.assert_allclose(
        newton(g, np.array([0]))[0], np.linalg.solve(H, g / n), rtol=1e-8, atol=1e-12
    )


def test_group_testing_with_its_theorem_3_count_meets_epsilon():
    T = group_testing_count(8, epsilon=0.5, delta=0.05, utility_range=1.0)
    res = group_testing_shapley(
        voting, 8, epsilon=0.5, delta=0.05, utility_range=1.0, random_state=3
    )
    assert res.params["n_tests"] == T
    assert np.linalg.norm(res.as_array() - 1 / 8) <= 0.5


def test_compressive_sampling_on_the_voting_game_with_fewer_measurements_than_players():
    """Voting values equal their mean (0-sparse deviation): 6 measurements for 8 players suffice."""
    res = compressive_shapley(
        voting, 8, n_measurements=6, n_permutations=500, epsilon=1e-3, random_state=0
    )
    assert np.linalg.norm(res.as_array() - 1 / 8) <= 0.05
    assert sum(res.values) == pytest.approx(1.0, abs=0.05)


def test_influence_heuristics_on_the_tree_refit_utility(digits, model):
    """The tree's leaf-refit utility is exact: all-subsets sampling converges to exact Shapley."""
    tree = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="tree",
        max_leaves=8,
        n_samples=1000,
        random_state=0,
    )
    X, y = digits.Xc[:7], digits.yc[:7]
    truth = exact_shapley(proxy_utility(tree.proxy, X, y, digits.Xte, digits.yte), 7).as_array()
    res = influence_shapley(
        tree.proxy, X, y, digits.Xte, digits.yte, n_permutations=3000, random_state=0
    )
    assert np.all(np.abs(res.as_array() - truth) <= 4 * np.asarray(res.stderr) + 1e-12)
    loo = influence_shapley(tree.proxy, X, y, digits.Xte, digits.yte, method="largest_subset")
    assert sum(loo.values) == pytest.approx(truth.sum(), abs=1e-12)


def test_permutation_sampling_is_reproducible_across_workers():
    a = permutation_shapley(airport, 8, n_permutations=50, random_state=7)
    b = permutation_shapley(airport, 8, n_permutations=50, random_state=7, n_jobs=2)
    np.testing.assert_allclose(a.as_array(), b.as_array(), atol=1e-12)
    res = group_testing_shapley(voting, 8, n_tests=55227, epsilon=0.5, random_state=3)
    assert res.params["feasible"] == (res.params["max_violation"] <= 0.5 / (2 * np.sqrt(8)))


# -- permutation sampling over prefix utilities, truncated (TMC) -----------------------------


class _AdditivePrefix:
    """The additive game ``U(S) = sum of v over S`` as a prefix utility; it records the
    permutations it is asked about."""

    def __init__(self, v):
        self.v = np.asarray(v, dtype=float)
        self.n_players = len(self.v)
        self.calls = []

    def __call__(self, perm, start, stop):
        self.calls.append((np.array(perm), start, stop))
        return np.r_[0.0, np.cumsum(self.v[perm])][start + 1 : stop + 1]


# positive values and zeros: a prefix that misses a valuable player is at least 1 = 10% of
# U(all) = 10 short of it, and one that holds them all is exactly U(all)
V = np.array([3.0, 0.0, 2.0, 0.0, 0.0, 4.0, 1.0, 0.0, 0.0, 0.0])


def test_truncated_permutations_are_exact_when_the_rest_is_worth_nothing():
    """With truncation 5% every permutation stops right after its last valuable player; the
    players after it are worth 0, so the values are exact (and so is every sample)."""
    m, n = 40, len(V)
    P = _AdditivePrefix(V)
    assert isinstance(P, PrefixUtility)
    res = permutation_shapley(P, n_permutations=m, truncation=0.05, chunk=1, random_state=0)
    np.testing.assert_array_equal(res.as_array(), V)
    np.testing.assert_array_equal(res.stderr, np.zeros(n))
    assert res.method == "truncated-permutation" and res.params["truncation"] == 0.05
    # the calls along the permutations (not those for U(all) and U(empty), in index order)
    setup = [(n - 1, n), (-1, 0)]
    walks = [c for c in P.calls if not (c[1:] in setup and np.array_equal(c[0], np.arange(n)))]
    assert len(walks) == len(P.calls) - 2
    perms = [c[0] for c in walks]
    starts = {}
    for perm, start, _ in walks:
        starts.setdefault(perm.tobytes(), []).append(start)
    assert len(starts) == m  # each permutation evaluated a prefix at a time (chunk 1)
    # closed form of the work: permutation t evaluates the prefixes up to its last valuable
    # player, at position L_t - 1
    last = {perm.tobytes(): int(np.flatnonzero(V[perm] > 0).max()) + 1 for perm in perms}
    assert all(sorted(st) == list(range(last[k])) for k, st in starts.items())
    assert res.n_evaluations == sum(last.values()) < m * n
    assert res.params["evaluated_fraction"] == pytest.approx(np.mean(list(last.values())) / n)
    # chunks of 4 prefixes and a plain subset utility give the same exact values
    chunked = permutation_shapley(
        _AdditivePrefix(V), n_permutations=m, truncation=0.05, chunk=4, random_state=0
    )
    np.testing.assert_array_equal(chunked.as_array(), V)
    assert chunked.params["evaluated_fraction"] == res.params["evaluated_fraction"]

    def additive(S):
        return float(V[list(S)].sum())

    subset = permutation_shapley(additive, n, n_permutations=m, truncation=0.05, random_state=0)
    np.testing.assert_array_equal(subset.as_array(), V)
    assert subset.method == "truncated-permutation"
    # without truncation every prefix is evaluated
    full = permutation_shapley(_AdditivePrefix(V), n_permutations=m, random_state=0)
    np.testing.assert_array_equal(full.as_array(), V)
    assert full.method == "permutation" and full.params["evaluated_fraction"] == 1.0
    assert full.n_evaluations == m * n


def test_truncation_loses_the_value_of_players_after_the_stop():
    """The flip side: when a valuable player can come after the stop (a tolerance larger
    than its share of U(all)), truncation is biased, so the exact test above is not vacuous."""
    res = permutation_shapley(
        _AdditivePrefix(V), n_permutations=200, truncation=0.15, random_state=0
    )
    assert res.as_array()[6] < V[6]  # player 6 (worth 1 of 10) is cut off in some permutations
    assert np.all(res.as_array()[V == 0] == 0.0)


def test_prefix_and_subset_utilities_give_identical_values_for_one_seed(digits, proxy):
    costs_prefix = _RunningMax(COSTS)
    a = permutation_shapley(costs_prefix, n_permutations=60, random_state=4)
    b = permutation_shapley(airport, 8, n_permutations=60, random_state=4)
    np.testing.assert_array_equal(a.as_array(), b.as_array())
    np.testing.assert_array_equal(a.stderr, b.stderr)
    assert a.method == b.method == "permutation"
    perm = np.random.default_rng(0).permutation(8)
    np.testing.assert_array_equal(
        SubsetPrefixUtility(airport, 8)(perm, -1, 8), costs_prefix(perm, -1, 8)
    )
    # the head proxy's vectorised prefixes against its subset utility (one Newton step each)
    X, y = digits.Xc[:12], digits.yc[:12]
    P = proxy.proxy.prefix_utility(X, y, digits.Xte, digits.yte, digits.Xtr)
    U = proxy.proxy.subset_utility(X, y, digits.Xte, digits.yte, digits.Xtr)
    assert isinstance(P, PrefixUtility) and P.n_players == 12
    a = permutation_shapley(P, n_permutations=40, chunk=5, random_state=2)
    b = permutation_shapley(U, 12, n_permutations=40, random_state=2)
    np.testing.assert_allclose(a.as_array(), b.as_array(), rtol=1e-9, atol=1e-13)
    assert a.n_evaluations == 40 * 12


class _RunningMax:
    """The airport game as a prefix utility: U(prefix) is its largest cost."""

    def __init__(self, costs):
        self.costs = np.asarray(costs, dtype=float)
        self.n_players = len(self.costs)

    def __call__(self, perm, start, stop):
        return np.maximum.accumulate(np.r_[0.0, self.costs[perm]])[start + 1 : stop + 1]


def test_head_prefix_utility_is_the_proxy_refit_utility(digits, proxy):
    U = proxy_utility(proxy.proxy, digits.Xc, digits.yc, digits.Xte, digits.yte, X_train=digits.Xtr)
    P = proxy.proxy.prefix_utility(digits.Xc, digits.yc, digits.Xte, digits.yte, digits.Xtr)
    n = len(digits.yc)
    order = np.random.default_rng(0).permutation(n)
    prefixes = P(order, -1, n)
    assert prefixes.shape == (n + 1,) and prefixes[0] == 0.0
    for k in (1, 7, 150, n):
        assert prefixes[k] == pytest.approx(
            U(tuple(sorted(order[:k].tolist()))), rel=1e-9, abs=1e-12
        )
    # a chunk that starts after 100 records gives the same prefixes as one from scratch
    np.testing.assert_allclose(P(order, 100, n), prefixes[101:], rtol=1e-9, atol=1e-12)


def test_untruncated_prefix_sampling_is_efficient_and_matches_exact_shapley(digits, proxy):
    X, y = digits.Xc[:6], digits.yc[:6]
    P = proxy.proxy.prefix_utility(X, y, digits.Xte, digits.yte, digits.Xtr)
    U = proxy.proxy.subset_utility(X, y, digits.Xte, digits.yte, digits.Xtr)
    res = permutation_shapley(P, n_permutations=3000, chunk=4, random_state=1)
    full = U(tuple(range(6)))
    # every permutation's marginals telescope to U(all)
    assert sum(res.values) == pytest.approx(full, rel=1e-9)
    assert res.params["evaluated_fraction"] == 1.0 and res.n_evaluations == 3000 * 6
    exact = exact_shapley(U, 6).as_array()
    np.testing.assert_allclose(res.as_array(), exact, atol=4 * max(res.stderr) + 1e-12)


def test_truncation_stops_within_tolerance_of_the_full_utility(digits, proxy):
    X, y = digits.Xc[:80], digits.yc[:80]
    P = proxy.proxy.prefix_utility(X, y, digits.Xte, digits.yte, digits.Xtr)
    full = proxy.proxy.subset_utility(X, y, digits.Xte, digits.yte, digits.Xtr)(tuple(range(80)))
    tol = 0.3
    res = permutation_shapley(P, n_permutations=1, truncation=tol, chunk=16, random_state=0)
    depth = res.params["evaluated_fraction"]
    assert depth < 1.0 and res.n_evaluations < 80
    # the truncated permutation's marginals telescope to U(prefix), within tol of U(all)
    assert abs(sum(res.values) - full) <= tol * abs(full)
    assert np.count_nonzero(res.values) <= round(depth * 80)
    with pytest.raises(mde.InputError, match="truncation"):
        permutation_shapley(P, n_permutations=1, truncation=-0.1)
