"""The examples run end to end, as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd):
    out = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_model_owner_and_data_owner(tmp_path):
    ex = os.path.join(ROOT, "examples")

    def step(script: str, name: str) -> dict:  # type: ignore[type-arg]
        out = run(os.path.join(ex, script), name, "--workdir", str(tmp_path), cwd=tmp_path)
        return json.loads(out.strip().splitlines()[-1])

    built = step("model_owner.py", "build")
    step("data_owner.py", "score")
    quote = step("model_owner.py", "open")
    assert quote["artifact_id"] == built["artifact_id"]
    assert quote["accepted"] and 10.0 <= quote["price"] <= 400.0
    assert step("data_owner.py", "deliver") == {"delivered": 400}
    settled = step("model_owner.py", "settle")
    accepted = step("data_owner.py", "accept")

    from mde import EfficacyReport

    report = EfficacyReport.model_validate_json((tmp_path / "report.json").read_text())
    assert quote["price"] == min(400.0, max(10.0, 500.0 * report.efficacy))
    # the settlement prices the recomputed (noise-free) efficacy, never above the quote
    assert settled["verified_efficacy"] == pytest.approx(report.efficacy, rel=1e-3)
    assert settled["price"] <= quote["price"]
    verified = min(400.0, max(10.0, 500.0 * settled["verified_efficacy"]))
    assert settled["price"] == pytest.approx(min(verified, quote["price"]), rel=1e-12)
    assert accepted == {"price": settled["price"], "quoted_price": quote["price"]}


def test_custom_pricing(tmp_path):
    out = run(os.path.join(ROOT, "examples", "custom_pricing.py"), cwd=tmp_path)
    quote = json.loads(out.strip().splitlines()[-1])
    assert quote["pricing"] == "budget" and quote["price"] <= 50.0
    assert quote["price"] == 2.0 * len(quote["accepted_records"])
