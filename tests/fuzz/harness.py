"""The fuzz harness: the case budget, a tally of outcomes, and the corpus (one real deal in
each mode, so every file format MDE writes).

The model owner and the data owner each have their own ``MDE_HOME`` (identity, ledger), as on
two machines, so the command-line fuzz can run each role's commands in its own home.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import mde
from mde.wire.signing import SigningKey
from pricing import parse_pricing

# the base number of cases per loader and mutation family (each family scales it by its
# weight): 25 is the CI-sized run (a few thousand cases in all); MDE_FUZZ_CASES=400 runs the
# >= 10,000-case check (see benchmarks/results/fuzz.txt)
CASES = int(os.environ.get("MDE_FUZZ_CASES", "25"))
PRICING = "uniform:unit_price=1"


def fixed_key(n: int) -> SigningKey:
    """An Ed25519 identity from a fixed seed, so that what it signs is the same every run."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return SigningKey(Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32))


# whoever crafts a file signs it with its own key; the two owners have fixed identities too
FORGER = fixed_key(1)


def format_of(data: bytes) -> str:
    """The format an (intact) envelope declares."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return str(json.loads(zf.read("envelope.json"))["format"])


def cases(weight: float = 1.0, least: int = 2) -> int:
    """The number of cases of a family: ``weight`` times the base, at least ``least``."""
    return max(least, round(CASES * weight))


@contextlib.contextmanager
def home(path: Path) -> Iterator[None]:
    """Run as the owner whose ``MDE_HOME`` is ``path``."""
    old = os.environ.get("MDE_HOME")
    os.environ["MDE_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MDE_HOME", None)
        else:
            os.environ["MDE_HOME"] = old


@dataclass
class Outcome:
    cases: int = 0
    refused: int = 0
    loaded: int = 0
    other: int = 0


@dataclass
class Tally:
    """Per loader: cases run, refused with an MDEError, loaded, and any other exception."""

    rows: dict[str, Outcome] = field(default_factory=lambda: defaultdict(Outcome))
    failures: list[str] = field(default_factory=list)

    def run(
        self, name: str, loader: Callable[[bytes], object], samples: Iterable[bytes]
    ) -> Outcome:
        """Feed every sample to ``loader``; return this batch's outcome (also added to the
        tally). Exceptions other than MDEError are recorded, never raised."""
        batch = Outcome()
        for data in samples:
            batch.cases += 1
            try:
                loader(data)
            except mde.MDEError:
                batch.refused += 1
            except Exception as exc:  # noqa: BLE001 - the point: any other exception is a bug
                batch.other += 1
                where = traceback.extract_tb(exc.__traceback__)[-1]
                self.failures.append(
                    f"{name}: {type(exc).__name__}: {str(exc)[:200]} "
                    f"({Path(where.filename).name}:{where.lineno})"
                )
            else:
                batch.loaded += 1
        row = self.rows[name]
        row.cases += batch.cases
        row.refused += batch.refused
        row.loaded += batch.loaded
        row.other += batch.other
        return batch

    def table(self, grouped: bool = True) -> str:
        """Outcomes per loader (``grouped``: summed over mutation families; the command
        line per command), then each kind of failure once with its count."""
        rows: dict[str, Outcome] = defaultdict(Outcome)
        for name, r in self.rows.items():
            key = name
            if grouped:
                key = re.sub(r" \[.*\]$| \((bytes|envelope)\)$", "", name)
                key = " ".join(key.split()[:3]) if key.startswith("CLI mde") else key
            for f in Outcome.__annotations__:
                setattr(rows[key], f, getattr(rows[key], f) + getattr(r, f))
                setattr(rows["total"], f, getattr(rows["total"], f) + getattr(r, f))
        width = max(len(k) for k in rows) + 1
        lines = [f"{'loader':{width}s} {'cases':>7s} {'MDEError':>9s} {'loaded':>7s} {'other':>6s}"]
        for name in sorted(rows, key=lambda k: (k == "total", k)):
            r = rows[name]
            lines.append(f"{name:{width}s} {r.cases:7d} {r.refused:9d} {r.loaded:7d} {r.other:6d}")
        signatures: dict[str, int] = defaultdict(int)
        for failure in self.failures:
            signatures[
                re.sub(r"0x[0-9a-f]+|position \d+|[0-9a-f]{16,}|/\S+/", "_", failure)[:240]
            ] += 1
        return "\n".join(lines + [f"{n:6d} x {sig}" for sig, n in sorted(signatures.items())])


TALLY = Tally()


@dataclass
class Corpus:
    """Every file of one sealed-value deal and one hidden-mode round, with the objects that
    read them, under two homes (``mo`` the model owner's, ``do`` the data owner's)."""

    root: Path
    mo: Path
    do: Path
    mo_key: SigningKey
    do_key: SigningKey
    X: np.ndarray
    y: np.ndarray
    files: dict[str, bytes]
    paths: dict[str, Path]
    objects: dict[str, Any]


def build_corpus(root: Path, digits: Any, model: Any) -> Corpus:
    """Make every file of the corpus under ``root``."""
    mo, do = root / "model-owner", root / "data-owner"
    X, y = digits.Xc[:12], digits.yc[:12]
    p: dict[str, Path] = {
        name: root / name
        for name in (
            "artifact.mde",
            "hidden.mde",
            "proxy.mdeproxy",
            "poly.mdeproxy",
            "score.mdeseal",
            "request.mdereq",
            "result.mderes",
            "partial.mdepart",
            "key.mdekey",
            "quote.mdequote",
            "delivery.mdedel",
            "subset.mdedel",
            "settlement.mdesettle",
            "report.json",
            "offer.csv",
            "offer.npz",
            "offer.npy",
        )
    }
    pricing = parse_pricing(PRICING)
    fixed_key(2).save(mo / "identity.pem")
    fixed_key(3).save(do / "identity.pem")
    with home(mo):
        owner = mde.build_proxy(
            model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=4, random_state=0
        )
        owner.export(p["artifact.mde"])
        poly = mde.build_proxy(
            model,
            digits.Xtr,
            digits.ytr,
            digits.Xte,
            digits.yte,
            kind="influence-poly",
            n_components=4,
            random_state=0,
        )
        poly.export(p["hidden.mde"], mode="hidden")
    with home(do):
        scorer = mde.load_artifact(p["artifact.mde"], buyer="buyer")
        sealed = scorer.score(X, y, per_record=True)
        sealed_bytes = sealed.to_bytes()
        p["score.mdeseal"].write_bytes(sealed_bytes)
        client = mde.load_artifact(p["hidden.mde"])
        request = client.prepare(X[:5], y[:5])
        p["request.mdereq"].write_bytes(request.to_bytes())
        client.save_key(p["key.mdekey"])
    with home(mo):
        report = owner.open(sealed_bytes)
        p["report.json"].write_text(report.model_dump_json(indent=2))
        owner.quote(report, pricing, spec=PRICING).write(p["quote.mdequote"])
        owner.save(p["proxy.mdeproxy"])
        result = poly.evaluate_hidden(request)
        p["result.mderes"].write_bytes(result.to_bytes())
        poly.save(p["poly.mdeproxy"])

    def snapshot(ledger: Path, name: str) -> None:
        """Keep a ledger as it is now: a later step changes it (one decryption per request,
        one settlement per offer), and the fuzz of that step needs it before."""
        p[name] = root / name
        shutil.copy(ledger, p[name])

    snapshot(do / "data-owner-ledger.sqlite", "do-before-decrypt.sqlite")
    with home(do):
        scorer.deliver(p["quote.mdequote"].read_bytes(), X, y).write(p["delivery.mdedel"])
        subset = scorer.deliver(p["quote.mdequote"].read_bytes(), X, y, indices=[1, 4, 7])
        subset.write(p["subset.mdedel"])
        partial = client.decrypt(result)
        p["partial.mdepart"].write_bytes(partial.to_bytes())
    snapshot(mo / "owner-ledger.sqlite", "mo-before-settle.sqlite")  # the partial is pending
    snapshot(do / "data-owner-ledger.sqlite", "do-before-accept.sqlite")
    with home(mo):
        owner.settle(p["delivery.mdedel"].read_bytes(), pricing, spec=PRICING).write(
            p["settlement.mdesettle"]
        )
        assert poly.open(partial).n_records == 5
    with home(do):
        scorer.accept_settlement(p["settlement.mdesettle"].read_bytes())
    header = ",".join([f"f{i}" for i in range(X.shape[1])] + ["label"])
    rows = "\n".join(",".join(f"{v:g}" for v in row) for row in np.column_stack([X, y]))
    p["offer.csv"].write_text(header + "\n" + rows + "\n")
    np.savez(p["offer.npz"], X=X, y=y)
    np.save(p["offer.npy"], X)
    p["identity.pem"] = mo / "identity.pem"
    p["owner-ledger.sqlite"] = mo / "owner-ledger.sqlite"
    p["data-owner-ledger.sqlite"] = do / "data-owner-ledger.sqlite"
    files = {name: path.read_bytes() for name, path in p.items()}
    return Corpus(
        root=root,
        mo=mo,
        do=do,
        mo_key=SigningKey.load(mo / "identity.pem"),
        do_key=SigningKey.load(do / "identity.pem"),
        X=X,
        y=y,
        files=files,
        paths=p,
        objects={"report": report, "pricing": pricing},
    )
