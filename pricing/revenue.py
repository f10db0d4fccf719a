"""Split one sale's revenue among several sellers (Shapley value of the priced game).

The game: a coalition of sellers is worth the price its records alone would fetch,
``V(C) = pricing.quote(report restricted to C's records).price``. Shapley payments are the
unique split that is efficient (they sum to the price: group rationality), symmetric,
null-player-free and additive (seed 002).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from mde.errors import PricingError
from mde.report import EfficacyReport
from mde.valuation.shapley import exact_shapley, permutation_shapley
from pricing.quote import PricingFunction, Quote

__all__ = ["RevenueSplit", "split_revenue", "sub_report", "replication_weights"]


class RevenueSplit(BaseModel):
    """Payments per seller; they sum to ``price``."""

    model_config = ConfigDict(frozen=True)

    payments: dict[str, float]
    price: float
    method: str
    replication_robust: bool
    n_evaluations: int


def sub_report(
    report: EfficacyReport, records: Sequence[int], weights: np.ndarray | None = None
) -> EfficacyReport:
    """The report of a subset of records (per-record scores needed), optionally reweighted.

    Its efficacy is the sum of the subset's record scores: for a report of an ``order=2``
    proxy that is the first-order value (the pairwise term is sealed only for the whole set),
    and the pairwise fields are dropped."""
    if report.record_scores is None:
        raise PricingError("splitting revenue needs per-record scores; score with per_record=True.")
    scores = np.asarray(report.record_scores)[list(records)]
    if weights is not None:
        scores = scores * weights[list(records)]
    plain = {"first_order": None, "pairwise": None}
    return report.model_copy(
        update={
            "record_scores": scores.tolist(),
            "efficacy": float(scores.sum()),
            "n_records": max(len(scores), 1),
            **plain,
        }
        if len(scores)
        else {"record_scores": [0.0], "efficacy": 0.0, "n_records": 1, **plain}
    )


def replication_weights(X: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
    """1 / (number of delivered records within ``tolerance`` (relative to the features'
    scale) of each record, itself included): k copies of a record share one record's value."""
    from scipy.spatial import cKDTree

    X = np.asarray(X, dtype=float)
    scale = float(np.abs(X).max()) or 1.0
    counts = np.array([len(n) for n in cKDTree(X / scale).query_ball_point(X / scale, r=tolerance)])
    return 1.0 / counts


def split_revenue(
    quote: Quote,
    sellers: Sequence[Hashable],
    *,
    report: EfficacyReport,
    pricing: PricingFunction,
    method: str = "exact",
    n_permutations: int = 500,
    random_state: int | None = None,
    replication_robust: bool = False,
    X: np.ndarray | None = None,
    tolerance: float = 1e-6,
) -> RevenueSplit:
    """Pay each seller its Shapley value in the game ``V(C) = price of C's records``.

    Parameters
    ----------
    quote : Quote
        The sale; payments sum to ``quote.price``.
    sellers : sequence
        The seller of each record, in record order (length ``report.n_records``).
    report, pricing :
        The opened report (with per-record scores) and the pricing function that made ``quote``.
    method : {"exact", "permutation"}
        Exact enumeration (<= 20 sellers) or permutation sampling (every permutation's
        marginals sum to the price, so the sampled payments do too).
    replication_robust : bool
        Weight each record by 1 / (its number of near-copies among the delivered records
        ``X``), so that a seller who duplicates records, or splits into sybils holding
        copies, earns no larger share of the revenue (the price itself is set by the
        pricing function on the report, copies included). What it gives up: distinct records
        closer than ``tolerance``
        (relative to the feature scale) are treated as copies, and an honest seller whose
        records another seller copied shares their value with the copier.

    Raises
    ------
    PricingError
        If the report lacks per-record scores, ``sellers`` has the wrong length, or the
        quote was not made by ``pricing`` on ``report``.
    """
    if len(sellers) != report.n_records:
        raise PricingError(
            f"{len(sellers)} seller labels for {report.n_records} records; give one per record."
        )
    if report.record_scores is None:
        raise PricingError("splitting revenue needs per-record scores; score with per_record=True.")
    if abs(pricing.quote(report).price - quote.price) > 1e-9 * max(1.0, abs(quote.price)):
        raise PricingError("the quote was not made by this pricing function on this report.")
    weights = None
    if replication_robust:
        if X is None or len(X) != report.n_records:
            raise PricingError(
                "replication_robust needs the delivered features X, one row per record."
            )
        weights = replication_weights(X, tolerance)
    names = list(dict.fromkeys(sellers))
    members = {s: [i for i, t in enumerate(sellers) if t == s] for s in names}

    def value(coalition: tuple[int, ...]) -> float:
        recs = [i for c in coalition for i in members[names[c]]]
        return pricing.quote(sub_report(report, recs, weights)).price if recs else 0.0

    if method == "exact":
        res = exact_shapley(value, len(names))
    elif method == "permutation":
        res = permutation_shapley(value, len(names), n_permutations, random_state=random_state)
    else:
        raise PricingError(f"method must be 'exact' or 'permutation'; got {method!r}.")
    pay = res.as_array()
    total = float(pay.sum())
    # replication weights, or an order-2 report (coalitions valued at first order), changed V(all)
    if abs(total - quote.price) > 1e-9 * max(1.0, quote.price):
        positive = np.clip(pay, 0, None)
        pay = (
            positive / positive.sum() * quote.price
            if positive.sum() > 0
            else np.full(len(names), quote.price / len(names))
        )
    return RevenueSplit(
        payments={str(n): float(p) for n, p in zip(names, pay)},
        price=quote.price,
        method=method,
        replication_robust=replication_robust,
        n_evaluations=res.n_evaluations,
    )
