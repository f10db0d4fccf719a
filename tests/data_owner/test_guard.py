"""Graph admission: a psi graph must be its declared kind's documented graph."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.data_owner.guard import TEMPLATES, admit_graph
from mde.wire.artifact import SealedArtifact
from mde.wire.signing import SigningKey

FORGER = SigningKey.generate()  # whoever crafts a message signs it with its own key


def _with_graph(artifact_bytes: bytes, graph: bytes, kind: str | None = None) -> bytes:
    art = SealedArtifact.from_bytes(artifact_bytes)
    manifest = (
        art.manifest if kind is None else art.manifest.model_copy(update={"proxy_kind": kind})
    )
    return SealedArtifact(manifest, {**art.members, "psi.onnx": graph}).signed(FORGER).to_bytes()


def _identity_graph(d: int) -> bytes:
    """psi = X: the crafted graph that would return the records themselves."""
    from onnx import TensorProto, helper

    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", d])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, ["n"])
    psi = helper.make_tensor_value_info("psi", TensorProto.FLOAT, ["n", d])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["psi"])], "steal", [X, y], [psi]
    )
    return bytes(helper.make_model(graph).SerializeToString())


def test_every_built_in_kind_has_a_template_its_own_graph_passes(digits, model) -> None:  # type: ignore[no-untyped-def]
    assert set(TEMPLATES) == set(mde.proxy_kinds())
    for kind, opts in [
        ("influence", {}),
        ("influence-poly", {}),
        ("tree", {}),
        ("student", {"epochs": 2}),
        ("student", {"epochs": 2, "projection_dim": 20}),
        ("student", {"epochs": 2, "activation": "square"}),
    ]:
        owner = mde.build_proxy(
            model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind=kind, random_state=0, **opts
        )
        admit_graph(owner.psi_graph(), _manifest_for(owner))  # no error


def _manifest_for(owner):  # type: ignore[no-untyped-def]
    from mde.crypto.params import CKKSParams, make_layout
    from mde.wire.artifact import ArtifactManifest

    return ArtifactManifest(
        artifact_id="a",
        proxy_kind=owner.kind,
        n_features=owner.n_features_in_,
        classes=owner.classes_.tolist(),
        psi_dim=owner.psi_dim_,
        ckks=CKKSParams(),
        layout=make_layout(owner.psi_dim_, CKKSParams()),
    )


def test_an_identity_graph_is_refused_naming_the_mismatch(artifact: str, digits) -> None:  # type: ignore[no-untyped-def]
    crafted = _with_graph(open(artifact, "rb").read(), _identity_graph(digits.Xc.shape[1]))
    with pytest.raises(
        mde.ArtifactError, match=r"not the 'influence' graph: its operators are \[Identity\]"
    ):
        mde.load_artifact(crafted)


def test_another_kinds_graph_is_refused(artifact: str, digits, model) -> None:  # type: ignore[no-untyped-def]
    tree = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="tree", random_state=0
    )
    crafted = _with_graph(open(artifact, "rb").read(), tree.psi_graph())
    with pytest.raises(mde.ArtifactError, match="not the 'influence' graph"):
        mde.load_artifact(crafted)


def test_a_kind_without_template_needs_trust(artifact: str, digits) -> None:  # type: ignore[no-untyped-def]
    good = open(artifact, "rb").read()
    graph = SealedArtifact.from_bytes(good).members["psi.onnx"]
    custom = _with_graph(good, graph, kind="my-kind")
    with pytest.raises(mde.ArtifactError, match="no graph template for proxy kind 'my-kind'"):
        mde.load_artifact(custom)
    scorer = mde.load_artifact(custom, trust_graph=True)
    assert isinstance(scorer, mde.Scorer)
    assert np.isfinite(scorer.psi(digits.Xc[:3], digits.yc[:3])).all()


def _edited(graph: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    import onnx

    model = onnx.load_from_string(graph)
    edit(model.graph)
    return bytes(model.SerializeToString())


def _set_attr(graph, op: str, name: str, value: int) -> None:  # type: ignore[no-untyped-def]
    node = next(n for n in graph.node if n.op_type == op)
    next(a for a in node.attribute if a.name == name).i = value


def _mix_batch(graph) -> None:  # type: ignore[no-untyped-def]
    """Unsqueeze on axis 0: an [n, n, k] outer product across the batch (the red team's)."""
    from onnx import numpy_helper

    axes = next(n for n in graph.node if n.op_type == "Unsqueeze").input[1]
    init = next(t for t in graph.initializer if t.name == axes)
    init.CopyFrom(numpy_helper.from_array(np.array([0], dtype=np.int64), axes))


@pytest.mark.parametrize(
    "edit",
    [
        lambda g: _set_attr(g, "Softmax", "axis", 0),  # softmax over the records
        _mix_batch,
    ],
    ids=["softmax-over-records", "outer-product-across-batch"],
)
def test_a_template_graph_that_mixes_records_is_refused(artifact: str, digits, edit) -> None:  # type: ignore[no-untyped-def]
    good = open(artifact, "rb").read()
    graph = SealedArtifact.from_bytes(good).members["psi.onnx"]
    crafted = _edited(graph, edit)
    from onnx import load_from_string

    ops = [n.op_type for n in load_from_string(crafted).graph.node]
    assert ops == [n.op_type for n in load_from_string(graph).graph.node]  # template passes
    with pytest.raises(mde.ArtifactError, match="not the 'influence' graph's structure"):
        mde.load_artifact(_with_graph(good, crafted))


def test_weights_of_another_shape_are_refused_even_from_the_real_builder() -> None:
    """A (1, 1, q) bias broadcasts the batch into the softmax axis: built with the model
    owner's own builder (so byte-identical on rebuild), yet it mixes records."""
    from mde.crypto.params import CKKSParams, make_layout
    from mde.proxies.onnx_graphs import softmax_head_psi_graph
    from mde.wire.artifact import ArtifactManifest

    d, q = 8, 6
    rng = np.random.default_rng(0)
    graph = softmax_head_psi_graph(
        rng.normal(size=(d, q)), np.zeros((1, 1, q)), rng.normal(size=(q, q))
    )
    manifest = ArtifactManifest(
        artifact_id="a",
        proxy_kind="influence",
        n_features=d,
        classes=[0, 1],
        psi_dim=q * q,
        ckks=CKKSParams(),
        layout=make_layout(q * q, CKKSParams()),
    )
    with pytest.raises(mde.ArtifactError, match=r"\['compress_b', 'thetaT'\] do not have"):
        admit_graph(graph, manifest)
