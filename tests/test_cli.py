"""Command-line round trip: build, inspect, score, open, verify, in a temporary folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from mde.cli import main


@pytest.fixture()
def files(tmp_path, digits):
    import joblib

    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(digits.Xtr, digits.ytr)
    joblib.dump(model, tmp_path / "model.joblib")
    np.savez(tmp_path / "train.npz", X=digits.Xtr, y=digits.ytr)
    np.savez(tmp_path / "test.npz", X=digits.Xte, y=digits.yte)
    np.savez(tmp_path / "offer.npz", X=digits.Xc, y=digits.yc)
    header = ",".join([f"f{i}" for i in range(64)] + ["label"])
    np.savetxt(
        tmp_path / "offer.csv",
        np.column_stack([digits.Xc, digits.yc]),
        delimiter=",",
        header=header,
        comments="",
        fmt="%g",
    )
    return tmp_path, model


def _deliver_and_settle(d, artifact, proxy_file, data):
    """The data owner delivers against the signed quote `mde open` wrote; the model owner
    verifies and settles. Returns the first non-zero exit code, else 0."""
    code = main(
        ["deliver", "--artifact", artifact, "--quote", str(d / "quote.mdequote"), "--data", data]
        + ["--out", str(d / "delivery.mdedel")]
    )
    if code:
        return code
    return main(
        ["settle", "--proxy", proxy_file, "--delivery", str(d / "delivery.mdedel")]
        + ["--out", str(d / "settlement.mdesettle")]
    )


def test_round_trip(files, capsys):
    d, _ = files
    assert (
        main(
            [
                "build",
                "--model",
                str(d / "model.joblib"),
                "--train",
                str(d / "train.npz"),
                "--test",
                str(d / "test.npz"),
                "--option",
                "n_components=16",
                "--artifact-out",
                str(d / "a.mde"),
                "--proxy-out",
                str(d / "p.mdeproxy"),
            ]
        )
        == 0
    )
    built = json.loads(capsys.readouterr().out)
    assert (
        built["kind"] == "influence" and built["psi_dim"] == 170 and built["artifact_bytes"] < 4e6
    )

    assert main(["inspect", "--artifact", str(d / "a.mde")]) == 0
    assert json.loads(capsys.readouterr().out)["artifact_id"] == built["artifact_id"]

    assert (
        main(
            [
                "score",
                "--artifact",
                str(d / "a.mde"),
                "--data",
                str(d / "offer.csv"),
                "--per-record",
                "--out",
                str(d / "s.mdeseal"),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "open",
                "--proxy",
                str(d / "p.mdeproxy"),
                "--sealed",
                str(d / "s.mdeseal"),
                "--pricing",
                "uniform:unit_price=2",
                "--report-out",
                str(d / "r.json"),
            ]
        )
        == 0
    )
    quote = json.loads(capsys.readouterr().out)
    assert quote["pricing"] == "uniform" and quote["price"] == 2 * len(quote["accepted_records"])

    import mde

    proxy = mde.load_proxy(d / "p.mdeproxy")
    report = json.loads((d / "r.json").read_text())
    X = np.load(d / "offer.npz")["X"]
    y = np.load(d / "offer.npz")["y"]
    assert report["efficacy"] == pytest.approx(proxy.efficacy(X, y), rel=1e-3)

    assert (
        _deliver_and_settle(d, str(d / "a.mde"), str(d / "p.mdeproxy"), str(d / "offer.npz")) == 0
    )
    settled = json.loads(capsys.readouterr().out.split("\n}\n", 1)[1])
    assert settled["price"] == quote["price"] and settled["quoted_price"] == quote["price"]

    # the artifact is spent: a second open is refused with a clear error and exit code 2
    assert main(["open", "--proxy", str(d / "p.mdeproxy"), "--sealed", str(d / "s.mdeseal")]) == 2
    assert "already evaluated" in capsys.readouterr().err

    # a different delivery fails verification
    np.savez(d / "other.npz", X=X[::-1], y=y[::-1])
    assert (
        _deliver_and_settle(d, str(d / "a.mde"), str(d / "p.mdeproxy"), str(d / "other.npz")) == 2
    )
    assert "commitment" in capsys.readouterr().err


def test_build_from_onnx_model(files, capsys):
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    d, model = files
    onx = skl2onnx.convert_sklearn(
        model,
        initial_types=[("X", FloatTensorType([None, 64]))],
        options={id(model): {"zipmap": False}},
    )
    (d / "model.onnx").write_bytes(onx.SerializeToString())
    assert (
        main(
            [
                "build",
                "--model",
                str(d / "model.onnx"),
                "--train",
                str(d / "train.npz"),
                "--test",
                str(d / "test.npz"),
                "--artifact-out",
                str(d / "a.mde"),
                "--proxy-out",
                str(d / "p.mdeproxy"),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["fidelity"] > 0.7


def test_errors_are_reported_not_raised(files, capsys):
    d, _ = files
    bad = np.load(d / "offer.npz")["X"].copy()
    bad[0, 0] = np.nan
    np.savez(d / "nan.npz", X=bad, y=np.load(d / "offer.npz")["y"])
    assert (
        main(
            [
                "build",
                "--model",
                str(d / "model.joblib"),
                "--train",
                str(d / "nan.npz"),
                "--test",
                str(d / "test.npz"),
            ]
        )
        == 2
    )
    assert "NaN" in capsys.readouterr().err
    assert (
        main(["score", "--artifact", str(d / "missing.mde"), "--data", str(d / "offer.npz")]) == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_demo_runs_and_prices_clean_above_noisy(capsys):
    from mde.demo import run_demo

    out = run_demo()
    assert out["clean_efficacy"] > 0 > out["noisy_efficacy"]
    assert out["clean_price"] == 100.0
    text = capsys.readouterr().out
    assert "data owner" in text and "delivery verified" in text


def test_cli_reports_bad_files_and_options_cleanly(files, capsys):
    d, _ = files
    base = [
        "build",
        "--model",
        str(d / "model.joblib"),
        "--train",
        str(d / "train.npz"),
        "--test",
        str(d / "test.npz"),
    ]
    cases = [
        (base + ["--option", "l2=abc"], "l2"),
        (base + ["--option", "random_state=5"], "--seed"),
        (base + ["--artifact-out", str(d / "no" / "a.mde")], "does not exist"),
        (
            ["open", "--proxy", str(d / "p.mdeproxy"), "--sealed", str(d / "missing")],
            "does not exist",
        ),
        (
            ["price", "--report", str(d / "train.npz"), "--pricing", "binary:price=1"],
            "not a valid MDE efficacy report",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err


def test_failed_pricing_does_not_spend_the_evaluation(files, capsys):
    """Uniform pricing on a total fails; the report is kept and can be priced with `mde price`."""
    d, _ = files
    assert (
        main(
            [
                "build",
                "--model",
                str(d / "model.joblib"),
                "--train",
                str(d / "train.npz"),
                "--test",
                str(d / "test.npz"),
                "--artifact-out",
                str(d / "a.mde"),
                "--proxy-out",
                str(d / "p.mdeproxy"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "score",
                "--artifact",
                str(d / "a.mde"),
                "--data",
                str(d / "offer.npz"),
                "--out",
                str(d / "s.mdeseal"),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "open",
                "--proxy",
                str(d / "p.mdeproxy"),
                "--sealed",
                str(d / "s.mdeseal"),
                "--pricing",
                "uniform:unit_price=1",
                "--report-out",
                str(d / "r.json"),
            ]
        )
        == 2
    )
    assert "per-record" in capsys.readouterr().err
    # the offer is clean, correctly labelled digits: useful data, so its plaintext efficacy
    # is positive, well clear of the sealing noise, and binary pricing must buy it
    import mde

    offer = np.load(d / "offer.npz")
    plain = mde.load_proxy(d / "p.mdeproxy").efficacy(offer["X"], offer["y"])
    report = json.loads((d / "r.json").read_text())
    assert report["efficacy"] == pytest.approx(plain, rel=1e-3)
    assert plain > 0.1
    assert main(["price", "--report", str(d / "r.json"), "--pricing", "binary:price=7"]) == 0
    quote = json.loads(capsys.readouterr().out)
    assert quote["price"] == 7.0 and quote["accepted"] is True
    # a threshold just above the plaintext efficacy: no sale
    assert (
        main(
            [
                "price",
                "--report",
                str(d / "r.json"),
                "--pricing",
                f"binary:price=7,threshold={1.01 * plain!r}",
            ]
        )
        == 0
    )
    quote = json.loads(capsys.readouterr().out)
    assert quote["price"] == 0.0 and quote["accepted"] is False


@pytest.mark.parametrize(
    "kind,options",
    [
        ("tree", ["max_leaves=16", "n_samples=2000"]),
        ("student", ["hidden=16", "epochs=10", "n_samples=500"]),
        ("influence", ["order=2", "outlier_margin=null"]),
    ],
)
def test_round_trip_other_kinds(files, capsys, kind, options):
    if kind == "student":
        pytest.importorskip("torch")
    d, _ = files
    opts = [x for o in options for x in ("--option", o)]
    assert (
        main(
            [
                "build",
                "--model",
                str(d / "model.joblib"),
                "--train",
                str(d / "train.npz"),
                "--test",
                str(d / "test.npz"),
                "--kind",
                kind,
                *opts,
                "--artifact-out",
                str(d / "a.mde"),
                "--proxy-out",
                str(d / "p.mdeproxy"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == kind
    order = 2 if "order=2" in options else 1
    assert summary["order"] == order
    assert (
        main(
            [
                "score",
                "--artifact",
                str(d / "a.mde"),
                "--data",
                str(d / "offer.npz"),
                "--out",
                str(d / "s.mdeseal"),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "open",
                "--proxy",
                str(d / "p.mdeproxy"),
                "--sealed",
                str(d / "s.mdeseal"),
                "--pricing",
                "linear:rate=100",
                "--report-out",
                str(d / "r.json"),
            ]
        )
        == 0
    )
    with open(d / "r.json") as fh:
        assert (json.load(fh)["pairwise"] is not None) == (order == 2)
    assert (
        _deliver_and_settle(d, str(d / "a.mde"), str(d / "p.mdeproxy"), str(d / "offer.npz")) == 0
    )


@pytest.mark.parametrize("kind", ["tree", "student"])
def test_demo_other_kinds(kind, capsys):
    if kind == "student":
        pytest.importorskip("torch")
    from mde.demo import run_demo

    out = run_demo(kind=kind)
    # the smoothed tree values all data positively on digits (see README); both rank clean first
    assert out["clean_efficacy"] > out["noisy_efficacy"]
    assert f"built {kind} proxy" in capsys.readouterr().out


def test_hidden_mode_round_trip(files, capsys):
    d, _ = files
    assert (
        main(
            [
                "build",
                "--model",
                str(d / "model.joblib"),
                "--train",
                str(d / "train.npz"),
                "--test",
                str(d / "test.npz"),
                "--kind",
                "influence-poly",
                "--mode",
                "hidden",
                "--artifact-out",
                str(d / "h.mde"),
                "--proxy-out",
                str(d / "hp.mdeproxy"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["inspect", "--artifact", str(d / "h.mde")]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "hidden"
    # a sealed-value step on a hidden artifact fails with a clear message
    assert (
        main(
            [
                "score",
                "--artifact",
                str(d / "h.mde"),
                "--data",
                str(d / "offer.npz"),
                "--out",
                str(d / "s.bin"),
                "--quiet",
            ]
        )
        == 2
    )
    capsys.readouterr()
    assert (
        main(
            [
                "encrypt",
                "--artifact",
                str(d / "h.mde"),
                "--data",
                str(d / "offer.npz"),
                "--out",
                str(d / "req.bin"),
                "--key",
                str(d / "key.bin"),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--proxy",
                str(d / "hp.mdeproxy"),
                "--request",
                str(d / "req.bin"),
                "--out",
                str(d / "res.bin"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "decrypt",
                "--artifact",
                str(d / "h.mde"),
                "--key",
                str(d / "key.bin"),
                "--result",
                str(d / "res.bin"),
                "--out",
                str(d / "part.bin"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    # a second decryption of the same result is refused (the key file remembers it)
    assert (
        main(
            [
                "decrypt",
                "--artifact",
                str(d / "h.mde"),
                "--key",
                str(d / "key.bin"),
                "--result",
                str(d / "res.bin"),
                "--out",
                str(d / "part2.bin"),
            ]
        )
        == 2
    )
    assert "already decrypted" in capsys.readouterr().err
    assert (
        main(
            [
                "open",
                "--proxy",
                str(d / "hp.mdeproxy"),
                "--sealed",
                str(d / "part.bin"),
                "--pricing",
                "binary:price=10,threshold=-1000",
                "--report-out",
                str(d / "hr.json"),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["price"] == 10
    import mde

    proxy = mde.load_proxy(d / "hp.mdeproxy")
    offer = np.load(d / "offer.npz")
    report = json.loads((d / "hr.json").read_text())
    # hidden mode scores every record (the score graph has no membership sketch)
    plain = float(proxy.record_scores(offer["X"], offer["y"], exclude=False).sum())
    assert report["efficacy"] == pytest.approx(plain, rel=1e-3)
    assert (
        _deliver_and_settle(d, str(d / "h.mde"), str(d / "hp.mdeproxy"), str(d / "offer.npz")) == 0
    )


def test_hidden_demo_prices_clean_above_noisy(capsys):
    from mde.demo import run_demo

    out = run_demo(mode="hidden")
    assert out["clean_efficacy"] > 0 > out["noisy_efficacy"]
    assert out["clean_price"] == 100 and out["noisy_price"] == 0
    assert "no weights" in capsys.readouterr().out


def test_pin_identity_and_require_pinned(files, capsys):
    """A data owner that answers pinned buyers only: unpinned refused (exit 2), pinned out of
    band with `mde pin` answered."""
    import json

    from mde.wire.artifact import read_artifact

    d, _ = files
    argv = ["build", "--model", str(d / "model.joblib"), "--train", str(d / "train.npz")]
    argv += ["--test", str(d / "test.npz"), "--artifact-out", str(d / "a.mde")]
    assert main(argv + ["--proxy-out", str(d / "p.mdeproxy")]) == 0
    capsys.readouterr()
    assert main(["identity"]) == 0
    mine = json.loads(capsys.readouterr().out)["public_key"]
    buyer = read_artifact(d / "a.mde").signer
    assert buyer == mine  # one MDE_HOME plays both owners in this test
    score = ["score", "--artifact", str(d / "a.mde"), "--data", str(d / "offer.npz")]
    score += ["--out", str(d / "s.mdeseal"), "--quiet", "--require-pinned"]
    assert main(score) == 2
    assert "not pinned" in capsys.readouterr().err
    assert not (d / "s.mdeseal").exists()
    assert main(["pin", "--name", "model-owner", "--key", "zz"]) == 2
    assert "64 lowercase hex" in capsys.readouterr().err
    assert main(["pin", "--name", "model-owner", "--key", buyer]) == 0
    assert main(score) == 0 and (d / "s.mdeseal").exists()


def test_a_parquet_offer_is_scored_streamed_delivered_and_settled(files, digits, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    d, _ = files
    names = [f"f{i}" for i in range(64)]
    table = pa.table({**{n: digits.Xc[:, i] for i, n in enumerate(names)}, "label": digits.yc})
    pq.write_table(table, d / "offer.parquet", row_group_size=64)
    build = ["build", "--model", str(d / "model.joblib"), "--train", str(d / "train.npz")]
    build += ["--test", str(d / "test.npz"), "--option", "n_components=8"]
    build += ["--artifact-out", str(d / "a.mde"), "--proxy-out", str(d / "p.mdeproxy")]
    assert main(build) == 0
    score = ["score", "--artifact", str(d / "a.mde"), "--data", str(d / "offer.parquet")]
    assert main([*score, "--batch-size", "50", "--out", str(d / "s.mdeseal"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n}\n")[-2] + "\n}")["n_records"] == 300
    opened = ["open", "--proxy", str(d / "p.mdeproxy"), "--sealed", str(d / "s.mdeseal")]
    assert (
        main(
            [
                *opened,
                "--pricing",
                "linear:rate=10",
                "--quote-out",
                str(d / "quote.mdequote"),
                "--report-out",
                str(d / "r.json"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    parquet, proxy = str(d / "offer.parquet"), str(d / "p.mdeproxy")
    assert _deliver_and_settle(d, str(d / "a.mde"), proxy, parquet) == 0


def test_version_and_help_answer_without_loading_the_library(capsys):
    import subprocess
    import sys

    import mde

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"mde {mde.__version__}"
    # a fresh interpreter: the command line's help imports no estimator or crypto library
    code = "import sys; from mde.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
    heavy = "('sklearn', 'tenseal', 'onnxruntime', 'scipy')"
    code += f"print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
