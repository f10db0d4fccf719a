"""Salted per-record Merkle commitments: RFC 6962 roots and audit paths, checked against a
reference written straight from the RFC definition, and the hiding of the salts."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from mde.wire.merkle import (
    SALT_BYTES,
    MerkleBuilder,
    commitment_hex,
    inclusion_proof,
    inclusion_proofs,
    leaf_hashes,
    merkle_root,
    proof_length,
    record_salts,
    verify_inclusion,
)

SIZES = [*range(1, 34), 100, 1000]
SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n > 1``)."""
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def _mth(data: list[bytes]) -> bytes:
    """RFC 6962 section 2.1: MTH over leaf *data* (not hashes), by the recursive definition."""
    n = len(data)
    assert n >= 1
    if n == 1:
        return _h(b"\x00" + data[0])
    k = _k(n)
    return _h(b"\x01" + _mth(data[:k]) + _mth(data[k:]))


def _ref_path(m: int, data: list[bytes]) -> list[tuple[bytes, str]]:
    """RFC 6962 section 2.1.1: PATH(m, D[n]) with the side each sibling sits on."""
    n = len(data)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*_ref_path(m, data[:k]), (_mth(data[k:]), "right")]
    return [*_ref_path(m - k, data[k:]), (_mth(data[:k]), "left")]


def _sides(m: int, n: int) -> list[str]:
    return [side for _, side in _ref_path(m, [b""] * n)]


def _data(n: int, tag: int = 0) -> list[bytes]:
    rng = np.random.default_rng([n, tag])
    return [rng.bytes(int(rng.integers(0, 40))) for _ in range(n)]


def _leaves(data: list[bytes]) -> np.ndarray:
    raw = b"".join(_h(b"\x00" + d) for d in data)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(data), 32)


def _records(n: int = 6, d: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, 10, n)


# -- roots ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_root_equals_the_rfc_definition(n: int) -> None:
    data = _data(n)
    assert merkle_root(_leaves(data)) == _mth(data)


@pytest.mark.parametrize("n", SIZES)
def test_builder_fed_in_uneven_batches_gives_the_same_root(n: int) -> None:
    leaves = _leaves(_data(n))
    expected = _mth(_data(n))
    for sizes in ([1, 3, 7, 2, 5, 0, 11], [n], [1]):
        b = MerkleBuilder()
        start = 0
        for size in itertools.cycle(sizes):
            if start >= n:
                break
            b.add(leaves[start : start + size])
            start += size
            assert b.n_leaves == min(start, n)
        assert b.root() == expected


def test_builder_root_is_a_snapshot_of_the_prefix() -> None:
    leaves = _leaves(_data(40))
    b = MerkleBuilder()
    for i in range(40):
        b.add(leaves[i : i + 1])
        assert b.root() == merkle_root(leaves[: i + 1])
    b.add(np.zeros((0, 32), dtype=np.uint8))
    assert b.n_leaves == 40 and b.root() == merkle_root(leaves)


def test_the_empty_tree_is_refused() -> None:
    empty = np.zeros((0, 32), dtype=np.uint8)
    with pytest.raises(ValueError):
        merkle_root(empty)
    with pytest.raises(ValueError):
        inclusion_proof(empty, 0)
    with pytest.raises(ValueError):
        MerkleBuilder().root()


@pytest.mark.parametrize(
    "bad", [np.zeros((3, 31), np.uint8), np.zeros((3, 32), np.int64), np.zeros(32, np.uint8)]
)
def test_malformed_leaves_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        merkle_root(bad)
    with pytest.raises(ValueError):
        MerkleBuilder().add(bad)


def test_known_answers_for_one_two_and_three_leaves() -> None:
    a, b, c = b"alpha", b"beta", b"gamma"
    la, lb, lc = (hashlib.sha256(b"\x00" + x).digest() for x in (a, b, c))
    assert merkle_root(_leaves([a])) == la
    ab = hashlib.sha256(b"\x01" + la + lb).digest()
    assert merkle_root(_leaves([a, b])) == ab
    assert merkle_root(_leaves([a, b, c])) == hashlib.sha256(b"\x01" + ab + lc).digest()


# -- inclusion proofs -----------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 21))
def test_every_proof_equals_the_rfc_path_and_verifies(n: int) -> None:
    data = _data(n)
    leaves, root = _leaves(data), _mth(data)
    proofs = inclusion_proofs(leaves, range(n))
    for i in range(n):
        proof = inclusion_proof(leaves, i)
        assert proof == proofs[i] == [h for h, _ in _ref_path(i, data)]
        assert verify_inclusion(root, leaves[i].tobytes(), i, n, proof)
        assert verify_inclusion(root, leaves[i].tobytes(), np.int64(i), np.int32(n), proof)


@pytest.mark.parametrize("n", range(1, 21))
def test_tampered_proofs_are_refused(n: int) -> None:
    data = _data(n, tag=1)
    leaves, root = _leaves(data), _mth(data)
    for i in range(n):
        leaf, proof = leaves[i].tobytes(), inclusion_proof(leaves, i)
        for j in range(len(proof)):  # one bit of one element
            bad = list(proof)
            bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
            assert not verify_inclusion(root, leaf, i, n, bad)
        assert not verify_inclusion(root, bytes([leaf[0] ^ 0x80]) + leaf[1:], i, n, proof)
        other = [j for j in range(n) if j != i]
        for j in other:  # a different index, and another leaf at the true index
            assert not verify_inclusion(root, leaf, j, n, proof)
            assert not verify_inclusion(root, leaves[j].tobytes(), i, n, proof)
        bad_root = bytes([root[-1] ^ 1]) + root[:-1]
        assert not verify_inclusion(bad_root, leaf, i, n, proof)
        assert not verify_inclusion(root, leaf, i, n, [*proof, proof[-1] if proof else leaf])
        assert not verify_inclusion(root, leaf, i, n, [*proof, bytes(32)])
        if proof:
            assert not verify_inclusion(root, leaf, i, n, proof[:-1])
            assert not verify_inclusion(root, leaf, i, n, proof[1:])
            assert not verify_inclusion(root, leaf, i, n, [proof[0], *proof])
        if len(proof) >= 2:
            assert not verify_inclusion(root, leaf, i, n, [proof[1], proof[0], *proof[2:]])


@pytest.mark.parametrize("n", range(1, 21))
def test_a_wrong_tree_size_verifies_only_where_the_path_shape_is_identical(n: int) -> None:
    """The root alone does not bind the tree size (RFC 6962 roots of 3 and 4 leaves can
    share audit paths); :func:`commitment_hex` binds it. Exactly the sizes whose RFC path has
    the same shape accept the proof; every other size, and every size <= index, refuses it."""
    data = _data(n, tag=2)
    leaves, root = _leaves(data), _mth(data)
    for i in range(n):
        leaf, proof = leaves[i].tobytes(), inclusion_proof(leaves, i)
        for m in [*range(0, n), *range(n + 1, 2 * n + 4)]:
            expected = i < m and _sides(i, m) == _sides(i, n)
            assert verify_inclusion(root, leaf, i, m, proof) is expected, (i, m)
        assert not verify_inclusion(root, leaf, i, 2**40, proof)


def test_a_shared_shape_really_occurs_so_the_commitment_binds_the_size() -> None:
    data = _data(4)
    leaves, root = _leaves(data), _mth(data)
    proof = inclusion_proof(leaves, 0)
    assert verify_inclusion(root, leaves[0].tobytes(), 0, 3, proof)
    assert commitment_hex(root, 4, 5) != commitment_hex(root, 3, 5)


@pytest.mark.parametrize("n", range(2, 21))
def test_a_proof_longer_than_the_claimed_tree_is_refused(n: int) -> None:
    """root = H(0x01 || left || right): the right subtree hash, claimed as the only leaf of a
    one-leaf tree with the left subtree as its "proof", hashes to the root, and must fail."""
    data = _data(n, tag=3)
    k = _k(n)
    left, right, root = _mth(data[:k]), _mth(data[k:]), _mth(data)
    assert _h(b"\x01" + left + right) == root
    assert not verify_inclusion(root, right, 0, 1, [left])
    leaf = _leaves(data)[n - 1].tobytes()
    proof = inclusion_proof(_leaves(data), n - 1)
    assert not verify_inclusion(root, leaf, n - 1, n, [*proof, left])


def test_garbage_is_refused_without_raising() -> None:
    data = _data(5)
    leaves, root = _leaves(data), _mth(data)
    leaf, proof = leaves[2].tobytes(), inclusion_proof(leaves, 2)
    assert verify_inclusion(root, leaf, 2, 5, proof)
    cases = [
        (None, leaf, 2, 5, proof),
        (root, None, 2, 5, proof),
        (root, leaf, None, 5, proof),
        (root, leaf, 2, None, proof),
        (root, leaf, 2, 5, None),
        (root[:31], leaf, 2, 5, proof),
        (root + b"\x00", leaf, 2, 5, proof),
        (root, leaf[:31], 2, 5, proof),
        (root.hex(), leaf, 2, 5, proof),
        (root, leaf, -1, 5, proof),
        (root, leaf, 2 - 5, 5, proof),
        (root, leaf, 2.0, 5, proof),
        (root, leaf, True, 5, proof),
        (root, leaf, 2, 5.0, proof),
        (root, leaf, 2, 0, proof),
        (root, leaf, 2, -5, proof),
        (root, leaf, 5, 5, proof),
        (root, leaf, 2, 5, b"".join(proof)),
        (root, leaf, 2, 5, [p.hex() for p in proof]),
        (root, leaf, 2, 5, [proof[0][:31], *proof[1:]]),
        (root, leaf, 2, 5, [None, *proof[1:]]),
        (root, leaf, 2, 5, iter(proof)),
        (root, leaf, 2, 5, [*proof, 7]),
    ]
    for case in cases:
        assert verify_inclusion(*case) is False, case  # type: ignore[arg-type]


def test_proof_length_is_the_rfc_path_length() -> None:
    for n in [*range(1, 70), 1000]:
        for i in range(n):
            assert proof_length(i, n) == len(_ref_path(i, [b""] * n)), (i, n)
    assert proof_length(np.int64(5), np.int64(7)) == 3
    assert proof_length(2**40 - 1, 2**40) == 40 and proof_length(2**40, 2**40 + 1) == 1
    for i, n in [(0, 0), (3, 3), (-1, 4), (True, 4), (1.0, 4), (0, None)]:
        with pytest.raises(ValueError):
            proof_length(i, n)  # type: ignore[arg-type]


def test_proofs_for_many_indices_in_any_order() -> None:
    leaves = _leaves(_data(37))
    order = [36, 0, 5, 5, 17, 1, 32]
    assert inclusion_proofs(leaves, order) == [inclusion_proof(leaves, i) for i in order]
    assert inclusion_proofs(leaves, np.array(order)) == inclusion_proofs(leaves, order)
    assert inclusion_proofs(leaves, []) == []
    for bad in (37, -1, 2.0):
        with pytest.raises(ValueError):
            inclusion_proof(leaves, bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            inclusion_proofs(leaves, [0, bad])  # type: ignore[list-item]


# -- salts and leaves -----------------------------------------------------------------------


def test_salts_are_keyed_blake2b_of_the_record_index() -> None:
    s = record_salts(SEED, 0, 8)
    assert s.shape == (8, SALT_BYTES) == (8, 16) and s.dtype == np.uint8
    for i in range(8):
        expected = hashlib.blake2b(
            i.to_bytes(8, "little"), key=SEED, digest_size=16, person=b"mde-salt-v1"
        ).digest()
        assert s[i].tobytes() == expected
    assert np.array_equal(record_salts(SEED, 0, 8), s)
    assert np.array_equal(record_salts(SEED, 5, 3), s[5:8])
    assert len({row.tobytes() for row in s}) == 8
    other = record_salts(OTHER_SEED, 0, 8)
    assert not np.any(np.all(other == s, axis=1))
    assert record_salts(SEED, 3, 0).shape == (0, 16)


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), b"", "x" * 32, None])
def test_a_seed_must_be_32_bytes(seed: object) -> None:
    with pytest.raises(ValueError):
        record_salts(seed, 0, 1)  # type: ignore[arg-type]


def test_negative_ranges_are_refused() -> None:
    with pytest.raises(ValueError):
        record_salts(SEED, -1, 2)
    with pytest.raises(ValueError):
        record_salts(SEED, 0, -1)


def test_leaf_hash_known_answer() -> None:
    X, y = _records()
    salts = record_salts(SEED, 0, len(y))
    leaves = leaf_hashes(X, y, salts)
    assert leaves.shape == (len(y), 32) and leaves.dtype == np.uint8
    for i in range(len(y)):
        data = (
            b"mde-record-v1"
            + salts[i].tobytes()
            + X[i].astype("<f4").tobytes()
            + int(y[i]).to_bytes(8, "little", signed=True)
        )
        assert leaves[i].tobytes() == hashlib.sha256(b"\x00" + data).digest()
    assert merkle_root(leaves) == _mth(_leaf_data(X, y, salts))


def _leaf_data(X: np.ndarray, y: np.ndarray, salts: np.ndarray) -> list[bytes]:
    return [
        b"mde-record-v1"
        + salts[i].tobytes()
        + X[i].astype("<f4").tobytes()
        + np.int64(y[i]).astype("<i8").tobytes()
        for i in range(len(y))
    ]


def _changed_rows(a: np.ndarray, b: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.any(a != b, axis=1))]


def test_one_changed_bit_label_or_salt_changes_exactly_that_leaf() -> None:
    X, y = _records()
    salts = record_salts(SEED, 0, len(y))
    base = leaf_hashes(X, y, salts)
    for r, c in [(0, 0), (3, 2), (5, 4)]:
        X2 = X.copy()
        X2.view(np.uint32)[r, c] ^= 1  # the lowest mantissa bit
        assert _changed_rows(base, leaf_hashes(X2, y, salts)) == [r]
        y2 = y.copy()
        y2[r] += 1
        assert _changed_rows(base, leaf_hashes(X, y2, salts)) == [r]
        s2 = salts.copy()
        s2[r, c] ^= 1
        assert _changed_rows(base, leaf_hashes(X, y, s2)) == [r]


def test_the_leaf_binds_the_float32_value_not_the_input_dtype_or_layout() -> None:
    X, y = _records()
    salts = record_salts(SEED, 0, len(y))
    base = leaf_hashes(X, y, salts)
    X64 = X.astype(np.float64) + np.spacing(X).astype(np.float64) / 4  # rounds back
    assert not np.array_equal(X64, X.astype(np.float64))
    assert np.array_equal(X64.astype(np.float32), X)
    assert np.array_equal(leaf_hashes(X64, y, salts), base)
    assert np.array_equal(leaf_hashes(np.asfortranarray(X), y.astype(np.int32), salts), base)
    wide = np.repeat(X, 2, axis=1)[:, ::2]  # a non-contiguous view
    assert np.array_equal(leaf_hashes(wide, y, salts), base)
    assert np.array_equal(leaf_hashes(X.astype(">f4"), y.astype(">i8"), salts), base)


def test_mismatched_shapes_are_refused() -> None:
    X, y = _records()
    salts = record_salts(SEED, 0, len(y))
    for args in [
        (X[0], y, salts),
        (X, y[:-1], salts),
        (X, y, salts[:-1]),
        (X, y, salts[:, :15]),
        (X, y, salts.astype(np.int64)),
    ]:
        with pytest.raises(ValueError):
            leaf_hashes(*args)
    assert leaf_hashes(X[:0], y[:0], salts[:0]).shape == (0, 32)


# -- hiding ---------------------------------------------------------------------------------


def test_salts_hide_the_data_the_same_records_commit_differently_under_another_seed() -> None:
    """A buyer who guesses the data exactly still cannot confirm it: without the secret seed
    the leaves, the root and the commitment are unrelated to the unsalted records."""
    X, y = _records(n=8)
    X[4], y[4] = X[1], y[1]  # two equal records in one data set
    n, d = X.shape
    a = leaf_hashes(X, y, record_salts(SEED, 0, n))
    b = leaf_hashes(X, y, record_salts(OTHER_SEED, 0, n))
    assert not np.any(np.all(a == b, axis=1))  # every leaf differs
    assert a[1].tobytes() != a[4].tobytes()  # equal records are not visible as equal
    ca, cb = (commitment_hex(merkle_root(v), n, d) for v in (a, b))
    assert ca != cb
    again = leaf_hashes(X, y, record_salts(SEED, 0, n))  # and the owner can reproduce it
    assert commitment_hex(merkle_root(again), n, d) == ca


def test_commitment_known_answer_binds_root_and_shape() -> None:
    root = _h(b"root")
    expected = hashlib.sha256(b"mde-commitment-v2" + b"100:784:" + root).hexdigest()
    assert commitment_hex(root, 100, 784) == expected
    assert (
        len(
            {
                commitment_hex(root, 100, 784),
                commitment_hex(root, 100, 785),
                commitment_hex(root, 101, 784),
                commitment_hex(_h(b"x"), 100, 784),
            }
        )
        == 4
    )
    for bad in [(root[:31], 1, 1), (root, -1, 1), (root, 1, -1), (None, 1, 1)]:
        with pytest.raises(ValueError):
            commitment_hex(*bad)  # type: ignore[arg-type]
