"""``mde demo``: the whole two-party flow on scikit-learn's digits, narrated."""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

__all__ = ["run_demo"]


def _say(who: str, text: str) -> None:
    print(f"[{who:^11}] {text}", flush=True)


def run_demo(kind: str = "influence", seed: int = 0) -> dict[str, float]:
    """Run the flow: build, export, score (a clean and a noisy data owner), open, price, verify.

    Returns the two efficacies and prices (for tests).
    """
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mde
    from mde.errors import DeliveryError
    from pricing import BinaryPricing, UniformPricing

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    X, y = load_digits(return_X_y=True)
    idx = rng.permutation(len(y))
    tr, te, clean, noisy = idx[:400], idx[400:900], idx[900:1300], idx[1300:1700]
    y_noisy = y[noisy].copy()
    flip = rng.random(len(noisy)) < 0.5
    y_noisy[flip] = rng.integers(0, 10, flip.sum())

    print("MDE demo: a model owner prices two data owners' digits without seeing them.\n")
    model = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=500, random_state=seed))
    model.fit(X[tr], y[tr])
    _say("model owner", f"black box: {type(model[-1]).__name__} trained on {len(tr)} digits, "
         f"test accuracy {model.score(X[te], y[te]):.3f}")
    proxy = mde.build_proxy(model, X[tr], y[tr], X[te], y[te], kind=kind, random_state=seed)
    _say("model owner", f"built {kind} proxy: psi dim {proxy.psi_dim_}, fidelity {proxy.fidelity_:.3f}, "
         f"{proxy.build_seconds_:.2f} s")

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, Xd, yd, per_record in [("clean", X[clean], y[clean], False), ("noisy", X[noisy], y_noisy, True)]:
            print()
            path = os.path.join(tmp, f"artifact-{name}.mde")
            artifact_id = proxy.export(path)
            _say("model owner", f"exports artifact {artifact_id[:8]}... ({os.path.getsize(path) / 1e3:.0f} kB: "
                 "psi graph + Enc(w) + public key, no secret key)")
            scorer = mde.load_artifact(path)
            m = scorer.manifest
            _say("data owner", f"[{name}] sees: kind={m.proxy_kind}, {m.n_features} features, classes "
                 f"{m.classes[0]}..{m.classes[-1]}, psi dim {m.psi_dim}; w stays encrypted")
            sealed = scorer.score(Xd, yd, per_record=per_record).to_bytes()
            _say("data owner", f"[{name}] sends a sealed score of {len(yd)} records: {len(sealed) / 1e3:.0f} kB "
                 f"({'per-record' if per_record else 'total only'})")
            report = proxy.open(sealed)
            _say("model owner", f"[{name}] opens it: efficacy {report.efficacy:+.4f} nats "
                 f"(plaintext check {proxy.efficacy(Xd, yd):+.4f})")
            pricing = UniformPricing(unit_price=0.25) if per_record else BinaryPricing(price=100.0)
            quote = pricing.quote(report)
            bought = "" if quote.accepted_records is None else f", buys {len(quote.accepted_records)} records"
            _say("model owner", f"[{name}] {pricing!r} -> price {quote.price:.2f}{bought}")
            out[f"{name}_efficacy"] = report.efficacy
            out[f"{name}_price"] = quote.price
            if name == "clean":
                proxy.verify_delivery(Xd, yd, report)
                _say("model owner", "[clean] delivery verified: same records (commitment) and same efficacy")
                try:
                    tampered = yd.copy()
                    tampered[0] = (tampered[0] + 1) % 10
                    proxy.verify_delivery(Xd, tampered, report)
                except DeliveryError as exc:
                    _say("model owner", f"[clean] a relabelled delivery is refused: {str(exc)[:60]}...")
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return out
