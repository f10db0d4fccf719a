"""Seeded fuzz of the files each owner keeps or reads locally: the identity PEM, the report
JSON, data files (.csv, .npz, .npy) and the two SQLite ledgers. Damaged or foreign files
raise an MDEError (StorageError for a ledger or identity, InputError for data and reports),
never ``sqlite3.DatabaseError``, ``UnsupportedAlgorithm`` or another exception."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import mde
from mde.data_io import read_dataset
from mde.data_owner.ledger import DataOwnerLedger
from mde.owner.ledger import Ledger
from mde.report import EfficacyReport
from mde.wire.signing import SigningKey
from pricing import parse_pricing
from tests.fuzz.harness import PRICING, Corpus, Tally, cases
from tests.fuzz.mutations import garbage, mutate, mutate_json, mutate_npy

PRICINGS = [
    parse_pricing(s)
    for s in ("binary:price=100,threshold=0", "uniform:unit_price=1", "linear:rate=10,cap=50")
]


def _der(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return base64.b64decode(body)


def _pem(der: bytes, label: bytes = b"PRIVATE KEY") -> bytes:
    return b"-----BEGIN %s-----\n%s-----END %s-----\n" % (label, base64.encodebytes(der), label)


def _foreign_keys() -> list[bytes]:
    """Valid PEM files that are not an Ed25519 private key without a password."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

    pkcs8, raw = s.PrivateFormat.PKCS8, s.PublicFormat.SubjectPublicKeyInfo
    keys = [
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
        ec.generate_private_key(ec.SECP256R1()),
        ed448.Ed448PrivateKey.generate(),
        x25519.X25519PrivateKey.generate(),
    ]
    out = [k.private_bytes(s.Encoding.PEM, pkcs8, s.NoEncryption()) for k in keys]
    ed = ed25519.Ed25519PrivateKey.generate()
    out.append(ed.private_bytes(s.Encoding.PEM, pkcs8, s.BestAvailableEncryption(b"pw")))
    out.append(ed.public_key().public_bytes(s.Encoding.PEM, raw))
    out.append(ed.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption()))
    return out


def test_identity_file(corpus: Corpus, tally: Tally, tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    good = corpus.files["identity.pem"]
    path = tmp_path / "identity.pem"

    def load(data: bytes) -> object:
        path.write_bytes(data)
        return SigningKey.load(path)

    def load_or_create(data: bytes) -> object:
        path.write_bytes(data)
        return SigningKey.load_or_create(path)

    der = _der(good)
    n = cases(1.0)
    before = len(tally.failures)
    damaged = [mutate(good, rng) for _ in range(n)] + [_pem(mutate(der, rng)) for _ in range(n)]
    foreign = _foreign_keys() + [garbage(rng) for _ in range(cases(0.25))]
    foreign += [_pem(der, b"RSA PRIVATE KEY"), _pem(der, b"CERTIFICATE"), _pem(b"")]
    for name, loader in (("SigningKey.load", load), ("SigningKey.load_or_create", load_or_create)):
        out = tally.run(f"identity PEM: {name} [bytes, DER]", loader, damaged)
        assert out.refused >= len(damaged) * 0.8
        assert tally.run(f"identity PEM: {name} [foreign]", loader, foreign).loaded == 0
    assert load(good).public_hex == corpus.mo_key.public_hex  # type: ignore[attr-defined]
    path.unlink()
    path.mkdir()
    with pytest.raises(mde.StorageError):
        SigningKey.load(path)  # a folder where the file should be
    assert tally.failures[before:] == []


def test_report_json(corpus: Corpus, tally: Tally) -> None:
    rng = np.random.default_rng(22)
    good = corpus.files["report.json"]
    doc = json.loads(good)

    def load_and_price(data: bytes) -> object:
        report = EfficacyReport.from_json(data)
        for pricing in PRICINGS:
            price = pricing.quote(report).price
            assert np.isfinite(price) and price >= 0, (pricing, report)
        return report

    n = cases(1.0)
    before = len(tally.failures)
    samples = [mutate(good, rng) for _ in range(n)]
    samples += [json.dumps(mutate_json(doc, rng)).encode() for _ in range(2 * n)]
    samples += [garbage(rng) for _ in range(cases(0.25))]
    samples += [v for k, v in sorted(corpus.files.items()) if k != "report.json"]
    out = tally.run("report JSON: from_json + price", load_and_price, samples)
    assert out.refused >= len(samples) * 0.5
    assert EfficacyReport.from_json(good) == corpus.objects["report"]
    assert tally.failures[before:] == []


def _npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _zip_of(**members: bytes) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(f"{name}.npy", data)
    return buf.getvalue()


def test_data_files(corpus: Corpus, tally: Tally, tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    X, y = corpus.X, corpus.y
    crafted = {
        ".npz": [
            _npz(X=X),
            _npz(X=X.astype(object), y=y),
            _npz(X=np.array("text"), y=y),
            _npz(X=X[:, :, None], y=y),
            _npz(X=X, y=np.array([[1 + 2j]])),
            _npz(x=X, Y=y),
            _zip_of(X=mutate_npy(b"", np.random.default_rng(1)), y=b""),  # 1 TiB announced
            *[_zip_of(X=mutate_npy(b"", np.random.default_rng(i)), y=b"") for i in range(8)],
        ],
        ".csv": [
            b"",
            b"label\n",
            b"a,label\n1e999,1\n-inf,2\n",
            b"a,b,label\n1,2\n",
            b"a,label\nnan,\xff\n",
            b"\xef\xbb\xbfa,label\n1,2\n",
            b'a,label\n"1\n',
            ("a,label\n" + "1," * 10000 + "x\n").encode(),
            ("é,漢\n1,\u202e2\n").encode(),
        ],
    }
    before = len(tally.failures)
    for suffix in (".npz", ".csv", ".npy"):
        good = corpus.files[f"offer{suffix}"]
        path = tmp_path / f"m{suffix}"

        def load(data: bytes, path: Path = path) -> object:
            path.write_bytes(data)
            return read_dataset(path, None)

        samples = [mutate(good, rng) for _ in range(cases(1.0))] + crafted.get(suffix, [])
        samples += [garbage(rng) for _ in range(cases(0.1))]
        tally.run(f"data file {suffix}: read_dataset", load, samples)
    assert tally.failures[before:] == []
    Xr, yr = read_dataset(corpus.paths["offer.npz"])
    assert np.array_equal(Xr, X) and np.array_equal(yr, y)


def _attempts(*steps: Callable[[], object]) -> object:
    """Run every step (a refused one does not stop the next); raise an MDEError at the end
    if any was refused."""
    refused = None
    for step in steps:
        try:
            step()
        except mde.MDEError as exc:
            refused = exc
    if refused is not None:
        raise refused
    return True


def _data_owner_ledger_use(c: Corpus, path: Path) -> object:
    """Every data-owner step that reads or writes its ledger, on the ledger at ``path``."""
    f = c.files

    def scorer() -> object:
        s = mde.load_artifact(f["artifact.mde"], identity=c.do_key, ledger=path, buyer="buyer")
        return _attempts(
            lambda: s.score(c.X, c.y),
            lambda: s.deliver(f["quote.mdequote"], c.X, c.y),
            lambda: s.accept_settlement(f["settlement.mdesettle"]),
        )

    def client() -> object:
        h = mde.load_artifact(f["hidden.mde"], identity=c.do_key, ledger=path)
        h.load_key(c.paths["key.mdekey"])
        return h.decrypt(f["result.mderes"])

    book = lambda: DataOwnerLedger(path)  # noqa: E731 - the listings the CLI prints
    return _attempts(scorer, client, lambda: book().answers(), lambda: book().settlements())


def _owner_ledger_use(c: Corpus, path: Path, proxy: Path) -> object:
    """Every model-owner step that reads or writes its ledger, on the ledger at ``path``."""
    f = c.files

    def owner() -> object:
        o = mde.load_proxy(proxy, ledger=path, identity=c.mo_key)
        return _attempts(
            lambda: o.open(f["score.mdeseal"], allow_repeat=True),
            lambda: o.open(f["score.mdeseal"]),
            lambda: o.settle(f["subset.mdedel"], c.objects["pricing"], spec=PRICING),
            lambda: o.quote(c.objects["report"], c.objects["pricing"]),
        )

    def poly() -> object:
        o = mde.load_proxy(c.paths["poly.mdeproxy"], ledger=path, identity=c.mo_key)
        return o.open(f["partial.mdepart"])

    artifact = c.objects["report"].artifact_id
    return _attempts(owner, poly, lambda: Ledger(path).evaluations(artifact))


@pytest.mark.parametrize("name", ["data-owner-ledger", "owner-ledger"])
def test_damaged_ledgers_raise_storage_errors(  # type: ignore[no-untyped-def]
    corpus: Corpus, tally: Tally, tmp_path: Path, name: str
):
    rng = np.random.default_rng([24, len(name)])
    before_step = (
        "do-before-accept.sqlite" if name == "data-owner-ledger" else "mo-before-settle.sqlite"
    )
    good = corpus.files[before_step]
    path = tmp_path / f"{name}.sqlite"
    proxy = tmp_path / "proxy.mdeproxy"

    def load(data: bytes) -> object:
        for extra in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        path.write_bytes(data)
        if name == "data-owner-ledger":
            return _data_owner_ledger_use(corpus, path)
        proxy.write_bytes(corpus.files["proxy.mdeproxy"])
        return _owner_ledger_use(corpus, path, proxy)

    # a flipped bit in the header or a table page, a page overwritten or cut; and garbage
    samples = [mutate(good, rng) for _ in range(cases(0.5))]
    samples += [garbage(rng) for _ in range(cases(0.1))]
    before = len(tally.failures)
    out = tally.run(f"ledger {name}: every step that uses it", load, samples)
    assert tally.failures[before:] == []
    assert out.refused >= len(samples) * 0.1
    with pytest.raises(mde.StorageError):
        load(b"not a database" * 100)
