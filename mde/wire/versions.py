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

__all__ = ["FORMAT_VERSIONS", "MDE_VERSION"]

FORMAT_VERSIONS: dict[str, int] = {
    # model owner -> data owner
    "mde-artifact": 3,  # sealed-value artifact: psi graph, Enc(w), public context, sketch
    "mde-hidden-artifact": 2,  # hidden mode: shapes and CKKS parameters only
    "mde-masked-result": 2,  # hidden mode: masked ciphertext of slot sums
    # data owner -> model owner
    "mde-sealed-score": 2,  # sealed-value mode: masked, re-randomised ciphertexts
    "mde-encrypted-records": 2,  # hidden mode: encrypted records and public context
    "mde-partial-result": 2,  # hidden mode: the flooded sum (one number)
    # kept by one owner
    "mde-data-owner-key": 2,  # hidden mode: the data owner's secret key and request state
    "mde-proxy": 2,  # the model owner's private proxy file (w, secret key, session)
    "mde-report": 1,  # the opened efficacy report (JSON document, see mde.report)
}
