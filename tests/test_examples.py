"""The examples run end to end, as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mde.data_owner.ledger import DataOwnerLedger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


def run(*args, cwd):
    out = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_model_owner_and_data_owner(tmp_path):
    ex = os.path.join(ROOT, "examples")
    built = json.loads(
        run(os.path.join(ex, "model_owner.py"), "build", "--workdir", str(tmp_path), cwd=tmp_path)
    )
    run(os.path.join(ex, "data_owner.py"), "--workdir", str(tmp_path), cwd=tmp_path)
    quote = json.loads(
        run(os.path.join(ex, "model_owner.py"), "open", "--workdir", str(tmp_path), cwd=tmp_path)
    )
    assert quote["artifact_id"] == built["artifact_id"]
    assert quote["accepted"] and 10.0 <= quote["price"] <= 400.0

    import numpy as np

    import mde
    from mde import EfficacyReport

    proxy = mde.load_proxy(tmp_path / "proxy.mdeproxy")
    data = np.load(tmp_path / "delivery.npz")
    report = EfficacyReport.model_validate_json((tmp_path / "report.json").read_text())
    proxy.verify_delivery(data["X"], data["y"], report, seed=_seed(report))
    assert quote["price"] == min(400.0, max(10.0, 500.0 * report.efficacy))


def test_custom_pricing(tmp_path):
    out = run(os.path.join(ROOT, "examples", "custom_pricing.py"), cwd=tmp_path)
    quote = json.loads(out.strip().splitlines()[-1])
    assert quote["pricing"] == "budget" and quote["price"] <= 50.0
    assert quote["price"] == 2.0 * len(quote["accepted_records"])
