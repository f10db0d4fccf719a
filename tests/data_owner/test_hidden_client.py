"""Hidden-proxy mode: encrypted evaluation equals the clear one, nothing secret travels,
tampered or mismatched messages are refused."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import mde
from mde.encrypted_graph import GraphError, check_graph, run_encrypted, run_float64, run_plain
from mde.hidden import EncryptedRecords, MaskedResult, PartialResult, ProtocolError


@pytest.fixture(scope="module")
def poly(digits, model):
    return mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly",
                           random_state=0)


@pytest.fixture()
def flow(poly, tmp_path):
    """A fresh hidden artifact and its client."""
    path = tmp_path / "hidden.mde"
    poly.export(path, mode="hidden")
    return path, mde.load_artifact(path)


def _ckks(depth=2):
    from mde.hidden import hidden_params, secret_context

    return secret_context(hidden_params(depth))


def test_poly_influence_matches_a_brute_force_refit(poly, digits):
    """First-order influence of the squared-loss head against re-solving the ridge problem."""
    phi, phi_te = poly._phi(digits.Xtr), poly._phi(digits.Xte)
    n, l2 = len(phi), poly.l2
    from adapters import wrap
    from mde.validation import encode_labels

    # targets = the black box's probabilities (what the head was fitted to)
    targets = wrap(digits_model(digits)).predict_proba(digits.Xtr)
    yte = np.eye(10)[encode_labels(digits.yte, list(range(10)))]

    def test_loss(theta):
        return 0.5 * np.mean(np.sum((phi_te @ theta.T - yte) ** 2, axis=1))

    def refit(extra_phi, extra_t, eps):
        G = (phi.T @ phi + eps * extra_phi.T @ extra_phi) / n + l2 * np.eye(phi.shape[1])
        return np.linalg.solve(G, (phi.T @ targets + eps * extra_phi.T @ extra_t) / n).T

    base = test_loss(refit(phi[:0], targets[:0], 0.0))
    np.testing.assert_allclose(refit(phi[:0], targets[:0], 0.0), poly.theta_, atol=1e-10)
    X, y = digits.Xc[:5], digits.yc[:5]
    eps = 1e-4
    for i in range(5):
        f = poly._phi(X[i : i + 1])
        change = (base - test_loss(refit(f, np.eye(10)[[y[i]]], eps))) / eps
        assert poly.record_scores(X[i : i + 1], y[i : i + 1])[0] == pytest.approx(change, rel=1e-3, abs=1e-9)


def digits_model(digits):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.05, max_iter=3000).fit(digits.Xtr, digits.ytr)


def test_encrypted_graph_equals_clear_graph(poly, digits):
    graph = poly.score_graph(scale=10.0)
    plan = check_graph(graph, {"X": 64, "Y": 10}, 2)
    assert plan.depth == 2
    X, Y = digits.Xc[:200], np.eye(10)[digits.yc[:200]]
    ctx = _ckks()
    import tenseal as ts

    cols = {"X": [ts.ckks_vector(ctx, X[:, j].astype(np.float32).tolist()) for j in range(64)],
            "Y": [ts.ckks_vector(ctx, Y[:, j].tolist()) for j in range(10)]}
    got = np.array(run_encrypted(plan, cols)[0].decrypt())
    clear = run_plain(graph, {"X": X, "Y": Y})[:, 0]
    exact = run_float64(plan, {"X": X.astype(np.float32), "Y": Y})[:, 0]
    # the graph holds float32 weights: equal to the float64 proxy to float32 precision
    want = 10.0 * poly._scores_batch(*poly._validate(X, digits.yc[:200]))
    np.testing.assert_allclose(exact, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    np.testing.assert_allclose(got, clear, rtol=1e-3, atol=1e-3 * np.abs(clear).max())
    assert np.abs(got - exact).max() < 1e-5 * np.abs(exact).max() + 1e-6


def _graph(nodes, inits, inputs=(("X", 3),)):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", w]) for n, w in inputs],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["n", None])],
        initializer=[numpy_helper.from_array(v if isinstance(v, np.ndarray) and v.dtype == np.int64
                                             else np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


def test_interpreter_refuses_non_polynomial_ops_and_too_deep_graphs():
    from onnx import helper

    soft = _graph([helper.make_node("MatMul", ["X", "W"], ["z"]), helper.make_node("Softmax", ["z"], ["p"])],
                  {"W": np.ones((3, 2))})
    with pytest.raises(GraphError, match="'Softmax'"):
        check_graph(soft, {"X": 3}, 5)
    relu = _graph([helper.make_node("Relu", ["X"], ["r"])], {})
    with pytest.raises(GraphError, match="'Relu'"):
        check_graph(relu, {"X": 3}, 5)
    cube = _graph([helper.make_node("Pow", ["X", "e"], ["c"])], {"e": np.array(3.0)})
    with pytest.raises(GraphError, match="exponent 2"):
        check_graph(cube, {"X": 3}, 5)
    # depth: MatMul (1) then square (1) then square (1) = 3
    deep = _graph([helper.make_node("MatMul", ["X", "W"], ["z"]), helper.make_node("Mul", ["z", "z"], ["z2"]),
                   helper.make_node("Mul", ["z2", "z2"], ["z4"])], {"W": np.full((3, 2), 0.5)})
    assert check_graph(deep, {"X": 3}, 3).depth == 3
    with pytest.raises(GraphError, match="depth 3 at node 'z4'"):
        check_graph(deep, {"X": 3}, 2)
    # a +-1 MatMul is sums and differences only: no level
    signs = _graph([helper.make_node("MatMul", ["X", "S"], ["s"])], {"S": np.array([[1.0], [-1.0], [0.0]])})
    assert check_graph(signs, {"X": 3}, 0).depth == 0


def test_square_and_gemm_evaluate_like_onnxruntime():
    import tenseal as ts
    from onnx import helper

    g = _graph([helper.make_node("Gemm", ["X", "W", "b"], ["z"], transB=1, alpha=0.5),
                helper.make_node("Pow", ["z", "two"], ["z2"]), helper.make_node("Neg", ["z2"], ["n"]),
                helper.make_node("ReduceSum", ["n", "ax"], ["s"], keepdims=1)],
               {"W": [[1.0, -2.0, 0.5], [0.25, 1.0, 3.0]], "b": [0.1, -0.3], "two": np.array(2.0),
                "ax": np.array([1], dtype=np.int64)})
    plan = check_graph(g, {"X": 3}, 2)
    X = np.random.default_rng(0).normal(size=(50, 3))
    ctx = _ckks()
    got = np.array(run_encrypted(plan, {"X": [ts.ckks_vector(ctx, X[:, j].tolist()) for j in range(3)]})[0].decrypt())
    np.testing.assert_allclose(got, run_plain(g, {"X": X})[:, 0], rtol=1e-4, atol=1e-4)


def test_hidden_round_trip_equals_plaintext_and_verifies(poly, flow, digits):
    path, client = flow
    X, y = digits.Xc, digits.yc
    request = client.encrypt(X, y)
    result = poly.evaluate_hidden(request.to_bytes(), random_state=0)
    partial = client.decrypt(result.to_bytes(), random_state=0)
    report = poly.open(partial.to_bytes())
    want = float(poly._scores_batch(*poly._validate(X, y)).sum())
    assert report.efficacy == pytest.approx(want, rel=1e-3)
    assert report.units.startswith("predicted reduction of the proxy's mean squared")
    poly.verify_delivery(X, y, report)
    with pytest.raises(mde.DeliveryError):
        poly.verify_delivery(X, (y + 1) % 10, report)
    with pytest.raises(ProtocolError, match="waiting for"):  # opened once
        poly.open(partial)


def test_nothing_secret_and_no_weights_travel(poly, flow, digits):
    path, client = flow
    artifact = open(path, "rb").read()
    request = client.encrypt(digits.Xc[:100], digits.yc[:100])
    result = poly.evaluate_hidden(request)
    messages = [artifact, result.to_bytes()]
    # the model owner's messages: no weights in float64 or float32, in any orientation
    scale = poly.artifacts_[client.artifact_id]["scale"]
    weights = [poly.w_, poly.theta_.ravel(), poly.P_.ravel(), poly.c_, poly.w_ * scale]
    for blob in messages:
        for arr in weights:
            for v in arr[np.abs(arr) > 1e-6][:50]:
                assert np.float64(v).tobytes() not in blob
                assert np.float32(v).tobytes() not in blob
    # the hidden artifact is the manifest only
    with zipfile.ZipFile(io.BytesIO(artifact)) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "manifest.sha256"]
    # the data owner's context travels without its secret key; the result ct is not decryptable by the model owner
    import tenseal as ts

    ctx = ts.context_from(request.blobs["context.tenseal"])
    assert not ctx.is_private()
    with pytest.raises(ValueError):
        ts.ckks_vector_from(ctx, result.ciphertext).decrypt()


def test_tampered_and_mismatched_messages_are_refused(poly, flow, digits, tmp_path):
    path, client = flow
    request = client.encrypt(digits.Xc[:50], digits.yc[:50])
    raw = request.to_bytes()
    bad = bytearray(raw)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(ProtocolError):
        poly.evaluate_hidden(bytes(bad))
    with pytest.raises(ProtocolError, match="expected a encrypted-records"):
        poly.evaluate_hidden(PartialResult(artifact_id="a", request_id="b", result_id="c", value=1.0).to_bytes())
    # a request carrying the data owner's secret key is refused (it would expose the records)
    leaky = request.model_copy(update={"blobs": {**request.blobs, "context.tenseal": client._ctx.serialize(
        save_secret_key=True)}})
    with pytest.raises(ProtocolError, match="secret key"):
        poly.evaluate_hidden(leaky)
    # ciphertexts from another context
    other = mde.load_artifact(path)
    foreign = other.encrypt(digits.Xc[:50], digits.yc[:50])
    mixed = request.model_copy(update={"blobs": {**request.blobs, "b0_X": foreign.blobs["b0_X"]}})
    result = poly.evaluate_hidden(mixed, allow_repeat=True)
    # ... evaluate under the request's keys but decrypt to garbage: caught by the data owner's range check,
    # or by delivery; here the foreign batch was encrypted under another secret key
    try:
        partial = client.decrypt(result)
    except ProtocolError:
        pass
    else:
        report = poly.open(partial)
        with pytest.raises(mde.DeliveryError):
            poly.verify_delivery(digits.Xc[:50], digits.yc[:50], report)
    # a result for another request, and a replay without allow_repeat
    with pytest.raises(ProtocolError, match="another request"):
        other.decrypt(poly.evaluate_hidden(request, allow_repeat=True))
    with pytest.raises(mde.ReplayError):
        poly.evaluate_hidden(request)
    # a request for a sealed-value artifact or another proxy
    sealed_id = poly.export(tmp_path / "sealed.mde")
    with pytest.raises(ProtocolError, match="hidden mode"):
        poly.evaluate_hidden(request.model_copy(update={"artifact_id": sealed_id}))


def test_hidden_artifact_is_checked_and_only_polynomial_proxies_export_it(proxy, poly, tmp_path):
    with pytest.raises(mde.InputError, match="influence-poly"):
        proxy.export(tmp_path / "h.mde", mode="hidden")
    path = tmp_path / "ok.mde"
    poly.export(path, mode="hidden")
    import hashlib
    import json

    from mde.artifact import zip_bytes

    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["flood_sigma"] = 0.0  # a model owner asking for exact decryptions
    mbytes = json.dumps(manifest).encode()
    (tmp_path / "weak.mde").write_bytes(zip_bytes({"manifest.json": mbytes,
                                                  "manifest.sha256": hashlib.sha256(mbytes).hexdigest().encode()}))
    with pytest.raises(mde.ArtifactError, match="flooding"):
        mde.load_artifact(tmp_path / "weak.mde")


def test_key_file_round_trip_and_message_types(poly, flow, digits, tmp_path):
    path, client = flow
    request = EncryptedRecords.from_bytes(client.encrypt(digits.Xc[:30], digits.yc[:30]).to_bytes())
    client.save_key(tmp_path / "key.bin")
    result = MaskedResult.from_bytes(poly.evaluate_hidden(request).to_bytes())
    later = mde.load_artifact(path)
    later.load_key(tmp_path / "key.bin")
    report = poly.open(later.decrypt(result))
    assert report.efficacy == pytest.approx(float(poly._scores_batch(*poly._validate(digits.Xc[:30], digits.yc[:30])).sum()),
                                            rel=1e-2, abs=1e-3)
