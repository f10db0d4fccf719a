"""Every adapter predicts what its model predicts; bad models and inputs raise MDEError."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

import adapters
import mde
from mde.numerics import softmax


def test_sklearn_predict_proba(digits):
    m = RandomForestClassifier(n_estimators=20, random_state=0).fit(digits.Xtr, digits.ytr)
    bb = mde.wrap(m)
    np.testing.assert_allclose(
        bb.predict_proba(digits.Xte), m.predict_proba(digits.Xte), atol=1e-12
    )
    np.testing.assert_array_equal(bb.classes_, m.classes_)
    assert bb.n_features_in_ == 64
    np.testing.assert_array_equal(bb.predict(digits.Xte), m.predict(digits.Xte))


def test_sklearn_decision_function_multiclass(digits):
    m = LinearSVC(dual=False).fit(digits.Xtr, digits.ytr)
    p = mde.wrap(m).predict_proba(digits.Xte)
    np.testing.assert_allclose(p, softmax(m.decision_function(digits.Xte)), atol=1e-12)
    np.testing.assert_array_equal(m.classes_[p.argmax(1)], m.predict(digits.Xte))


def test_sklearn_decision_function_binary_is_logistic():
    X, y = load_breast_cancer(return_X_y=True)
    m = LinearSVC(dual=False).fit(X, y)
    p = mde.wrap(m).predict_proba(X[:50])
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-m.decision_function(X[:50]))), atol=1e-12)


def test_torch_module(digits):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    bb = mde.wrap(net)
    with torch.no_grad():
        expected = (
            torch.softmax(net(torch.as_tensor(digits.Xte, dtype=torch.float32)), 1).double().numpy()
        )
    np.testing.assert_allclose(bb.predict_proba(digits.Xte), expected, atol=1e-6)
    assert bb.n_features_in_ == 64 and list(bb.classes_) == list(range(10))


def test_torch_image_module_with_input_shape():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 3)
    )
    bb = mde.wrap(net, input_shape=(1, 8, 8), classes=["a", "b", "c"])
    X = np.random.default_rng(0).random((5, 64))
    with torch.no_grad():
        expected = torch.softmax(
            net(torch.as_tensor(X, dtype=torch.float32).reshape(5, 1, 8, 8)), 1
        ).numpy()
    np.testing.assert_allclose(bb.predict_proba(X), expected, atol=1e-6)
    assert bb.n_features_in_ == 64


def test_onnx_from_skl2onnx(digits, tmp_path):
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    m = LogisticRegression(max_iter=2000).fit(digits.Xtr, digits.ytr)
    onx = skl2onnx.convert_sklearn(m, initial_types=[("input", FloatTensorType([None, 64]))])
    path = tmp_path / "m.onnx"
    path.write_bytes(onx.SerializeToString())
    for source in (str(path), onx.SerializeToString(), onx):
        bb = mde.wrap(source)
        np.testing.assert_allclose(
            bb.predict_proba(digits.Xte), m.predict_proba(digits.Xte), atol=1e-4
        )
        assert list(bb.classes_) == list(range(10)) and bb.n_features_in_ == 64


def test_callable_remote_api(digits, model):
    calls = []

    def api(X):
        calls.append(len(X))
        return model.predict_proba(X)

    bb = mde.wrap(api, classes=model.classes_, n_features=64, batch_size=100)
    np.testing.assert_allclose(bb.predict_proba(digits.Xte), model.predict_proba(digits.Xte))
    assert calls == [100, 100, 100, 100]


def test_callable_logits():
    logits = np.array([[1.0, 2.0, 3.0]])
    bb = mde.wrap(
        lambda X: np.repeat(logits, len(X), 0), classes=[0, 1, 2], n_features=2, outputs="logits"
    )
    np.testing.assert_allclose(bb.predict_proba(np.zeros((2, 2)))[0], softmax(logits)[0])


def test_registry_custom_adapter():
    class Fixed(adapters.BlackBox):
        def __init__(self, model):
            self.classes_ = np.array([0, 1])
            self.n_features_in_ = 3

        def _predict_proba(self, X):
            return np.tile([0.25, 0.75], (len(X), 1))

    class MyModel:
        pass

    adapters.register_adapter("mine", lambda m: isinstance(m, MyModel), Fixed)
    try:
        assert adapters.registered_adapters()[0] == "mine"
        bb = mde.wrap(MyModel())
        np.testing.assert_allclose(bb.predict_proba(np.zeros((2, 3))), [[0.25, 0.75]] * 2)
    finally:
        adapters._REGISTRY[:] = [e for e in adapters._REGISTRY if e[0] != "mine"]


def test_bad_models_and_outputs():
    with pytest.raises(mde.AdapterError, match="no adapter"):
        mde.wrap(object())
    with pytest.raises(mde.AdapterError, match="classes"):
        mde.wrap(lambda X: X)
    bad = mde.wrap(lambda X: np.ones((len(X), 2)), classes=[0, 1], n_features=2)
    with pytest.raises(mde.AdapterError, match="sum to 1"):
        bad.predict_proba(np.zeros((3, 2)))
    wrong = mde.wrap(lambda X: np.ones((len(X), 3)) / 3, classes=[0, 1], n_features=2)
    with pytest.raises(mde.AdapterError, match="shape"):
        wrong.predict_proba(np.zeros((3, 2)))
    with pytest.raises(mde.AdapterError, match="not a fitted"):
        from adapters.sklearn import SklearnBlackBox

        SklearnBlackBox(LogisticRegression())


def test_blackbox_input_validation(model):
    bb = mde.wrap(model)
    with pytest.raises(mde.InputError, match="features"):
        bb.predict_proba(np.zeros((2, 5)))
    with pytest.raises(mde.InputError, match="NaN"):
        bb.predict_proba(np.full((2, 64), np.nan))
