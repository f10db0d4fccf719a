"""Flooding noise against the CKKS decryption error, sealed-value mode.

Seals random psi blocks (per record and as a total) against a random unit-scaled ``w`` with
the default parameters, opens them without flooding, and reports the decryption error
(opened minus exact block sum, in the scaled units where max |w| = 1) next to the flooding
sigma the owner adds (``CKKSParams.flood_sigma``). Run: ``python -m benchmarks.flooding``.
"""

from __future__ import annotations

import numpy as np

from mde.crypto.context import new_context, public_context_bytes
from mde.crypto.params import CKKSParams, make_layout
from mde.crypto.sealing import aggregate_exponent, encrypt_values, seal_blocks, unseal_blocks


def measure(m: int = 170, n: int = 400, psi_scale: float = 3.0, seed: int = 0) -> dict[str, float]:
    import tenseal as ts

    rng = np.random.default_rng(seed)
    params = CKKSParams()
    ctx = new_context(params)
    public = ts.context_from(public_context_bytes(ctx))
    layout = make_layout(m, params)
    w = rng.uniform(-1.0, 1.0, m)
    w /= np.abs(w).max()
    enc = [ts.ckks_vector_from(public, b) for b in encrypt_values(ctx, w, layout, 1.5, 1.25)]
    psi = rng.uniform(-psi_scale, psi_scale, (n, m))
    cts = seal_blocks(public, enc, psi, layout, rng, params, None)
    per = unseal_blocks(ctx, cts, layout, n, True, 1.5, 1.25, 0.0)
    e = aggregate_exponent(n)
    total = psi.sum(axis=0) / 2.0**e
    cts_t = seal_blocks(public, enc, total[None, :], layout, rng, params, e)
    tot = unseal_blocks(ctx, cts_t, layout, n, False, 1.5, 1.25, 0.0)
    err_per = per - psi @ w
    err_tot = tot[0] - total @ w
    return {
        "flood_sigma": params.flood_sigma,
        "per_record_error_std": float(err_per.std()),
        "per_record_error_max": float(np.abs(err_per).max()),
        "total_error": float(abs(err_tot)),
    }


def main() -> None:
    rows = [measure(seed=s) for s in range(3)]
    keys = list(rows[0])
    med = {k: float(np.median([r[k] for r in rows])) for k in keys}
    print("sealed-value mode, default CKKS (N=8192, 40-bit scale), m=170, 400 records, |psi| <= 3")
    print(f"{'quantity':28s} {'median of 3 runs':>18s}")
    for k in keys:
        print(f"{k:28s} {med[k]:18.3e}")
    print(
        f"{'flood / per-record std':28s} {med['flood_sigma'] / med['per_record_error_std']:18.1f}"
    )
    print(
        f"{'flood / per-record max':28s} {med['flood_sigma'] / med['per_record_error_max']:18.1f}"
    )


if __name__ == "__main__":
    main()
