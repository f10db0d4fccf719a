"""The guard's budget checks, run inside the data owner's ledger transactions.

Each function reads the ledger through the open connection of a ``BEGIN IMMEDIATE``
transaction and raises before anything is recorded, so a refused answer spends nothing.
"""

from __future__ import annotations

import sqlite3

from mde.data_owner.policy import GuardPolicy, composed_epsilon
from mde.errors import BudgetError, IdentityError

__all__ = ["check_buyer", "check_release"]


def _distinct(db: sqlite3.Connection, column: str, where: str, value: str) -> set[str]:
    """Distinct ``column`` values of the answers whose ``where`` is ``value``."""
    sql = f"SELECT DISTINCT {column} FROM answers WHERE {where} = ?"  # fixed column names
    return {str(r[0]) for r in db.execute(sql, (value,))}


def check_buyer(db: sqlite3.Connection, buyer: str, artifact: str, policy: GuardPolicy) -> None:
    """Refuse a buyer that is not pinned (with ``require_pinned``) or past its artifacts."""
    if policy.require_pinned and (
        db.execute("SELECT 1 FROM buyers WHERE public_key = ?", (buyer,)).fetchone() is None
    ):
        raise IdentityError(
            f"buyer key {buyer[:16]}... is not pinned and this guard answers pinned buyers "
            "only; pin it first (mde pin --name NAME --key KEY) if you know who it is."
        )
    arts = _distinct(db, "artifact", "buyer", buyer)
    if artifact not in arts and len(arts) >= policy.max_artifacts:
        raise BudgetError(
            f"this buyer was already answered for {len(arts)} artifacts, its budget "
            f"(max_artifacts={policy.max_artifacts}); refusing a new one. Many artifacts let a "
            "buyer solve for your records."
        )


def check_release(
    db: sqlite3.Connection,
    *,
    buyer: str,
    dataset: str,
    numbers: int,
    n_records: int,
    policy: GuardPolicy,
    hidden: bool,
) -> None:
    """Refuse an answer about ``dataset`` past any budget: the buyer's numbers, the data
    set's buyers (fresh keys do not reset budgets), hidden-mode requests, privacy loss."""
    buyers = _distinct(db, "buyer", "dataset", dataset)
    if buyer not in buyers and len(buyers) >= policy.max_buyers:
        raise BudgetError(
            f"this data set was already answered for {len(buyers)} buyers (max_buyers="
            f"{policy.max_buyers}); refusing a new one. A buyer could otherwise reset its "
            "budgets with a fresh key; raise max_buyers for buyers you know."
        )
    (spent,) = db.execute(
        "SELECT COALESCE(SUM(numbers), 0) FROM answers WHERE buyer = ? AND dataset = ?",
        (buyer, dataset),
    ).fetchone()
    budget = policy.numbers_budget(n_records)
    if spent + numbers > budget:
        raise BudgetError(
            f"this answer releases {numbers} numbers about this data set; the buyer already "
            f"has {spent} and its budget is {budget} (max_numbers). Refusing it: each released "
            "number narrows down your records."
        )
    if hidden:
        (requests,) = db.execute(
            "SELECT COUNT(*) FROM decryptions WHERE buyer = ? AND dataset = ?", (buyer, dataset)
        ).fetchone()
        if requests >= policy.max_requests:
            raise BudgetError(
                f"this buyer already had {requests} hidden-mode results about this data set "
                f"decrypted (max_requests={policy.max_requests}); refusing another. Each one is "
                "a number the buyer's own circuit chose."
            )
    dp = policy.dp
    if dp is not None:
        past = [
            float(r[0])
            for r in db.execute(
                "SELECT noise_multiplier FROM answers WHERE dataset = ? AND "
                "noise_multiplier IS NOT NULL",
                (dataset,),
            )
        ]
        eps = composed_epsilon(past + [dp.noise_multiplier], dp.delta)
        if eps > dp.epsilon_budget * (1 + 1e-9):
            raise BudgetError(
                f"this answer would raise the data set's privacy loss to epsilon {eps:.3g} "
                f"(delta {dp.delta:g}) over {len(past) + 1} answers; the budget is "
                f"{dp.epsilon_budget:g}. Refusing it."
            )
