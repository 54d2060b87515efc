"""Training: determinism, the bundle and its metadata."""

import json

import numpy as np
import pandas as pd
import pytest

from demandcast import bundle
from demandcast.model import fit, train_bundles


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_params, small_features):
    out = tmp_path_factory.mktemp("models")
    metas = train_bundles(small_features, small_params, out)
    return out, metas


def test_same_inputs_same_model_bytes(small_params, small_features):
    cutoff = small_features.loc[small_features["sales"].notna(), "date"].max()
    a, meta_a, _ = fit(small_features, cutoff, small_params)
    b, meta_b, _ = fit(small_features, cutoff, small_params)
    assert a == b and meta_a == meta_b


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
    assert meta.frequency.name == "day" and meta.outputs == ["mean"]
    assert forecast.shape == (12 * small_params.horizon, len(meta.features))
    assert meta.base_margin == "log_level" and meta.feature_names[-1] == "log_level"
    kinds = {f.name: (f.kind, f.monitored) for f in meta.features}
    assert kinds["dayofweek"] == ("calendar", False) and kinds["store_enc"] == ("encoding", False)
    assert kinds["r_mean_28"] == ("sales", True)
    grid = loaded.grid()
    assert grid.shape == (12, small_params.horizon, 1) and (grid > 0).all()
    preds = bundle.predict_mean(loaded.booster, meta, forecast)
    np.testing.assert_array_equal(preds, grid[:, :, 0].ravel())
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
    for name in (bundle.MODEL_FILE, bundle.META_FILE):
        (broken / name).write_bytes((out / "serving" / name).read_bytes())
    np.save(broken / bundle.FORECAST_FILE, np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="does not match metadata"):
        bundle.read(broken)
