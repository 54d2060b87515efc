"""End to end: `dvc repro` in a scratch copy of the repository, on small data."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SMALL, merged, run, scratch_repo, write_params

pytestmark = pytest.mark.slow


def test_repro_on_small_synthetic_data(tmp_path):
    repo = scratch_repo(tmp_path, SMALL)
    first = run(["dvc", "repro"], repo)
    assert "model / oracle" not in first.stderr
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert set(metrics) == {
        "holdout",
        "holdout_open",
        "baselines",
        "oracle",
        "slices",
        "intervals",
    }
    holdout_keys = {"smape", "mae", "rmse", "mape", "wape", "rows", "start", "end"}
    assert set(metrics["holdout"]) == holdout_keys
    assert metrics["holdout"]["rows"] == 3 * 4 * 14
    assert set(metrics["baselines"]["seasonal_naive"]) == {"smape", "mae", "rmse", "wape"}
    volume = metrics["slices"]["volume"]
    assert sorted(volume) == ["q1", "q2", "q3", "q4", "q5"]
    assert sum(q["series"] for q in volume.values()) == 12  # every series in one quintile
    assert sum(q["rows"] for q in volume.values()) == metrics["holdout"]["rows"]
    ranges = metrics["intervals"]
    assert ranges["nominal"] == 80 and len(ranges["coverage_by_week"]) == 2  # 14 days
    assert 65 < ranges["coverage"] < 95 and set(ranges["pinball"]) == {"0.1", "0.5", "0.9"}
    assert set(ranges["oracle_pinball"]) == {"0.1", "0.5", "0.9"} and ranges["mean_width"] > 0
    assert (repo / "reports" / "plots" / "coverage.csv").stat().st_size > 0
    assert metrics["holdout"]["smape"] < metrics["baselines"]["seasonal_naive"]["smape"]
    for name in ("forecast.csv", "horizon.csv", "importance.csv"):
        assert (repo / "reports" / "plots" / name).stat().st_size > 0
    assert (repo / "dvc.lock").exists() and (repo / "models" / "serving" / "model.ubj").exists()

    again = run(["dvc", "repro"], repo)
    assert "Data and pipelines are up to date" in again.stdout
    assert "Running stage" not in again.stdout

    # a param change re-runs train and evaluate only
    write_params(repo, merged(SMALL, {"train": {"max_depth": 3}}))
    changed = run(["dvc", "repro"], repo)
    assert "Running stage 'train'" in changed.stdout
    assert "Running stage 'prepare'" not in changed.stdout


def user_table() -> pd.DataFrame:
    """A user-like export: other column names, string store IDs, no item, 5 stores, odd dates."""
    rng = np.random.default_rng(1)
    dates = pd.date_range("2021-03-07", periods=230)
    stores = [f"S{n:02d}" for n in range(1, 6)]
    rows = []
    for k, store in enumerate(stores):
        level = 20 + 10 * k
        weekly = 1 + 0.3 * (dates.dayofweek >= 5)
        rows.append(
            pd.DataFrame(
                {
                    "Day": dates.strftime("%Y-%m-%d"),
                    "Shop": store,
                    "Units": rng.poisson(level * weekly),
                    "Promo": 0,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    return table.drop(index=[10, 11, 300])  # days missing from the export: the gap rule fills them


def test_repro_on_a_users_store_only_file(tmp_path):
    params = {
        "horizon": 21,
        "data": {
            "source": "file",
            "path": "data/raw/shop_sales.csv",
            "columns": {
                "date": "Day",
                "store": "Shop",
                "item": None,
                "sales": "Units",
                "open": None,
            },
            "covariates": {"Promo": "flag"},
        },
        "train": {"n_estimators": 30},
    }
    repo = scratch_repo(tmp_path, params)
    raw = repo / "data" / "raw" / "shop_sales.csv"
    user_table().to_csv(raw, index=False)
    before = raw.read_bytes()
    run(["dvc", "repro"], repo)
    assert raw.read_bytes() == before  # raw input is never modified

    prepared = pd.read_parquet(repo / "data" / "prepared.parquet")
    assert list(prepared.columns[:3]) == ["date", "store", "sales"]
    report = json.loads((repo / "reports" / "prepare.json").read_text())
    assert report["filled_zero"] == 3
    # no plan given: the forecast window's Promo is the documented default, and said so
    assert report["plan"] == {"source": "defaults", "defaults": {"Promo": "0"}}
    meta = json.loads((repo / "models" / "serving" / "metadata.json").read_text())
    assert meta["series_keys"] == ["store"] and meta["series"][0] == ["S01"]
    assert meta["trained_through"] == "2021-10-22" and meta["horizon"] == 21
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert "oracle" not in metrics and metrics["holdout"]["rows"] == 5 * 21


def test_bad_file_is_refused_and_leaves_no_output(tmp_path):
    params = {
        "horizon": 7,
        "data": {
            "source": "file",
            "path": "data/raw/bad.csv",
            "columns": {"open": None},
            "covariates": {},
        },
    }
    repo = scratch_repo(tmp_path, params)
    table = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=40).strftime("%Y-%m-%d"),
            "store": 1,
            "item": 1,
            "sales": 3.0,
        }
    )
    table.loc[17, "sales"] = -2
    table.to_csv(repo / "data" / "raw" / "bad.csv", index=False)
    done = run([sys.executable, "-m", "demandcast", "prepare"], repo, check=False)
    assert done.returncode == 2
    assert (
        "data/raw/bad.csv: column 'sales': 1 of 40 rows are negative; first at row 18"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (repo / "data" / "prepared.parquet").exists()
    assert not list((repo / "data").glob(".*tmp"))
