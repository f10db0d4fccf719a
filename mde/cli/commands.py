"""The steps of the ``mde`` command line, one function per subcommand."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from mde.cli.offer_input import score_offer
from mde.errors import InputError

__all__ = [
    "cmd_build",
    "cmd_inspect",
    "cmd_score",
    "cmd_open",
    "cmd_price",
    "cmd_deliver",
    "cmd_settle",
    "cmd_accept",
    "cmd_encrypt",
    "cmd_evaluate",
    "cmd_decrypt",
    "cmd_demo",
]


_RESERVED = {"random_state": "--seed", "kind": "--kind"}


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, val = pair.partition("=")
        if not eq:
            raise InputError(f"--option {pair!r} must look like key=value (e.g. n_components=32).")
        if key in _RESERVED:
            raise InputError(f"set {key} with {_RESERVED[key]}, not --option.")
        try:
            out[key] = json.loads(val)
        except json.JSONDecodeError:
            out[key] = val
    return out


def _load_model(path: str) -> Any:
    if path.endswith(".onnx"):
        return path
    if path.endswith((".joblib", ".pkl", ".pickle")):
        # A scikit-learn model file on the model owner's own machine: it never crosses owners.
        import joblib

        try:
            return joblib.load(path)
        except FileNotFoundError as exc:
            raise InputError(f"model file {path!r} does not exist.") from exc
    raise InputError(
        f"unsupported model file {path!r}: use an .onnx file or a scikit-learn .joblib/.pkl file."
    )


def _check_out(*paths: str) -> None:
    """Fail before any long work if an output folder does not exist."""
    for path in paths:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise InputError(f"output folder {folder!r} does not exist; create it first.")


def _read(path: str, mode: str = "rb") -> Any:
    if not os.path.exists(path):
        raise InputError(f"file {path!r} does not exist.")
    with open(path, mode) as fh:
        return fh.read()


def cmd_build(a: argparse.Namespace) -> int:
    from mde.data_io import read_dataset
    from mde.owner import build_proxy

    _check_out(a.artifact_out, a.proxy_out)
    Xtr, ytr = read_dataset(a.train, a.label_column)
    Xte, yte = read_dataset(a.test, a.label_column)
    proxy = build_proxy(
        _load_model(a.model),
        Xtr,
        ytr,
        Xte,
        yte,
        kind=a.kind,
        random_state=a.seed,
        **_options(a.option),
    )
    artifact_id = proxy.export(a.artifact_out, mode=a.mode)
    proxy.save(a.proxy_out)
    summary = proxy.summary() | {
        "artifact_id": artifact_id,
        "artifact_bytes": os.path.getsize(a.artifact_out),
        "artifact": a.artifact_out,
        "proxy_file (private)": a.proxy_out,
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _guard(a: argparse.Namespace) -> Any:
    from mde.data_owner.policy import DPPolicy, GuardPolicy

    dp = None if a.dp_epsilon is None else DPPolicy(epsilon=a.dp_epsilon)
    return GuardPolicy(
        max_artifacts=a.max_artifacts,
        max_numbers=a.max_numbers,
        max_requests=a.max_requests,
        max_buyers=a.max_buyers,
        require_pinned=a.require_pinned,
        dp=dp,
    )


def cmd_inspect(a: argparse.Namespace) -> int:
    from mde.data_owner import load_artifact
    from mde.data_owner.guard import TEMPLATES

    session = load_artifact(a.artifact, buyer=a.buyer)  # raises if the guard refuses it
    m = session.manifest
    answered = session.ledger.answers(session.buyer_key)
    print(
        json.dumps(
            json.loads(m.model_dump_json())
            | {
                "guard": {
                    "signed_by": session.buyer_key,
                    "buyer": session.ledger.buyer_name(session.buyer_key),
                    "graph": (
                        "no graph: hidden mode (your records go encrypted under your key)"
                        if m.mode == "hidden"
                        else f"admitted: matches the {m.proxy_kind!r} template "
                        f"[{TEMPLATES.get(m.proxy_kind, 'trusted, no template')}]"
                    ),
                    "answers_to_this_buyer": len(answered),
                    "numbers_released_to_this_buyer": sum(int(r["numbers"]) for r in answered),
                    "budgets": json.loads(_guard(a).model_dump_json()),
                },
            },
            indent=2,
        )
    )
    return 0


def cmd_score(a: argparse.Namespace) -> int:
    from mde.data_io import read_dataset
    from mde.data_owner import Scorer, load_artifact

    _check_out(a.out)
    scorer = load_artifact(a.artifact, buyer=a.buyer, policy=_guard(a))
    if not isinstance(scorer, Scorer):
        raise InputError(
            f"{a.artifact!r} is a hidden-mode artifact: there is no proxy to run locally. "
            "Encrypt the records with `mde encrypt` and send the request to the model owner."
        )
    sealed = score_offer(scorer, a, read_dataset)
    blob = sealed.to_bytes()
    with open(a.out, "wb") as fh:
        fh.write(blob)
    print(
        json.dumps(
            {
                "sealed": a.out,
                "bytes": len(blob),
                "artifact_id": sealed.artifact_id,
                "n_records": sealed.n_records,
                "commitment": sealed.commitment,
                "signed_by": sealed.signer,
                "differential_privacy": sealed.header.dp_noise_multiplier is not None,
            },
            indent=2,
        )
    )
    return 0


def cmd_open(a: argparse.Namespace) -> int:
    from mde.owner import load_proxy
    from pricing import parse_pricing

    pricing = parse_pricing(a.pricing)
    quote_out = a.quote_out or os.path.join(
        os.path.dirname(a.report_out or "") or ".", "quote.mdequote"
    )
    _check_out(*(p for p in (a.report_out, quote_out) if p))
    proxy = load_proxy(a.proxy)
    report = proxy.open(_read(a.sealed), allow_repeat=a.allow_repeat)
    if a.report_out:  # keep the report first: it can be priced again with `mde price`
        with open(a.report_out, "w") as fh:
            fh.write(report.model_dump_json(indent=2))
    # the signed provisional quote for the data owner (delivery and settlement follow)
    proxy.quote(report, pricing, spec=a.pricing).write(quote_out)
    print(pricing.quote(report).model_dump_json(indent=2))
    return 0


def _load_report(path: str) -> Any:
    from mde.report import EfficacyReport

    try:
        return EfficacyReport.from_json(_read(path))
    except InputError as exc:
        raise InputError(f"{path!r}: {exc}") from exc


def cmd_price(a: argparse.Namespace) -> int:
    from pricing import parse_pricing

    print(parse_pricing(a.pricing).quote(_load_report(a.report)).model_dump_json(indent=2))
    return 0


def _indices(spec: str | None) -> Any:
    if spec is None:
        return None
    try:
        return [int(v) for v in spec.split(",") if v.strip()]
    except ValueError as exc:
        raise InputError(
            f"--indices must be comma-separated record positions; got {spec!r}."
        ) from exc


def cmd_deliver(a: argparse.Namespace) -> int:
    from mde.data_io import read_dataset
    from mde.data_owner import load_artifact

    _check_out(a.out)
    session = load_artifact(a.artifact)
    X, y = read_dataset(a.data, a.label_column)
    delivery = session.deliver(_read(a.quote), X, y, indices=_indices(a.indices))
    delivery.write(a.out)
    print(
        json.dumps(
            {"delivery": a.out, "records": delivery.n_delivered, "of": delivery.n_records},
            indent=2,
        )
    )
    return 0


def cmd_settle(a: argparse.Namespace) -> int:
    from mde.owner import load_proxy
    from mde.wire.deal import Delivery
    from pricing import parse_pricing

    _check_out(a.out)
    proxy = load_proxy(a.proxy)
    delivery = Delivery.from_bytes(_read(a.delivery))
    spec = a.pricing or proxy.ledger.quote(delivery.quote_id)[3]
    settlement = proxy.settle(delivery, parse_pricing(spec), spec=spec)
    settlement.write(a.out)
    print(settlement.model_dump_json(indent=2))
    return 0


def cmd_accept(a: argparse.Namespace) -> int:
    from mde.data_owner import load_artifact

    settlement = load_artifact(a.artifact).accept_settlement(_read(a.settlement))
    print(json.dumps({"settled": settlement.quote_id, "price": settlement.price}, indent=2))
    return 0


def cmd_pin(a: argparse.Namespace) -> int:
    from mde.data_owner.ledger import DataOwnerLedger
    from mde.wire.signing import check_public_key

    ledger = DataOwnerLedger()
    ledger.pin(a.name, check_public_key(a.key, "--key"))
    print(json.dumps({"pinned": a.name, "key": a.key, "ledger": str(ledger.path)}, indent=2))
    return 0


def cmd_identity(a: argparse.Namespace) -> int:
    from mde.wire.signing import SigningKey, default_identity_path

    key = SigningKey.load_or_create()
    print(json.dumps({"public_key": key.public_hex, "file": str(default_identity_path())}))
    return 0


def cmd_encrypt(a: argparse.Namespace) -> int:
    from mde.data_io import read_dataset
    from mde.data_owner import HiddenClient, load_artifact

    _check_out(a.out, a.key)
    client = load_artifact(a.artifact, buyer=a.buyer, policy=_guard(a))
    if not isinstance(client, HiddenClient):
        raise InputError(f"{a.artifact!r} is a sealed-value artifact; use `mde score` for it.")
    X, y = read_dataset(a.data, a.label_column)
    blob = client.encrypt(X, y, progress=not a.quiet).to_bytes()
    with open(a.out, "wb") as fh:
        fh.write(blob)
    client.save_key(a.key)
    print(
        json.dumps(
            {
                "request": a.out,
                "bytes": len(blob),
                "bytes_per_record": len(blob) / len(y),
                "key (private)": a.key,
            },
            indent=2,
        )
    )
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from mde.owner import load_proxy

    _check_out(a.out)
    proxy = load_proxy(a.proxy)
    blob = proxy.evaluate_hidden(_read(a.request), allow_repeat=a.allow_repeat).to_bytes()
    with open(a.out, "wb") as fh:
        fh.write(blob)
    print(json.dumps({"result": a.out, "bytes": len(blob)}, indent=2))
    return 0


def cmd_decrypt(a: argparse.Namespace) -> int:
    from mde.data_owner import HiddenClient, load_artifact

    _check_out(a.out)
    client = load_artifact(a.artifact, buyer=a.buyer, policy=_guard(a))
    if not isinstance(client, HiddenClient):
        raise InputError(f"{a.artifact!r} is a sealed-value artifact; nothing to decrypt.")
    client.load_key(a.key)
    blob = client.decrypt(_read(a.result)).to_bytes()
    client.save_key(a.key)  # remembers that this result was decrypted
    with open(a.out, "wb") as fh:
        fh.write(blob)
    print(json.dumps({"partial": a.out, "bytes": len(blob)}, indent=2))
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from mde.demo import run_demo

    run_demo(kind=a.kind, seed=a.seed, mode=a.mode)
    return 0
