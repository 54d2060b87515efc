"""Behaviour of the trained serving model (the Made-With-ML habit): invariances and
directional expectations a forecaster must meet, checked on ``models/serving`` as ``train``
writes it, on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demandcast import bundle
from demandcast.data.schema import DATE, SALES, STORE
from demandcast.data.synthetic import WEEKDAY
from demandcast.features import build
from demandcast.model import train_bundles


def serving(prepared: pd.DataFrame, params, tmp_path) -> tuple[bundle.Meta, np.ndarray]:
    """Train as the pipeline does; the serving model's metadata and mean forecast grid."""
    features = build(prepared, params.horizon, params.features)
    train_bundles(features, params, tmp_path)
    model = bundle.read(tmp_path / "serving")
    return model.meta, model.grid()[:, :, 0]


@pytest.fixture(scope="module")
def baseline(small_prepared, small_params, tmp_path_factory):
    return serving(small_prepared, small_params, tmp_path_factory.mktemp("base"))


def rows_of(meta: bundle.Meta, store: int) -> list[int]:
    return [i for i, series in enumerate(meta.series) if series[0] == store]


def test_relabelling_a_store_leaves_its_forecast_unchanged(
    small_prepared, small_params, baseline, tmp_path
):
    meta, grid = baseline
    relabelled = small_prepared.copy()
    relabelled[STORE] = relabelled[STORE].replace({1: 99})
    new_meta, new_grid = serving(relabelled, small_params, tmp_path)
    old, new = rows_of(meta, 1), rows_of(new_meta, 99)
    assert len(old) == len(new) == 4
    np.testing.assert_allclose(new_grid[new], grid[old], rtol=1e-3)


def test_a_higher_level_in_the_history_raises_the_forecast_by_about_as_much(
    small_prepared, small_params, baseline, tmp_path
):
    meta, grid = baseline
    higher = small_prepared.copy()
    store_1 = higher[STORE] == 1
    higher.loc[store_1, SALES] = np.round(higher.loc[store_1, SALES] * 1.3)
    new_meta, new_grid = serving(higher, small_params, tmp_path)
    ratio = new_grid[rows_of(new_meta, 1)].sum() / grid[rows_of(meta, 1)].sum()
    assert 1.2 < ratio < 1.4, ratio
    others = [i for i in range(len(meta.series)) if i not in rows_of(meta, 1)]
    unchanged = new_grid[others].sum() / grid[others].sum()
    assert abs(unchanged - 1) < 0.05, unchanged  # the other stores barely move


def test_the_weekday_pattern_of_the_data_shows_in_the_forecast(baseline):
    meta, grid = baseline
    dates = pd.date_range(meta.forecast_start, periods=meta.horizon, freq="D")
    by_weekday = pd.Series(grid.sum(axis=0), index=dates.dayofweek).groupby(level=0).mean()
    profile = by_weekday / by_weekday.mean()
    truth = WEEKDAY / WEEKDAY.mean()
    # the small test model (40 trees) damps the pattern a little, but keeps its shape
    assert np.corrcoef(profile.to_numpy(), truth)[0, 1] > 0.95, profile.round(3).tolist()
    spread = profile.max() - profile.min()
    assert 0.5 * (truth.max() - truth.min()) < spread < 1.5 * (truth.max() - truth.min())
    assert profile.idxmax() in (4, 5, 6) and profile.idxmin() == 0  # weekend peak, Monday low


def test_serving_forecasts_start_the_day_after_the_data(small_prepared, baseline):
    meta, grid = baseline
    assert meta.forecast_start == (small_prepared[DATE].max() + pd.Timedelta(days=1)).date()
    assert np.isfinite(grid).all() and (grid > 0).all()
