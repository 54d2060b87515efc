"""Drift of the deployed model: windows, checks, the report, the CLI, and the loop end to end."""

from __future__ import annotations

import datetime as dt
import html
import json

import numpy as np
import pandas as pd
import pytest

from demandcast import bundle, drift, drift_html
from demandcast.cli import main
from demandcast.config import Change, DriftParams, Params
from demandcast.data import synthetic
from demandcast.data.validate import prepare_table
from demandcast.errors import ConfigError, DataError
from demandcast.evaluate import holdout_frame, report
from demandcast.frequency import DAY as DAILY
from demandcast.metrics import Holdout
from demandcast.model import train_bundles
from tests.conftest import SMALL, merged, run, scratch_repo

DAY = pd.Timedelta(days=1)


def today(params: Params, extra_days: int, *changes: Change, new_items: int = 0) -> pd.DataFrame:
    """The small synthetic data ``extra_days`` after the training data, prepared as drift does."""
    cfg = params.data.synthetic
    first_new = synthetic.last_day(cfg) + dt.timedelta(days=1)
    cfg = cfg.model_copy(
        update={
            "days": cfg.days + extra_days,
            "changes": list(changes),
            "new_items": new_items,
            "new_items_start": first_new if new_items else None,
        }
    )
    prepared, _ = prepare_table(
        synthetic.generate(cfg), "synthetic", params, require_evaluable=False
    )
    return prepared


def shift_from(params: Params, level_shift: float) -> Change:
    first_new = synthetic.last_day(params.data.synthetic) + dt.timedelta(days=1)
    return Change(start=first_new, level_shift=level_shift)


@pytest.fixture(scope="module")
def models(small_params, small_features, tmp_path_factory) -> tuple[bundle.Bundle, bundle.Bundle]:
    out = tmp_path_factory.mktemp("models")
    train_bundles(small_features, small_params, out)
    return bundle.read(out / "serving"), bundle.read(out / "eval")


@pytest.fixture(scope="module")
def baseline(small_prepared, models) -> Holdout:
    evaluation = models[1]
    frame = holdout_frame(small_prepared, evaluation)
    return report(frame, evaluation.meta.series_keys, 0.3).holdout


def assess(prepared, models, baseline, params) -> dict:
    result = drift.assess(prepared, *models, baseline, params).report
    json.dumps(result)  # the report is plain JSON
    return result


# --- windows ---------------------------------------------------------------------------------


def test_reference_is_the_same_weeks_a_year_earlier_when_the_history_allows():
    cutoff = pd.Timestamp("2017-12-31")
    current = drift.Window(cutoff + DAY, cutoff + 28 * DAY, DAILY)
    start = pd.Timestamp("2013-01-01")
    ref, kind = drift.reference_window(current, cutoff, start, 90, "season")
    assert kind == "season" and ref.periods == 28
    assert ref.start == current.start - pd.Timedelta(days=364)
    assert ref.start.dayofweek == current.start.dayofweek  # 52 weeks: same weekdays

    long = drift.Window(
        cutoff + DAY, cutoff + 400 * DAY, DAILY
    )  # longer than a year: two years back
    ref, kind = drift.reference_window(long, cutoff, start, 90, "season")
    assert kind == "season" and ref.end <= cutoff and ref.start == long.start - 728 * DAY


def test_reference_falls_back_to_the_days_before_the_cutoff():
    cutoff = pd.Timestamp("2017-12-31")
    current = drift.Window(cutoff + DAY, cutoff + 10 * DAY, DAILY)
    recent = drift.Window(cutoff - 9 * DAY, cutoff, DAILY)
    # the prior-year level of a year-earlier row would reach before the data
    short_history = pd.Timestamp("2015-06-01")
    assert drift.reference_window(current, cutoff, short_history, 90, "season") == (
        recent,
        "recent",
    )
    start = pd.Timestamp("2013-01-01")
    assert drift.reference_window(current, cutoff, start, 90, "recent") == (recent, "recent")


# --- the checks ------------------------------------------------------------------------------


def test_data_drift_flags_a_shifted_column_and_skips_empty_ones():
    rng = np.random.default_rng(0)
    n = 3000
    reference = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": np.nan})
    current = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(0.5, 1, n), "c": 1.0})
    summary, run_ = drift.data_drift(reference, current, ["a", "b", "c"], DriftParams())
    assert summary["drifted_columns"] == ["b"] and summary["skipped_columns"] == ["c"]
    assert summary["share_drifted"] == 0.5 and summary["threshold"] == 0.5
    assert summary["method"] == "wasserstein" and summary["column_threshold"] == 0.2
    assert summary["scores"]["b"] > 0.4 and summary["scores"]["a"] < 0.1
    assert "<html" in run_.get_html_str(as_iframe=False)[:2000].lower()


def test_an_unknown_drift_method_is_a_config_error():
    frame = pd.DataFrame({"a": np.arange(50.0)})
    with pytest.raises(ConfigError, match=r"drift\.stattest: No stattest found of name walrus"):
        drift.data_drift(frame, frame, ["a"], DriftParams(stattest="walrus"))


def test_concept_drift_is_relative_to_the_evaluation_error():
    actual = pd.Series([10.0, 20.0, 0.0, 5.0])
    result = drift.concept_drift(
        actual,
        np.array([10.0, 10.0, 0.0, 5.0]),
        Holdout(smape=10.0, mae=2.0, rmse=3.0, rows=4, start="2024-01-01", end="2024-01-04"),
        DriftParams(),
    )
    # SMAPE: 200*10/30 = 66.67 on one row of 4 -> 16.67; MAE 10/4 = 2.5
    assert result["smape"] == pytest.approx(16.6667) and result["relative_change"] == 0.6667
    assert result["mae"] == 2.5 and result["mae_relative_change"] == 0.25
    assert result["baseline_smape"] == 10.0 and result["threshold"] == 0.2
    assert "oracle_smape" not in result


def findings(share=0.1, change=0.0, days=28, unseen=(), match=True) -> list[str]:
    data = {"share_drifted": share, "drifted_columns": ["sales"], "scores": {"sales": 1.0}}
    concept = {"smape": 20.0, "baseline_smape": 16.0, "relative_change": change}
    return drift.findings(data, concept, days, list(unseen), match, DriftParams())


def test_each_check_raises_the_flag_with_a_reason():
    assert findings() == []
    assert findings(share=0.5)[0].startswith("data drift: 1 of 1 monitored columns drifted")
    assert findings(share=0.49) == []
    assert findings(change=0.21)[0].startswith("concept drift: SMAPE 20.00 on the new sales")
    assert findings(change=0.2) == []
    assert findings(change=0.5, days=6) == []  # too few days to judge the error
    assert findings(unseen=[{"store": 1, "item": 51}]) == [
        "1 new series the model has never seen (first: store=1, item=51): retrain to forecast them"
    ]
    assert "inputs rebuilt from today's data differ" in findings(match=False)[0]
    assert len(findings(share=0.9, change=0.9, unseen=[{"store": 2}], match=False)) == 4


def test_known_and_new_series_for_a_store_only_table():
    meta = bundle.Meta(
        **{
            **dict.fromkeys(bundle.Meta.__dataclass_fields__, None),
            "trained_through": "2024-01-10",
            "series_keys": ["store"],
            "series": [["S01"], ["S02"]],
        }
    )
    frame = pd.DataFrame(
        {
            "store": ["S01", "S02", "S03", "S03"],
            "date": pd.to_datetime(["2024-01-11", "2024-01-11", "2024-01-10", "2024-01-11"]),
        }
    )
    assert drift.known_series(frame, meta).tolist() == [True, True, False, False]
    assert drift.new_series(frame, meta) == [{"store": "S03"}]


# --- the report on small data ---------------------------------------------------------------


def test_no_new_sales_yet_shows_the_holdout_and_lowers_the_flag(
    small_params, small_prepared, models, baseline
):
    deployed, evaluation = models
    result = assess(small_prepared, models, baseline, small_params)
    assert result["drift_detected"] is False and result["reasons"] == []
    assert result["notes"][0].startswith("no sales after the deployed model's cutoff")
    assert result["model"] == {
        "version": deployed.meta.model_version,
        "trained_through": deployed.meta.trained_through,
    }
    assert result["current"] == {
        "start": str(evaluation.meta.forecast_start),
        "end": deployed.meta.trained_through,
        "days": 14,
        "rows": 12 * 14,
        "source": "holdout",
        "scored_by": evaluation.meta.model_version,
    }
    # the same model on the same rows as the evaluation: the same error
    assert result["concept_drift"]["smape"] == pytest.approx(baseline.smape, abs=1e-3)
    assert abs(result["concept_drift"]["relative_change"]) < 1e-4
    assert result["inputs_match"] is True and result["new_series"] == 0


def test_new_sales_are_scored_with_the_deployed_model_on_its_frozen_inputs(
    small_params, models, baseline
):
    deployed, _ = models
    result = assess(today(small_params, 14), models, baseline, small_params)
    cutoff = pd.Timestamp(deployed.meta.cutoff)
    assert result["current"]["source"] == "new sales"
    assert result["current"]["scored_by"] == deployed.meta.model_version
    assert result["current"]["start"] == str((cutoff + DAY).date())
    assert result["current"]["end"] == str((cutoff + 14 * DAY).date())
    assert result["current"]["rows"] == 12 * 14
    # rebuilt from today's data, the inputs of the forecast days are exactly the served ones
    assert result["inputs_match"] is True
    assert result["concept_drift"]["relative_change"] < 0.2
    assert not any(r.startswith("concept drift") for r in result["reasons"])
    assert result["reference"]["rows"] == 12 * 14
    monitored = set(result["data_drift"]["scores"]) | set(result["data_drift"]["skipped_columns"])
    assert "sales" in monitored and "log_level" in monitored
    assert not monitored & {"dayofyear", "month", "store_enc", "series_enc"}


def test_a_level_shift_raises_concept_drift(small_params, models, baseline):
    shifted = today(small_params, 14, shift_from(small_params, 1.0))
    result = assess(shifted, models, baseline, small_params)
    assert result["drift_detected"] is True
    (concept,) = [r for r in result["reasons"] if r.startswith("concept drift")]
    assert result["concept_drift"]["relative_change"] > 0.5
    assert f"vs {baseline.smape:.2f} at evaluation" in concept


def test_a_few_days_are_reported_but_not_judged(small_params, models, baseline):
    shifted = today(small_params, 3, shift_from(small_params, 1.0))
    result = assess(shifted, models, baseline, small_params)
    assert result["current"]["days"] == 3 and result["concept_drift"]["relative_change"] > 0.5
    assert not any(r.startswith("concept drift") for r in result["reasons"])
    assert "concept drift is judged from 7 days of new sales; 3 so far" in result["notes"]


def test_new_series_raise_the_flag(small_params, models, baseline):
    result = assess(today(small_params, 14, new_items=1), models, baseline, small_params)
    assert result["new_series"] == 3  # item 5 in each of the 3 stores
    assert "3 new series the model has never seen (first: store=1, item=5)" in " ".join(
        result["reasons"]
    )
    assert result["current"]["rows"] == 12 * 14  # scored: the series the model knows


def test_revised_history_is_a_reason_to_retrain(small_params, models, baseline):
    prepared = today(small_params, 14)
    cutoff = pd.Timestamp(models[0].meta.cutoff)
    prepared.loc[prepared["date"] == cutoff - 3 * DAY, "sales"] += 5  # a late correction
    result = assess(prepared, models, baseline, small_params)
    assert result["inputs_match"] is False
    assert any("inputs rebuilt from today's data differ" in r for r in result["reasons"])


def test_a_stale_evaluation_is_refused(small_params, small_prepared, models, baseline):
    with pytest.raises(DataError, match=r"reports/metrics.json evaluates a holdout ending"):
        drift.assess(
            small_prepared, *models, baseline.model_copy(update={"end": "1999-01-01"}), small_params
        )


# --- the CLI, on a user's file ----------------------------------------------------------------


def test_cli_on_a_file_source_a_newer_export_is_judged(tmp_path, monkeypatch, small_params):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    export = tmp_path / "data" / "raw" / "sales.csv"
    params = small_params.model_dump(mode="json")
    params["data"] = {"source": "file", "path": "data/raw/sales.csv"}
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    cfg = small_params.data.synthetic
    synthetic.generate(cfg, with_true_mean=False).to_csv(export, index=False)
    for stage in ("prepare", "features", "train", "evaluate"):
        assert main([stage]) == 0
    assert main(["drift", "--exit-code"]) == 0
    assert json.loads((tmp_path / "reports/drift.json").read_text())["current"]["source"] == (
        "holdout"
    )

    assert main(["append", "--days", "7"]) == 2  # a file has no generator to continue

    # the next export: 14 more days, demand doubled from the first new day
    newer = cfg.model_copy(
        update={"days": cfg.days + 14, "changes": [shift_from(small_params, 1.0)]}
    )
    synthetic.generate(newer, with_true_mean=False).to_csv(export, index=False)
    assert main(["drift"]) == 0  # the flag is data, not an error
    assert main(["drift", "--exit-code"]) == 3
    result = json.loads((tmp_path / "reports/drift.json").read_text())
    assert result["drift_detected"] is True and result["current"]["days"] == 14
    assert "oracle_smape" not in result["concept_drift"]
    assert (tmp_path / "reports/drift.html").stat().st_size > 10_000


def test_cli_drift_before_the_pipeline_ran_is_an_actionable_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("{}\n")
    assert main(["drift"]) == 2
    assert "models/serving: not found; run the pipeline first" in capsys.readouterr().err


# --- the loop, end to end --------------------------------------------------------------------

# Small, but not tiny: normed Wasserstein has sampling noise of about 1/sqrt(series), so with a
# few dozen series clean data would read as drift; and the same weeks a year earlier need
# horizon + 2 x 364 days of history before them for complete features.
LOOP = merged(
    SMALL,
    {
        "horizon": 28,
        "data": {"synthetic": {"seed": 7, "stores": 10, "items": 30, "days": 1150}},
        "train": {"n_estimators": 40, "learning_rate": 0.3},
    },
)


def drift_json(repo) -> dict:
    return json.loads((repo / "reports" / "drift.json").read_text())


@pytest.mark.slow
def test_the_monitoring_loop_end_to_end(tmp_path):
    repo = scratch_repo(tmp_path, LOOP)
    run(["dvc", "repro"], repo)
    first = drift_json(repo)
    assert first["drift_detected"] is False and first["current"]["source"] == "holdout"
    cutoff = pd.Timestamp(first["model"]["trained_through"])

    # a week of ordinary sales: judged by the deployed model alone, no retraining
    run(["python", "-m", "demandcast", "append", "--days", "7"], repo)
    monitor = run(["dvc", "repro", "--single-item", "drift"], repo)
    assert "Running stage 'drift'" in monitor.stdout
    assert "Running stage 'train'" not in monitor.stdout
    clean = drift_json(repo)
    week = synthetic.generate(
        Params.model_validate(LOOP).data.synthetic.model_copy(update={"days": 1157})
    ).query("date > @cutoff")
    assert len(week) == 300 * 7
    assert clean["current"] == {
        "start": str((cutoff + DAY).date()),
        "end": str((cutoff + 7 * DAY).date()),
        "days": 7,
        "rows": int((week["open"] == 1).sum()),  # closed days are not scored: known zeros
        "source": "new sales",
        "scored_by": first["model"]["version"],
    }
    assert clean["reference"]["kind"] == "season"
    assert clean["drift_detected"] is False, clean["reasons"]

    # three weeks of +50% demand
    run(["python", "-m", "demandcast", "append", "--days", "21", "--level-shift", "0.5"], repo)
    run(["dvc", "repro", "-s", "drift"], repo)
    shifted = drift_json(repo)
    assert shifted["drift_detected"] is True and shifted["current"]["days"] == 28
    assert any(r.startswith("concept drift") for r in shifted["reasons"]), shifted["reasons"]
    assert shifted["model"] == first["model"]

    # retrain on all data: the new model is deployed, nothing unseen yet, the flag is down
    retrain = run(["dvc", "repro"], repo)
    assert "Running stage 'train'" in retrain.stdout
    after = drift_json(repo)
    assert after["model"]["version"] != first["model"]["version"]
    assert after["model"]["trained_through"] == str((cutoff + 28 * DAY).date())
    assert after["drift_detected"] is False and after["current"]["source"] == "holdout"
    assert (repo / "reports" / "drift.html").exists()


@pytest.mark.parametrize("shift", [0.0, 0.6])
def test_the_html_report_leads_with_the_verdict_of_drift_json(
    small_params, models, baseline, shift
):
    # 12 series are too few for the data-drift test at its default threshold (drift.py)
    calm = small_params.drift.model_copy(update={"stattest_threshold": 1.0})
    params = small_params.model_copy(update={"drift": calm})
    prepared = today(params, 14, *([shift_from(params, shift)] if shift else []))
    assessment = drift.assess(prepared, *models, baseline, params)
    report = assessment.report
    page = drift_html.render(assessment, assessment.run.get_html_str(as_iframe=False))
    verdict = page[page.index("id='verdict'") : page.index("</section>")]
    headline = "Drift detected" if report["drift_detected"] else "No drift"
    assert f"id='headline'>{headline}</h2>" in verdict
    assert report["model"]["version"] in verdict
    for reason in report["reasons"]:
        assert html.escape(reason) in verdict
    if shift:
        assert report["drift_detected"] and any(
            r.startswith("concept drift") for r in report["reasons"]
        )
    else:
        assert not report["drift_detected"]
    # the error chart: one point per day of new sales, the threshold drawn
    assert page.index("id='verdict'") < page.index("id='smape-chart'")
    limit = report["concept_drift"]["baseline_smape"] * (1 + report["concept_drift"]["threshold"])
    assert f"data-name='threshold' data-value='{limit:.4f}'" in page
    assert len(assessment.by_period) == 14
    assert "<script" in page  # Evidently's detail follows, inline: the page works offline
    assert "http://" not in page.split("id='verdict'")[0]
