"""ONNX graphs of the efficacy features psi (inputs ``X`` float32 [n, d], ``y`` int64 [n])."""

from __future__ import annotations

import numpy as np

from mde.errors import require

__all__ = ["softmax_head_psi_graph", "OPSET"]

OPSET = 17


def softmax_head_psi_graph(P: np.ndarray, c: np.ndarray, theta: np.ndarray) -> bytes:
    """psi = vec((softmax(phi Theta^T) - onehot(y)) outer phi), phi = X P + c."""
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    k, q = theta.shape
    d = P.shape[0]
    inits = [
        numpy_helper.from_array(P.astype(np.float32), "P"),
        numpy_helper.from_array(c.astype(np.float32), "c"),
        numpy_helper.from_array(theta.T.astype(np.float32), "thetaT"),
        numpy_helper.from_array(np.array(k, dtype=np.int64), "depth"),
        numpy_helper.from_array(np.array([0.0, 1.0], dtype=np.float32), "onehot_values"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([-1, k * q], dtype=np.int64), "psi_shape"),
    ]
    nodes = [
        helper.make_node("MatMul", ["X", "P"], ["xp"]),
        helper.make_node("Add", ["xp", "c"], ["phi"]),
        helper.make_node("MatMul", ["phi", "thetaT"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["proba"], axis=1),
        helper.make_node("OneHot", ["y", "depth", "onehot_values"], ["onehot"], axis=-1),
        helper.make_node("Sub", ["proba", "onehot"], ["diff"]),
        helper.make_node("Unsqueeze", ["diff", "axis2"], ["diff3"]),
        helper.make_node("Unsqueeze", ["phi", "axis1"], ["phi3"]),
        helper.make_node("Mul", ["diff3", "phi3"], ["outer"]),
        helper.make_node("Reshape", ["outer", "psi_shape"], ["psi"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mde_influence_psi",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", d]),
            helper.make_tensor_value_info("y", TensorProto.INT64, ["n"]),
        ],
        [helper.make_tensor_value_info("psi", TensorProto.FLOAT, ["n", k * q])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mde")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
