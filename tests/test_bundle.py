"""The bundle refuses any file changed after training, or mixed from two bundles, naming it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from demandcast import bundle
from demandcast.model import train_bundles


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, small_params, small_features):
    out = tmp_path_factory.mktemp("models")
    train_bundles(small_features, small_params, out)
    return out


@pytest.fixture
def copy(bundles, tmp_path):
    target = tmp_path / "serving"
    shutil.copytree(bundles / "serving", target)
    return target


def test_an_intact_bundle_reads_and_its_version_covers_every_file(bundles):
    model = bundle.read(bundles / "serving")
    manifest = json.loads((bundles / "serving" / bundle.MANIFEST_FILE).read_text())
    assert manifest["model_version"] == model.meta.model_version
    assert set(manifest["files"]) == set(bundle.CONTENT_FILES)
    assert manifest["booster_features"] == model.meta.feature_names[:-1]
    assert manifest["base_margin_column"] == len(model.meta.features) - 1
    # the two bundles differ in every file, so in their versions
    assert bundle.read(bundles / "eval").meta.model_version != model.meta.model_version


@pytest.mark.parametrize("name", list(bundle.CONTENT_FILES))
def test_a_file_from_the_other_bundle_is_refused(bundles, copy, name):
    if (bundles / "eval" / name).read_bytes() == (copy / name).read_bytes():
        assert bundle.read(copy).meta.model_version  # the same file: nothing to refuse
        return
    shutil.copy(bundles / "eval" / name, copy / name)
    with pytest.raises(bundle.BundleError, match=f"{name}: its sha256 differs"):
        bundle.read(copy)


def test_moving_the_base_margin_in_the_metadata_is_refused_even_with_a_new_manifest(copy):
    meta = json.loads((copy / bundle.META_FILE).read_text())
    meta["features"][0], meta["features"][-1] = meta["features"][-1], meta["features"][0]
    meta["base_margin"] = meta["features"][-1]["name"]
    (copy / bundle.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match=r"metadata\.json: its sha256 differs"):
        bundle.read(copy)
    # a forger who also rewrites the manifest's hashes still does not make the same version
    manifest = json.loads((copy / bundle.MANIFEST_FILE).read_text())
    manifest["files"][bundle.META_FILE] = bundle._sha256((copy / bundle.META_FILE).read_bytes())
    (copy / bundle.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(bundle.BundleError, match="do not make model"):
        bundle.read(copy)


def test_renamed_features_are_refused(copy):
    meta = json.loads((copy / bundle.META_FILE).read_text())
    meta["features"][0]["name"] = "renamed"
    loaded = bundle.Meta.from_dict(meta)
    model = bundle.read(copy.parent / "serving")
    model_bytes = (copy / bundle.MODEL_FILE).read_bytes()
    # a consistently re-versioned bundle whose metadata names other inputs than the booster
    forged = bundle.Trained(model_bytes, loaded, model.forecast, model.history, model.open)
    bundle.write(copy, bundle.versioned(forged))
    with pytest.raises(bundle.BundleError, match="booster's inputs"):
        bundle.read(copy)


def test_a_missing_or_foreign_manifest_is_refused(bundles, copy):
    shutil.copy(bundles / "eval" / bundle.MANIFEST_FILE, copy / bundle.MANIFEST_FILE)
    with pytest.raises(bundle.BundleError, match="sha256 differs"):
        bundle.read(copy)
    (copy / bundle.MANIFEST_FILE).unlink()
    with pytest.raises(bundle.BundleError, match=r"manifest\.json: missing"):
        bundle.read(copy)


def test_forecast_values_changed_in_place_are_refused(copy):
    forecast = np.load(copy / bundle.FORECAST_FILE)
    forecast[0, 0] += 1
    np.save(copy / bundle.FORECAST_FILE, forecast)
    with pytest.raises(bundle.BundleError, match=r"forecast\.npy: its sha256 differs"):
        bundle.read(copy)


@pytest.mark.parametrize("dispersion", [np.inf, 2.0, 20.0])
def test_count_quantiles_are_calibrated_for_slow_and_fast_sellers(dispersion):
    """Sales drawn from the distribution the ranges assume fall inside P10..P90 80% of the
    time and below P50 half of the time, from 0.05 to 500 a day (counted with the continuity
    spread, as evaluate does)."""
    rng = np.random.default_rng(1)
    for mean in (0.05, 0.5, 3.0, 20.0, 500.0):
        mu = np.full(40_000, mean)
        if np.isinf(dispersion):
            y = rng.poisson(mu)
        else:
            y = rng.negative_binomial(dispersion, dispersion / (dispersion + mu))
        q = bundle.count_quantiles(mu, np.full(len(mu), dispersion), [0.1, 0.5, 0.9])
        assert (q >= 0).all() and (q[:, 0] <= q[:, 1]).all() and (q[:, 1] <= q[:, 2]).all()
        inside = bundle.spread_inside(y, q[:, 0], q[:, 2]).mean()
        below = bundle.spread_inside(y, np.zeros(len(y)), q[:, 1]).mean()
        assert abs(inside - 0.8) < 0.01 and abs(below - 0.5) < 0.01, (mean, inside, below)


def test_large_counts_use_an_approximation_that_meets_the_exact_quantiles():
    scipy_stats = pytest.importorskip("scipy.stats")
    mean = np.array([1_200.0, 20_000.0])
    for r in (np.inf, 5.0):
        q = bundle.count_quantiles(mean, np.full(2, r), [0.1, 0.5, 0.9])
        if np.isinf(r):
            exact = scipy_stats.poisson.ppf([[0.1, 0.5, 0.9]], mean[:, None])
        else:
            exact = scipy_stats.nbinom.ppf([[0.1, 0.5, 0.9]], r, r / (r + mean[:, None]))
        np.testing.assert_allclose(q, exact, rtol=0.01)
