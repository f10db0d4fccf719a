"""Cost and peak memory at scale: sealed scoring streamed from Parquet, Dask, build, hidden.

    python -m benchmarks.scale                 # 1e4..1e7 records (writes ~31 GB of Parquet)
    python -m benchmarks.scale --max-records 1000000
    python -m benchmarks.scale --quick         # 1e4 and 1e5 records, small builds

Every measurement runs in a fresh process (peak memory is that process's ``ru_maxrss``), and
each stands beside its floor measured in the same run: for sealed scoring, reading the same
Parquet offer batch by batch plus one onnxruntime pass of the psi graph. Records come from a
Gaussian mixture (class means in 20 informative directions, unit noise), never copies of the
owner's training records. Writes ``results/scale.md`` and ``results/scale_*.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

# not benchmarks.common: its black boxes import scikit-learn and torch, and each measuring
# child process must start as lean as a data owner's scorer
RESULTS = os.path.join(os.path.dirname(__file__), "results")
INFORMATIVE = 20


def mixture(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` records of the benchmark's mixture (the class means depend on d and classes only)."""
    means = np.random.default_rng(1000 * d + classes).normal(0.0, 1.5, (classes, INFORMATIVE))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[:, : min(d, INFORMATIVE)] += means[y, : min(d, INFORMATIVE)].astype(np.float32)
    return X, y


def write_parquet(path: str, n: int, d: int, classes: int, group: int = 25_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"f{j}" for j in range(d)]
    schema = pa.schema([(c, pa.float32()) for c in names] + [("label", pa.int64())])
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        for k, start in enumerate(range(0, n, group)):
            X, y = mixture(min(group, n - start), d, classes, seed=k + 1)
            cols = [pa.array(X[:, j]) for j in range(d)] + [pa.array(y)]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))


def build_artifact(path: str, d: int, classes: int, kind: str = "influence") -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    import mde

    X, y = mixture(3000, d, classes, seed=0)
    model = LogisticRegression(C=0.1, max_iter=300).fit(X[:2000], y[:2000])
    owner = mde.build_proxy(model, X[:2000], y[:2000], X[2000:], y[2000:], kind=kind)
    owner.export(path)
    return {"psi_dim": owner.psi_dim_}


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ``ru_maxrss``, not inherited from
    the parent that forked it)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return _peak_mb()


def _reset_peak() -> float:
    """Reset the peak to the current resident memory (Linux: clear_refs 5); return it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux, or not allowed: the peak then includes the set-up
        pass
    return _rss_mb()


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    import mde
    from mde.data_owner.batch_work import check_batch

    scorer = mde.load_artifact(args.artifact)
    base = _reset_peak()
    t = time.perf_counter()
    out: dict[str, Any] = {}
    if args.child == "floor":
        n = 0
        for batch in scorer._batches(args.data, None, 4096, "label"):
            xb, yb = check_batch(batch, list(scorer.manifest.classes))
            scorer._engine.psi(xb, yb)
            n += len(yb)
        out["n"] = n
    elif args.child == "sealed":
        sealed = scorer.score(args.data, batch_size=4096)
        out["n"] = sealed.n_records
        out["zero"] = scorer.last_summary.n_zero
    else:  # dask
        from mde.cluster import dask_client
        from mde.data_owner.dask_scoring import score_on_dask

        with dask_client(n_workers=args.workers) as client:
            t = time.perf_counter()
            sealed = score_on_dask(scorer, args.data, client)
        out["n"] = sealed.n_records
    out["seconds"] = time.perf_counter() - t
    out["peak_mb"], out["base_mb"] = _peak_mb(), base
    return out


def run_child(kind: str, artifact: str, data: str, workers: int = 1) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.scale", "--child", kind, "--artifact", artifact]
    cmd += ["--data", data, "--workers", str(workers)]
    env = dict(os.environ, MDE_HOME=tempfile.mkdtemp(prefix="mde-scale-"))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{kind} failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def build_cost(n: int, d: int, classes: int, kind: str, timeout: float) -> dict[str, Any]:
    """Build time and peak memory in a fresh process (``--child build``)."""
    cmd = [sys.executable, "-m", "benchmarks.scale", "--child", "build", "--n", str(n)]
    cmd += ["--d", str(d), "--classes", str(classes), "--kind", kind]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s"}
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1][:200]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def child_build(args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    import mde

    X, y = mixture(args.n + 2000, args.d, args.classes, seed=0)
    if args.float64:
        X = X.astype(np.float64)
    Xtr, ytr, Xte, yte = X[: args.n], y[: args.n], X[args.n :], y[args.n :]
    model = LogisticRegression(C=0.1, max_iter=100).fit(Xtr[:5000], ytr[:5000])
    base = _reset_peak()
    t = time.perf_counter()
    mde.build_proxy(model, Xtr, ytr, Xte, yte, kind=args.kind)
    return {
        "seconds": time.perf_counter() - t,
        "peak_mb": _peak_mb(),
        "base_mb": base,
        "data_mb": Xtr.nbytes / 2**20,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--max-records", type=float, default=1e7)
    ap.add_argument("--child", choices=["floor", "sealed", "dask", "build"], default=None)
    ap.add_argument("--artifact")
    ap.add_argument("--data")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--kind", default="influence")
    ap.add_argument(
        "--skip", default="", help="comma list of parts to skip: records,shape,dask,build"
    )
    ap.add_argument("--float64", action="store_true", help="build on float64 records")
    ap.add_argument("--out", default=None, help="results/<out>.md, .json, .png (scale)")
    ap.add_argument("--build-kinds", default="influence,tree,student", help="kinds to build")
    ap.add_argument("--build-timeout", type=float, default=900.0, help="seconds per build")
    args = ap.parse_args(argv)
    if args.child == "build":
        print(json.dumps(child_build(args)))
        return
    if args.child:
        print(json.dumps(child(args)))
        return
    skip = set(filter(None, args.skip.split(",")))
    max_n = 100_000 if args.quick else int(args.max_records)
    work = tempfile.mkdtemp(prefix="mde-scale-")
    lines: list[str] = ["# Scale (2 shared cores; one run, each row beside its floor)", ""]
    rows: dict[str, list[dict[str, Any]]] = {"records": [], "shape": [], "dask": [], "build": []}

    def sealed_row(n: int, d: int, classes: int, part: str) -> dict[str, Any]:
        art = os.path.join(work, f"a-{d}-{classes}.mde")
        if not os.path.exists(art):
            build_artifact(art, d, classes)
        data = os.path.join(work, f"o-{n}-{d}-{classes}.parquet")
        write_parquet(data, n, d, classes)
        floor = run_child("floor", art, data)
        sealed = run_child("sealed", art, data)
        row = {"n": n, "d": d, "classes": classes, "floor": floor, "sealed": sealed}
        if part == "records" and n == 1_000_000 and "dask" not in skip:
            for w in (1, 2):
                rows["dask"].append({"n": n, "workers": w, **run_child("dask", art, data, w)})
        os.remove(data)
        print(json.dumps(row), flush=True)
        return row

    if "records" not in skip:
        n = 10_000
        while n <= max_n:
            rows["records"].append(sealed_row(n, 784, 10, "records"))
            n *= 10
    if "shape" not in skip:
        n_shape = 20_000 if args.quick else 100_000
        for d, classes in [(30, 10), (784, 10), (3072, 10), (784, 2), (784, 100)]:
            rows["shape"].append(sealed_row(n_shape, d, classes, "shape"))
    if "build" not in skip:
        n_build = 5_000 if args.quick else 50_000
        for kind in args.build_kinds.split(","):
            for d, classes in [(784, 10), (3072, 10), (784, 100)]:
                r = {"kind": kind, "n": n_build, "d": d, "classes": classes}
                r.update(build_cost(n_build, d, classes, kind, args.build_timeout))
                rows["build"].append(r)
                print(json.dumps(r), flush=True)
    lines += report(rows)
    os.makedirs(RESULTS, exist_ok=True)
    name = args.out or ("scale_quick" if args.quick else "scale")
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as fh:
        json.dump(rows, fh, indent=1)
    plot(rows, name)
    print("\n".join(lines))


def report(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = []
    if rows["records"] or rows["shape"]:
        out += [
            "## Sealed scoring, streamed from Parquet (batch 4,096)",
            "",
            "| records | features | classes | floor s | sealed s | sealed / floor | "
            "records/s | floor peak MB | sealed peak MB | zeroed |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows["records"] + rows["shape"]:
            f, s = r["floor"], r["sealed"]
            out.append(
                f"| {r['n']:,} | {r['d']} | {r['classes']} | {f['seconds']:.2f} | "
                f"{s['seconds']:.2f} | {s['seconds'] / f['seconds']:.2f}x | "
                f"{r['n'] / s['seconds']:,.0f} | {f['peak_mb']:.0f} | {s['peak_mb']:.0f} | "
                f"{s['zero']:,} |"
            )
        out.append("")
    if rows["dask"]:
        out += ["## Dask scoring (LocalCluster, 1 thread per worker)", ""]
        out += ["| records | workers | seconds | client peak MB |", "|---|---|---|---|"]
        for r in rows["dask"]:
            out.append(f"| {r['n']:,} | {r['workers']} | {r['seconds']:.2f} | {r['peak_mb']:.0f} |")
        out.append("")
    if rows["build"]:
        out += ["## Build (D_tr records x features x classes)", ""]
        out += ["| kind | D_tr | features | classes | seconds | peak MB | data MB | peak / data |"]
        out += ["|---|---|---|---|---|---|---|---|"]
        for r in rows["build"]:
            if "error" in r:
                out.append(
                    f"| {r['kind']} | {r['n']:,} | {r['d']} | {r['classes']} | "
                    f"failed: {r['error']} | | | |"
                )
                continue
            out.append(
                f"| {r['kind']} | {r['n']:,} | {r['d']} | {r['classes']} | {r['seconds']:.1f} | "
                f"{r['peak_mb']:.0f} | {r['data_mb']:.0f} | "
                f"{(r['peak_mb'] - r['base_mb']) / r['data_mb']:.2f}x |"
            )
        out.append("")
    return out


def plot(rows: dict[str, list[dict[str, Any]]], name: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the bench extra is not installed: tables only
        return
    recs = rows["records"]
    if len(recs) < 2:
        return
    n = [r["n"] for r in recs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.loglog(n, [r["sealed"]["seconds"] for r in recs], "o-", label="sealed scoring")
    a.loglog(n, [r["floor"]["seconds"] for r in recs], "s--", label="floor: read + psi")
    a.set(xlabel="records (784 features)", ylabel="seconds", title="time")
    b.loglog(n, [r["sealed"]["peak_mb"] for r in recs], "o-", label="sealed scoring")
    b.loglog(n, [r["floor"]["peak_mb"] for r in recs], "s--", label="floor: read + psi")
    b.axhline(1024, color="grey", lw=0.8, label="1 GB")
    b.set(xlabel="records (784 features)", ylabel="peak MB", title="memory")
    for ax in (a, b):
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, f"{name}_records.png"), dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
