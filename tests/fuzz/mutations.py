"""Seeded mutations for the fuzz tests: bytes, JSON structure, envelope members, zip layout.

Every function takes a ``numpy.random.Generator`` so that a run is fixed by its seed.
"""

from __future__ import annotations

import base64
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from mde.wire.envelope import Envelope
from mde.wire.signing import SigningKey

# values of the wrong type, out of range, huge, negative, unicode or nested junk
JUNK: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    10**400,
    1e308,
    -1e308,
    5e-324,
    -0.0,
    0.5,
    "",
    "x",
    "0" * 64,
    "f" * 64,
    "F" * 64,
    "g" * 64,
    "é漢字\u0000",
    "\ud800",
    "\u202e" + "a" * 70,
    "x" * 5000,
    [],
    {},
    [1, "a", None],
    {"a": {"b": [1, None, {"c": "d"}]}},
    [[[[[[[[[[[]]]]]]]]]]],
    {"": 0},
    {"mode": "hidden"},
    {"mode": "sealed-value"},
]


def junk(rng: np.random.Generator) -> Any:
    return JUNK[int(rng.integers(len(JUNK)))]


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


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k in sorted(obj):
            out += _paths(obj[k], prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:64]):
            out += _paths(v, prefix + (i,))
    return out


def _tweak(value: Any, rng: np.random.Generator) -> Any:
    """A near miss of ``value``: off by one, negated, scaled, retyped, a changed character."""
    if isinstance(value, bool):
        return [not value, int(value), str(value).lower()][int(rng.integers(3))]
    if isinstance(value, int):
        return [value + 1, value - 1, -value, value * 2**40, 0, str(value), float(value)][
            int(rng.integers(7))
        ]
    if isinstance(value, float):
        return [value * 2, -value, value + 1e-9, 0.0, 1e308, int(value), str(value)][
            int(rng.integers(7))
        ]
    if isinstance(value, str):
        if not value:
            return "a"
        i = int(rng.integers(len(value)))
        c = chr(int(rng.choice([0x30, 0x41, 0x61, 0x7A, 0xE9, 0x4E2D, 0x1F600])))
        return [value[:i] + c + value[i + 1 :], value[:i], value + value, value.upper()][
            int(rng.integers(4))
        ]
    if isinstance(value, list):
        if value and rng.random() < 0.5:
            return value + [value[int(rng.integers(len(value)))]]
        return value[:-1] if value else [junk(rng)]
    if isinstance(value, dict):
        return list(value.values())
    return junk(rng)


def mutate_json(doc: Any, rng: np.random.Generator) -> Any:
    """``doc`` (a JSON value) with one node anywhere in it replaced, tweaked, dropped, or
    given a junk sibling."""
    doc = json.loads(json.dumps(doc))
    paths = _paths(doc)
    path = paths[int(rng.integers(len(paths)))]
    if not path:
        return junk(rng) if rng.random() < 0.3 else doc
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    op = rng.integers(4)
    if op == 0:
        parent[last] = junk(rng)
    elif op == 1:
        parent[last] = _tweak(parent[last], rng)
    elif op == 2:
        del parent[last]
    elif isinstance(parent, dict):
        parent[["extra", "", "__proto__", "format"][int(rng.integers(4))]] = junk(rng)
    else:
        parent.insert(int(last), junk(rng))
    return doc


def mutate_npy(data: bytes, rng: np.random.Generator) -> bytes:
    """A ``.npy`` member whose header announces another shape, dtype or order."""
    fields = [
        "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
        "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2, 2, 2), }",
        "{'descr': '<U99999999', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': [('a', '<i8')], 'fortran_order': False, 'shape': (1,), }",
        "{'descr': '<i8', 'fortran_order': 'no', 'shape': 'x', }",
        "__import__('os')",
    ]
    head = fields[int(rng.integers(len(fields)))].encode()
    head += b" " * (-(len(head) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + data[128:256]


def mutate_members(members: dict[str, bytes], rng: np.random.Generator) -> dict[str, bytes]:
    """Members with one changed, emptied, swapped, renamed, dropped or added."""
    out = dict(members)
    names = sorted(out)
    op = rng.integers(7) if names else 6
    name = names[int(rng.integers(len(names)))] if names else ""
    if op == 0:
        out[name] = mutate(out[name], rng)
    elif op == 1:
        out[name] = b""
    elif op == 2:
        out[name] = out[names[int(rng.integers(len(names)))]]
    elif op == 3:
        out[name + ["x", ".bak", "/"][int(rng.integers(3))]] = out.pop(name)
    elif op == 4:
        del out[name]
    elif op == 5 and name.endswith(".npy"):
        out[name] = mutate_npy(out[name], rng)
    else:
        out[["junk", "known.npz", "w_9.ckks", "ct_0000099.ckks"][int(rng.integers(4))]] = rng.bytes(
            int(rng.integers(0, 64))
        )
    return out


def mutate_inside(env: Envelope, rng: np.random.Generator, key: SigningKey) -> bytes:
    """A canonical envelope, re-signed with ``key``, whose header or members were changed:
    it passes the envelope checks and reaches the structured-field validation."""
    header: Any = dict(env.header)
    members = dict(env.members)
    fmt = env.format
    op = rng.random()
    if op < 0.55:
        header = mutate_json(header, rng)
    elif op < 0.9:
        members = mutate_members(members, rng)
    else:
        header, members = mutate_json(header, rng), mutate_members(members, rng)
    if not isinstance(header, dict):
        header = {"header": header}
    try:
        return Envelope(fmt, header, members).signed(key).to_bytes()
    except (ValueError, TypeError):  # a mutation the writer refuses to encode
        return Envelope(fmt, dict(env.header), dict(env.members)).signed(key).to_bytes()


def _zip(files: list[tuple[str, bytes]], compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, data, compress_type=compress)
    return buf.getvalue()


def mutate_layout(data: bytes, rng: np.random.Generator) -> bytes:
    """The same members in a non-canonical zip: reordered, duplicated, compressed, padded,
    with a header JSON that is deep, non-canonical, NaN, or not an object."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = [(i.filename, zf.read(i)) for i in zf.infolist()]
    op = int(rng.integers(9))
    if op == 0:
        files = files[::-1]
    elif op == 1:
        files = files + files[:1]
    elif op == 2:
        return _zip(files, zipfile.ZIP_DEFLATED)
    elif op == 3:
        return data + rng.bytes(int(rng.integers(1, 64)))
    elif op == 4:
        doc = json.loads(files[0][1])
        files[0] = (files[0][0], json.dumps(doc, indent=1).encode())
    elif op == 5:
        depth = int(rng.choice([100, 990, 5000, 100000]))
        files[0] = (files[0][0], b"[" * depth + b"]" * depth)
    elif op == 6:
        text = files[0][1].replace(b'"version":', b'"version":NaN,"v":', 1)
        files[0] = (files[0][0], text)
    elif op == 7:
        files[0] = (
            files[0][0],
            [b"null", b"[]", b'"x"', b"1e999", b"\xff\xfe"][int(rng.integers(5))],
        )
    else:
        files = [(n + "/" if i else n, d) for i, (n, d) in enumerate(files)]
    return _zip(files)


def garbage(rng: np.random.Generator) -> bytes:
    """Files that are not MDE files at all."""
    kinds: list[Callable[[], bytes]] = [
        lambda: b"",
        lambda: rng.bytes(int(rng.integers(1, 512))),
        lambda: b"PK\x05\x06" + b"\x00" * 18,
        lambda: _zip([]),
        lambda: _zip([("envelope.json", b"{}")]),
        lambda: b'{"format": "mde-report"}',
        lambda: (
            b"-----BEGIN PRIVATE KEY-----\n"
            + base64.encodebytes(rng.bytes(48))
            + b"-----END PRIVATE KEY-----\n"
        ),
        lambda: b"SQLite format 3\x00" + rng.bytes(84),
        lambda: b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}",
    ]
    return kinds[int(rng.integers(len(kinds)))]()
