"""Metrics against hand-computed values, and the baselines."""

import json

import numpy as np
import pandas as pd
import pytest

from demandcast.config import Weight
from demandcast.evaluate import baselines, report, score, summary_table
from demandcast.features import Panel
from demandcast.metrics import Metrics


def test_score_matches_hand_computed_values():
    y = np.array([10.0, 0.0, 4.0, 0.0])
    f = np.array([8.0, 2.0, 4.0, 0.0])
    m = score(y, f)
    # SMAPE rows: 200*2/18, 200*2/2, 0, 0 (both zero) -> mean
    assert m["smape"] == pytest.approx((400 / 18 + 200) / 4)
    assert m["mae"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(np.sqrt(8 / 4))
    assert m["mape"] == pytest.approx(100 * (0.2 + 0.0) / 2)  # rows with y > 0 only


def test_smape_bounds():
    assert score([5.0], [0.0])["smape"] == pytest.approx(200.0)
    assert score([0.0], [0.0])["smape"] == 0.0
    assert np.isnan(score([0.0], [1.0])["mape"])


def test_baselines():
    days = 400
    sales = np.tile(np.arange(7, dtype=float), days // 7 + 1)[:days][None, :]
    panel = Panel(keys=pd.DataFrame({"store": [1]}), start=pd.Timestamp("2024-01-01"), sales=sales)
    cutoff = panel.start + pd.Timedelta(days=380)
    out = baselines(panel, cutoff, horizon=10)
    truth = sales[0, 381:391]
    assert np.array_equal(out["seasonal_naive"][0], truth)  # weekly pattern repeats exactly
    assert np.array_equal(out["last_year"][0], truth)  # 364 days = 52 weeks
    assert out["mean_28"][0, 0] == pytest.approx(3.0)


def test_summary_table_lists_model_baselines_and_ratio():
    metrics = Metrics.model_validate(
        {
            "holdout": {
                "smape": 17.0,
                "mae": 4.0,
                "rmse": 5.0,
                "mape": 18.0,
                "rows": 10,
                "start": "2024-01-01",
                "end": "2024-01-10",
            },
            "baselines": {"seasonal_naive": {"smape": 24.0, "mae": 6.0, "rmse": 8.0}},
            "oracle": {"smape": 16.0},
        }
    )
    text = summary_table(metrics)
    assert "seasonal_naive" in text and "24.000" in text and "1.0625" in text


def holdout(actual, predicted, **baselines) -> pd.DataFrame:
    n = len(actual)
    frame = pd.DataFrame(
        {
            "store": np.arange(n) % 5 + 1,
            "date": pd.date_range("2024-01-01", periods=n),
            "actual": actual,
            "predicted": predicted,
            "volume": np.arange(n) % 5 + 1.0,
            "zero_share": 0.0,
        }
    )
    for name, values in baselines.items():
        frame[name] = values
    return frame


def test_metrics_never_hold_nan_or_infinity():
    """A baseline that covers part of the holdout is scored on those rows, with their count; one
    that covers none is left out; MAPE/WAPE without positive sales are absent, not NaN."""
    n = 10
    frame = holdout(
        np.zeros(n),  # no sales at all: MAPE and WAPE are undefined
        np.full(n, 0.5),
        seasonal_naive=np.r_[np.full(4, np.nan), np.ones(6)],
        last_year=np.full(n, np.nan),
        mean_28=np.ones(n),
    )
    metrics = report(frame, ["store"], 0.3)
    text = metrics.to_json()
    assert "NaN" not in text and "Infinity" not in text
    parsed = json.loads(text)
    assert "mape" not in parsed["holdout"] and "wape" not in parsed["holdout"]
    assert parsed["baselines"]["seasonal_naive"]["rows"] == 6
    assert "rows" not in parsed["baselines"]["mean_28"]  # it covers every row
    assert "last_year" not in parsed["baselines"]


def test_weighted_mae_reads_flags_in_any_spelling():
    frame = holdout(np.full(4, 10.0), np.array([8.0, 10.0, 10.0, 6.0]))
    frame["IsHoliday"] = ["TRUE", "false", "no", "Yes"]
    metrics = report(frame, ["store"], 0.3, Weight(column="IsHoliday", factor=5))
    # errors 2, 0, 0, 4 with weights 5, 1, 1, 5 -> (10 + 20) / 12
    assert metrics.holdout.wmae == pytest.approx(30 / 12, abs=1e-4)
    assert metrics.holdout.wape == pytest.approx(100 * 6 / 40)
    frame["IsHoliday"] = ["1", "0", "maybe", "1"]
    with pytest.raises(ValueError, match="'maybe' is not a flag"):
        report(frame, ["store"], 0.3, Weight(column="IsHoliday"))


def test_slices_by_volume_quintile_cover_every_series():
    frame = holdout(np.full(10, 4.0), np.full(10, 5.0))
    slices = report(frame, ["store"], 0.3).slices
    assert [s.series for s in slices.volume.values()] == [1, 1, 1, 1, 1]
    assert sum(s.rows for s in slices.volume.values()) == 10
    assert slices.intermittent.series == 0 and slices.intermittent.smape is None
