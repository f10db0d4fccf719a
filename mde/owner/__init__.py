"""The model owner's protocol steps, in flow order: build (:mod:`~mde.owner.build`), export
(:mod:`~mde.owner.export`), hidden-mode evaluation (:mod:`~mde.owner.hidden`), open
(:mod:`~mde.owner.open`), verify (:mod:`~mde.owner.verify`); the session
(:mod:`~mde.owner.session`), the private proxy file (:mod:`~mde.owner.storage`) and the
fidelity check before publishing (:mod:`~mde.owner.fidelity`)."""

from mde.owner.build import build_proxy
from mde.owner.fidelity import FidelityReport, fidelity_report
from mde.owner.model_owner import ModelOwner, load_proxy
from mde.owner.session import Session

__all__ = [
    "build_proxy",
    "ModelOwner",
    "load_proxy",
    "Session",
    "fidelity_report",
    "FidelityReport",
]
