"""Bad input raises a clear MDEError subclass at every entry point; nothing is priced silently."""

from __future__ import annotations

import numpy as np
import pytest

import mde


def _entry_points(proxy, artifact):
    scorer = mde.load_artifact(artifact)
    return {
        "score": lambda X, y: scorer.score(X, y),
        "efficacy": proxy.efficacy,
        "record_scores": proxy.record_scores,
    }


@pytest.mark.parametrize("entry", ["score", "efficacy", "record_scores"])
def test_bad_inputs(proxy, artifact, digits, entry):
    f = _entry_points(proxy, artifact)[entry]
    X, y = digits.Xc[:20], digits.yc[:20]
    Xnan = X.copy()
    Xnan[3, 5] = np.nan
    with pytest.raises(mde.InputError, match="NaN"):
        f(Xnan, y)
    Xinf = X.copy()
    Xinf[0, 0] = np.inf
    with pytest.raises(mde.InputError, match="NaN or infinite"):
        f(Xinf, y)
    with pytest.raises(mde.InputError, match="64"):
        f(X[:, :10], y)
    with pytest.raises(mde.LabelError, match="not one of the model's classes"):
        f(X, np.r_[y[:-1], 42])
    with pytest.raises(mde.InputError, match="empty"):
        f(X[:0], y[:0])
    with pytest.raises(mde.InputError, match="must match|labels"):
        f(X, y[:-1])
    with pytest.raises(mde.InputError, match="2-D"):
        f(X[0], y[:1])
    with pytest.raises(mde.InputError, match="numeric"):
        f([["a"] * 64] * 20, y)


def test_string_labels_round_trip(tmp_path):
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_wine(return_X_y=True)
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te, c = idx[:70], idx[70:130], idx[130:]
    m = RandomForestClassifier(n_estimators=30, random_state=0).fit(X[tr], names[tr])
    proxy = mde.build_proxy(m, X[tr], names[tr], X[te], names[te], n_components=4, random_state=0)
    proxy.export(tmp_path / "w.mde")
    scorer = mde.load_artifact(tmp_path / "w.mde")
    assert sorted(scorer.classes) == ["barbera", "barolo", "grignolino"]
    report = proxy.open(scorer.score(X[c], names[c]))
    assert report.efficacy == pytest.approx(proxy.efficacy(X[c], names[c]), rel=3e-3)
    with pytest.raises(mde.LabelError, match="nebbiolo"):
        scorer.score(X[c], np.append(names[c][:-1], "nebbiolo"))


def test_build_proxy_validates_training_data(digits, model):
    bad = digits.Xtr.copy()
    bad[0, 0] = np.nan
    with pytest.raises(mde.InputError, match="NaN"):
        mde.build_proxy(model, bad, digits.ytr, digits.Xte, digits.yte)
    with pytest.raises(mde.LabelError):
        mde.build_proxy(model, digits.Xtr, digits.ytr + 100, digits.Xte, digits.yte)
    with pytest.raises(mde.InputError, match="empty"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte[:0], digits.yte[:0])


def test_errors_share_one_family():
    for cls in (
        mde.InputError,
        mde.LabelError,
        mde.AdapterError,
        mde.ArtifactError,
        mde.StorageError,
        mde.SealedScoreError,
        mde.ProtocolError,
        mde.ReplayError,
        mde.DeliveryError,
        mde.PricingError,
        mde.MissingDependencyError,
        mde.NotFittedError,
    ):
        assert issubclass(cls, mde.MDEError)
    assert issubclass(mde.StorageError, mde.ArtifactError)  # a damaged proxy file


def test_label_type_problems_are_input_errors(proxy, digits):
    X = digits.Xc[:4]
    with pytest.raises(mde.InputError, match="mixes label types"):
        proxy.efficacy(X, np.array([1, "a", None, 2], dtype=object))
    with pytest.raises(mde.LabelError, match="string but the model's classes are numbers"):
        proxy.efficacy(X, [1, "2", 3, 4])
    with pytest.raises(mde.InputError, match="complex"):
        proxy.efficacy(X.astype(complex), digits.yc[:4])


def test_data_frame_columns_must_match(digits, model, tmp_path):
    pd = pytest.importorskip("pandas")
    cols = [f"px{i}" for i in range(64)]
    Xtr = pd.DataFrame(digits.Xtr, columns=cols)
    Xte = pd.DataFrame(digits.Xte, columns=cols)
    proxy = mde.build_proxy(model, Xtr, digits.ytr, Xte, digits.yte, n_components=8, random_state=0)
    Xc = pd.DataFrame(digits.Xc, columns=cols)
    e = proxy.efficacy(Xc, digits.yc)
    assert e == pytest.approx(proxy.efficacy(digits.Xc, digits.yc))
    shuffled = Xc[cols[::-1]]
    with pytest.raises(mde.InputError, match="columns"):
        proxy.efficacy(shuffled, digits.yc)
    proxy.export(tmp_path / "a.mde")
    scorer = mde.load_artifact(tmp_path / "a.mde")
    assert scorer.manifest.feature_names == cols
    with pytest.raises(mde.InputError, match="columns"):
        scorer.score(shuffled, digits.yc)


def test_hyperparameters_are_validated(digits, model):
    for bad in ({"l2": "abc"}, {"l2": -1.0}, {"n_components": "abc"}, {"n_components": 2.5}):
        with pytest.raises(mde.InputError):
            mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, **bad)
    for bad in ({"max_leaves": 1}, {"alpha": 0.0}, {"n_samples": -5}):
        with pytest.raises(mde.InputError):
            mde.build_proxy(
                model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="tree", **bad
            )


def test_csv_labels_written_as_floats_are_numbers(tmp_path):
    from mde.data_io import read_dataset

    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0.0\n3,4,1.0\n")
    X, y = read_dataset(tmp_path / "d.csv")
    assert y.dtype.kind == "i" and y.tolist() == [0, 1]
    (tmp_path / "short.csv").write_text("a,b,label\n1,2,0\n3,4\n")
    with pytest.raises(mde.InputError, match="line 3"):
        read_dataset(tmp_path / "short.csv")
    np.savez(tmp_path / "obj.npz", X=np.array([[1, "a"]], dtype=object), y=np.array([0]))
    with pytest.raises(mde.InputError, match="pickle"):
        read_dataset(tmp_path / "obj.npz")
