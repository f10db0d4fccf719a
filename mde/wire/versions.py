"""Every format MDE writes, with its version: the one table readers and writers use.

Compatibility policy
--------------------
A reader accepts exactly the version listed here for each format. Any change to what a
format holds or means bumps its version and is listed in ``CHANGELOG.md``; an older or
newer file is refused with a message that names both versions, never read approximately,
because a field read the wrong way could produce a wrong price. Artifacts, scores and
messages are short-lived (one deal): the remedy is to export or score again. The model
owner's private proxy file is the one long-lived format; a future bump of it will ship a
converter (``mde upgrade``) rather than a silent migration.
"""

from __future__ import annotations

from mde.version import __version__ as MDE_VERSION

__all__ = ["FORMAT_VERSIONS", "MDE_VERSION", "SIGNED_FORMATS"]

FORMAT_VERSIONS: dict[str, int] = {
    # model owner -> data owner
    "mde-artifact": 5,  # sealed-value artifact: psi graph, Enc(w), public context, Galois keys
    "mde-hidden-artifact": 3,  # hidden mode: shapes and CKKS parameters only
    "mde-masked-result": 3,  # hidden mode: masked ciphertext of slot sums
    # data owner -> model owner
    "mde-sealed-score": 4,  # sealed-value mode: segment-summed SEAL ciphertexts
    "mde-encrypted-records": 3,  # hidden mode: encrypted records and public context
    "mde-partial-result": 3,  # hidden mode: the flooded sum (one number)
    # the deal, after the score is opened (signed)
    "mde-quote": 1,  # model owner -> data owner: provisional price of an opened score
    "mde-delivery": 1,  # data owner -> model owner: records, salts and Merkle proofs
    "mde-settlement": 1,  # model owner -> data owner: the verified price that settles
    # kept by one owner
    "mde-data-owner-key": 2,  # hidden mode: the data owner's secret key and request state
    "mde-proxy": 4,  # the model owner's private proxy file (id, w, secret key; no session)
    "mde-report": 2,  # the opened efficacy report (JSON document, see mde.report)
}

#: formats that cross between the owners: a reader refuses them unsigned (mde.wire.signing)
SIGNED_FORMATS: frozenset[str] = frozenset(
    {
        "mde-artifact",
        "mde-hidden-artifact",
        "mde-masked-result",
        "mde-sealed-score",
        "mde-encrypted-records",
        "mde-partial-result",
        "mde-quote",
        "mde-delivery",
        "mde-settlement",
    }
)
