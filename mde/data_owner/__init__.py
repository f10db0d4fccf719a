"""The data owner's steps for both modes behind one interface (:class:`DataOwnerSession`)."""

from mde.data_owner.base import DataOwnerSession
from mde.data_owner.hidden import HiddenClient
from mde.data_owner.load import load_artifact
from mde.data_owner.sealed import Scorer

__all__ = ["DataOwnerSession", "HiddenClient", "Scorer", "load_artifact"]
