"""New products never block the retraining loop: launched after the model's cutoff, they are
flagged by drift, trained on and served by the next model, at a sensible level."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from demandcast.api.app import create_app
from demandcast.api.settings import Settings
from tests.conftest import SMALL, merged, run, scratch_repo

pytestmark = pytest.mark.slow

PARAMS = merged(
    SMALL,
    {"horizon": 14, "data": {"synthetic": {"stores": 3, "items": 4, "days": 500}}},
)


def test_new_items_are_flagged_then_trained_on_and_served(tmp_path):
    repo = scratch_repo(tmp_path, PARAMS)
    run(["dvc", "repro"], repo)

    # two items launch in every store; 10 days of their sales arrive
    run(["python", "-m", "demandcast", "append", "--days", "10", "--new-items", "2"], repo)
    run(["dvc", "repro", "-s", "drift"], repo)
    flagged = json.loads((repo / "reports" / "drift.json").read_text())
    assert flagged["drift_detected"] and flagged["new_series"] == 6
    assert any("6 new series" in reason for reason in flagged["reasons"])

    # the retrain runs although the new items have 10 days of history, far less than an
    # evaluation needs: they are trained on and served, not evaluated
    run(["dvc", "repro"], repo)
    prepare = json.loads((repo / "reports" / "prepare.json").read_text())
    assert prepare["series"] == 18 and prepare["series_not_evaluated"] == 6
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert metrics["holdout"]["rows"] == 12 * 14  # the 12 old series only

    prepared = pd.read_parquet(repo / "data" / "prepared.parquet")
    settings = Settings(model_dir=repo / "models" / "serving", metrics_path=None)
    with TestClient(create_app(settings)) as client:
        for store in (1, 2, 3):
            for item in (5, 6):
                answer = client.get("/forecast", params={"store": store, "item": item})
                assert answer.status_code == 200, answer.text
                days = answer.json()["forecast"]
                assert len(days) == 14
                forecast = sum(day["sales"] for day in days) / len(days)
                sold = prepared.query("store == @store and item == @item")["sales"].mean()
                # what the item sold in its 10 days, within a factor of 2 (Poisson noise on a
                # few days, and the season moves on)
                assert 0.5 * sold < forecast < 2 * sold, (store, item, forecast, sold)
