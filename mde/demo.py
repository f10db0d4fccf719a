"""``mde demo``: the whole two-party flow on scikit-learn's digits, narrated."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np

__all__ = ["run_demo"]


def _say(who: str, text: str) -> None:
    print(f"[{who:^11}] {text}", flush=True)


def _demo_data(seed: int) -> tuple[Any, ...]:
    """Digits: the owner's MLP (400 training, 500 test digits) and two data owners' 400
    digits each, the second with half its labels resampled at random."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    X, y = load_digits(return_X_y=True)
    idx = rng.permutation(len(y))
    tr, te, clean, noisy = idx[:400], idx[400:900], idx[900:1300], idx[1300:1700]
    y_noisy = y[noisy].copy()
    flip = rng.random(len(noisy)) < 0.5
    y_noisy[flip] = rng.integers(0, 10, flip.sum())
    model = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=500, random_state=seed))
    model.fit(X[tr], y[tr])
    return X, y, model, tr, te, [("clean", X[clean], y[clean]), ("noisy", X[noisy], y_noisy)]


class _Parties:
    """The demo's two owners, each with its own identity and ledger in a scratch folder (the
    demo never touches your ``$MDE_HOME``)."""

    def __init__(self, home: str) -> None:
        from mde.wire.signing import SigningKey

        self.buyer_key, self.seller_key = SigningKey.generate(), SigningKey.generate()
        self.owner_ledger = os.path.join(home, "owner-ledger.sqlite")
        self.seller_ledger = os.path.join(home, "data-owner-ledger.sqlite")

    @property
    def model_owner(self) -> dict[str, Any]:
        """``build_proxy`` keywords: the model owner's ledger and identity."""
        return {"ledger": self.owner_ledger, "identity": self.buyer_key}

    def load(self, path: str) -> Any:
        import mde

        return mde.load_artifact(
            path, identity=self.seller_key, ledger=self.seller_ledger, buyer="model-owner"
        )


def run_demo(
    kind: str = "influence", seed: int = 0, mode: str = "sealed-value"
) -> dict[str, float]:
    """Run the flow: build, export, score (a clean and a noisy data owner), open, quote,
    deliver, verify and settle; the data owner's guard refuses a second per-record answer.

    ``mode="hidden"`` runs hidden-proxy mode instead (polynomial influence proxy evaluated on
    the data owners' encrypted records). Returns the two efficacies and prices (for tests).
    """
    with tempfile.TemporaryDirectory(prefix="mde-demo-") as home:
        parties = _Parties(home)
        if mode == "hidden":
            return _run_hidden_demo(seed, parties)
        return _run_sealed_demo(kind, seed, parties)


def _run_sealed_demo(kind: str, seed: int, parties: _Parties) -> dict[str, float]:
    import mde
    from pricing import BinaryPricing, UniformPricing

    t0 = time.perf_counter()
    X, y, model, tr, te, sets = _demo_data(seed)
    (_, Xc, yc), (_, Xn, yn) = sets
    print("MDE demo: a model owner prices two data owners' digits without seeing them.\n")
    _say(
        "model owner",
        f"black box: {type(model[-1]).__name__} trained on {len(tr)} digits, "
        f"test accuracy {model.score(X[te], y[te]):.3f}",
    )
    proxy = mde.build_proxy(
        model, X[tr], y[tr], X[te], y[te], kind=kind, random_state=seed, **parties.model_owner
    )
    _say(
        "model owner",
        f"built {kind} proxy: psi dim {proxy.psi_dim_}, fidelity {proxy.fidelity_:.3f}, "
        f"{proxy.build_seconds_:.2f} s",
    )

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, Xd, yd, per_record in [("clean", Xc, yc, False), ("noisy", Xn, yn, True)]:
            print()
            path = os.path.join(tmp, f"artifact-{name}.mde")
            artifact_id = proxy.export(path)
            scorer = parties.load(path)
            if not isinstance(scorer, mde.Scorer):
                raise mde.ArtifactError(
                    "the demo exported a sealed-value artifact but read another kind back."
                )
            sketch = " + membership sketch" if scorer.has_membership_sketch else ""
            _say(
                "model owner",
                f"exports artifact {artifact_id[:8]}... ({os.path.getsize(path) / 1e3:.0f} kB: "
                f"psi graph + Enc(w) + public key + Galois keys{sketch}, no secret key)",
            )
            m = scorer.manifest
            _say(
                "data owner",
                f"[{name}] sees: kind={m.proxy_kind}, {m.n_features} features, classes "
                f"{m.classes[0]}..{m.classes[-1]}, psi dim {m.psi_dim}; w stays encrypted",
            )
            sealed = scorer.score(Xd, yd, per_record=per_record).to_bytes()
            _say(
                "data owner",
                f"[{name}] sends a sealed score of {len(yd)} records: {len(sealed) / 1e3:.0f} kB "
                f"({'per-record' if per_record else 'total only'})",
            )
            report = proxy.open(sealed)
            _say(
                "model owner",
                f"[{name}] opens it: efficacy {report.efficacy:+.4f} nats "
                f"(plaintext check {proxy.efficacy(Xd, yd):+.4f})",
            )
            pricing = UniformPricing(unit_price=0.25) if per_record else BinaryPricing(price=100.0)
            quote = pricing.quote(report)
            bought = (
                ""
                if quote.accepted_records is None
                else f", buys {len(quote.accepted_records)} records"
            )
            _say("model owner", f"[{name}] {pricing!r} -> price {quote.price:.2f}{bought}")
            out[f"{name}_efficacy"] = report.efficacy
            out[f"{name}_price"] = quote.price
            if name == "clean":
                spent = scorer.ledger.answers(scorer.buyer_key)
                _say(
                    "data owner",
                    f"[clean] guard: psi graph matches the {m.proxy_kind!r} template; this buyer "
                    f"has {len(spent)}/{scorer.policy.max_artifacts} artifacts answered",
                )
            offer = proxy.quote(report, pricing)  # signed, recorded in the owner's ledger
            subset = quote.accepted_records
            delivery = scorer.deliver(offer, Xd, yd, indices=subset if per_record else None)
            what = (
                "all records + salt seed"
                if delivery.full
                else (f"{delivery.n_delivered} bought records + salts + Merkle proofs")
            )
            _say("data owner", f"[{name}] accepts the quote, delivers {what}")
            settlement = scorer.accept_settlement(proxy.settle(delivery.to_bytes(), pricing))
            _say(
                "model owner",
                f"[{name}] delivery verified (commitment, sketch, copies, scores); settled at "
                f"{settlement.price:.2f} (quoted {settlement.quoted_price:.2f}); both ledgers "
                "record it",
            )
            out[f"{name}_settled"] = settlement.price
        print()
        _refused_again(proxy, parties, os.path.join(tmp, "artifact-again.mde"), Xn, yn)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return out


def _refused_again(proxy: Any, parties: _Parties, path: str, X: Any, y: Any) -> None:
    """The buyer asks for the noisy records' scores again, against a fresh artifact: the
    data owner's guard refuses (one per-record answer per buyer and data set)."""
    import mde

    proxy.export(path)
    _say("model owner", "[noisy] exports a fresh artifact and asks for per-record scores again")
    try:
        parties.load(path).score(X, y, per_record=True)
    except mde.BudgetError as exc:
        _say("data owner", f"[noisy] guard refuses: {str(exc).split(' Refusing')[0]}")
        return
    raise mde.ProtocolError("the guard answered a second per-record request; it must refuse it.")


def _run_hidden_demo(seed: int, parties: _Parties) -> dict[str, float]:
    import mde
    from pricing import BinaryPricing

    t0 = time.perf_counter()
    X, y, model, tr, te, sets = _demo_data(seed)
    print(
        "MDE demo, hidden-proxy mode: the proxy never leaves the model owner; the data owners'\n"
        "records travel encrypted under keys only they hold.\n"
    )
    _say(
        "model owner",
        f"black box: {type(model[-1]).__name__} trained on {len(tr)} digits, "
        f"test accuracy {model.score(X[te], y[te]):.3f}",
    )
    proxy = mde.build_proxy(
        model,
        X[tr],
        y[tr],
        X[te],
        y[te],
        kind="influence-poly",
        random_state=seed,
        **parties.model_owner,
    )
    _say(
        "model owner",
        "built influence-poly proxy (squared-loss head, depth-2 score), fidelity "
        f"{proxy.fidelity_:.3f}",
    )
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, Xd, yd in sets:
            print()
            path = os.path.join(tmp, f"hidden-{name}.mde")
            proxy.export(path, mode="hidden")
            client = parties.load(path)
            if not isinstance(client, mde.HiddenClient):
                raise mde.ArtifactError(
                    "the demo exported a hidden-mode artifact but read another kind back."
                )
            m = client.manifest
            _say(
                "model owner",
                f"exports hidden artifact ({os.path.getsize(path)} bytes: shapes, classes, CKKS "
                f"N={m.ckks.poly_modulus_degree}; no weights)",
            )
            t = time.perf_counter()
            request = client.encrypt(Xd, yd).to_bytes()
            _say(
                "data owner",
                f"[{name}] encrypts {len(yd)} records under its own key: {len(request) / 1e6:.1f} "
                "MB "
                f"({time.perf_counter() - t:.1f} s)",
            )
            t = time.perf_counter()
            result = proxy.evaluate_hidden(request).to_bytes()
            _say(
                "model owner",
                f"[{name}] evaluates the proxy on ciphertexts, sums, masks: "
                f"{len(result) / 1e3:.0f} kB "
                f"back ({time.perf_counter() - t:.1f} s)",
            )
            partial = client.decrypt(result).to_bytes()
            _say(
                "data owner",
                f"[{name}] decrypts the masked sum, adds flooding noise, returns one number",
            )
            report = proxy.open(partial)
            _say(
                "model owner",
                f"[{name}] efficacy {report.efficacy:+.5f} (plaintext check "
                f"{proxy.efficacy(Xd, yd):+.5f})",
            )
            pricing = BinaryPricing(price=100.0)
            quote = pricing.quote(report)
            _say("model owner", f"[{name}] BinaryPricing(price=100) -> price {quote.price:.2f}")
            delivery = client.deliver(proxy.quote(report, pricing), Xd, yd)
            settlement = client.accept_settlement(proxy.settle(delivery, pricing))
            _say("model owner", f"[{name}] delivery verified; settled at {settlement.price:.2f}")
            out[f"{name}_efficacy"] = report.efficacy
            out[f"{name}_price"] = quote.price
            out[f"{name}_settled"] = settlement.price
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return out
