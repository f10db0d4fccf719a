"""Hidden-proxy mode: throughput, bytes per record, agreement with plaintext, fidelity.

    python -m benchmarks.hidden            # MNIST-5k (784 features) and breast cancer (30)
    python -m benchmarks.hidden --quick    # one small round per data set

Prints markdown tables: end-to-end records per second (encrypt + serialise, evaluate,
decrypt, open; one process, 2 cores), bytes sent per record, Spearman rho between the
hidden-mode and plaintext efficacy on the fidelity benchmark's label-noise candidate sets,
and the polynomial proxy's own rho against retraining beside the softmax influence proxy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import numpy as np

import mde
from benchmarks.common import (
    black_boxes,
    breast_cancer_label_noise,
    cached_utility,
    mnist_label_noise,
)
from mde.valuation import rank_correlation


def _round(proxy: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """One hidden-mode round; seconds per step and bytes per message."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "h.mde")
        proxy.export(path, mode="hidden")
        client = mde.load_artifact(path)
        t0 = time.perf_counter()
        request = client.encrypt(X, y).to_bytes()
        t1 = time.perf_counter()
        result = proxy.evaluate_hidden(request).to_bytes()
        t2 = time.perf_counter()
        partial = client.decrypt(result).to_bytes()
        report = proxy.open(partial)
        t3 = time.perf_counter()
    return {
        "encrypt s": t1 - t0,
        "evaluate s": t2 - t1,
        "decrypt+open s": t3 - t2,
        "total s": t3 - t0,
        "request bytes": len(request),
        "result bytes": len(result),
        "partial bytes": len(partial),
        "efficacy": report.efficacy,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    factories = black_boxes()
    out: dict[str, Any] = {}

    print(
        "| data | features | records | encrypt s | evaluate s | decrypt+open s | records/s "
        "| KB sent/record | hidden vs plaintext rel. error |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    mn = mnist_label_noise()
    bc = breast_cancer_label_noise()
    for name, sc, n in [("MNIST-5k", mn, 1000 if args.quick else 4096), ("breast cancer", bc, 219)]:
        model = factories["logreg"](0).fit(sc.X_train, sc.y_train)
        proxy = mde.build_proxy(
            model,
            sc.X_train,
            sc.y_train,
            sc.X_test,
            sc.y_test,
            kind="influence-poly",
            random_state=0,
        )
        X, y = sc.X_pool[:n], sc.y_pool[:n]
        r = _round(proxy, X, y)
        plain = float(proxy.record_scores(X, y, exclude=False).sum())  # no sketch in hidden mode
        sent = (r["request bytes"] + r["partial bytes"]) / len(y) / 1e3
        print(
            f"| {name} | {X.shape[1]} | {len(y)} | {r['encrypt s']:.2f} | "
            f"{r['evaluate s']:.2f} | "
            f"{r['decrypt+open s']:.3f} | {len(y) / r['total s']:.0f} | {sent:.1f} | "
            f"{abs(r['efficacy'] - plain) / abs(plain):.1e} |"
        )
        out[name] = r | {"records/s": len(y) / r["total s"], "KB/record": sent}

    print(
        "\n| black box | rho hidden vs plaintext (10 sets) | rho influence-poly vs retrain "
        "| rho influence (softmax) vs retrain | seconds per hidden round (350 records) |"
        "\n|---|---|---|---|---|"
    )
    bbs = ["logreg"] if args.quick else ["logreg", "mlp", "rf"]
    sets = mn.candidates[:4] if args.quick else mn.candidates
    for bb in bbs:
        model = factories[bb](0).fit(mn.X_train, mn.y_train)
        poly = mde.build_proxy(
            model,
            mn.X_train,
            mn.y_train,
            mn.X_test,
            mn.y_test,
            kind="influence-poly",
            random_state=0,
        )
        soft = mde.build_proxy(model, mn.X_train, mn.y_train, mn.X_test, mn.y_test, random_state=0)
        hidden, plain, secs = [], [], []
        for X, y in sets:
            r = _round(poly, X, y)
            hidden.append(r["efficacy"])
            plain.append(float(poly.record_scores(X, y, exclude=False).sum()))
            secs.append(r["total s"])
        agree = rank_correlation(np.array(hidden), np.array(plain))["spearman"]
        if args.quick:
            print(f"| {bb} | {agree:.4f} | - | - | {np.median(secs):.1f} |")
            continue
        gt, _ = cached_utility(mn, bb, factories[bb], seeds=3)
        rho_poly = rank_correlation([poly.efficacy(X, y) for X, y in mn.candidates], gt)["spearman"]
        rho_soft = rank_correlation([soft.efficacy(X, y) for X, y in mn.candidates], gt)["spearman"]
        print(f"| {bb} | {agree:.4f} | {rho_poly:.2f} | {rho_soft:.2f} | {np.median(secs):.1f} |")
        out[bb] = {"agreement": agree, "rho poly": rho_poly, "rho softmax": rho_soft}
    return out


if __name__ == "__main__":
    main()
