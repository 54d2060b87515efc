"""Metrics against hand-computed values, and the baselines."""

import numpy as np
import pandas as pd
import pytest

from demandcast.evaluate import baselines, score, summary_table
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
