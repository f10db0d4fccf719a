"""ONNX graphs of the efficacy features psi (inputs ``X`` float32 [n, d], ``y`` int64 [n]
holding class indices; output ``psi`` float32 [n, m]). Only standard ONNX operators."""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.errors import require

__all__ = [
    "GraphBuilder",
    "softmax_head_psi_graph",
    "student_psi_graph",
    "tree_leaf_psi_graph",
    "OPSET",
]

OPSET = 17


class GraphBuilder:
    """Tiny helper: add constants and nodes, then ``finish`` into a checked model."""

    def __init__(self, n_features: int) -> None:
        require("onnx")
        self.n_features = n_features
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._k = 0

    def const(self, value: np.ndarray, name: str) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        self._k += 1
        out = f"{op.lower()}_{self._k}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def affine(self, x: str, W: np.ndarray, b: np.ndarray, tag: str) -> str:
        """``x @ W + b`` in float32."""
        w = self.const(W.astype(np.float32), f"{tag}_W")
        c = self.const(b.astype(np.float32), f"{tag}_b")
        return self.node("Add", [self.node("MatMul", [x, w]), c])

    def outer_with_label(self, left: str, n_classes: int, width: int, label_second: bool) -> str:
        """Row-wise outer product of ``left`` [n, width] with onehot(y) [n, k], flattened.

        ``label_second``: order (left, class) as for leaf-class cells; otherwise (class, left)
        as for ``vec(diff phi^T)``-style gradients (where ``left`` multiplies a class vector).
        """
        depth = self.const(np.array(n_classes, dtype=np.int64), f"depth_{self._k}")
        values = self.const(np.array([0.0, 1.0], dtype=np.float32), f"onehot_values_{self._k}")
        onehot = self.node("OneHot", ["y", depth, values], axis=-1)
        ax1 = self.const(np.array([1], dtype=np.int64), f"ax1_{self._k}")
        ax2 = self.const(np.array([2], dtype=np.int64), f"ax2_{self._k}")
        if label_second:
            outer = self.node(
                "Mul", [self.node("Unsqueeze", [left, ax2]), self.node("Unsqueeze", [onehot, ax1])]
            )
        else:
            outer = self.node(
                "Mul", [self.node("Unsqueeze", [onehot, ax2]), self.node("Unsqueeze", [left, ax1])]
            )
        shape = self.const(
            np.array([-1, width * n_classes], dtype=np.int64), f"psi_shape_{self._k}"
        )
        return self.node("Reshape", [outer, shape])

    def finish(self, out: str, width: int, name: str, final: str = "psi") -> bytes:
        import onnx
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Identity", [out], [final]))
        graph = helper.make_graph(
            self.nodes,
            name,
            [
                helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", self.n_features]),
                helper.make_tensor_value_info("y", TensorProto.INT64, ["n"]),
            ],
            [helper.make_tensor_value_info(final, TensorProto.FLOAT, ["n", width])],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mde"
        )
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model.SerializeToString()


def softmax_head_tail(
    g: GraphBuilder,
    phi: str,
    theta: np.ndarray,
    projection: np.ndarray | None = None,
    softmax: bool = True,
) -> tuple[str, int]:
    """psi = vec((softmax(phi Theta^T) - onehot(y)) phi^T) [@ projection]; without the
    softmax (``softmax=False``) for a squared-loss head."""
    k, q = theta.shape
    logits = g.node("MatMul", [phi, g.const(theta.T.astype(np.float32), "thetaT")])
    proba = g.node("Softmax", [logits], axis=1) if softmax else logits
    depth = g.const(np.array(k, dtype=np.int64), "head_depth")
    values = g.const(np.array([0.0, 1.0], dtype=np.float32), "head_onehot_values")
    onehot = g.node("OneHot", ["y", depth, values], axis=-1)
    diff = g.node("Sub", [proba, onehot])
    ax1 = g.const(np.array([1], dtype=np.int64), "head_ax1")
    ax2 = g.const(np.array([2], dtype=np.int64), "head_ax2")
    outer = g.node("Mul", [g.node("Unsqueeze", [diff, ax2]), g.node("Unsqueeze", [phi, ax1])])
    psi = g.node(
        "Reshape", [outer, g.const(np.array([-1, k * q], dtype=np.int64), "head_psi_shape")]
    )
    if projection is None:
        return psi, k * q
    return g.node(
        "MatMul", [psi, g.const(projection.astype(np.float32), "projection")]
    ), projection.shape[1]


def softmax_head_psi_graph(
    P: np.ndarray, c: np.ndarray, theta: np.ndarray, softmax: bool = True
) -> bytes:
    """Influence proxy: phi = X P + c, then the softmax-head (or squared-loss head) gradient."""
    g = GraphBuilder(P.shape[0])
    phi = g.affine("X", P, c, "compress")
    psi, width = softmax_head_tail(g, phi, theta, softmax=softmax)
    return g.finish(psi, width, "mde_influence_psi")


def student_psi_graph(
    W1: np.ndarray,
    b1: np.ndarray,
    relu: bool,
    E: np.ndarray,
    bias: np.ndarray,
    theta: np.ndarray,
    projection: np.ndarray | None,
) -> bytes:
    """Student proxy: h = act(X W1 + b1), phi = h E + bias, then the softmax-head gradient
    (optionally projected)."""
    g = GraphBuilder(W1.shape[0])
    a = g.affine("X", W1, b1, "layer1")
    h = g.node("Relu", [a]) if relu else g.node("Mul", [a, a])
    phi = g.affine(h, E, bias, "append_one")
    psi, m = softmax_head_tail(g, phi, theta, projection)
    return g.finish(psi, m, "mde_student_psi")


def float32_at_most(t: np.ndarray) -> np.ndarray:
    """Largest float32 <= t (so that float32 x <= result iff x <= t, as in scikit-learn)."""
    t32 = t.astype(np.float32)
    over = t32.astype(np.float64) > t
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


def tree_leaf_psi_graph(
    n_features: int,
    features: np.ndarray,
    thresholds: np.ndarray,
    path: np.ndarray,
    right_turns: np.ndarray,
    depth: np.ndarray,
    n_classes: int,
) -> bytes:
    """Tree proxy: psi = onehot(leaf(x)) outer onehot(y), leaf found with matrix ops.

    ``path`` [internal, leaves] is +1 where a leaf's path goes left at a node, -1 where it
    goes right; a record reaches leaf l iff ``A @ path + right_turns == depth`` with
    ``A = [x_f <= t]`` per internal node.
    """
    g = GraphBuilder(n_features)
    gathered = g.node("Gather", ["X", g.const(features.astype(np.int64), "tree_features")], axis=1)
    go_left = g.node(
        "LessOrEqual", [gathered, g.const(float32_at_most(thresholds), "tree_thresholds")]
    )
    A = g.node("Cast", [go_left], to=1)  # FLOAT
    count = g.affine(A, path.astype(np.float32), right_turns.astype(np.float32), "tree_path")
    leaf = g.node(
        "Cast", [g.node("Equal", [count, g.const(depth.astype(np.float32), "tree_depth")])], to=1
    )
    n_leaves = path.shape[1]
    psi = g.outer_with_label(leaf, n_classes, n_leaves, label_second=True)
    return g.finish(psi, n_leaves * n_classes, "mde_tree_psi")


def score_graph(A: np.ndarray, a: np.ndarray, B: np.ndarray, b: np.ndarray) -> bytes:
    """Encryptable score graph ``sum_k ((X A + a) - Y)_k (X B + b)_k`` (inputs ``X`` [n, d]
    and one-hot ``Y`` [n, k] float32; output ``score`` [n, 1]; depth 2)."""
    import onnx
    from onnx import TensorProto, helper

    g = GraphBuilder(A.shape[0])
    u = g.affine("X", A, a, "head")
    v = g.affine("X", B, b, "value")
    s = g.node("Mul", [g.node("Sub", [u, "Y"]), v])
    total = g.node(
        "MatMul", [s, g.const(np.ones((A.shape[1], 1), dtype=np.float32), "sum_classes")]
    )
    g.nodes.append(helper.make_node("Identity", [total], ["score"]))
    graph = helper.make_graph(
        g.nodes,
        "mde_score",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", A.shape[0]]),
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", A.shape[1]]),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n", 1])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mde"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
