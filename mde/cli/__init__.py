"""The ``mde`` command line: build, inspect, score, open, price, deliver, settle, accept,
demo; and the hidden-mode steps encrypt (data owner), evaluate (model owner), decrypt (data
owner)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mde.cli import commands
from mde.errors import MDEError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mde", description="Price training data against a model before either side reveals it."
    )
    from mde.version import __version__

    p.add_argument("--version", action="version", version=f"mde {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser(
        "build",
        help="model owner: build a proxy, export the public artifact, save the private proxy",
    )
    b.add_argument(
        "--model",
        required=True,
        help="model file: .onnx, or a scikit-learn .joblib/.pkl on your own machine",
    )
    b.add_argument("--train", required=True, help="training set (.npz with X, y; or .csv)")
    b.add_argument("--test", required=True, help="test set (.npz or .csv)")
    b.add_argument("--kind", default="influence")
    b.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="proxy option, repeatable",
    )
    b.add_argument(
        "--artifact-out", default="artifact.mde", help="public artifact to hand to data owners"
    )
    b.add_argument("--proxy-out", default="proxy.mdeproxy", help="private proxy file (w inside)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--label-column", default=None)
    b.add_argument(
        "--mode",
        default="sealed-value",
        choices=["sealed-value", "hidden"],
        help="hidden: export shapes only; data owners send encrypted records (kind influence-poly)",
    )
    b.set_defaults(func=commands.cmd_build)

    i = sub.add_parser(
        "inspect", help="data owner: show an artifact's manifest (all it reveals besides psi)"
    )
    i.add_argument("--artifact", required=True)
    _guard_options(i)
    i.set_defaults(func=commands.cmd_inspect)

    s = sub.add_parser(
        "score", help="data owner: score local data against an artifact; write a sealed score"
    )
    s.add_argument("--artifact", required=True)
    s.add_argument(
        "--data",
        required=True,
        help="the offer: .npz (X, y), .csv, .npy features (with --labels), or a Parquet file "
        "or directory (streamed in batches)",
    )
    s.add_argument("--labels", default=None, help="a .npy label file for a .npy --data")
    s.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="local: this process (default); dask: a Parquet offer on a Dask cluster",
    )
    s.add_argument(
        "--scheduler",
        default=None,
        help="the Dask scheduler address (default: start a local cluster on 127.0.0.1)",
    )
    s.add_argument("--workers", type=int, default=2, help="local Dask cluster workers (2)")
    s.add_argument("--batch-size", type=int, default=4096, help="records per batch (4096)")
    s.add_argument(
        "--per-record",
        action="store_true",
        help="seal each record's score (needed for uniform pricing)",
    )
    s.add_argument("--out", default="score.mdeseal")
    s.add_argument("--label-column", default=None)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _guard_options(s)
    s.set_defaults(func=commands.cmd_score)

    o = sub.add_parser(
        "open",
        help="model owner: open a sealed score (or a hidden-mode partial result); print the quote",
    )
    o.add_argument("--proxy", required=True)
    o.add_argument("--sealed", required=True)
    o.add_argument(
        "--pricing",
        default="binary:price=100,threshold=0",
        help="e.g. binary:price=100,threshold=0 | uniform:unit_price=1 | "
        "linear:rate=1000,floor=0,cap=500",
    )
    o.add_argument("--report-out", default="report.json")
    o.add_argument(
        "--quote-out",
        default=None,
        help="the signed provisional quote for the data owner (default: quote.mdequote beside "
        "the report)",
    )
    o.add_argument(
        "--allow-repeat",
        action="store_true",
        help="accept a second evaluation of the same artifact",
    )
    o.set_defaults(func=commands.cmd_open)

    pr = sub.add_parser(
        "price", help="model owner: price an opened report (again) with any pricing function"
    )
    pr.add_argument("--report", required=True)
    pr.add_argument("--pricing", required=True)
    pr.set_defaults(func=commands.cmd_price)

    dl = sub.add_parser(
        "deliver",
        help="data owner: deliver the scored records against a quote (all, or --indices)",
    )
    dl.add_argument("--artifact", required=True)
    dl.add_argument("--quote", required=True)
    dl.add_argument("--data", required=True)
    dl.add_argument(
        "--indices", default=None, help="comma-separated positions of the bought records"
    )
    dl.add_argument("--out", default="delivery.mdedel")
    dl.add_argument("--label-column", default=None)
    dl.set_defaults(func=commands.cmd_deliver)

    st = sub.add_parser(
        "settle",
        help="model owner: verify a delivery (commitment, screens, scores) and settle its price",
    )
    st.add_argument("--proxy", required=True)
    st.add_argument("--delivery", required=True)
    st.add_argument(
        "--pricing", default=None, help="default: the pricing function the quote was made with"
    )
    st.add_argument("--out", default="settlement.mdesettle")
    st.set_defaults(func=commands.cmd_settle)

    ac = sub.add_parser("accept", help="data owner: check and record the buyer's settlement")
    ac.add_argument("--artifact", required=True)
    ac.add_argument("--settlement", required=True)
    ac.set_defaults(func=commands.cmd_accept)

    pn = sub.add_parser(
        "pin", help="data owner: pin a buyer's public key under a name (given out of band)"
    )
    pn.add_argument("--name", required=True)
    pn.add_argument("--key", required=True, help="the buyer's Ed25519 public key (64 hex)")
    pn.set_defaults(func=commands.cmd_pin)

    idn = sub.add_parser("identity", help="print your public key (to give the other owner)")
    idn.set_defaults(func=commands.cmd_identity)

    e = sub.add_parser(
        "encrypt", help="data owner (hidden mode): encrypt local data under your own key"
    )
    e.add_argument("--artifact", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--out", default="request.mdereq")
    e.add_argument(
        "--key", default="key.mdekey", help="your secret key file (keep it; needed to decrypt)"
    )
    e.add_argument("--label-column", default=None)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    _guard_options(e)
    e.set_defaults(func=commands.cmd_encrypt)

    ev = sub.add_parser(
        "evaluate", help="model owner (hidden mode): evaluate the proxy on encrypted records"
    )
    ev.add_argument("--proxy", required=True)
    ev.add_argument("--request", required=True)
    ev.add_argument("--out", default="result.mderes")
    ev.add_argument(
        "--allow-repeat",
        action="store_true",
        help="accept a second evaluation of the same artifact",
    )
    ev.set_defaults(func=commands.cmd_evaluate)

    dc = sub.add_parser(
        "decrypt", help="data owner (hidden mode): decrypt the masked sum, add flooding noise"
    )
    dc.add_argument("--artifact", required=True)
    dc.add_argument("--key", required=True)
    dc.add_argument("--result", required=True)
    dc.add_argument("--out", default="partial.mdepart")
    _guard_options(dc)
    dc.set_defaults(func=commands.cmd_decrypt)

    d = sub.add_parser(
        "demo", help="run the whole two-party flow on built-in data (scikit-learn digits)"
    )
    d.add_argument("--kind", default="influence")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--mode", default="sealed-value", choices=["sealed-value", "hidden"])
    d.set_defaults(func=commands.cmd_demo)
    return p


def _guard_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--buyer", default=None, help="name the buyer: pins its key on first use, refuses others"
    )
    p.add_argument(
        "--max-artifacts", type=int, default=8, help="artifacts answered per buyer (default 8)"
    )
    p.add_argument(
        "--max-numbers",
        type=int,
        default=None,
        help="numbers released per buyer per data set (default: records + 16)",
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=16,
        help="hidden-mode results decrypted per buyer per data set (default 16)",
    )
    p.add_argument(
        "--max-buyers",
        type=int,
        default=4,
        help="distinct buyer keys answered about one data set (default 4)",
    )
    p.add_argument(
        "--require-pinned",
        action="store_true",
        help="answer only buyers pinned before (fresh keys cannot reset budgets)",
    )
    p.add_argument(
        "--dp-epsilon",
        type=float,
        default=None,
        help="answer with differential privacy, this epsilon per answer (needs mde[dp])",
    )


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
