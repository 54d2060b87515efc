"""Training: determinism, the bundle and its metadata."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from demandcast import bundle
from demandcast.data import synthetic
from demandcast.data.validate import prepare_table
from demandcast.features import build
from demandcast.model import calibrate, fit, train_bundles


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_params, small_features):
    out = tmp_path_factory.mktemp("models")
    metas = train_bundles(small_features, small_params, out)
    return out, metas


def test_same_inputs_same_model_bytes(small_params, small_features):
    cutoff = small_features.loc[small_features["sales"].notna(), "date"].max()
    a = fit(small_features, cutoff, small_params)
    b = fit(small_features, cutoff, small_params)
    assert a.model_bytes == b.model_bytes and a.meta == b.meta


def test_two_bundles_with_their_cutoffs(trained, small_params, small_prepared):
    _, metas = trained
    last = small_prepared["date"].max()
    h = small_params.horizon
    assert metas["serving"].trained_through == str(last.date())
    assert metas["eval"].trained_through == str((last - pd.Timedelta(days=h)).date())
    assert metas["serving"].model_version.startswith(f"{last:%Y%m%d}-")


def test_bundle_round_trip_and_metadata(trained, small_params):
    out, metas = trained
    loaded = bundle.read(out / "serving")
    meta, forecast = loaded.meta, loaded.forecast
    assert meta == metas["serving"]
    assert meta.series_keys == ["store", "item"] and len(meta.series) == 12
    assert meta.series[0] == [1, 1] and meta.horizon == small_params.horizon
    assert meta.frequency.name == "day" and meta.outputs == ["mean", "p10", "p50", "p90"]
    assert meta.quantiles == [0.1, 0.5, 0.9] and len(meta.dispersion) == 2  # 14 days: 2 weeks
    assert forecast.shape == (12 * small_params.horizon, len(meta.features))
    assert meta.base_margin == "log_level" and meta.feature_names[-1] == "log_level"
    kinds = {f.name: (f.kind, f.monitored) for f in meta.features}
    assert kinds["dayofweek"] == ("calendar", False) and kinds["store_enc"] == ("encoding", False)
    assert kinds["r_mean_28"] == ("sales", True)
    grid = loaded.grid()
    assert grid.shape == (12, small_params.horizon, 4) and (grid[:, :, 0] > 0).all()
    preds = bundle.predict_mean(loaded.booster, meta, forecast)
    np.testing.assert_array_equal(preds, grid[:, :, 0].ravel())
    low, median, high = grid[:, :, 1], grid[:, :, 2], grid[:, :, 3]
    assert (low <= median).all() and (median <= high).all() and (low < high).all()
    raw = json.loads((out / "serving" / "metadata.json").read_text())
    for key in (
        "model_version",
        "trained_through",
        "frequency",
        "horizon",
        "features",
        "outputs",
        "series_keys",
        "params_hash",
        "data_hash",
    ):
        assert raw[key], key


def test_corrupt_bundle_is_refused(trained, tmp_path):
    out, _ = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in (bundle.MODEL_FILE, bundle.META_FILE, bundle.MANIFEST_FILE):
        (broken / name).write_bytes((out / "serving" / name).read_bytes())
    np.save(broken / bundle.FORECAST_FILE, np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(bundle.BundleError, match=r"forecast\.npy: its sha256 differs"):
        bundle.read(broken)


def test_a_new_series_is_served_from_its_fallback_level(small_params, tmp_path):
    """Items launched 10 days before the end: too new to evaluate, still trained on where
    they can be and served, at the level of the sales they have had."""
    cfg = small_params.data.synthetic
    launch = synthetic.last_day(cfg) - dt.timedelta(days=9)
    with_new = cfg.model_copy(update={"new_items": 1, "new_items_start": launch})
    prepared, summary = prepare_table(synthetic.generate(with_new), "t", small_params)
    assert summary.series == 15 and summary.series_not_evaluated == 3
    features = build(prepared, small_params.horizon, small_params.features)
    metas = train_bundles(features, small_params, tmp_path)
    assert [5] not in [s[1:] for s in metas["eval"].series]  # not in the holdout model
    serving = bundle.read(tmp_path / "serving")
    grid = serving.grid()[:, :, 0]
    new = [i for i, s in enumerate(serving.meta.series) if s[1] == 5]
    assert len(new) == 3 and np.isfinite(grid).all()
    truth = prepared[prepared["item"] == 5].groupby("store")["true_mean"].mean().to_numpy()
    forecast = grid[new].mean(axis=1)
    assert (forecast > 0.5 * truth).all() and (forecast < 2 * truth).all(), (forecast, truth)


def test_calibrate_recovers_the_dispersion_of_the_errors(trained):
    _, metas = trained
    meta = metas["eval"]
    rng = np.random.default_rng(0)
    n = len(meta.series) * meta.horizon
    mean = np.full(n, 30.0)
    r = 4.0
    actual = rng.negative_binomial(r, r / (r + mean)).astype(float)
    got = calibrate(actual, mean, meta)
    assert len(got) == 2 and all(abs(d - r) / r < 0.35 for d in got), got
    assert calibrate(rng.poisson(mean).astype(float) * 0 + mean, mean, meta) == [None, None]


def test_the_bundle_ships_the_last_year_of_sales_for_people_to_see(trained, small_prepared):
    out, _ = trained
    model = bundle.read(out / "serving")
    assert model.history.shape == (12, 364)
    start = pd.Timestamp(model.meta.history_start)
    assert start + pd.Timedelta(days=363) == small_prepared["date"].max()
    one = small_prepared[(small_prepared["store"] == 1) & (small_prepared["item"] == 1)]
    expected = one.set_index("date")["sales"].loc[start:].to_numpy()
    np.testing.assert_array_equal(model.history[0], expected.astype(np.float32))
