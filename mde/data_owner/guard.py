"""The data owner's guard, graph admission: a psi graph must be the documented graph of its
declared proxy kind before any record meets it.

A cheating model owner could ship any ONNX graph as ``psi.onnx`` (``Identity(X)`` would
return the records themselves, encrypted only under the buyer's own key). The guard refuses
any graph whose operator sequence is not its kind's template (:data:`TEMPLATES`), that uses
another operator domain, functions, subgraphs or extra inputs and outputs, or whose first
weight matrix does not take the artifact's features. Then it rebuilds the kind's graph from
the graph's own weights with the same builder the model owner uses
(:mod:`mde.proxies.onnx_graphs`) and requires the two to be byte-identical: an attribute or
a wire changed inside the template (a softmax or an outer product across the batch, which
would mix records and break the DP bound) is refused. Every admitted graph is row-wise: each
record's psi depends on that record only. Kinds without a template (registered by a user)
are refused unless the data owner passes ``trust_graph=True``.

What it does not stop: weights chosen inside a template (for example a compression matrix
that selects a few features). Budgets per buyer and the DP mode are the defence against
those (issue 14).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mde.errors import ArtifactError, require
from mde.proxies.onnx_graphs import (
    softmax_head_psi_graph,
    student_psi_graph,
    tree_leaf_psi_graph,
)
from mde.wire.artifact import ArtifactManifest

__all__ = ["TEMPLATES", "admit_graph"]

_HEAD = r"OneHot Sub Unsqueeze Unsqueeze Mul Reshape( MatMul)? Identity"
#: operator sequence of each built-in kind's psi graph (regular expressions over op names)
TEMPLATES: dict[str, str] = {
    "influence": rf"MatMul Add MatMul Softmax {_HEAD}",
    "influence-poly": rf"MatMul Add MatMul {_HEAD}",
    "student": rf"MatMul Add (Relu|Mul) MatMul Add MatMul Softmax {_HEAD}",
    "tree": (
        r"Gather LessOrEqual Cast MatMul Add Equal Cast OneHot Unsqueeze Unsqueeze Mul Reshape"
        r" Identity"
    ),
}


def admit_graph(graph: bytes, manifest: ArtifactManifest, *, trust_graph: bool = False) -> None:
    """Refuse a psi graph that is not its declared kind's documented graph.

    Raises
    ------
    ArtifactError
        Naming the mismatch (operator sequence, domain, inputs, outputs or first weights).
    """
    onnx = require("onnx")
    try:
        model = onnx.load_from_string(graph)
    except Exception as exc:  # protobuf raises its own errors on crafted bytes
        raise ArtifactError(f"artifact's psi graph is not a readable ONNX model: {exc}") from exc
    kind = manifest.proxy_kind
    if kind not in TEMPLATES and not trust_graph:
        raise ArtifactError(
            f"the guard has no graph template for proxy kind {kind!r}; refusing its psi graph. "
            "Pass trust_graph=True only if you trust this model owner's graph."
        )
    g = model.graph
    if model.functions or any(n.domain not in ("", "ai.onnx") for n in g.node):
        raise ArtifactError(
            "artifact's psi graph uses custom operator domains or functions; refusing it."
        )
    if any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for n in g.node
        for a in n.attribute
    ):
        raise ArtifactError("artifact's psi graph holds subgraphs (control flow); refusing it.")
    inputs = sorted(i.name for i in g.input if i.name not in {t.name for t in g.initializer})
    if inputs != ["X", "y"] or [o.name for o in g.output] != ["psi"]:
        raise ArtifactError(
            f"artifact's psi graph has inputs {inputs} and outputs {[o.name for o in g.output]}; "
            "expected inputs X, y and one output psi."
        )
    if kind not in TEMPLATES:
        return
    ops = " ".join(n.op_type for n in g.node)
    if not re.fullmatch(TEMPLATES[kind], ops):
        raise ArtifactError(
            f"artifact's psi graph is not the {kind!r} graph: its operators are [{ops}], the "
            f"{kind!r} template is [{TEMPLATES[kind]}]. Refusing it: the graph could compute "
            "anything from your records."
        )
    first = g.node[0]
    weights = {t.name: list(t.dims) for t in g.initializer}
    if kind != "tree" and (
        first.input[0] != "X" or weights.get(first.input[1], [None])[0] != manifest.n_features
    ):
        raise ArtifactError(
            f"artifact's psi graph does not start with a weight matrix on the "
            f"{manifest.n_features} features; refusing it."
        )
    try:
        _check_shapes(kind, model, manifest)
        rebuilt = _rebuild(kind, model, manifest.n_features)
    except Exception as exc:  # missing or misshapen weights: not the documented graph
        raise ArtifactError(
            f"artifact's psi graph cannot be rebuilt as the {kind!r} graph from its weights "
            f"({type(exc).__name__}: {exc}); refusing it."
        ) from exc
    if rebuilt != graph:
        raise ArtifactError(
            f"artifact's psi graph has the {kind!r} operators but not the {kind!r} graph's "
            "structure (an attribute, a wire or a constant differs from the graph rebuilt from "
            "its own weights); refusing it: it could mix records or compute anything else."
        )


def _check_shapes(kind: str, model: Any, manifest: ArtifactManifest) -> None:
    """The weights have their documented shapes (a bias of shape (1, 1, q) would broadcast
    the batch into a softmax axis: same builder, records mixed)."""
    from onnx import numpy_helper

    w = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    d, k = manifest.n_features, len(manifest.classes)
    if kind == "tree":
        (n_internal,) = w["tree_features"]
        n_leaves = w["tree_path_W"][1]
        want = {
            "tree_thresholds": (n_internal,),
            "tree_path_W": (n_internal, n_leaves),
            "tree_path_b": (n_leaves,),
            "tree_depth": (n_leaves,),
        }
        width = n_leaves * k
    else:
        first = ("layer1" if kind == "student" else "compress") + "_W"
        q = w[first][1]
        want = {first: (d, q), first[:-1] + "b": (q,)}
        if kind == "student":
            want |= {"append_one_W": (q, q + 1), "append_one_b": (q + 1,)}
            q += 1
        want["thetaT"] = (q, k)
        width = k * q
        if "projection" in w:
            want["projection"] = (width, w["projection"][1])
            width = w["projection"][1]
    bad = {name: w.get(name) for name, shape in want.items() if w.get(name) != shape}
    if bad or width != manifest.psi_dim:
        raise ValueError(
            f"weights {sorted(bad)} do not have their documented shapes, or psi has width "
            f"{width} and the manifest says {manifest.psi_dim}"
        )


def _rebuild(kind: str, model: Any, n_features: int) -> bytes:
    """The documented graph of ``kind`` built from ``model``'s own weights."""
    from onnx import numpy_helper

    w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    if kind in ("influence", "influence-poly"):
        theta = w["thetaT"].T
        return softmax_head_psi_graph(
            w["compress_W"], w["compress_b"], theta, softmax=kind == "influence"
        )
    if kind == "student":
        relu = any(n.op_type == "Relu" for n in model.graph.node)
        return student_psi_graph(
            w["layer1_W"],
            w["layer1_b"],
            relu,
            w["append_one_W"],
            w["append_one_b"],
            w["thetaT"].T,
            w.get("projection"),
        )
    depths = [v for k, v in w.items() if k.startswith("depth_")]
    if len(depths) != 1:
        raise KeyError("the class count constant")
    return tree_leaf_psi_graph(
        n_features,
        w["tree_features"],
        w["tree_thresholds"].astype(np.float64),
        w["tree_path_W"],
        w["tree_path_b"],
        w["tree_depth"],
        int(depths[0]),
    )
