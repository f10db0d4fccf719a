"""The data owner's guard policy: budgets per buyer and the differential-privacy mode.

Budgets are counted per buyer (the Ed25519 key that signed the artifact) in the data owner's
ledger (:mod:`mde.data_owner.ledger`):

- ``max_artifacts``: distinct artifacts answered for one buyer;
- ``max_numbers``: numbers released to one buyer about one data set (a total is one number,
  two for an ``order=2`` artifact; per-record scores are one per record). The default,
  ``n_records + 16``, allows one per-record answer plus a few totals: the 27-artifact attack
  of issue 14 (27 numbers per record) is refused at the second per-record answer;
- ``max_requests``: hidden-mode results decrypted for one buyer about one data set (each is
  one number, but of a circuit the buyer chose);
- ``max_buyers``: distinct buyers answered about one data set. Budgets are per key, and a
  buyer can make fresh keys; this caps what all of them together learn without DP at
  ``max_buyers`` times one buyer's budgets. (With DP the privacy budget is per data set
  across all buyers already.)

With :class:`DPPolicy` every sealed answer is a Gaussian mechanism on the records: each
record's psi is clipped to L2 norm ``clip`` in the clear and Gaussian noise of standard
deviation ``noise_multiplier * clip`` is added to the released sum (or to each released
record) before it meets Enc(w). Whatever graph inside the admitted templates and whatever
``w`` the buyer chose, what it decrypts is post-processing, so each answer is
(epsilon, delta)-DP for every record. The ledger composes the privacy loss of all answers
about one data set, across all buyers (colluding buyers pool their answers), with Google's
``dp-accounting`` RDP accountant, and refuses an answer past ``epsilon_budget``.
"""

from __future__ import annotations

import math
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from mde.errors import require

__all__ = ["GuardPolicy", "DPPolicy", "composed_epsilon", "noise_multiplier_for"]


class DPPolicy(BaseModel):
    """Differentially private answers (sealed-value mode).

    Parameters
    ----------
    epsilon : float
        Privacy loss of one answer (the noise is calibrated to it at ``delta``).
    delta : float
        The delta of every guarantee.
    epsilon_budget : float
        Total privacy loss allowed per data set, composed over all answers and all buyers.
    clip : float, optional
        L2 bound on each record's psi; default the artifact's ``psi_clip`` (the model owner's
        99th percentile of test-record norms, public).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epsilon: float = Field(default=1.0, gt=0.0, le=100.0)
    delta: float = Field(default=1e-6, gt=0.0, lt=1.0)
    epsilon_budget: float = Field(default=8.0, gt=0.0)
    clip: float | None = Field(default=None, gt=0.0)

    @property
    def noise_multiplier(self) -> float:
        """Noise standard deviation per unit of ``clip`` for one answer of ``epsilon``."""
        return noise_multiplier_for(self.epsilon, self.delta)


class GuardPolicy(BaseModel):
    """What the data owner answers, and to whom.

    Parameters
    ----------
    max_artifacts : int
        Distinct artifacts answered per buyer.
    max_numbers : int, optional
        Numbers released per buyer about one data set; default ``n_records + 16``.
    max_requests : int
        Hidden-mode results decrypted per buyer about one data set.
    max_buyers : int
        Distinct buyers (keys) answered about one data set.
    require_pinned : bool
        Answer only buyers whose key was pinned before (``ledger.pin``), so a buyer cannot
        reset its budgets with a fresh key at all.
    dp : DPPolicy, optional
        Differentially private answers (off by default).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_artifacts: int = Field(default=8, ge=1)
    max_numbers: int | None = Field(default=None, ge=1)
    max_requests: int = Field(default=16, ge=1)
    max_buyers: int = Field(default=4, ge=1)
    require_pinned: bool = False
    dp: DPPolicy | None = None

    def numbers_budget(self, n_records: int) -> int:
        """Numbers one buyer may learn about a data set of ``n_records``."""
        return self.max_numbers if self.max_numbers is not None else n_records + 16


def _rdp(noise_multipliers: list[float]) -> object:
    dpa = require("dp_accounting", "dp")
    from dp_accounting import rdp

    acc = rdp.RdpAccountant()
    for z in noise_multipliers:
        acc.compose(dpa.GaussianDpEvent(z))
    return acc


def composed_epsilon(noise_multipliers: list[float], delta: float) -> float:
    """Epsilon at ``delta`` of the Gaussian mechanisms composed (RDP accountant)."""
    if not noise_multipliers:
        return 0.0
    eps: float = _rdp(noise_multipliers).get_epsilon(delta)  # type: ignore[attr-defined]
    return float(eps)


@lru_cache(maxsize=64)
def noise_multiplier_for(epsilon: float, delta: float) -> float:
    """The smallest Gaussian noise multiplier whose one release is (epsilon, delta)-DP."""
    dpa = require("dp_accounting", "dp")
    from dp_accounting import rdp

    z = dpa.calibrate_dp_mechanism(
        rdp.RdpAccountant,
        dpa.GaussianDpEvent,
        epsilon,
        delta,
        bracket_interval=dpa.ExplicitBracketInterval(1e-3, 1e4),
    )
    z = float(z)
    if not math.isfinite(z) or z <= 0:  # pragma: no cover - calibration always brackets
        raise ValueError(f"no noise multiplier for epsilon={epsilon}, delta={delta}")
    return z
