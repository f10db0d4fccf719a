"""The second-order efficacy of an ``order=2`` proxy from its two sealed quantities."""

from __future__ import annotations

__all__ = ["second_order_step", "second_order_efficacy"]


def second_order_step(n_records: int, n_train: int, data_curvature: float = 1.0) -> float:
    """Step factor ``r = n_train / (n_train + data_curvature * n_records)`` of an ``order=2``
    proxy: the added records bring curvature like D_tr's records, ``n_records`` times the
    data part of ``H`` (share ``data_curvature`` of its trace, the rest is L2), which
    shortens the step ``d = -r H^-1 s / n_train``."""
    return n_train / (n_train + data_curvature * n_records)


def second_order_efficacy(
    first_order: float, pairwise: float, n_records: int, n_train: int, data_curvature: float = 1.0
) -> float:
    """Efficacy of an ``order=2`` proxy from its two sealed quantities.

    Along the step ``d = -r H^-1 s / n_train`` (``r`` from :func:`second_order_step`) the
    test loss falls by ``r A - r^2 B / 2`` to second order, with ``A = first_order = <w, s>``
    and ``B = pairwise = s^T Q s``; that is returned.
    """
    r = second_order_step(n_records, n_train, data_curvature)
    return r * first_order - r * r * pairwise / 2.0
