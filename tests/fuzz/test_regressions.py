"""The smallest inputs behind each loader bug the fuzz found (issue 14, item 6), each of which
used to raise something other than an MDEError."""

from __future__ import annotations

import base64
import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mde
from mde.data_io import read_dataset
from mde.report import EfficacyReport
from mde.wire.artifact import read_artifact
from mde.wire.deal import Settlement, SignedQuote
from mde.wire.envelope import Envelope
from mde.wire.signing import SigningKey
from tests.fuzz.harness import FORGER, Corpus


def test_a_deeply_nested_header_is_refused_not_a_recursion_error() -> None:
    # at ~985 levels (the exact depth depends on the caller's stack) json read the header
    # and re-encoding it to check the signature raised RecursionError; any depth past 64 is
    # now refused before anything re-encodes it
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    data = Envelope("mde-quote", {"quote_id": deep}, {}).signed(FORGER).to_bytes()
    with pytest.raises(mde.ProtocolError, match="nests deeper than 64"):
        SignedQuote.from_bytes(data)


def test_compressed_members_are_refused_unread(corpus: Corpus) -> None:
    with zipfile.ZipFile(io.BytesIO(corpus.files["quote.mdequote"])) as zf:
        files = [(i.filename, zf.read(i)) for i in zf.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            zf.writestr(name, data)
        zf.writestr("bomb", b"\0" * 2**20)  # a real bomb inflates to GBs
    with pytest.raises(mde.ProtocolError, match="compressed members"):
        SignedQuote.from_bytes(buf.getvalue())


def test_an_identity_of_an_unknown_algorithm_is_a_storage_error(
    corpus: Corpus, tmp_path: Path
) -> None:
    pem = corpus.files["identity.pem"]
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    assert der[7:12] == b"\x06\x03\x2b\x65\x70"  # OID 1.3.101.112 (Ed25519)
    path = tmp_path / "identity.pem"
    for oid in (b"\x2b\x65\x60", b"\x23\x65\x70"):  # UnsupportedAlgorithm from cryptography
        bad = der[:9] + oid + der[12:]
        path.write_bytes(
            b"-----BEGIN PRIVATE KEY-----\n"
            + base64.encodebytes(bad)
            + b"-----END PRIVATE KEY-----\n"
        )
        with pytest.raises(mde.StorageError, match="damaged or not a PEM private key"):
            SigningKey.load(path)


def test_artifact_classes_must_be_distinct_json_scalars(corpus: Corpus) -> None:
    env = Envelope.from_bytes(corpus.files["artifact.mde"], "mde-artifact", mde.MDEError)
    for classes in ([[0], [1]], [{"a": 1}, 2], [1, 1.0, 2], [0, None]):
        header = dict(env.header) | {"classes": classes}
        data = Envelope(env.format, header, dict(env.members)).signed(FORGER).to_bytes()
        # a list class made the data owner's label lookup raise TypeError (unhashable)
        with pytest.raises(mde.ArtifactError, match="classes"):
            read_artifact(data)


def test_a_data_file_announcing_a_huge_array_is_an_input_error(tmp_path: Path) -> None:
    head = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"
    head += b" " * (-(len(head) + 11) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", npy)
        zf.writestr("y.npy", npy)
    with pytest.raises(mde.InputError, match="too large|cannot be read"):
        read_dataset(path)  # was MemoryError: a traceback from `mde score --data`


@pytest.mark.parametrize("text", ["", "[]", '{"efficacy": NaN}', "\udcff", "[" * 10_000])
def test_a_damaged_report_is_an_input_error(corpus: Corpus, text: str) -> None:
    with pytest.raises(mde.InputError, match="not a valid MDE efficacy report"):
        EfficacyReport.from_json(text)
    good = corpus.objects["report"]
    assert EfficacyReport.from_json(good.model_dump_json()) == good


def test_non_finite_efficacies_are_refused_in_deal_messages(corpus: Corpus) -> None:
    for name, cls, field in (
        ("quote.mdequote", SignedQuote, "efficacy"),
        ("settlement.mdesettle", Settlement, "verified_efficacy"),
    ):
        env = Envelope.from_bytes(corpus.files[name], cls.format, mde.MDEError)
        for value in (math.nan, math.inf):
            crafted = Envelope(env.format, dict(env.header) | {field: value}, {})
            # it loaded, and then could not be encoded again (ValueError from canonical JSON)
            with pytest.raises(mde.ProtocolError, match=field):
                cls.from_envelope(crafted)


def test_the_fixes_keep_genuine_files_loading(corpus: Corpus) -> None:
    assert read_artifact(corpus.files["artifact.mde"]).manifest.classes == list(range(10))
    X, y = read_dataset(corpus.paths["offer.npz"])
    assert np.array_equal(X, corpus.X) and np.array_equal(y, corpus.y)
    assert SigningKey.load(corpus.paths["identity.pem"]).public_hex == corpus.mo_key.public_hex
