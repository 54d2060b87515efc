"""The promotion gate: the candidate recipe against production on rows neither trained on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from demandcast import bundle, cli, gate
from demandcast.config import Params
from demandcast.data.schema import DATE, SALES
from demandcast.errors import DataError
from demandcast.features import build
from demandcast.metrics import Metrics
from demandcast.model import fit, train_bundles
from tests.conftest import SMALL

NEW_DAYS = 10  # days of sales after the production cutoff (< horizon 14: a partial horizon)


def with_train(**train: float) -> Params:
    return Params.model_validate({**SMALL, "train": {**SMALL["train"], **train}})


@pytest.fixture(scope="module")
def cutoff(small_prepared: pd.DataFrame) -> pd.Timestamp:
    return small_prepared[DATE].max() - pd.Timedelta(days=NEW_DAYS)


@pytest.fixture(scope="module")
def production(small_prepared, small_params, cutoff):
    """The model deployed at ``cutoff``: trained when the data ended there."""
    known = small_prepared[small_prepared[DATE] <= cutoff]
    features = build(known, small_params.horizon, small_params.features)
    return fit(features, cutoff, small_params).loaded()


@pytest.fixture(scope="module")
def deployable(small_features, small_params):
    last = small_features.loc[small_features[SALES].notna(), DATE].max()
    return fit(small_features, last, small_params).meta


def test_same_recipe_on_new_data_passes_with_an_identical_model(
    small_prepared, small_features, small_params, production, deployable, cutoff
):
    verdict = gate.judge(small_prepared, small_features, production, deployable, small_params)
    assert verdict.passed and verdict.method == gate.AFTER_CUTOFF
    # fitted at the same cutoff on the same history, the recipe rebuilds production exactly
    assert verdict.candidate.model_version == verdict.production.model_version
    assert verdict.candidate.metrics == verdict.production.metrics
    assert verdict.candidate.trained_through == str(cutoff.date())
    # scored on the 10 days after the cutoff (not a full horizon), every series
    assert verdict.rows == {
        "count": 12 * NEW_DAYS,
        "start": str((cutoff + pd.Timedelta(days=1)).date()),
        "end": str(small_prepared[DATE].max().date()),
    }
    assert verdict.deploy["model_version"] == deployable.model_version
    assert {"seasonal_naive", "oracle"} <= set(verdict.references)


def test_scores_are_the_evaluate_metrics_on_the_days_after_the_cutoff(
    small_prepared, production, cutoff
):
    frame = gate.forecast_frame(small_prepared, production)
    assert len(frame) == 12 * NEW_DAYS and frame["actual"].notna().all()
    assert frame[DATE].min() == cutoff + pd.Timedelta(days=1)
    # the first NEW_DAYS rows of each series' frozen forecast, predicted as the API would
    full = production.grid()[:, :, 0]
    np.testing.assert_allclose(
        frame["predicted"].to_numpy().reshape(12, NEW_DAYS), full[:, :NEW_DAYS], rtol=1e-6
    )


def test_a_worse_recipe_is_refused(small_prepared, small_features, production, deployable):
    worse = with_train(n_estimators=2, max_depth=1, learning_rate=0.05)
    verdict = gate.judge(small_prepared, small_features, production, deployable, worse)
    assert not verdict.passed
    assert verdict.candidate.metrics["smape"] > verdict.threshold
    assert "beyond the tolerance" in verdict.reason
    text = verdict.markdown()
    assert "REFUSED" in text and verdict.production.model_version in text
    assert f"production SMAPE x (1 + {worse.gate.tolerance:g})" in text


def test_a_better_recipe_passes(small_prepared, small_features, small_params, deployable, cutoff):
    known = small_prepared[small_prepared[DATE] <= cutoff]
    weak = with_train(n_estimators=2, max_depth=1, learning_rate=0.05)
    weak_production = fit(build(known, 14, weak.features), cutoff, weak).loaded()
    verdict = gate.judge(small_prepared, small_features, weak_production, deployable, small_params)
    assert verdict.passed
    assert verdict.candidate.metrics["smape"] < verdict.production.metrics["smape"]


def holdout_metrics(smape: float, start: str = "2014-02-11", end: str = "2014-02-24") -> Metrics:
    return Metrics.model_validate(
        {
            "holdout": {
                "smape": smape,
                "mae": 1.0,
                "rmse": 1.5,
                "rows": 168,
                "start": start,
                "end": end,
            },
            "baselines": {"seasonal_naive": {"smape": 25.0, "mae": 2.0, "rmse": 3.0}},
            "oracle": {"smape": 15.0},
        }
    )


@pytest.mark.parametrize(
    ("candidate", "passed"), [(20.0, True), (20.19, True), (20.21, False), (19.0, True)]
)
def test_holdout_comparison_applies_the_tolerance(candidate, passed, production):
    meta = production.meta
    verdict = gate.compare_holdouts(
        holdout_metrics(20.0), holdout_metrics(candidate), meta, meta, tolerance=0.01
    )
    assert verdict.method == gate.HOLDOUT and verdict.passed is passed
    assert verdict.threshold == pytest.approx(20.2)
    assert verdict.rows == {"count": 168, "start": "2014-02-11", "end": "2014-02-24"}


def test_holdouts_over_different_days_are_not_compared(production):
    meta = production.meta
    verdict = gate.compare_holdouts(
        holdout_metrics(20.0), holdout_metrics(10.0, end="2014-03-03"), meta, meta, 0.01
    )
    assert not verdict.passed and verdict.candidate is None
    assert "cannot be compared" in verdict.reason and "2014-03-03" in verdict.reason


def test_no_new_sales_compares_the_eval_models(tmp_path, small_features, small_params):
    metas = train_bundles(small_features, small_params, tmp_path)
    last = small_features.loc[small_features[SALES].notna(), DATE].max()
    prepared = small_features.loc[small_features[SALES].notna(), ["store", "item", DATE, SALES]]
    production = bundle.read(tmp_path / "serving")
    assert production.meta.cutoff == last.date()
    with pytest.raises(DataError, match="--production-metrics"):
        gate.judge(prepared, small_features, production, metas["serving"], small_params)
    verdict = gate.judge(
        prepared,
        small_features,
        production,
        metas["serving"],
        small_params,
        production_metrics=holdout_metrics(20.0),
        candidate_metrics=holdout_metrics(20.5),
        candidate_eval=metas["eval"],
    )
    assert verdict.method == gate.HOLDOUT and not verdict.passed
    assert verdict.candidate.model_version == metas["eval"].model_version


def test_cli_writes_the_verdict_and_exits_1_when_refused(
    tmp_path, monkeypatch, small_prepared, small_features, production, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    small_prepared.to_parquet(cli.PREPARED)
    small_features.to_parquet(cli.FEATURES)
    worse = with_train(n_estimators=2, max_depth=1, learning_rate=0.05)
    train_bundles(small_features, worse, cli.MODELS)
    cli.METRICS.parent.mkdir()
    cli.METRICS.write_text(holdout_metrics(30.0).to_json())
    meta = production.meta
    model_bytes = bytes(production.booster.save_raw(raw_format="ubj"))
    trained = bundle.Trained(
        model_bytes, meta, production.forecast, production.history, production.open
    )
    bundle.write(tmp_path / "production", trained)
    (tmp_path / "params.yaml").write_text(json.dumps({**SMALL, "train": worse.train.model_dump()}))

    assert cli.main(["gate", "--production", "production"]) == cli.GATE_REFUSED
    report = json.loads(cli.GATE_REPORT.read_text())
    assert report["passed"] is False and report["method"] == "after_cutoff"
    assert report["production"]["model_version"] == meta.model_version
    assert "REFUSED" in cli.GATE_SUMMARY.read_text()
    assert "REFUSED" in capsys.readouterr().out

    assert cli.main(["gate", "--production", "nowhere"]) == 2
    assert "nowhere: not found" in capsys.readouterr().err


def with_holdout(smape: float, naive: float | None = 25.0) -> Metrics:
    """``holdout_metrics`` with the candidate's holdout SMAPE and its seasonal-naive baseline's
    (``None``: no such baseline in the report)."""
    data = json.loads(holdout_metrics(smape).to_json())
    if naive is None:
        data["baselines"] = {}
    else:
        data["baselines"]["seasonal_naive"]["smape"] = naive
    return Metrics.model_validate(data)


@pytest.mark.parametrize(
    ("smape", "naive", "why"),
    [
        (26.0, 25.0, "is not below the seasonal-naive baseline's 25.000"),
        (25.0, 25.0, "is not below the seasonal-naive baseline's 25.000"),  # strictly below
        (20.0, None, "no seasonal_naive baseline"),
    ],
)
def test_a_candidate_that_does_not_beat_the_seasonal_naive_baseline_is_refused(
    small_prepared, small_features, small_params, production, deployable, smape, naive, why
):
    """The same recipe rebuilds production exactly, so the comparison passes; a holdout no better
    than repeating last week (a broken batch of new data) refuses it all the same."""
    metrics = with_holdout(smape, naive)
    verdict = gate.judge(
        small_prepared,
        small_features,
        production,
        deployable,
        small_params,
        candidate_metrics=metrics,
    )
    assert verdict.candidate.metrics == verdict.production.metrics  # the comparison alone passes
    assert not verdict.passed and why in verdict.reason
    assert verdict.baseline == {
        "candidate_smape": smape,
        "seasonal_naive_smape": naive,
        "passed": False,
    }
    assert "REFUSED" in verdict.markdown()
    # the comparison's own rule still reads as met: the baseline is what refused it
    assert f"<= production SMAPE x (1 + {small_params.gate.tolerance:g})" in verdict.markdown()
    if naive is not None:
        assert f"Baseline: candidate holdout SMAPE {smape:.3f} is not below" in verdict.markdown()


def test_a_candidate_below_the_baseline_keeps_the_comparisons_verdict(
    small_prepared, small_features, small_params, production, deployable
):
    verdict = gate.judge(
        small_prepared,
        small_features,
        production,
        deployable,
        small_params,
        candidate_metrics=with_holdout(20.0),
    )
    assert verdict.passed and verdict.baseline["passed"]
    assert "Baseline: candidate holdout SMAPE 20.000 < seasonal naive 25.000" in verdict.markdown()
    assert verdict.as_dict()["baseline"]["seasonal_naive_smape"] == 25.0


@pytest.mark.parametrize(("smape", "passed"), [(20.0, True), (25.0, False), (30.0, False)])
def test_bootstrap_promotes_a_first_model_only_below_the_baseline(deployable, smape, passed):
    verdict = gate.judge_bootstrap(with_holdout(smape), deployable, tolerance=0.01)
    assert verdict.method == gate.BOOTSTRAP and verdict.passed is passed
    assert verdict.production is None and verdict.threshold is None
    assert verdict.rows == {"count": 168, "start": "2014-02-11", "end": "2014-02-24"}
    assert verdict.deploy["model_version"] == deployable.model_version
    text = verdict.markdown()
    assert "(bootstrap: first model)" in text and "nothing to compare with" in text
    assert ("PASSED" in text) is passed


def test_cli_gate_needs_a_production_model_or_an_explicit_bootstrap(
    tmp_path, monkeypatch, small_features, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(SMALL))
    with pytest.raises(SystemExit) as refused:  # no comparison and no bootstrap: refused
        cli.main(["gate"])
    assert refused.value.code == 2
    assert "one of the arguments --production --bootstrap is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["gate", "--bootstrap", "--production", "production"])
    capsys.readouterr()

    train_bundles(small_features, Params.model_validate(SMALL), cli.MODELS)
    cli.METRICS.parent.mkdir()
    cli.METRICS.write_text(with_holdout(20.0).to_json())
    assert cli.main(["gate", "--bootstrap"]) == 0
    report = json.loads(cli.GATE_REPORT.read_text())
    assert report["passed"] is True and report["method"] == "bootstrap"
    assert report["baseline"]["passed"] is True and report["production"] is None
    assert "bootstrap: first model" in cli.GATE_SUMMARY.read_text()

    cli.METRICS.write_text(with_holdout(26.0).to_json())
    assert cli.main(["gate", "--bootstrap"]) == cli.GATE_REFUSED
    assert json.loads(cli.GATE_REPORT.read_text())["passed"] is False
    capsys.readouterr()
