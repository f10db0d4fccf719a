"""The fidelity suite's --quick mode runs end to end (CI smoke test, fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlxtend")


def test_quick_suite_runs_and_the_influence_proxy_tracks_retraining(capsys):
    from benchmarks.suite import main

    rows = main(["--quick", "--no-plot"])
    out = capsys.readouterr().out
    assert out.startswith("| scenario | black box | method | rho | seconds |")
    methods = {r["method"] for r in rows}
    assert {"influence", "influence sealed", "tree", "gradient norm", "KNN-Shapley (sum)", "random"} <= methods
    by = {(r["scenario"], r["black box"], r["method"]): r["rho"] for r in rows}
    for bb in ("logreg", "rf"):
        assert by[("label-noise", bb, "influence")] > 0.5
        assert by[("label-noise", bb, "gradient norm")] < 0  # seed 000: gradient norm is anti-correlated
        assert np.isclose(by[("label-noise", bb, "influence sealed")], by[("label-noise", bb, "influence")], atol=0.05)
