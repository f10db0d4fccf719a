"""The data owner's DP mode: the noise calibration and RDP composition agree with Google's
dp-accounting, the ledger pools the privacy loss of one data set over all buyers and refuses
the first answer past the budget, and the Scorer clips each record and adds the declared
Gaussian noise."""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest
from dp_accounting import rdp

import mde
from mde.data_owner.ledger import DataOwnerLedger
from mde.data_owner.policy import DPPolicy, GuardPolicy, composed_epsilon, noise_multiplier_for
from mde.wire.signing import SigningKey

SIGMAS = 8.0  # a released value may differ from its noise-free value by this many sigmas


def _brute_epsilon(zs: list[float], delta: float) -> float:
    """Epsilon of the Gaussian mechanisms composed one by one with dp-accounting itself."""
    acc = rdp.RdpAccountant()
    for z in zs:
        acc.compose(dp_accounting.GaussianDpEvent(z))
    return float(acc.get_epsilon(delta))


# -- calibration and composition -------------------------------------------------------
@pytest.mark.parametrize(
    ("epsilon", "delta"), [(0.3, 1e-5), (1.0, 1e-6), (4.0, 1e-6), (20.0, 1e-9), (100.0, 1e-6)]
)
def test_noise_multiplier_inverts_composed_epsilon(epsilon, delta):
    z = noise_multiplier_for(epsilon, delta)
    assert z > 0
    assert composed_epsilon([z], delta) == pytest.approx(epsilon, rel=1e-3)
    assert composed_epsilon([z], delta) <= epsilon * (1 + 1e-6)  # never more loss than asked
    assert composed_epsilon([z * 0.99], delta) > epsilon  # and (nearly) the least noise
    assert DPPolicy(epsilon=epsilon, delta=delta).noise_multiplier == z


def test_composed_epsilon_equals_dp_accounting_composed_k_times():
    assert composed_epsilon([], 1e-6) == 0.0
    for z in (0.5, 1.3, 4.0):
        for k in (1, 2, 7, 30):
            got = composed_epsilon([z] * k, 1e-6)
            assert got == pytest.approx(_brute_epsilon([z] * k, 1e-6), rel=1e-9)
            via_count = rdp.RdpAccountant().compose(dp_accounting.GaussianDpEvent(z), k)
            assert got == pytest.approx(via_count.get_epsilon(1e-6), rel=1e-9)
    mixed = [0.7, 2.0, 5.0, 0.7]
    assert composed_epsilon(mixed, 1e-5) == pytest.approx(_brute_epsilon(mixed, 1e-5), rel=1e-9)
    # RDP composition is tighter than adding the epsilons up
    z = noise_multiplier_for(1.0, 1e-6)
    assert composed_epsilon([z] * 30, 1e-6) < 30 * composed_epsilon([z], 1e-6)


def test_ledger_refuses_the_first_answer_past_the_privacy_budget_of_a_data_set(tmp_path):
    dp = DPPolicy(epsilon=1.0, delta=1e-5, epsilon_budget=5.0)
    policy = GuardPolicy(max_buyers=10, max_numbers=10**6, dp=dp)
    z = dp.noise_multiplier
    eps = [_brute_epsilon([z] * k, dp.delta) for k in range(1, 60)]
    allowed = next(k for k, e in enumerate(eps, 1) if e > dp.epsilon_budget) - 1
    assert allowed > int(dp.epsilon_budget / dp.epsilon)  # RDP allows more than basic composition
    assert abs(eps[allowed - 1] / dp.epsilon_budget - 1) > 1e-6  # no tie at the boundary
    buyers = [SigningKey.generate().public_hex for _ in range(3)]
    book = DataOwnerLedger(tmp_path / "ledger.sqlite")

    def answer(i: int, buyer: str, dataset: str = "d") -> None:
        book.record_answer(
            buyer=buyer,
            artifact=f"artifact-of-{buyer[:8]}",
            dataset=dataset,
            numbers=1,
            n_records=1000,
            commitment=f"c{i}-{dataset}",
            seed=b"s",
            policy=policy,
        )

    for i in range(allowed):  # the buyers take turns: the budget pools their answers
        answer(i, buyers[i % 3])
        assert book.privacy_spent("d", dp.delta) == pytest.approx(eps[i], rel=1e-9)
    before = book.answers()
    assert [a["noise_multiplier"] for a in before] == [z] * allowed
    for buyer in buyers + [SigningKey.generate().public_hex]:  # a fresh key does not reset it
        with pytest.raises(mde.BudgetError, match=f"over {allowed + 1} answers"):
            answer(allowed, buyer)
    assert book.answers() == before
    assert book.privacy_spent("d", dp.delta) == pytest.approx(eps[allowed - 1], rel=1e-9)
    answer(0, buyers[0], dataset="other")  # another data set has its own budget
    assert book.privacy_spent("other", dp.delta) == pytest.approx(eps[0], rel=1e-9)
    # answers without DP spend no privacy budget (and are not counted by it)
    book.record_answer(
        buyer=buyers[0],
        artifact="plain",
        dataset="d",
        numbers=1,
        n_records=1000,
        commitment="plain",
        seed=None,
        policy=GuardPolicy(max_numbers=10**6),
    )
    assert book.privacy_spent("d", dp.delta) == pytest.approx(eps[allowed - 1], rel=1e-9)


# -- the Scorer's Gaussian mechanism ---------------------------------------------------
def _clipped_scores(owner, X, y, clip):
    """Per-record scores with each record's psi clipped to ``clip``, and unclipped."""
    X32 = X.astype(np.float32).astype(np.float64)
    psi = owner.psi(X32, y)
    norms = np.linalg.norm(psi, axis=1, keepdims=True)
    clipped = psi * np.minimum(1.0, clip / np.maximum(norms, 1e-300))
    assert np.all(np.linalg.norm(clipped, axis=1) <= clip * (1 + 1e-12))
    return clipped @ owner.w_, psi @ owner.w_


def test_scorer_clips_each_record_and_adds_the_declared_noise(fresh_proxy, digits, tmp_path):
    X, y = digits.Xc[:200], digits.yc[:200]
    assert not fresh_proxy.excluded(X, y).any()  # no record is screened out: psi is all
    # the model owner declares a clip bound small enough to bite (its psi_clip_, public; the
    # model owner refuses a DP answer clipped at another bound than the artifact's)
    clip = 0.1 * float(np.median(np.linalg.norm(fresh_proxy.psi(X, y), axis=1)))
    fresh_proxy.proxy.psi_clip_ = clip
    dp = DPPolicy(epsilon=100.0, delta=1e-6, epsilon_budget=1e6, clip=clip)
    fresh_proxy.export(tmp_path / "a.mde")
    assert mde.load_artifact(tmp_path / "a.mde").manifest.psi_clip == clip
    scorer = mde.load_artifact(tmp_path / "a.mde", policy=GuardPolicy(max_numbers=10**6, dp=dp))
    z, w_norm = noise_multiplier_for(100.0, 1e-6), float(np.linalg.norm(fresh_proxy.w_))

    sealed = scorer.score(X, y)
    assert (sealed.header.dp_clip, sealed.header.dp_noise_multiplier) == (clip, z)
    report = fresh_proxy.open(sealed)
    sigma = clip * z * w_norm  # sd of <w, N(0, (z clip)^2 I)>
    assert report.dp_clip == clip and report.dp_noise == pytest.approx(sigma, rel=1e-12)
    clipped, unclipped = _clipped_scores(fresh_proxy, X, y, clip)
    assert abs(unclipped.sum() - clipped.sum()) > 4 * SIGMAS * sigma  # the clip bites
    tol = SIGMAS * sigma + 1e-5 * abs(clipped.sum())
    assert abs(report.efficacy - clipped.sum()) <= tol
    assert abs(report.efficacy - unclipped.sum()) > tol
    # the released totals are the clipped total plus Gaussian noise of the declared sd
    totals = np.array(
        [report.efficacy]
        + [fresh_proxy.open(scorer.score(X, y), allow_repeat=True).efficacy for _ in range(29)]
    )
    np.testing.assert_array_less(np.abs(totals - clipped.sum()), tol)
    assert 0.3 < float(totals.std(ddof=1)) / sigma < 2.5  # without noise: ~1e-3 sigma

    # per record: each score is its clipped record's, within the declared noise
    per = fresh_proxy.open(scorer.score(X, y, per_record=True), allow_repeat=True)
    scores = np.asarray(per.record_scores)
    assert per.dp_noise == report.dp_noise and per.record_noise is not None
    assert per.record_noise >= per.dp_noise
    noise = SIGMAS * per.record_noise
    clipped, unclipped = _clipped_scores(fresh_proxy, X, y, clip)
    residual = scores - clipped
    np.testing.assert_array_less(np.abs(residual), noise)
    # ... and the residuals are the Gaussian noise of the declared sd (200 draws)
    assert 0.7 < float(residual.std()) / per.dp_noise < 1.4
    assert abs(float(residual.mean())) < 5 * per.dp_noise / np.sqrt(len(residual))
    bound = clip * w_norm + noise  # |<w, clipped psi>| <= clip |w|, plus the noise
    assert np.all(np.abs(scores) <= bound)
    cut = np.abs(unclipped) > bound + noise  # records whose unclipped score is out of reach
    assert cut.sum() >= 5
    assert np.all(np.abs(scores - unclipped)[cut] > noise)
    # the noise is fresh: two answers on the same records differ
    Xp, yp = X[:40], y[:40]
    a, b = (
        fresh_proxy.open(scorer.score(Xp, yp, per_record=True), allow_repeat=True) for _ in "ab"
    )
    assert not np.array_equal(a.record_scores, b.record_scores)
    np.testing.assert_array_less(np.abs(np.subtract(a.record_scores, b.record_scores)), 2 * noise)


def test_privacy_spent_grows_until_the_budget_refuses(fresh_proxy, digits, tmp_path):
    """Default DP policy (epsilon 1 per answer, delta 1e-6, budget 8, the artifact's clip);
    the budget of the data set is pooled with a second buyer's answers."""
    X, y = digits.Xc[:30], digits.yc[:30]
    fresh_proxy.export(tmp_path / "a.mde")
    fresh_proxy.identity = SigningKey.generate()  # a second buyer, with its own key
    fresh_proxy.export(tmp_path / "b.mde")
    policy = GuardPolicy(max_artifacts=100, max_numbers=10**6, dp=DPPolicy())
    first, second = (mde.load_artifact(tmp_path / n, policy=policy) for n in ("a.mde", "b.mde"))
    assert first.buyer_key != second.buyer_key
    dp = policy.dp
    assert dp is not None
    z = noise_multiplier_for(1.0, 1e-6)
    book = DataOwnerLedger()
    sealed = first.score(X, y)
    assert sealed.header.dp_clip == first.manifest.psi_clip == fresh_proxy.psi_clip_
    assert sealed.header.dp_noise_multiplier == z
    dataset = book.answers()[0]["dataset"]
    spent = [book.privacy_spent(dataset, dp.delta)]
    assert spent[0] == pytest.approx(_brute_epsilon([z], dp.delta), rel=1e-9)
    allowed = 1
    while _brute_epsilon([z] * (allowed + 1), dp.delta) <= dp.epsilon_budget:
        allowed += 1
    for k in range(2, allowed + 1):
        (first if k % 2 else second).score(X, y)
        spent.append(book.privacy_spent(dataset, dp.delta))
        assert spent[-1] > spent[-2]
        assert spent[-1] == pytest.approx(_brute_epsilon([z] * k, dp.delta), rel=1e-9)
    assert spent[-1] <= dp.epsilon_budget
    for scorer in (first, second):
        with pytest.raises(mde.BudgetError, match="privacy loss"):
            scorer.score(X, y)
    assert len(book.answers()) == allowed
    first.score(X[:29], y[:29])  # another data set has its own privacy budget


def test_dp_with_a_trusted_graph_is_refused(artifact):
    with pytest.raises(mde.InputError, match="trust_graph"):
        mde.load_artifact(artifact, trust_graph=True, policy=GuardPolicy(dp=DPPolicy()))
    mde.load_artifact(artifact, trust_graph=True)  # either one alone is fine
    mde.load_artifact(artifact, policy=GuardPolicy(dp=DPPolicy()))


def test_a_hidden_mode_client_with_dp_is_refused(digits, model, tmp_path):
    poly = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", random_state=0
    )
    poly.export(tmp_path / "h.mde", mode="hidden")
    with pytest.raises(mde.InputError, match="sealed-value"):
        mde.load_artifact(tmp_path / "h.mde", policy=GuardPolicy(dp=DPPolicy()))
    assert isinstance(mde.load_artifact(tmp_path / "h.mde"), mde.HiddenClient)
