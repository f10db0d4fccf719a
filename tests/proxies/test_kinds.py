"""Every proxy kind goes through the same flow: ONNX psi, sealing, save/load, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

import mde
from mde.data_owner.ledger import DataOwnerLedger

KINDS = {
    "influence": {"n_components": 12},
    "tree": {"max_leaves": 32, "n_samples": 5000},
    "student": {"hidden": 24, "epochs": 15, "n_samples": 1000},
}


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


@pytest.fixture(scope="module")
def mlp(digits):
    return MLPClassifier((32,), max_iter=400, random_state=0).fit(digits.Xtr, digits.ytr)


@pytest.fixture(scope="module", params=list(KINDS))
def built(request, digits, mlp, tmp_path_factory):
    if request.param == "student":
        pytest.importorskip("torch")
    proxy = mde.build_proxy(
        mlp,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind=request.param,
        random_state=0,
        **KINDS[request.param],
    )
    path = tmp_path_factory.mktemp(request.param) / "a.mde"
    proxy.export(path)
    # one data owner answers many tests here: budgets wide enough for all of them
    return proxy, mde.load_artifact(
        path, policy=mde.GuardPolicy(max_artifacts=100, max_numbers=10**6)
    )


def test_onnx_psi_equals_numpy_psi(built, digits):
    proxy, scorer = built
    got, want = scorer.psi(digits.Xc, digits.yc), proxy.psi(digits.Xc, digits.yc)
    assert got.shape == want.shape == (len(digits.yc), proxy.psi_dim_)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sealed_equals_plaintext(built, digits):
    proxy, scorer = built
    X, y = digits.Xc[:40], digits.yc[:40]
    plain = proxy.record_scores(X, y)
    total = proxy.open(scorer.score(X, y), allow_repeat=True)
    assert total.efficacy == pytest.approx(plain.sum(), rel=1e-3, abs=1e-6 * np.abs(plain).sum())
    per = proxy.open(scorer.score(X, y, per_record=True), allow_repeat=True)
    np.testing.assert_allclose(per.record_scores, plain, rtol=0, atol=6 * per.record_noise)
    proxy.verify_delivery(X, y, per, seed=scorer.ledger.seed(per.commitment))


def test_clean_data_beats_noisy_data(built, digits):
    proxy, _ = built
    noisy = np.random.default_rng(0).permutation(digits.yc)
    assert proxy.efficacy(digits.Xc, digits.yc) > proxy.efficacy(digits.Xc, noisy)
    assert proxy.efficacy(digits.Xc, noisy) < 0


def test_save_load_round_trip(built, digits, tmp_path):
    proxy, scorer = built
    proxy.save(tmp_path / "p.mdeproxy")
    # the artifact's secrets are in the ledger it was exported with, not in the proxy file
    loaded = mde.load_proxy(tmp_path / "p.mdeproxy", ledger=proxy.ledger)
    assert isinstance(loaded, mde.ModelOwner)
    assert type(loaded.proxy) is type(proxy.proxy) and loaded.get_params() == proxy.get_params()
    np.testing.assert_allclose(loaded.psi(digits.Xc, digits.yc), proxy.psi(digits.Xc, digits.yc))
    np.testing.assert_array_equal(loaded.predict(digits.Xte), proxy.predict(digits.Xte))
    report = loaded.open(scorer.score(digits.Xc[:10], digits.yc[:10]), allow_repeat=True)
    want = proxy.efficacy(digits.Xc[:10], digits.yc[:10])
    assert report.efficacy == pytest.approx(want, rel=3e-3, abs=1e-7)


def test_summary_reports_size_and_fidelity(built):
    proxy, _ = built
    s = proxy.summary()
    assert s["kind"] == proxy.kind and 0.5 < s["fidelity"] <= 1.0
    assert 0 < s["artifact_bytes"] < 4_500_000 and s["build_seconds"] > 0


def test_bad_input(built, digits):
    proxy, scorer = built
    X, y = digits.Xc[:5].copy(), digits.yc[:5]
    X[0, 0] = np.nan
    for f in (proxy.efficacy, scorer.score):
        with pytest.raises(mde.InputError, match="NaN"):
            f(X, y)
        with pytest.raises(mde.LabelError):
            f(digits.Xc[:5], np.r_[y[:4], 11])
        with pytest.raises(mde.InputError, match="features"):
            f(digits.Xc[:5, :3], y)


def test_a_user_kind_cannot_take_a_builtin_name_before_the_builtins_load() -> None:
    import mde.proxies.registry as registry
    from mde.proxies.base import Proxy

    # a user's own module called "student" (not mde.proxies.student)
    impostor = type("MyStudent", (Proxy,), {"kind": "student", "__module__": "student"})
    with pytest.raises(mde.InputError, match="already registered"):
        registry.register_proxy(impostor)
    assert registry.proxy_class("student").__module__ == "mde.proxies.student"
    assert {"influence", "influence-poly", "student", "tree"} <= set(registry.proxy_kinds())
