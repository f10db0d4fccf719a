"""Salted per-record commitments: an RFC 6962 Merkle root over salted record hashes.

A data owner commits to its records (float32 features, int64 class indices) with the root of
a Merkle tree over salted record hashes. The salts come from a secret seed and are revealed
only on delivery, so a buyer cannot confirm a guessed data set from the commitment; delivered
records are checked against the root with inclusion proofs, without the rest.

Tree shape (RFC 6962, SHA-256): leaf ``H(0x00 || data)``, node ``H(0x01 || left || right)``,
``n`` leaves split at the largest power of two below ``n``; no empty tree. The tree functions
take *leaf hashes* (``(n, 32)`` uint8, see :func:`leaf_hashes`). All functions raise
ValueError on malformed input, except :func:`verify_inclusion`, which returns False.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import numpy as np

__all__ = [
    "SALT_BYTES",
    "HASH_BYTES",
    "record_salts",
    "leaf_hashes",
    "MerkleBuilder",
    "merkle_root",
    "inclusion_proof",
    "inclusion_proofs",
    "proof_length",
    "verify_inclusion",
    "commitment_hex",
]

SALT_BYTES = 16
HASH_BYTES = 32
SEED_BYTES = 32

_SALT_PERSON = b"mde-salt-v1"
_RECORD_TAG = b"mde-record-v1"
_COMMITMENT_TAG = b"mde-commitment-v2"


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _leaf_list(leaves: np.ndarray, *, allow_empty: bool = False) -> list[bytes]:
    """Leaf hashes ``(n, 32) uint8`` as a list of 32-byte strings."""
    arr = np.asarray(leaves)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != HASH_BYTES:
        raise ValueError(f"leaves must be (n, {HASH_BYTES}) uint8, got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError("a Merkle tree needs at least one leaf")
    raw = np.ascontiguousarray(arr).tobytes()
    return [raw[i : i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES)]


def _next_level(level: list[bytes]) -> list[bytes]:
    """One level up; a lone last node is carried up unchanged (this is the RFC 6962 shape)."""
    up = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def _path(levels: list[list[bytes]], index: int) -> list[bytes]:
    n = len(levels[0])
    if not _is_int(index) or not 0 <= index < n:
        raise ValueError(f"leaf index {index!r} is outside a tree of {n} leaves")
    i = int(index)  # at level k the node is i >> k; the last node of an odd level has no sibling
    return [lv[(i >> k) ^ 1] for k, lv in enumerate(levels[:-1]) if (i >> k) ^ 1 < len(lv)]


def record_salts(seed: bytes, start: int, count: int) -> np.ndarray:
    """Secret per-record salts, derived from a seed.

    Parameters
    ----------
    seed : bytes
        The data owner's secret seed, exactly 32 bytes.
    start, count : int
        Index of the first record and number of salts (both ``>= 0``).

    Returns
    -------
    numpy.ndarray
        ``(count, 16)`` uint8; row ``j`` is the salt of record ``i = start + j``,
        ``blake2b(i as 8-byte little-endian, key=seed, digest_size=16, person=b"mde-salt-v1")``.
    """
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        raise ValueError(f"seed must be {SEED_BYTES} bytes")
    if not (_is_int(start) and _is_int(count)) or not 0 <= start <= start + count <= 2**64:
        raise ValueError("start and count must be non-negative and index records in 8 bytes")
    key = bytes(seed)
    out = bytearray(count * SALT_BYTES)
    for j in range(count):
        i = int(start) + j
        digest = hashlib.blake2b(
            i.to_bytes(8, "little"), key=key, digest_size=SALT_BYTES, person=_SALT_PERSON
        ).digest()
        out[j * SALT_BYTES : (j + 1) * SALT_BYTES] = digest
    return np.frombuffer(out, dtype=np.uint8).reshape(count, SALT_BYTES)


def leaf_hashes(X: np.ndarray, y_idx: np.ndarray, salts: np.ndarray) -> np.ndarray:
    """RFC 6962 leaf hashes of salted records.

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, d)`` features; hashed as float32 little-endian (float64 input is rounded).
    y_idx : numpy.ndarray
        ``(n,)`` class indices; hashed as int64 little-endian.
    salts : numpy.ndarray
        ``(n, 16)`` uint8 salts (see :func:`record_salts`).

    Returns
    -------
    numpy.ndarray
        ``(n, 32)`` uint8; row ``i`` is ``SHA-256(0x00 || b"mde-record-v1" || salt_i ||
        X_i as '<f4' || y_i as '<i8')``.
    """
    Xc = np.ascontiguousarray(X, dtype="<f4")
    yc = np.ascontiguousarray(y_idx, dtype="<i8")
    sc = np.ascontiguousarray(salts)
    if Xc.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {Xc.shape}")
    n, d = Xc.shape
    if yc.shape != (n,):
        raise ValueError(f"y_idx must have shape ({n},), got {yc.shape}")
    if sc.dtype != np.uint8 or sc.shape != (n, SALT_BYTES):
        raise ValueError(f"salts must be ({n}, {SALT_BYTES}) uint8, got {sc.dtype} {sc.shape}")
    row = 4 * d
    xs, ys, ss = Xc.reshape(-1).view(np.uint8).data, yc.view(np.uint8).data, sc.reshape(-1).data
    prefix = hashlib.sha256(b"\x00" + _RECORD_TAG)
    out = bytearray(n * HASH_BYTES)
    for i in range(n):
        h = prefix.copy()
        h.update(ss[i * SALT_BYTES : (i + 1) * SALT_BYTES])
        h.update(xs[i * row : (i + 1) * row])
        h.update(ys[i * 8 : (i + 1) * 8])
        out[i * HASH_BYTES : (i + 1) * HASH_BYTES] = h.digest()
    return np.frombuffer(out, dtype=np.uint8).reshape(n, HASH_BYTES)


class MerkleBuilder:
    """Streaming RFC 6962 root in ``O(log n)`` memory.

    Keeps a stack of complete subtrees (sizes: the binary digits of the leaf count), merging
    the top two while their sizes are equal. Feed leaf hashes in order with :meth:`add`;
    :meth:`root` folds the stack right to left and may be called at any point.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self._n = 0

    @property
    def n_leaves(self) -> int:
        """Number of leaves added so far."""
        return self._n

    def add(self, leaves: np.ndarray) -> None:
        """Append leaf hashes in order.

        Parameters
        ----------
        leaves : numpy.ndarray
            ``(k, 32)`` uint8 leaf hashes; ``k`` may be 0.
        """
        batch = _leaf_list(leaves, allow_empty=True)
        stack = self._stack
        for h in batch:
            size = 1
            while stack and stack[-1][0] == size:
                size, h = 2 * size, _node(stack.pop()[1], h)
            stack.append((size, h))
        self._n += len(batch)

    def root(self) -> bytes:
        """The RFC 6962 root of the leaves added so far.

        Returns
        -------
        bytes
            32 bytes, equal to :func:`merkle_root` of all leaves added (ValueError if none).
        """
        if not self._stack:
            raise ValueError("a Merkle tree needs at least one leaf")
        h = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            h = _node(left, h)
        return h


def merkle_root(leaves: np.ndarray) -> bytes:
    """RFC 6962 Merkle tree hash of leaf hashes.

    Parameters
    ----------
    leaves : numpy.ndarray
        ``(n, 32)`` uint8 leaf hashes, ``n >= 1``.

    Returns
    -------
    bytes
        The 32-byte root.
    """
    level = _leaf_list(leaves)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def inclusion_proof(leaves: np.ndarray, index: int) -> list[bytes]:
    """RFC 6962 audit path of one leaf, bottom-up.

    Parameters
    ----------
    leaves : numpy.ndarray
        ``(n, 32)`` uint8 leaf hashes, ``n >= 1``.
    index : int
        The leaf, ``0 <= index < n``.

    Returns
    -------
    list of bytes
        The 32-byte sibling hashes from the leaf's level up to just below the root.
    """
    return inclusion_proofs(leaves, [index])[0]


def inclusion_proofs(leaves: np.ndarray, indices: Iterable[int]) -> list[list[bytes]]:
    """Audit paths of several leaves, building the tree once (``O(n + k log n)``).

    Parameters
    ----------
    leaves : numpy.ndarray
        ``(n, 32)`` uint8 leaf hashes, ``n >= 1``.
    indices : iterable of int
        The leaves, each ``0 <= index < n``, in any order (repeats allowed).

    Returns
    -------
    list of list of bytes
        ``inclusion_proof(leaves, i)`` for each ``i`` in ``indices``, in order.
    """
    levels = [_leaf_list(leaves)]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    return [_path(levels, i) for i in indices]


def proof_length(index: int, n_leaves: int) -> int:
    """Number of hashes in the audit path of leaf ``index`` in a tree of ``n_leaves``.

    Parameters
    ----------
    index, n_leaves : int
        The leaf and the size of the tree, ``0 <= index < n_leaves``.

    Returns
    -------
    int
        ``len(inclusion_proof(leaves, index))`` for any ``n_leaves`` leaves (how a reader
        splits concatenated proofs).
    """
    if not (_is_int(index) and _is_int(n_leaves)) or not 0 <= index < n_leaves:
        raise ValueError(f"leaf index {index!r} is outside a tree of {n_leaves!r} leaves")
    length, i, size = 0, int(index), int(n_leaves)
    while size > 1:  # the level sizes as in _next_level: a lone last node has no sibling
        length, i, size = length + (i ^ 1 < size), i // 2, (size + 1) // 2
    return length


def verify_inclusion(
    root: bytes, leaf: bytes, index: int, n_leaves: int, proof: list[bytes]
) -> bool:
    """Check an audit path (RFC 9162 section 2.1.3.2).

    Parameters
    ----------
    root, leaf : bytes
        The 32-byte committed root and the delivered record's 32-byte leaf hash.
    index, n_leaves : int
        The leaf's position and the size of the committed tree.
    proof : list of bytes
        The audit path, bottom-up.

    Returns
    -------
    bool
        True only if the path leads from ``leaf`` at ``index`` to ``root`` in a tree of
        ``n_leaves``; False on any malformed input (never raises).
    """
    try:
        if not all(isinstance(b, bytes) and len(b) == HASH_BYTES for b in (root, leaf)):
            return False
        if not (_is_int(index) and _is_int(n_leaves) and 0 <= index < n_leaves):
            return False
        if not isinstance(proof, list | tuple):  # an iterator or a bytes string is no proof
            return False
        fn, sn, r = int(index), int(n_leaves) - 1, leaf
        for p in proof:
            if not isinstance(p, bytes) or len(p) != HASH_BYTES or sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = _node(p, r)
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
            else:
                r = _node(r, p)
            fn, sn = fn >> 1, sn >> 1
        return sn == 0 and hmac.compare_digest(r, root)
    except Exception:  # a hostile proof object must not escape as an exception
        return False


def commitment_hex(root: bytes, n_records: int, n_features: int) -> str:
    """The published commitment: the root bound to the data set's shape.

    Parameters
    ----------
    root : bytes
        The 32-byte Merkle root of the salted record leaves.
    n_records, n_features : int
        Number of records (the tree size, which the root alone does not bind) and features.

    Returns
    -------
    str
        ``sha256(b"mde-commitment-v2" || f"{n_records}:{n_features}:" || root)`` in hex.
    """
    if not isinstance(root, bytes) or len(root) != HASH_BYTES:
        raise ValueError(f"root must be {HASH_BYTES} bytes")
    if not (_is_int(n_records) and _is_int(n_features)) or n_records < 0 or n_features < 0:
        raise ValueError("n_records and n_features must be non-negative integers")
    shape = f"{int(n_records)}:{int(n_features)}:".encode()
    return hashlib.sha256(_COMMITMENT_TAG + shape + root).hexdigest()
