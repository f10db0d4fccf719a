"""Seeded mutation fuzz of every loader: damaged or crafted bytes raise an MDEError (or load,
if the mutation kept the file valid), never another exception."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

import mde
from mde.data_io import read_dataset
from mde.wire.artifact import read_artifact
from mde.wire.envelope import Envelope
from mde.wire.messages import DataOwnerKey, EncryptedRecords, MaskedResult, PartialResult
from mde.wire.sealed_score import SealedScore
from mde.wire.signing import SigningKey

FORGER = SigningKey.generate()  # whoever crafts a message signs it with its own key

# per loader and mutation family (3,500 cases in all); MDE_FUZZ_CASES=1000 runs 14,000
CASES = int(os.environ.get("MDE_FUZZ_CASES", "250"))


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random byte-level mutation: flip, truncate, insert, overwrite a run, or splice."""
    b = bytearray(data)
    op = rng.integers(5)
    i = int(rng.integers(len(b))) if b else 0
    if op == 0 and b:
        b[i] ^= 1 << int(rng.integers(8))
    elif op == 1:
        del b[i:]
    elif op == 2:
        b[i:i] = rng.bytes(int(rng.integers(1, 16)))
    elif op == 3 and b:
        b[i : i + 8] = rng.bytes(8)
    else:
        j = int(rng.integers(len(b) + 1))
        b = b[:i] + b[j:] + b[i:j]
    return bytes(b)


def _json_values(rng: np.random.Generator) -> object:
    choices: list[object] = [
        None,
        True,
        -1,
        0,
        2**63,
        1e308,
        "x",
        "",
        [],
        {},
        [1, "a"],
        {"a": 1},
        "f" * 64,
        3.5,
    ]
    return choices[int(rng.integers(len(choices)))]


def mutate_header(env: Envelope, rng: np.random.Generator) -> bytes:
    """A valid envelope whose header has one field replaced, dropped or added."""
    header = dict(env.header)
    op = rng.integers(3)
    keys = sorted(header)
    if op == 0 and keys:
        header[keys[int(rng.integers(len(keys)))]] = _json_values(rng)
    elif op == 1 and keys:
        header.pop(keys[int(rng.integers(len(keys)))])
    else:
        header["extra"] = _json_values(rng)
    members = dict(env.members)
    if members and rng.random() < 0.3:
        name = sorted(members)[int(rng.integers(len(members)))]
        members[name] = mutate(members[name], rng)
    return Envelope(env.format, header, members).signed(FORGER).to_bytes()


def _run(loader: Callable[[bytes], object], samples: Iterable[bytes]) -> int:
    refused = 0
    for data in samples:
        try:
            loader(data)
        except mde.MDEError:
            refused += 1
    return refused


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits, model):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("fuzz")
    owner = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=4, random_state=0
    )
    owner.export(tmp / "a.mde")
    sealed = mde.load_artifact(tmp / "a.mde").score(digits.Xc[:20], digits.yc[:20])
    owner.save(tmp / "p.mdeproxy")
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
    poly.export(tmp / "h.mde", mode="hidden")
    client = mde.load_artifact(tmp / "h.mde")
    request = client.prepare(digits.Xc[:5], digits.yc[:5])
    client.save_key(tmp / "k.key")
    result = poly.evaluate_hidden(request)
    return {
        "owner": owner,
        "poly": poly,
        "tmp": tmp,
        "artifact": (tmp / "a.mde").read_bytes(),
        "hidden": (tmp / "h.mde").read_bytes(),
        "sealed": sealed.to_bytes(),
        "request": request.to_bytes(),
        "result": result.to_bytes(),
        "proxy": (tmp / "p.mdeproxy").read_bytes(),
        "key": (tmp / "k.key").read_bytes(),
    }


def _loaders(files: dict, tmp: Path) -> dict[str, tuple[bytes, Callable[[bytes], object]]]:  # type: ignore[type-arg]
    def proxy_file(data: bytes) -> object:
        (tmp / "m.mdeproxy").write_bytes(data)
        return mde.load_proxy(tmp / "m.mdeproxy")

    def key_file(data: bytes) -> object:
        (tmp / "m.key").write_bytes(data)
        client = mde.load_artifact(files["hidden"])
        assert isinstance(client, mde.HiddenClient)
        client.load_key(tmp / "m.key")
        return client

    return {
        "artifact": (files["artifact"], mde.load_artifact),
        "hidden artifact": (files["hidden"], mde.load_artifact),
        "sealed score": (files["sealed"], SealedScore.from_bytes),
        "encrypted records": (files["request"], EncryptedRecords.from_bytes),
        "masked result": (files["result"], MaskedResult.from_bytes),
        "partial result": (files["result"], PartialResult.from_bytes),
        "proxy file": (files["proxy"], proxy_file),
        "key file": (files["key"], key_file),
        "data owner key": (files["key"], DataOwnerKey.from_bytes),
        "any artifact": (files["artifact"], read_artifact),
    }


@pytest.mark.parametrize("family", ["bytes", "header"])
def test_every_loader_raises_only_mde_errors(files, family: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2026)
    for name, (good, loader) in _loaders(files, files["tmp"]).items():
        if family == "bytes":
            n = CASES
            samples = (mutate(good, rng) for _ in range(n))  # lazily: a request is MBs
        else:
            env = Envelope.from_bytes(good, _format(good), mde.MDEError)
            n = CASES // 5
            samples = (mutate_header(env, rng) for _ in range(n))
        refused = _run(loader, samples)
        assert refused >= n * 0.5, name  # mutations that keep a file valid are rare


def _format(data: bytes) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return str(json.loads(zf.read("envelope.json"))["format"])


def test_damaged_data_files_raise_input_errors(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    np.savez(tmp_path / "d.npz", X=digits.Xc[:10], y=digits.yc[:10])
    good_npz = (tmp_path / "d.npz").read_bytes()
    rows = ["f0,f1,label"] + [f"{a},{b},{c}" for a, b, c in zip(range(10), range(10), range(10))]
    good_csv = "\n".join(rows).encode()
    for suffix, good in ((".npz", good_npz), (".csv", good_csv)):
        path = tmp_path / f"m{suffix}"
        for _ in range(CASES):
            path.write_bytes(mutate(good, rng))
            try:
                read_dataset(str(path), "label")
            except mde.MDEError:
                pass
