"""Features: calendar, the horizon rule, and the no-leakage property."""

import numpy as np
import pandas as pd
import pytest

from demandcast.config import FeatureParams
from demandcast.data import synthetic
from demandcast.data.validate import prepare_table
from demandcast.features import (
    LOG_LEVEL,
    _Cumulative,
    add_encodings,
    build,
    declared,
    to_panel,
    trainable,
    window_mean,
)
from demandcast.frequency import WEEK


def test_rows_run_from_first_day_to_horizon_past_the_end(
    small_params, small_prepared, small_features
):
    h = small_params.horizon
    first, last = small_prepared["date"].min(), small_prepared["date"].max()
    per_series = small_features.groupby(["store", "item"])["date"].agg(["min", "max", "count"])
    assert (per_series["min"] == first).all()
    assert (per_series["max"] == last + pd.Timedelta(days=h)).all()
    future = small_features[small_features["date"] > last]
    assert future["sales"].isna().all() and len(future) == h * len(per_series)
    assert small_features.loc[small_features["date"] <= last, "sales"].notna().all()
    # a series' first `horizon` days know no level `horizon` days back: not trainable
    no_level = small_features["log_level"].isna()
    assert (small_features.loc[no_level, "date"] < first + pd.Timedelta(days=h)).all()
    assert no_level.sum() == h * len(per_series)
    assert not trainable(small_features, last)[no_level.to_numpy()].any()


def test_no_feature_of_a_holdout_row_reads_holdout_sales(small_params, small_prepared):
    """Scramble every sale after the cutoff: no feature of any row up to cutoff + horizon moves."""
    h = small_params.horizon
    cutoff = small_prepared["date"].max() - pd.Timedelta(days=h)
    scrambled = small_prepared.copy()
    after = scrambled["date"] > cutoff
    rng = np.random.default_rng(0)
    scrambled.loc[after, "sales"] = rng.integers(0, 10_000, after.sum()).astype(float)

    original = build(small_prepared, h, small_params.features)
    changed = build(scrambled, h, small_params.features)
    window = original["date"] <= cutoff + pd.Timedelta(days=h)  # train rows + the whole holdout
    cols = [spec.name for spec in declared(original)]
    pd.testing.assert_frame_equal(original.loc[window, cols], changed.loc[window, cols])
    # ... and the test has teeth: the forecast rows past the holdout do see the scrambled sales
    beyond = ~window
    assert not np.allclose(original.loc[beyond, LOG_LEVEL], changed.loc[beyond, LOG_LEVEL])

    # encodings computed from training rows only are unchanged as well
    train_rows = (original["date"] <= cutoff).to_numpy()
    enc_a = add_encodings(original, train_rows)
    enc_b = add_encodings(changed, train_rows)
    pd.testing.assert_frame_equal(
        enc_a.loc[window, ["store_enc", "item_enc", "series_enc"]],
        enc_b.loc[window, ["store_enc", "item_enc", "series_enc"]],
    )


def test_window_mean_refuses_windows_newer_than_the_horizon():
    cum = _Cumulative(np.arange(20, dtype=float)[None, :], extra_days=5)
    with pytest.raises(ValueError, match="newer than the horizon"):
        window_mean(cum, horizon=5, end_lag=4, width=3)
    means = window_mean(cum, horizon=5, end_lag=5, width=3)
    # target day 10 sees days 3..5 -> mean 4; day 5 sees day 0 only -> 0; day 4 sees nothing
    assert means[0, 10] == 4.0 and means[0, 5] == 0.0 and np.isnan(means[0, 4])


def test_calendar_and_ratio_features(small_features):
    row = small_features[small_features["date"] == "2014-01-18"].iloc[0]  # a Saturday
    assert (row["dayofweek"], row["month"], row["dayofmonth"]) == (5, 1, 18)
    assert row["dayofyear"] == 18 and row["weekofyear"] == 3  # ISO week 3: Jan 13-19
    ratios = [c for c in small_features if c.startswith("r_")]
    assert {"r_mean_7", "r_mean_28", "r_same_weekday", "r_pooled_level"} <= set(ratios)
    # ratios to the series level sit around 1 for a stationary-ish series
    assert 0.7 < small_features["r_mean_28"].median() < 1.3


def test_panel_pads_late_series_with_nan():
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02"]),
            "store": [1, 1, 2],
            "sales": [1.0, 2.0, 3.0],
        }
    )
    panel = to_panel(frame)
    assert panel.keys["store"].tolist() == [1, 2]
    assert np.isnan(panel.sales[1, 0]) and panel.sales[1, 1] == 3.0


def test_features_are_declared_with_kinds_and_survive_parquet(small_features, tmp_path):
    small_features.to_parquet(tmp_path / "f.parquet")
    specs = declared(pd.read_parquet(tmp_path / "f.parquet"))
    assert specs == declared(small_features)
    kinds = {spec.name: (spec.kind, spec.monitored) for spec in specs}
    assert kinds["dayofweek"] == ("calendar", False) and kinds["r_mean_7"] == ("sales", True)
    assert specs[-1].name == LOG_LEVEL  # the base margin comes last
    # carried columns (the synthetic truth) are not model inputs: only declared ones are
    assert "true_mean" in small_features and "true_mean" not in kinds
    names = [spec.name for spec in specs]
    assert names[:5] == ["dayofweek", "month", "dayofmonth", "dayofyear", "weekofyear"]
    sales = [n for n in names if n.startswith("r_")]
    assert sales == sorted(sales)


def test_block_pass_gives_the_same_table_as_one_pass(small_params, small_prepared, small_features):
    """Pass 2 over blocks of series (as a partitioned engine maps it) changes nothing."""
    blocked = build(small_prepared, small_params.horizon, small_params.features, block_series=5)
    pd.testing.assert_frame_equal(blocked, small_features)
    assert declared(blocked) == declared(small_features)


def test_weekly_frequency_steps_in_weeks():
    dates = pd.date_range("2020-01-06", periods=160, freq="7D")
    frame = pd.DataFrame({"date": dates, "store": 1, "sales": np.arange(160, dtype=float)})
    feats = build(frame, 4, FeatureParams(windows=[28, 91]), WEEK)
    assert feats["date"].diff().dropna().eq(pd.Timedelta(days=7)).all()
    assert feats["date"].max() == dates[-1] + pd.Timedelta(weeks=4)
    names = [spec.name for spec in declared(feats)]
    assert "dayofweek" not in names and "weekofyear" in names
    # the mean of the 4 weeks ending 4 weeks before week t is the mean of sales t-7 .. t-4
    row = feats.set_index("date").loc[dates[100]]
    assert row["r_mean_4"] * np.exp(row[LOG_LEVEL]) == pytest.approx(np.mean([93, 94, 95, 96]))


def test_no_weekly_feature_reads_a_sale_newer_than_the_horizon_in_weeks(small_params):
    cfg = small_params.data.synthetic.model_copy(update={"frequency": "weekly", "days": 7 * 120})
    params = small_params.model_copy(update={"horizon": 6})
    prepared, summary = prepare_table(synthetic.generate(cfg), "weekly", params)
    assert summary.frequency == "weekly"
    h, week = params.horizon, pd.Timedelta(weeks=1)
    cutoff = prepared["date"].max() - h * week
    scrambled = prepared.copy()
    after = scrambled["date"] > cutoff
    scrambled.loc[after, "sales"] = np.random.default_rng(0).integers(0, 10_000, after.sum())
    original = build(prepared, h, params.features)
    changed = build(scrambled, h, params.features)
    steps = original.groupby(["store", "item"])["date"].diff().dropna()
    assert (steps == week).all()  # weekly rows, never spread over days
    window = original["date"] <= cutoff + h * week
    cols = [spec.name for spec in declared(original)]
    pd.testing.assert_frame_equal(original.loc[window, cols], changed.loc[window, cols])
    beyond = ~window & original["log_level"].notna()
    assert not np.allclose(original.loc[beyond, LOG_LEVEL], changed.loc[beyond, LOG_LEVEL])
    assert {"r_last_year_day", "r_last_year_month", "r_mean_4", "r_mean_13"} <= set(cols)
