"""The encryptable ONNX subset and its CKKS interpreter (hidden-proxy mode).

A graph maps records to scores with plaintext weights (initializers) and encrypted inputs.
Encrypted tensors ``[n, m]`` are packed across records: one CKKS ciphertext per column,
records in the slots (up to N/2 per ciphertext), so no rotation keys are needed.

Allowed operators and their multiplicative depth (CKKS levels consumed):

================================  =====  ==========================================
MatMul / Gemm (plaintext weights)  1      products are summed before one rescale
Add, Sub, Neg, Identity           0      also with plaintext constants (broadcast)
ReduceSum over axis 1             0
Mul (encrypted x any)              1
Pow with exponent 2 (squaring)     1
================================  =====  ==========================================

:func:`check_graph` refuses anything else (naming the operator) and any graph deeper than
the CKKS parameters allow; :func:`run_encrypted` evaluates a checked graph (onnxruntime: clear).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mde.errors import MDEError, require

__all__ = [
    "GraphError",
    "GraphPlan",
    "check_graph",
    "run_encrypted",
    "run_plain",
    "run_float64",
    "ALLOWED_OPS",
]

ALLOWED_OPS = ("MatMul", "Gemm", "Add", "Sub", "Neg", "Identity", "ReduceSum", "Mul", "Pow")


class GraphError(MDEError, ValueError):
    """A graph is outside the encryptable subset or too deep for its CKKS parameters."""


@dataclass
class _Enc:
    """An encrypted [n, width] tensor: ``cols`` (one CKKS vector per column; None in a dry
    run) and the number of levels consumed so far."""

    width: int
    level: int
    cols: list[Any] | None = None


@dataclass(frozen=True)
class GraphPlan:
    """A checked graph: encrypted input widths, output name and multiplicative depth."""

    model: Any
    inputs: dict[str, int]
    output: str
    depth: int


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _walk(model: Any, env: dict[str, Any], max_depth: int | None) -> dict[str, Any]:
    """Evaluate (or, with ``cols=None`` inputs, dry-run) every node in order."""
    from onnx import numpy_helper

    for init in model.graph.initializer:
        env[init.name] = numpy_helper.to_array(init).astype(np.float64)
    for node in model.graph.node:
        op = node.op_type
        if op not in ALLOWED_OPS or node.domain not in ("", "ai.onnx"):
            raise GraphError(
                f"operator {op!r} (node {node.name or node.output[0]!r}) cannot be evaluated under "
                "CKKS; "
                f"the encryptable subset is {', '.join(ALLOWED_OPS)} (Pow only with exponent 2)."
            )
        try:
            args = [env[i] for i in node.input if i]
        except KeyError as exc:
            raise GraphError(f"node {node.output[0]!r} reads undefined value {exc}.") from exc
        out = _apply(op, args, _attrs(node), node.output[0])
        if isinstance(out, _Enc) and max_depth is not None and out.level > max_depth:
            raise GraphError(
                f"graph needs multiplicative depth {out.level} at node {node.output[0]!r} ({op}); "
                "these CKKS "
                f"parameters allow {max_depth}. Use more coefficient moduli (or a shallower proxy)."
            )
        env[node.output[0]] = out
    return env


def _const_cols(c: np.ndarray, width: int, name: str) -> np.ndarray:
    """A plaintext operand broadcast against an [n, width] tensor: one value per column."""
    c = np.asarray(c, dtype=np.float64)
    if c.ndim == 2 and c.shape[0] == 1:
        c = c[0]
    if c.ndim == 0:
        c = np.full(width, float(c))
    if c.ndim != 1 or c.shape[0] not in (1, width):
        raise GraphError(
            f"node {name!r}: plaintext operand of shape {c.shape} does not broadcast per column."
        )
    return np.broadcast_to(c, (width,))


def _pair(a: _Enc, b: _Enc, name: str) -> tuple[list[int], list[int], int]:
    if a.width != b.width and 1 not in (a.width, b.width):
        raise GraphError(
            f"node {name!r}: encrypted widths {a.width} and {b.width} do not broadcast."
        )
    w = max(a.width, b.width)
    return (
        [i if a.width > 1 else 0 for i in range(w)],
        [i if b.width > 1 else 0 for i in range(w)],
        w,
    )


def _matmul(x: _Enc, W: np.ndarray, name: str) -> _Enc:
    if W.ndim != 2 or W.shape[0] != x.width:
        raise GraphError(
            f"node {name!r}: weights of shape {W.shape} do not multiply width {x.width}."
        )
    signs = np.all(np.isin(W, (-1.0, 0.0, 1.0)))
    out = _Enc(W.shape[1], x.level if signs else x.level + 1)
    if x.cols is None:
        return out
    cols = []
    for j in range(W.shape[1]):
        nz = np.flatnonzero(W[:, j])
        if signs:  # sums and differences only: no level consumed
            acc = None
            for i in nz:
                term = x.cols[i] if W[i, j] > 0 else -x.cols[i]
                acc = term if acc is None else acc + term
            cols.append(acc if acc is not None else x.cols[0] * 0.0)
            continue
        cols.append(
            _linear_combination([x.cols[i] for i in nz], W[nz, j]) if len(nz) else x.cols[0] * 0.0
        )
    out.cols = cols
    return out


def _linear_combination(cts: list[Any], weights: np.ndarray) -> Any:
    """sum_i w_i ct_i with ONE rescale: products stay at scale Delta^2 until summed."""
    ctx = cts[0].context()
    # a weight that encodes to the zero polynomial adds nothing (and TenSEAL would replace
    # the product by a fresh encryption at another scale)
    keep = np.abs(weights) * ctx.global_scale >= 0.5
    if not keep.any():
        return cts[0] * 0.0
    cts, weights = [c for c, k in zip(cts, keep) if k], weights[keep]
    ctx.auto_rescale = False
    try:
        acc = cts[0] * float(weights[0])
        for ct, wt in zip(cts[1:], weights[1:]):
            acc += ct * float(wt)
    finally:
        ctx.auto_rescale = True
    # multiply by 2^-40 encoded at scale 2^40 (the integer 1) and rescale once; TenSEAL then
    # records the scale as Delta again, which is what the value now carries
    return acc * (1.0 / ctx.global_scale)


def _apply(op: str, args: list[Any], attrs: dict[str, Any], name: str) -> Any:
    if all(not isinstance(a, _Enc) for a in args):
        return _apply_plain(op, args, attrs, name)
    if op == "Identity":
        return args[0]
    if op == "Neg":
        x = args[0]
        return _Enc(x.width, x.level, None if x.cols is None else [-c for c in x.cols])
    if op in ("Add", "Sub"):
        a, b = args
        sign = 1.0 if op == "Add" else -1.0
        if isinstance(a, _Enc) and isinstance(b, _Enc):
            ia, ib, w = _pair(a, b, name)
            out = _Enc(w, max(a.level, b.level))
            if a.cols is not None and b.cols is not None:
                out.cols = [
                    a.cols[i] + b.cols[j] if sign > 0 else a.cols[i] - b.cols[j]
                    for i, j in zip(ia, ib)
                ]
            return out
        if isinstance(a, _Enc):
            c = _const_cols(b, a.width, name) * sign
            return _Enc(
                a.width,
                a.level,
                None if a.cols is None else [col + float(v) for col, v in zip(a.cols, c)],
            )
        c = _const_cols(a, b.width, name)
        return _Enc(
            b.width,
            b.level,
            None
            if b.cols is None
            else [(-col if sign < 0 else col) + float(v) for col, v in zip(b.cols, c)],
        )
    if op == "MatMul":
        x, W = args
        if not isinstance(x, _Enc) or isinstance(W, _Enc):
            raise GraphError(
                f"node {name!r}: MatMul needs encrypted records on the left and plaintext weights."
            )
        return _matmul(x, W, name)
    if op == "Gemm":
        x, W = args[0], args[1]
        if not isinstance(x, _Enc) or isinstance(W, _Enc) or attrs.get("transA", 0):
            raise GraphError(
                f"node {name!r}: Gemm needs encrypted A (not transposed) and plaintext B."
            )
        W = W.T if attrs.get("transB", 0) else W
        out = _matmul(x, W * float(attrs.get("alpha", 1.0)), name)
        if len(args) > 2:
            out = _apply("Add", [out, args[2] * float(attrs.get("beta", 1.0))], {}, name)
        return out
    if op == "ReduceSum":
        x = args[0]
        axes = list(attrs.get("axes", [])) or ([int(v) for v in args[1]] if len(args) > 1 else [])
        if axes not in ([1], [-1]) or not attrs.get("keepdims", 1):
            raise GraphError(
                f"node {name!r}: ReduceSum is encryptable only over axis 1 with keepdims=1."
            )
        return _matmul(x, np.ones((x.width, 1)), name)
    if op == "Pow":
        x, e = args
        if isinstance(e, _Enc) or np.asarray(e).size != 1 or float(np.asarray(e).ravel()[0]) != 2.0:
            raise GraphError(
                f"node {name!r}: Pow is encryptable only with the constant exponent 2."
            )
        return _Enc(x.width, x.level + 1, None if x.cols is None else [c.square() for c in x.cols])
    if op == "Mul":
        a, b = args
        if isinstance(a, _Enc) and isinstance(b, _Enc):
            ia, ib, w = _pair(a, b, name)
            out = _Enc(w, max(a.level, b.level) + 1)
            if a.cols is not None and b.cols is not None:
                out.cols = [a.cols[i] * b.cols[j] for i, j in zip(ia, ib)]
            return out
        x, c = (a, b) if isinstance(a, _Enc) else (b, a)
        c = _const_cols(c, x.width, name)
        return _Enc(
            x.width,
            x.level + 1,
            None if x.cols is None else [col * float(v) for col, v in zip(x.cols, c)],
        )
    raise GraphError(f"operator {op!r} is not supported here.")  # pragma: no cover (filtered above)


def _apply_plain(op: str, args: list[Any], attrs: dict[str, Any], name: str) -> np.ndarray:
    """The same operators on float64 arrays (reference evaluation and constant folding)."""
    if op == "Identity":
        return args[0]
    if op == "Neg":
        return -args[0]
    if op in ("Add", "Sub", "Mul"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](args[0], args[1])
    if op == "MatMul":
        return args[0] @ args[1]
    if op == "Gemm":
        a = args[0].T if attrs.get("transA", 0) else args[0]
        b = args[1].T if attrs.get("transB", 0) else args[1]
        out = float(attrs.get("alpha", 1.0)) * (a @ b)
        return out + float(attrs.get("beta", 1.0)) * args[2] if len(args) > 2 else out
    if op == "ReduceSum":
        axes = list(attrs.get("axes", [])) or ([int(v) for v in args[1]] if len(args) > 1 else [])
        return args[0].sum(axis=tuple(axes), keepdims=bool(attrs.get("keepdims", 1)))
    if op == "Pow":
        return args[0] ** args[1]
    raise GraphError(f"operator {op!r} is not supported here.")  # pragma: no cover


def check_graph(onnx_bytes: bytes, inputs: dict[str, int], max_depth: int) -> GraphPlan:
    """Check that a graph is encryptable and fits ``max_depth`` levels.

    Parameters
    ----------
    onnx_bytes : bytes
        Serialized ONNX model with float inputs ``[n, width]`` and one output.
    inputs : dict
        Encrypted input name -> width.
    max_depth : int
        Multiplicative depth the CKKS parameters allow.

    Raises
    ------
    GraphError
        Naming the first operator outside the subset, or the node that exceeds the depth.
    """
    onnx = require("onnx")
    try:
        model = onnx.load_from_string(onnx_bytes)
    except Exception as exc:
        raise GraphError(f"not a readable ONNX graph: {exc}") from exc
    names = [
        i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if sorted(names) != sorted(inputs):
        raise GraphError(
            f"graph inputs {sorted(names)} do not match the encrypted inputs {sorted(inputs)}."
        )
    if len(model.graph.output) != 1:
        raise GraphError("an encryptable score graph has exactly one output.")
    env = _walk(model, {k: _Enc(w, 0) for k, w in inputs.items()}, max_depth)
    out = model.graph.output[0].name
    if not isinstance(env.get(out), _Enc):
        raise GraphError(f"graph output {out!r} does not depend on the encrypted inputs.")
    return GraphPlan(model, dict(inputs), out, env[out].level)


def run_encrypted(plan: GraphPlan, columns: dict[str, list[Any]]) -> list[Any]:
    """Evaluate a checked graph on encrypted inputs (one CKKS vector per column); returns the
    output's columns."""
    for name, width in plan.inputs.items():
        if len(columns.get(name, [])) != width:
            raise GraphError(
                f"encrypted input {name!r} has {len(columns.get(name, []))} columns; graph needs "
                f"{width}."
            )
    env = _walk(plan.model, {k: _Enc(len(v), 0, list(v)) for k, v in columns.items()}, None)
    return env[plan.output].cols


def run_float64(plan: GraphPlan, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """A checked graph evaluated in float64 numpy (the exact reference for CKKS results)."""
    env = _walk(plan.model, {k: np.asarray(v, dtype=np.float64) for k, v in feeds.items()}, None)
    return env[plan.output]


def run_plain(onnx_bytes: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The same graph in the clear with onnxruntime (float32)."""
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()})[
        0
    ]
