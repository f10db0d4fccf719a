"""The ``mde`` command line: build, inspect, score, open, price, verify, demo; and the
hidden-mode steps encrypt (data owner), evaluate (model owner), decrypt (data owner)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from mde.errors import InputError, MDEError

__all__ = ["main"]


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
    raise InputError(f"unsupported model file {path!r}: use an .onnx file or a scikit-learn .joblib/.pkl file.")


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


def _cmd_build(a: argparse.Namespace) -> int:
    from mde.build import build_proxy
    from mde.data_io import read_dataset

    _check_out(a.artifact_out, a.proxy_out)
    Xtr, ytr = read_dataset(a.train, a.label_column)
    Xte, yte = read_dataset(a.test, a.label_column)
    proxy = build_proxy(_load_model(a.model), Xtr, ytr, Xte, yte, kind=a.kind, random_state=a.seed, **_options(a.option))
    artifact_id = proxy.export(a.artifact_out, mode=a.mode)
    proxy.save(a.proxy_out)
    summary = proxy.summary() | {"artifact_id": artifact_id, "artifact_bytes": os.path.getsize(a.artifact_out),
                                 "artifact": a.artifact_out, "proxy_file (private)": a.proxy_out}
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _cmd_inspect(a: argparse.Namespace) -> int:
    from mde.scoring import load_artifact

    scorer = load_artifact(a.artifact)
    print(scorer.manifest.model_dump_json(indent=2))
    return 0


def _cmd_score(a: argparse.Namespace) -> int:
    from mde.data_io import read_dataset
    from mde.scoring import load_artifact

    _check_out(a.out)
    X, y = read_dataset(a.data, a.label_column)
    sealed = load_artifact(a.artifact).score(X, y, per_record=a.per_record, progress=not a.quiet)
    blob = sealed.to_bytes()
    with open(a.out, "wb") as fh:
        fh.write(blob)
    print(json.dumps({"sealed": a.out, "bytes": len(blob), "artifact_id": sealed.artifact_id,
                      "n_records": sealed.n_records, "commitment": sealed.commitment}, indent=2))
    return 0


def _cmd_open(a: argparse.Namespace) -> int:
    from mde.storage import load_proxy
    from pricing import parse_pricing

    pricing = parse_pricing(a.pricing)
    if a.report_out:
        _check_out(a.report_out)
    proxy = load_proxy(a.proxy)
    report = proxy.open(_read(a.sealed), allow_repeat=a.allow_repeat)
    if a.report_out:  # keep the report first: it can be priced again with `mde price`
        with open(a.report_out, "w") as fh:
            fh.write(report.model_dump_json(indent=2))
    proxy.save(a.proxy)  # remember that this artifact was evaluated
    print(pricing.quote(report).model_dump_json(indent=2))
    return 0


def _load_report(path: str) -> Any:
    from pydantic import ValidationError

    from mde.report import EfficacyReport

    try:
        return EfficacyReport.model_validate_json(_read(path))
    except ValidationError as exc:
        raise InputError(f"{path!r} is not a valid efficacy report: {exc}") from exc


def _cmd_price(a: argparse.Namespace) -> int:
    from pricing import parse_pricing

    print(parse_pricing(a.pricing).quote(_load_report(a.report)).model_dump_json(indent=2))
    return 0


def _cmd_verify(a: argparse.Namespace) -> int:
    from mde.data_io import read_dataset
    from mde.storage import load_proxy

    X, y = read_dataset(a.data, a.label_column)
    report = _load_report(a.report)
    load_proxy(a.proxy).verify_delivery(X, y, report)
    print(json.dumps({"verified": True, "n_records": report.n_records, "commitment": report.commitment}))
    return 0


def _cmd_encrypt(a: argparse.Namespace) -> int:
    from mde.data_io import read_dataset
    from mde.hidden import HiddenClient
    from mde.scoring import load_artifact

    _check_out(a.out, a.key)
    client = load_artifact(a.artifact)
    if not isinstance(client, HiddenClient):
        raise InputError(f"{a.artifact!r} is a sealed-value artifact; use `mde score` for it.")
    X, y = read_dataset(a.data, a.label_column)
    blob = client.encrypt(X, y, progress=not a.quiet).to_bytes()
    with open(a.out, "wb") as fh:
        fh.write(blob)
    client.save_key(a.key)
    print(json.dumps({"request": a.out, "bytes": len(blob), "bytes_per_record": len(blob) / len(y),
                      "key (private)": a.key}, indent=2))
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from mde.storage import load_proxy

    _check_out(a.out)
    proxy = load_proxy(a.proxy)
    blob = proxy.evaluate_hidden(_read(a.request), allow_repeat=a.allow_repeat).to_bytes()
    with open(a.out, "wb") as fh:
        fh.write(blob)
    proxy.save(a.proxy)  # keeps the mask needed to open the answer
    print(json.dumps({"result": a.out, "bytes": len(blob)}, indent=2))
    return 0


def _cmd_decrypt(a: argparse.Namespace) -> int:
    from mde.hidden import HiddenClient
    from mde.scoring import load_artifact

    _check_out(a.out)
    client = load_artifact(a.artifact)
    if not isinstance(client, HiddenClient):
        raise InputError(f"{a.artifact!r} is a sealed-value artifact; nothing to decrypt.")
    client.load_key(a.key)
    blob = client.decrypt(_read(a.result)).to_bytes()
    client.save_key(a.key)  # remembers that this result was decrypted
    with open(a.out, "wb") as fh:
        fh.write(blob)
    print(json.dumps({"partial": a.out, "bytes": len(blob)}, indent=2))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from mde.demo import run_demo

    run_demo(kind=a.kind, seed=a.seed, mode=a.mode)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mde", description="Price training data against a model before either side reveals it.")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="model owner: build a proxy, export the public artifact, save the private proxy")
    b.add_argument("--model", required=True, help="model file: .onnx, or a scikit-learn .joblib/.pkl on your own machine")
    b.add_argument("--train", required=True, help="training set (.npz with X, y; or .csv)")
    b.add_argument("--test", required=True, help="test set (.npz or .csv)")
    b.add_argument("--kind", default="influence")
    b.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="proxy option, repeatable")
    b.add_argument("--artifact-out", default="artifact.mde", help="public artifact to hand to data owners")
    b.add_argument("--proxy-out", default="proxy.mdeproxy", help="private proxy file (secret key inside)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--label-column", default=None)
    b.add_argument("--mode", default="sealed-value", choices=["sealed-value", "hidden"],
                   help="hidden: export shapes only; data owners send encrypted records (kind influence-poly)")
    b.set_defaults(func=_cmd_build)

    i = sub.add_parser("inspect", help="data owner: show an artifact's manifest (all it reveals besides psi)")
    i.add_argument("--artifact", required=True)
    i.set_defaults(func=_cmd_inspect)

    s = sub.add_parser("score", help="data owner: score local data against an artifact; write a sealed score")
    s.add_argument("--artifact", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--per-record", action="store_true", help="seal each record's score (needed for uniform pricing)")
    s.add_argument("--out", default="score.mdeseal")
    s.add_argument("--label-column", default=None)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_score)

    o = sub.add_parser("open", help="model owner: open a sealed score (or a hidden-mode partial result); print the quote")
    o.add_argument("--proxy", required=True)
    o.add_argument("--sealed", required=True)
    o.add_argument("--pricing", default="binary:price=100,threshold=0",
                   help="e.g. binary:price=100,threshold=0 | uniform:unit_price=1 | linear:rate=1000,floor=0,cap=500")
    o.add_argument("--report-out", default="report.json")
    o.add_argument("--allow-repeat", action="store_true", help="accept a second evaluation of the same artifact")
    o.set_defaults(func=_cmd_open)

    pr = sub.add_parser("price", help="model owner: price an opened report (again) with any pricing function")
    pr.add_argument("--report", required=True)
    pr.add_argument("--pricing", required=True)
    pr.set_defaults(func=_cmd_price)

    v = sub.add_parser("verify", help="model owner: check delivered data against the opened report")
    v.add_argument("--proxy", required=True)
    v.add_argument("--data", required=True)
    v.add_argument("--report", required=True)
    v.add_argument("--label-column", default=None)
    v.set_defaults(func=_cmd_verify)

    e = sub.add_parser("encrypt", help="data owner (hidden mode): encrypt local data under your own key")
    e.add_argument("--artifact", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--out", default="request.mdereq")
    e.add_argument("--key", default="key.mdekey", help="your secret key file (keep it; needed to decrypt)")
    e.add_argument("--label-column", default=None)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_encrypt)

    ev = sub.add_parser("evaluate", help="model owner (hidden mode): evaluate the proxy on encrypted records")
    ev.add_argument("--proxy", required=True)
    ev.add_argument("--request", required=True)
    ev.add_argument("--out", default="result.mderes")
    ev.add_argument("--allow-repeat", action="store_true", help="accept a second evaluation of the same artifact")
    ev.set_defaults(func=_cmd_evaluate)

    dc = sub.add_parser("decrypt", help="data owner (hidden mode): decrypt the masked sum, add flooding noise")
    dc.add_argument("--artifact", required=True)
    dc.add_argument("--key", required=True)
    dc.add_argument("--result", required=True)
    dc.add_argument("--out", default="partial.mdepart")
    dc.set_defaults(func=_cmd_decrypt)

    d = sub.add_parser("demo", help="run the whole two-party flow on built-in data (scikit-learn digits)")
    d.add_argument("--kind", default="influence")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--mode", default="sealed-value", choices=["sealed-value", "hidden"])
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mde`` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MDEError as exc:
        print(f"mde {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unreadable or unwritable files: say which, no traceback
        print(f"mde {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
