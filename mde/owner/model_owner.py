"""The model owner's side of a deal: a fitted proxy and its ledger (each artifact's secrets
and CKKS key, evaluations, quotes, settlements).

:func:`mde.build_proxy` returns a :class:`ModelOwner`; every estimator attribute and
method of the proxy (``fidelity_``, ``efficacy``, ``psi``, ...) is available on it, and it
adds the protocol steps in flow order: :meth:`export`, :meth:`evaluate_hidden` (hidden
mode), :meth:`open`, :meth:`verify_delivery`, and :meth:`save`.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np

from mde.crypto.context import load_context, new_context
from mde.crypto.params import CKKSParams, check_params
from mde.errors import InputError, SealedScoreError, StorageError
from mde.owner import export as export_step
from mde.owner.hidden import evaluate_hidden
from mde.owner.ledger import Ledger
from mde.owner.open import open_partial, open_sealed
from mde.owner.session import Session
from mde.owner.settle import Prices, make_quote, settle
from mde.owner.storage import load_proxy_file, save_proxy_file
from mde.owner.verify import verify_delivery
from mde.proxies.base import Proxy
from mde.report import EfficacyReport
from mde.wire import read_message
from mde.wire.deal import Delivery, Settlement, SignedQuote
from mde.wire.messages import EncryptedRecords, MaskedResult, PartialResult
from mde.wire.sealed_score import SealedScore
from mde.wire.signing import SigningKey

__all__ = ["ModelOwner", "load_proxy"]


class ModelOwner:
    """A fitted proxy plus the model owner's CKKS key and ledger.

    Parameters
    ----------
    proxy : Proxy
        A fitted proxy (:func:`mde.build_proxy` makes both).
    proxy_id : str, optional
        The proxy's id in the ledger (kept in its proxy file); a new one by default.
    key : (context, CKKSParams), optional
        The secret CKKS key (made at the first sealed-value export if absent).
    ledger : Ledger or path, optional
        Where exported artifacts' secrets, evaluations, pending masks, quotes and
        settlements are recorded (the one-evaluation rule holds across processes and
        restarts); default :func:`mde.owner.ledger.default_ledger_path`.
    identity : SigningKey, optional
        The model owner's Ed25519 key that signs artifacts, results, quotes and
        settlements; default ``$MDE_HOME/identity.pem`` (made on first use).
    """

    def __init__(
        self,
        proxy: Proxy,
        proxy_id: str | None = None,
        key: tuple[Any, CKKSParams] | None = None,
        ledger: Ledger | str | os.PathLike[str] | None = None,
        identity: SigningKey | None = None,
    ) -> None:
        proxy._check_fitted()
        self.proxy = proxy
        self._key = key
        book = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        self.session = Session(book, proxy_id if proxy_id is not None else uuid.uuid4().hex)
        self.identity = identity if identity is not None else SigningKey.load_or_create()

    @property
    def ledger(self) -> Ledger:
        """The owner's ledger (its session, evaluations, quotes and settlements)."""
        return self.session.ledger

    @ledger.setter
    def ledger(self, ledger: Ledger | str | os.PathLike[str]) -> None:
        self.session.ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)

    def __getattr__(self, name: str) -> Any:
        # estimator attributes and methods (fidelity_, psi, efficacy, ...) live on the proxy
        if name.startswith("__") or name in ("proxy", "session", "_key", "identity"):
            raise AttributeError(name)
        return getattr(self.proxy, name)

    def subset_utility(
        self, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any | None = None
    ) -> Any:
        """The proxy's subset utility (for :func:`mde.valuation.proxy_utility`).

        Raises
        ------
        InputError
            If this proxy kind supplies none.
        """
        method = getattr(self.proxy, "subset_utility", None)
        if method is None:
            raise InputError(
                f"no subset utility for {type(self.proxy).__name__}; pass your own callable."
            )
        return method(X, y, X_test, y_test, X_train)

    @property
    def opened_(self) -> dict[str, int]:
        """How often each exported artifact was evaluated."""
        return dict(self.session.opened)

    @property
    def artifacts_(self) -> list[str]:
        """Ids of the artifacts this proxy exported, in export order."""
        return list(self.session.artifacts)

    def _context(self, params: CKKSParams | None) -> tuple[Any, CKKSParams]:
        """A fresh CKKS key for one sealed-value export (its secret goes to the ledger with
        the artifact's record): answers to different artifacts never accumulate under one
        key, so the flooding's key-recovery margin is per artifact."""
        if params is None:
            params = self._key[1] if self._key is not None else export_step.default_ckks(self.proxy)
        problem = check_params(params)
        if problem:
            raise InputError(f"bad CKKS parameters: {problem}")
        return new_context(params), params

    # -- step 1: export ---------------------------------------------------------------
    def export(
        self,
        path: str | os.PathLike[str],
        ckks: CKKSParams | None = None,
        mode: str = "sealed-value",
    ) -> str:
        """Write the public artifact; return its id.

        ``mode="sealed-value"``: psi graph, Enc(w), public context (and the membership sketch).
        ``ckks`` defaults to this proxy's key's parameters if it has one, else to the kind's
        default. ``mode="hidden"``: shapes, classes and CKKS parameters only, for proxies with
        a CKKS-evaluable score (``kind="influence-poly"``).

        The artifact holds no secret key and no plaintext ``w``. Each export gets a new id,
        recorded in the session so that :meth:`open` accepts scores made against it.
        """
        if mode == "hidden":
            if ckks is not None:
                raise InputError(
                    "hidden mode chooses its CKKS parameters from the score graph's depth; "
                    "do not pass ckks."
                )
            return export_step.export_hidden(self.proxy, self.session, path, self.identity)
        if mode != "sealed-value":
            raise InputError(f"mode must be 'sealed-value' or 'hidden'; got {mode!r}.")
        context, params = self._context(ckks)
        return export_step.export_sealed(
            self.proxy, self.session, context, params, path, self.identity
        )

    # -- hidden mode: evaluate the encrypted records -----------------------------------
    def evaluate_hidden(
        self,
        request: EncryptedRecords | bytes,
        *,
        allow_repeat: bool = False,
        random_state: int | np.random.Generator | None = None,
    ) -> MaskedResult:
        """Evaluate the proxy on a data owner's encrypted records (hidden mode); see
        :func:`mde.owner.hidden.evaluate_hidden`."""
        if isinstance(request, (bytes, bytearray)):
            request = EncryptedRecords.from_bytes(bytes(request))
        return evaluate_hidden(
            self.proxy,
            self.session,
            self.ledger,
            request,
            self.identity,
            allow_repeat=allow_repeat,
            random_state=random_state,
        )

    # -- last step: open, then verify the delivery ------------------------------------
    def open(
        self,
        message: SealedScore | PartialResult | bytes,
        *,
        allow_repeat: bool = False,
        expect_seller: str | None = None,
    ) -> EfficacyReport:
        """Open a sealed score (or a hidden-mode partial result) into an :class:`EfficacyReport`.

        Parameters
        ----------
        message : SealedScore, PartialResult or their bytes
        allow_repeat : bool
            Accept a further sealed score for an artifact already evaluated once. Off by
            default: repeated queries against one artifact leak the value vector.
        expect_seller : str, optional
            The data owner's pinned public key (hex); a score signed by another is refused.

        Raises
        ------
        SealedScoreError
            If the score is unsigned or changed after signing, or was made for another
            artifact, a tampered artifact, or another key.
        IdentityError
            If it is signed by another key than ``expect_seller``.
        ProtocolError
            If a partial result answers no pending hidden-mode result.
        ReplayError
            If the artifact was already evaluated and ``allow_repeat`` is False.
        """
        if isinstance(message, (bytes, bytearray)):
            message = read_message(bytes(message))
        if isinstance(message, PartialResult):
            return open_partial(self.proxy, self.session, message)
        if not isinstance(message, SealedScore):
            raise SealedScoreError(
                f"cannot open a {type(message).__name__}; pass a sealed score or partial result."
            )
        secret = self.session.secret(message.artifact_id)
        if secret is not None:
            context = load_context(
                secret, StorageError, public=False, what="the artifact's secret key (ledger)"
            )
        elif self._key is not None:  # exported before keys were kept per artifact
            context = self._key[0]
        else:
            raise SealedScoreError(
                f"no key for artifact {message.artifact_id!r} in ledger {str(self.ledger.path)!r}"
                ": this proxy did not export it, or its ledger is another one."
            )
        return open_sealed(
            self.proxy,
            self.session,
            self.ledger,
            context,
            message,
            allow_repeat=allow_repeat,
            expect_seller=expect_seller,
        )

    # -- the deal: quote, verify the delivery, settle -----------------------------------
    def quote(
        self, report: EfficacyReport, pricing: Prices, *, spec: str | None = None
    ) -> SignedQuote:
        """A signed provisional quote for an opened report (recorded in the ledger); see
        :func:`mde.owner.settle.make_quote`."""
        return make_quote(report, pricing, self.identity, self.ledger, spec)

    def settle(
        self,
        delivery: Delivery | bytes,
        pricing: Prices,
        *,
        spec: str | None = None,
        rtol: float = 1e-4,
    ) -> Settlement:
        """Verify a delivery against its quote and settle at the verified price; see
        :func:`mde.owner.settle.settle`.

        Raises
        ------
        DeliveryError
            If the delivery is not the committed records or its values differ from the
            report; nothing is settled then.
        """
        if isinstance(delivery, (bytes, bytearray)):
            delivery = Delivery.from_bytes(bytes(delivery))
        return settle(
            self.proxy,
            self.session,
            self.ledger,
            self.identity,
            delivery,
            pricing,
            spec=spec,
            rtol=rtol,
        )

    def verify_delivery(
        self, X: Any, y: Any, report: EfficacyReport, *, seed: bytes, rtol: float = 1e-4
    ) -> EfficacyReport:
        """Check delivered data against what was scored and return the recomputed report
        (:func:`mde.owner.verify.verify_delivery`); ``seed`` is the data owner's salt seed.

        Raises
        ------
        DeliveryError
            If the records differ from the committed ones, or a value differs from the report.
        """
        return verify_delivery(self.proxy, self.session, X, y, report, seed=seed, rtol=rtol)

    # -- keeping it ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the owner's private proxy file (the model and its id; each artifact's key and
        the session stay in the ledger); reload with :func:`mde.load_proxy`. Keep it private:
        it holds ``w``."""
        save_proxy_file(path, self.proxy, self.session.proxy_id, self._key)

    def summary(self) -> dict[str, Any]:
        """The proxy's summary plus the size of the last exported artifact."""
        records = list(self.session.artifacts.values())  # one ledger read
        return self.proxy.summary() | {
            "artifact_bytes": records[-1].artifact_bytes if records else None
        }

    def __repr__(self) -> str:
        return f"ModelOwner({self.proxy!r}, artifacts={len(self.session.artifacts)})"


def load_proxy(
    path: str | os.PathLike[str],
    ledger: Ledger | str | os.PathLike[str] | None = None,
    identity: SigningKey | None = None,
) -> ModelOwner:
    """Load a proxy saved with ``owner.save(path)``.

    Raises
    ------
    StorageError
        If the file is not a proxy file of this format version, or is damaged.
    """
    proxy, proxy_id, key = load_proxy_file(path)
    return ModelOwner(proxy, proxy_id, key, ledger, identity)
