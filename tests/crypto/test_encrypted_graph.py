"""The encrypted-graph interpreter of hidden mode: it evaluates polynomial ONNX graphs under
CKKS like onnxruntime does in the clear, and refuses anything else."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.crypto.context import new_context
from mde.crypto.encrypted_graph import (
    GraphError,
    check_graph,
    run_encrypted,
    run_float64,
    run_plain,
)
from mde.crypto.params import hidden_params


@pytest.fixture(scope="module")
def poly(digits, model):
    return mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", random_state=0
    )


def _ckks(depth=2):
    return new_context(hidden_params(depth), symmetric=True)


def test_encrypted_graph_equals_clear_graph(poly, digits):
    import tenseal as ts

    graph = poly.score_graph(scale=10.0)
    plan = check_graph(graph, {"X": 64, "Y": 10}, 2)
    assert plan.depth == 2
    X, Y = digits.Xc[:200], np.eye(10)[digits.yc[:200]]
    ctx = _ckks()
    cols = {
        "X": [ts.ckks_vector(ctx, X[:, j].astype(np.float32).tolist()) for j in range(64)],
        "Y": [ts.ckks_vector(ctx, Y[:, j].tolist()) for j in range(10)],
    }
    got = np.array(run_encrypted(plan, cols)[0].decrypt())
    clear = run_plain(graph, {"X": X, "Y": Y})[:, 0]
    exact = run_float64(plan, {"X": X.astype(np.float32), "Y": Y})[:, 0]
    # the graph holds float32 weights: equal to the float64 proxy to float32 precision
    want = 10.0 * poly.record_scores(X, digits.yc[:200], exclude=False)
    np.testing.assert_allclose(exact, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    np.testing.assert_allclose(got, clear, rtol=1e-3, atol=1e-3 * np.abs(clear).max())
    assert np.abs(got - exact).max() < 1e-5 * np.abs(exact).max() + 1e-6


def _graph(nodes, inits, inputs=(("X", 3),)):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", w]) for n, w in inputs],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["n", None])],
        initializer=[
            numpy_helper.from_array(
                v
                if isinstance(v, np.ndarray) and v.dtype == np.int64
                else np.asarray(v, dtype=np.float32),
                k,
            )
            for k, v in inits.items()
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


def test_interpreter_refuses_non_polynomial_ops_and_too_deep_graphs():
    from onnx import helper

    soft = _graph(
        [helper.make_node("MatMul", ["X", "W"], ["z"]), helper.make_node("Softmax", ["z"], ["p"])],
        {"W": np.ones((3, 2))},
    )
    with pytest.raises(GraphError, match="'Softmax'"):
        check_graph(soft, {"X": 3}, 5)
    relu = _graph([helper.make_node("Relu", ["X"], ["r"])], {})
    with pytest.raises(GraphError, match="'Relu'"):
        check_graph(relu, {"X": 3}, 5)
    cube = _graph([helper.make_node("Pow", ["X", "e"], ["c"])], {"e": np.array(3.0)})
    with pytest.raises(GraphError, match="exponent 2"):
        check_graph(cube, {"X": 3}, 5)
    # depth: MatMul (1) then square (1) then square (1) = 3
    deep = _graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["z"]),
            helper.make_node("Mul", ["z", "z"], ["z2"]),
            helper.make_node("Mul", ["z2", "z2"], ["z4"]),
        ],
        {"W": np.full((3, 2), 0.5)},
    )
    assert check_graph(deep, {"X": 3}, 3).depth == 3
    with pytest.raises(GraphError, match="depth 3 at node 'z4'"):
        check_graph(deep, {"X": 3}, 2)
    # a +-1 MatMul is sums and differences only: no level
    signs = _graph(
        [helper.make_node("MatMul", ["X", "S"], ["s"])], {"S": np.array([[1.0], [-1.0], [0.0]])}
    )
    assert check_graph(signs, {"X": 3}, 0).depth == 0


def test_square_and_gemm_evaluate_like_onnxruntime():
    import tenseal as ts
    from onnx import helper

    g = _graph(
        [
            helper.make_node("Gemm", ["X", "W", "b"], ["z"], transB=1, alpha=0.5),
            helper.make_node("Pow", ["z", "two"], ["z2"]),
            helper.make_node("Neg", ["z2"], ["n"]),
            helper.make_node("ReduceSum", ["n", "ax"], ["s"], keepdims=1),
        ],
        {
            "W": [[1.0, -2.0, 0.5], [0.25, 1.0, 3.0]],
            "b": [0.1, -0.3],
            "two": np.array(2.0),
            "ax": np.array([1], dtype=np.int64),
        },
    )
    plan = check_graph(g, {"X": 3}, 2)
    X = np.random.default_rng(0).normal(size=(50, 3))
    ctx = _ckks()
    cols = {"X": [ts.ckks_vector(ctx, X[:, j].tolist()) for j in range(3)]}
    got = np.array(run_encrypted(plan, cols)[0].decrypt())
    np.testing.assert_allclose(got, run_plain(g, {"X": X})[:, 0], rtol=1e-4, atol=1e-4)
    # and run_float64 agrees with onnxruntime on the same graph
    np.testing.assert_allclose(
        run_float64(plan, {"X": X})[:, 0], run_plain(g, {"X": X})[:, 0], rtol=1e-5, atol=1e-5
    )
