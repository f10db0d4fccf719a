"""Principal axes: exact for small sets, randomised (no centred copy) for large ones."""

from __future__ import annotations

import numpy as np

from mde.proxies.pca import EXACT_LIMIT, principal_axes


def _low_rank(n: int, d: int, rank: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.geomspace(50.0, 5.0, rank)
    U = np.linalg.qr(rng.standard_normal((n, rank)))[0]
    V = np.linalg.qr(rng.standard_normal((d, rank)))[0]
    noise = 0.01 * rng.standard_normal((n, d))
    return 3.0 + (U * spectrum) @ V.T * np.sqrt(n) + noise  # an offset: centring matters


def test_small_sets_get_the_exact_svd() -> None:
    X = _low_rank(200, 30, 5, 0)
    mean, s, vt = principal_axes(X, 4, np.random.default_rng(0))
    _, s_ref, vt_ref = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(mean, X.mean(axis=0))
    np.testing.assert_allclose(s, s_ref)
    np.testing.assert_allclose(np.abs(vt), np.abs(vt_ref))


def test_large_sets_get_the_top_subspace_without_a_centred_copy() -> None:
    X = _low_rank(6000, 800, 12, 1)
    assert X.size > EXACT_LIMIT
    k = 8
    mean, s, vt = principal_axes(X, k, np.random.default_rng(0))
    _, s_ref, vt_ref = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    assert vt.shape == (k + 10, 800) and s.shape == (k + 10,)
    np.testing.assert_allclose(s[:12], s_ref[:12], rtol=1e-6)
    # the top-k subspaces coincide: singular values of V^T V_ref are the cosines of the
    # principal angles, all 1
    cosines = np.linalg.svd(vt[:k] @ vt_ref[:k].T, compute_uv=False)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-8)
