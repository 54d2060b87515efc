"""Drift of the deployed model, the monitoring half of the retraining loop.

Drift is judged against the model that is deployed (``models/serving``), on the rows after its
training cutoff: sales it has never seen. Each check below can raise the flag; ``reasons`` says
which, in words.

* **Data drift.** Evidently's ``DataDriftPreset`` on the model's sales-derived inputs and the
  target, current rows against a reference window of training rows. The reference is the
  same weeks 52 weeks earlier (``drift.reference: season``): every sales feature is a ratio
  whose value depends on the time of year, so the weeks just before the cutoff differ from the
  weeks after it in every year, and would read as drift on clean data. When the history is too
  short for that window to have complete features, the weeks just before the cutoff are used
  and a note says so. Calendar columns (different in any two windows by construction) and the
  store/item/series encodings (per-series constants fixed at training) are not monitored. The
  per-column method is normed Wasserstein distance, an effect size (0.2 = a shift of a fifth
  of a standard deviation), so the test does not become hair-trigger as rows are added the
  way a p-value does (rows of one series are not independent anyway); at Evidently's default
  0.1, calendar misalignment and yearly growth alone make clean data drift
  (benchmarks/DRIFT.md). Data drift is flagged when at least ``drift.drift_share`` of the
  monitored columns drift; the sampling noise of the score is about 1/sqrt(series), so with
  fewer than a few hundred series raise ``drift.stattest_threshold``.
* **Concept drift.** The deployed model's SMAPE on the current rows against the evaluation
  holdout's SMAPE (``reports/metrics.json``: the same kind of model, in the same situation);
  flagged when worse by more than ``drift.concept_threshold`` (relative), once there are
  ``drift.min_days`` days of new sales (fewer days give a noisy, weekday-biased SMAPE). MAE
  is reported beside it but does not flag: it grows with sales volume, so it would flag every
  seasonal peak.
* **New series.** Series selling after the cutoff that the model has never seen.
* **Inputs.** The features rebuilt from today's data for the model's forecast days must equal
  the ones frozen in its bundle; they differ when the history before the cutoff was revised,
  or the feature parameters changed since training. Covariates (and the closure features made
  of ``open``) are left out: the frozen ones are the plan's, and what happened may differ from
  the plan (or not be known yet).

With the inputs lagged by ``horizon`` days, a change in demand reaches the model's inputs only
``horizon`` days later; until then it shows in the target and in the model's error.

When there are no sales after the deployed model's cutoff yet (right after a retrain), there
is nothing unseen to judge: the report shows the evaluation model on its holdout for
reference, and the flag is down.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from demandcast import bundle
from demandcast.config import DriftParams, Params
from demandcast.data.schema import DATE, ITEM, SALES, STORE, TRUE_MEAN, plain, series_index
from demandcast.errors import ConfigError, DataError
from demandcast.evaluate import score
from demandcast.features import (
    CLOSURE_FEATURES,
    ENCODINGS,
    Encodings,
    Shared,
    build,
    shared_part,
    trainable,
    with_encodings,
)
from demandcast.frequency import Frequency
from demandcast.metrics import Holdout
from demandcast.model import forecast_rows


@dataclass(frozen=True)
class Window:
    """Periods ``start .. end`` (their first days), both included."""

    start: pd.Timestamp
    end: pd.Timestamp
    freq: Frequency

    @property
    def periods(self) -> int:
        return (self.end - self.start).days // self.freq.days + 1

    def contains(self, dates: pd.Series) -> np.ndarray:
        return ((dates >= self.start) & (dates <= self.end)).to_numpy()

    def shifted(self, periods: int) -> Window:
        delta = self.freq.step(periods)
        return Window(self.start + delta, self.end + delta, self.freq)

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start.date()), "end": str(self.end.date())}


def reference_window(
    current: Window, cutoff: pd.Timestamp, data_start: pd.Timestamp, horizon: int, kind: str
) -> tuple[Window, str]:
    """Training days to compare ``current`` with, and which kind they are (``season`` or
    ``recent``). ``season`` needs every feature window of its rows inside the data: the oldest
    one (the prior-year level) reaches ``horizon + 2 x 364`` days back."""
    if kind == "season":
        year = current.freq.year
        years = -(-current.periods // year)
        season = current.shifted(-year * years)
        if season.start >= data_start + current.freq.step(horizon + 2 * year):
            return season, "season"
    return Window(cutoff - current.freq.step(current.periods - 1), cutoff, current.freq), "recent"


def known_series(frame: pd.DataFrame, meta: bundle.Meta) -> np.ndarray:
    """Which rows of ``frame`` belong to a series the model was trained on."""
    keys = meta.series_keys
    if len(keys) == 1:
        return frame[keys[0]].isin([s[0] for s in meta.series]).to_numpy()
    known = pd.MultiIndex.from_tuples([tuple(s) for s in meta.series], names=keys)
    return pd.MultiIndex.from_frame(frame[keys]).isin(known)


def new_series(prepared: pd.DataFrame, meta: bundle.Meta) -> list[dict[str, Any]]:
    """Series with rows after the model's cutoff that the model has never seen (their keys)."""
    after = prepared.loc[prepared[DATE] > pd.Timestamp(meta.cutoff), meta.series_keys]
    series = after.drop_duplicates()
    unseen = series[~known_series(series, meta)]
    return [{k: plain(v) for k, v in row.items()} for row in unseen.to_dict("records")]


def inputs_match(future: pd.DataFrame, meta: bundle.Meta, forecast: np.ndarray) -> bool:
    """Do the features rebuilt now for the model's forecast days equal its frozen ones?"""
    if len(future) != len(forecast):
        return False
    compared = [  # not the covariates, nor what is made of them: the plan's, not the data's
        n
        for n, f in enumerate(meta.features)
        if f.kind != "covariate" and f.name not in CLOSURE_FEATURES
    ]
    rebuilt = future[[meta.feature_names[n] for n in compared]].to_numpy(np.float32)
    frozen = forecast[:, compared]
    return bool(np.allclose(rebuilt, frozen, rtol=1e-6, atol=1e-6, equal_nan=True))


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    params: DriftParams,
    prediction: str | None = None,
) -> tuple[dict[str, Any], Any]:
    """Evidently ``DataDriftPreset`` of ``current`` against ``reference`` on ``columns``; with
    ``prediction`` (a column of both holding the model's forecast of ``sales``), Evidently's
    ``RegressionPreset`` as well, for the HTML report.

    Returns the summary for ``drift.json`` and Evidently's run (for the HTML report). Columns
    empty in either window (e.g. yearly lags on a short history) are skipped and listed.
    """
    from evidently import DataDefinition, Dataset, Regression, Report
    from evidently.legacy.calculations.stattests.registry import StatTestNotFoundError
    from evidently.presets import DataDriftPreset, RegressionPreset

    compared = [c for c in columns if reference[c].notna().any() and current[c].notna().any()]
    shown = [*compared, *([prediction] if prediction else [])]
    if prediction and SALES not in compared:
        shown.append(SALES)
    definition = DataDefinition(
        numerical_columns=shown,
        regression=[Regression(target=SALES, prediction=prediction)] if prediction else None,
    )
    presets: list[Any] = [
        DataDriftPreset(
            columns=compared,
            drift_share=params.drift_share,
            num_method=params.stattest,
            num_threshold=params.stattest_threshold,
        )
    ]
    if prediction:
        presets.append(RegressionPreset())
    try:
        with warnings.catch_warnings():
            # scikit-learn's note on the regression preset's R^2 of a window of one row: the
            # report shows it as undefined, a user has nothing to act on
            warnings.filterwarnings("ignore", message=r"R\^2 score is not well-defined")
            run = Report(presets, include_tests=True).run(
                current_data=Dataset.from_pandas(current[shown], data_definition=definition),
                reference_data=Dataset.from_pandas(reference[shown], data_definition=definition),
            )
    except StatTestNotFoundError as exc:
        raise ConfigError(f"params.yaml: drift.stattest: {exc}") from None
    share, scores, drifted, method, threshold = _read_evidently(run.dict())
    return {
        "share_drifted": round(share, 4),
        "threshold": params.drift_share,
        "drifted_columns": [c for c in compared if c in drifted],
        "method": method,
        "column_threshold": threshold,
        "scores": {c: round(float(scores[c]), 4) for c in compared},
        "skipped_columns": [c for c in columns if c not in compared],
    }, run


def _read_evidently(result: dict) -> tuple[float, dict[str, float], set[str], str, float]:
    """Share drifted, score per column, drifted columns (Evidently's own verdict: a failed
    per-column drift test), method and per-column threshold, from ``Snapshot.dict()``."""
    share, scores, configs = None, {}, {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = metric["value"]["share"]
        elif config["type"].endswith(":ValueDrift"):
            scores[config["column"]] = metric["value"]
            configs[config["column"]] = config
    drifted = {
        test["metric_config"]["params"]["column"]
        for test in result["tests"]
        if test["metric_config"]["params"]["type"].endswith(":ValueDrift")
        and test["status"] == "FAIL"
    }
    if share is None or not configs:
        raise ValueError("Evidently's result has no drift share or no per-column drift")
    first = next(iter(configs.values()))
    return float(share), scores, drifted, first["method"], first["threshold"]


def concept_drift(
    actual: pd.Series,
    predicted: np.ndarray,
    baseline: Holdout,
    params: DriftParams,
    oracle: pd.Series | None = None,
) -> dict[str, Any]:
    """The model's error on the current rows against its evaluation error (``baseline``)."""
    now = score(actual, predicted)
    out = {
        "smape": round(now["smape"], 4),
        "baseline_smape": baseline.smape,
        "relative_change": round(now["smape"] / baseline.smape - 1, 4),
        "threshold": params.concept_threshold,
        "mae": round(now["mae"], 4),
        "baseline_mae": baseline.mae,
        "mae_relative_change": round(now["mae"] / baseline.mae - 1, 4),
    }
    if oracle is not None:  # synthetic data: the error of the true mean, the noise floor
        out["oracle_smape"] = round(score(actual, oracle)["smape"], 4)
    return out


def model_encodings(model: bundle.Bundle) -> Encodings:
    """The store, item and series encodings the model was trained with (the same for every row
    of a series: read off its frozen forecast rows)."""
    meta = model.meta
    keys = meta.series_keys
    series = pd.DataFrame(meta.series, columns=keys)
    first = model.forecast[:: meta.horizon]  # each series' first forecast row
    means = {}
    for name, by in ENCODINGS.items():
        if name in meta.feature_names:
            values = pd.Series(first[:, meta.feature_names.index(name)], dtype=np.float64)
            index = series_index(series, by or keys)
            means[name] = values.set_axis(index).groupby(level=list(range(index.nlevels))).first()
    return Encodings(means, meta.training_rows)


def model_inputs(
    prepared: pd.DataFrame, model: bundle.Bundle, params: Params, shared: Shared | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features of today's data for ``model``, with its own encodings; and which rows are
    its training rows. ``prepared`` may be one partition of series (``shared``: pass 1 over
    all of them, see ``features.build``)."""
    meta = model.meta
    levels = {f.name: f.levels for f in meta.features if f.levels is not None}
    features = build(
        prepared, meta.horizon, params.features, meta.frequency, levels=levels, shared=shared
    )
    cutoff = pd.Timestamp(meta.cutoff)
    trained = trainable(features, cutoff)
    features = with_encodings(features, model_encodings(model))
    missing = [c for c in meta.feature_names if c not in features.columns]
    if missing:
        raise DataError(
            f"the model uses features {missing} that params.yaml no longer builds "
            "(features changed since training): run `dvc repro` to retrain"
        )
    return features, trained


@dataclass(frozen=True)
class Survey:
    """Pass 1 over today's data (or one partition of its series): its first date, its last
    period with sales, and what every partition's features need (``features.Shared``)."""

    first: pd.Timestamp
    last_sales: pd.Timestamp
    shared: Shared

    @classmethod
    def of(cls, prepared: pd.DataFrame, horizon: int) -> Survey:
        return cls(
            prepared[DATE].min(),
            prepared.loc[prepared[SALES].notna(), DATE].max(),
            shared_part(prepared, horizon),
        )

    @staticmethod
    def combine(parts: list[Survey]) -> Survey:
        return Survey(
            min(p.first for p in parts),
            max(p.last_sales for p in parts if not pd.isna(p.last_sales)),
            Shared.combine([p.shared for p in parts]),
        )


@dataclass(frozen=True)
class Plan:
    """Which model is judged on which periods (from the :class:`Survey` of all series)."""

    scored: bundle.Bundle
    holdout: bool  # no sales after the deployed model's cutoff yet: the eval model's holdout
    current: Window
    reference: Window
    kind: str  # season | recent


def plan(
    survey: Survey,
    deployed: bundle.Bundle,
    evaluation: bundle.Bundle,
    baseline: Holdout,
    params: Params,
) -> Plan:
    if baseline.end != deployed.meta.trained_through:
        raise DataError(
            f"reports/metrics.json evaluates a holdout ending {baseline.end}, but the "
            f"deployed model was trained through {deployed.meta.trained_through}: run `dvc repro`"
        )
    freq = deployed.meta.frequency

    def after(cutoff: pd.Timestamp) -> Window | None:
        last = survey.last_sales
        return Window(cutoff + freq.step(), last, freq) if last > cutoff else None

    holdout = after(pd.Timestamp(deployed.meta.cutoff)) is None
    scored = evaluation if holdout else deployed
    cutoff = pd.Timestamp(scored.meta.cutoff)
    current = after(cutoff)
    if current is None:
        raise DataError(
            f"no sales after {scored.meta.trained_through}, the evaluation model's cutoff"
        )
    reference, kind = reference_window(
        current, cutoff, survey.first, scored.meta.horizon, params.drift.reference
    )
    return Plan(scored, holdout, current, reference, kind)


@dataclass(frozen=True)
class Rows:
    """Pass 2: the rows judged, from today's data (or one partition of its series)."""

    future: pd.DataFrame  # the model's forecast rows, rebuilt from today's data
    reference: pd.DataFrame  # training rows in the reference window
    unseen: list[dict[str, Any]]  # series the model has never seen

    @classmethod
    def of(cls, prepared: pd.DataFrame, chosen: Plan, params: Params, shared: Shared) -> Rows:
        meta = chosen.scored.meta
        features, trained = model_inputs(prepared, chosen.scored, params, shared)
        known = known_series(features, meta)
        columns = [*meta.series_keys, DATE, SALES, *meta.feature_names]
        if TRUE_MEAN in features.columns:
            columns.append(TRUE_MEAN)
        future = forecast_rows(features.loc[known], pd.Timestamp(meta.cutoff), meta.horizon)
        reference = features.loc[known & chosen.reference.contains(features[DATE]) & trained]
        return cls(future[columns], reference[columns], new_series(prepared, meta))

    @staticmethod
    def combine(parts: list[Rows]) -> Rows:
        """The rows of all partitions, in the model's series order."""
        if len(parts) == 1:
            return parts[0]
        future = pd.concat([p.future for p in parts], ignore_index=True)
        keys = [c for c in future.columns if c in (STORE, ITEM)]
        return Rows(
            future.sort_values([*keys, DATE], ignore_index=True),
            pd.concat([p.reference for p in parts], ignore_index=True),
            [row for p in parts for row in p.unseen],
        )


def assess(
    prepared: pd.DataFrame,
    deployed: bundle.Bundle,
    evaluation: bundle.Bundle,
    baseline: Holdout,
    params: Params,
) -> Assessment:
    """The drift report of the ``deployed`` model, with what its HTML page shows.

    ``prepared`` is today's data (validated, gap-filled). The rows scored are the sales after
    the deployed model's cutoff; when there are none yet, the ``evaluation`` model's holdout.
    ``baseline`` is the holdout section of ``reports/metrics.json``. The two passes
    (:class:`Survey`, :class:`Rows`) run per partition of series on the dask engine
    (``stages/drift.py``), then :func:`judge`.
    """
    survey = Survey.of(prepared, deployed.meta.horizon)
    chosen = plan(survey, deployed, evaluation, baseline, params)
    return judge(
        Rows.of(prepared, chosen, params, survey.shared), chosen, deployed, baseline, params
    )


def judge(
    rows: Rows, chosen: Plan, deployed: bundle.Bundle, baseline: Holdout, params: Params
) -> Assessment:
    """The report from the rows of every series."""
    scored, meta = chosen.scored, chosen.scored.meta
    freq, cutoff = meta.frequency, pd.Timestamp(meta.cutoff)
    current_days, reference_days, kind = chosen.current, chosen.reference, chosen.kind
    holdout, unseen, future = chosen.holdout, rows.unseen, rows.future
    has_sales = future[SALES].notna().to_numpy()
    current = future.loc[current_days.contains(future[DATE]) & has_sales]
    reference = rows.reference
    inputs = current[meta.feature_names].to_numpy(np.float32)
    periods = (current[DATE] - (cutoff + freq.step())).dt.days.to_numpy() // freq.days
    outputs = bundle.predict(scored.booster, meta, inputs, periods)
    predicted = outputs[:, 0]

    monitored = [f.name for f in meta.features if f.monitored] + [SALES]
    reference_inputs = reference[meta.feature_names].to_numpy(np.float32)
    current = current.assign(prediction=predicted)
    reference = reference.assign(
        prediction=bundle.predict_mean(scored.booster, meta, reference_inputs)
    )
    data, run = data_drift(reference, current, monitored, params.drift, "prediction")
    oracle = current[TRUE_MEAN] if TRUE_MEAN in current.columns else None
    concept = concept_drift(current[SALES], predicted, baseline, params.drift, oracle)
    if meta.quantiles:
        inside = bundle.spread_inside(current[SALES].to_numpy(), outputs[:, 1], outputs[:, -1])
        nominal = 100 * (meta.quantiles[-1] - meta.quantiles[0])
        concept["range_coverage"] = round(100 * float(inside.mean()), 2)
        concept["range_nominal"] = round(nominal, 2)
        concept["range_threshold"] = params.drift.coverage_drop
    match = inputs_match(future, meta, scored.forecast)

    days_seen = current_days.periods * freq.days  # drift.min_days counts days, any frequency
    reasons = findings(data, concept, days_seen, unseen, match, params.drift)
    notes = []
    if holdout:
        notes.append(
            f"no sales after the deployed model's cutoff {deployed.meta.trained_through} yet: "
            "nothing unseen to judge; the figures are the evaluation model's on its holdout"
        )
        notes += [f"for reference, not flagged: {r}" for r in reasons]
        reasons = []
    if kind != params.drift.reference:
        notes.append(
            "history too short for a reference 52 weeks earlier with complete features: the "
            "reference is the days just before the cutoff, so seasonal change can read as drift"
        )
    if days_seen < params.drift.min_days:
        notes.append(
            f"concept drift is judged from {params.drift.min_days} days of new sales; "
            f"{days_seen} so far"
        )
    report = {
        "drift_detected": bool(reasons),
        "reasons": reasons,
        "notes": notes,
        "model": {
            "version": deployed.meta.model_version,
            "trained_through": deployed.meta.trained_through,
        },
        "current": {
            **current_days.as_dict(),
            "days": current_days.periods,
            "rows": len(current),
            "source": "holdout" if holdout else "new sales",
            "scored_by": meta.model_version,
        },
        "reference": {**reference_days.as_dict(), "rows": len(reference), "kind": kind},
        "data_drift": data,
        "concept_drift": {**concept, "min_days": params.drift.min_days},
        "new_series": len(unseen),
        "inputs_match": match,
    }
    return Assessment(report, run, errors_by_period(current), unseen)


@dataclass(frozen=True)
class Assessment:
    """What the drift stage writes: ``drift.json`` (``report``) and, for ``drift.html``,
    Evidently's run, the model's error per period and the new series."""

    report: dict[str, Any]
    run: Any
    by_period: pd.DataFrame  # date, smape, mae, actual, forecast (totals over the series)
    new_series: list[dict[str, Any]]


def errors_by_period(current: pd.DataFrame) -> pd.DataFrame:
    """The model's SMAPE and MAE on each period of the new sales, and the totals of sales and
    forecast (``current`` has ``sales`` and ``prediction``)."""

    def one(group: pd.DataFrame) -> pd.Series:
        errors = score(group[SALES], group["prediction"])
        return pd.Series(
            {
                "smape": errors["smape"],
                "mae": errors["mae"],
                "actual": group[SALES].sum(),
                "forecast": group["prediction"].sum(),
            }
        )

    grouped = current.groupby(DATE)[[SALES, "prediction"]]
    return grouped.apply(one).reset_index()


def findings(
    data: dict,
    concept: dict,
    days: int,
    unseen: list[dict[str, Any]],
    inputs_match: bool,
    params: DriftParams,
) -> list[str]:
    """The checks that raise the flag, each as a sentence (empty: no drift)."""
    out = []
    if data["share_drifted"] >= params.drift_share:
        out.append(
            f"data drift: {len(data['drifted_columns'])} of {len(data['scores'])} monitored "
            f"columns drifted ({data['share_drifted']:.0%} >= {params.drift_share:.0%}): "
            + ", ".join(data["drifted_columns"])
        )
    if days >= params.min_days and concept["relative_change"] > params.concept_threshold:
        out.append(
            f"concept drift: SMAPE {concept['smape']:.2f} on the new sales vs "
            f"{concept['baseline_smape']:.2f} at evaluation ({concept['relative_change']:+.1%}, "
            f"threshold +{params.concept_threshold:.0%})"
        )
    if (
        days >= params.min_days
        and "range_coverage" in concept
        and concept["range_coverage"] < concept["range_nominal"] - params.coverage_drop
    ):
        out.append(
            f"range drift: the forecast range covers {concept['range_coverage']:.1f}% of the new "
            f"sales, nominal {concept['range_nominal']:g}% (threshold: "
            f"{params.coverage_drop:g} points below)"
        )
    if unseen:
        first = ", ".join(f"{k}={v!r}" for k, v in unseen[0].items())
        out.append(
            f"{len(unseen)} new series the model has never seen (first: {first}): "
            "retrain to forecast them"
        )
    if not inputs_match:
        out.append(
            "the model's inputs rebuilt from today's data differ from those it was trained "
            "with (history before its cutoff revised, or feature params changed): retrain"
        )
    return out


def summary(report: dict[str, Any]) -> str:
    """The report in a few lines for the terminal."""
    cur, data, concept = report["current"], report["data_drift"], report["concept_drift"]
    lines = [
        f"deployed model {report['model']['version']} (trained through "
        f"{report['model']['trained_through']})",
        f"current: {cur['start']} .. {cur['end']}, {cur['rows']} rows ({cur['source']}); "
        f"reference: {report['reference']['start']} .. {report['reference']['end']}",
        f"data drift: {len(data['drifted_columns'])} of {len(data['scores'])} columns "
        f"({data['share_drifted']:.0%}, flag at {data['threshold']:.0%})"
        + (f": {', '.join(data['drifted_columns'])}" if data["drifted_columns"] else ""),
        f"concept drift: SMAPE {concept['smape']:.2f} vs {concept['baseline_smape']:.2f} at "
        f"evaluation ({concept['relative_change']:+.1%}, flag above "
        f"+{concept['threshold']:.0%})",
        *(
            [
                f"range: covers {concept['range_coverage']:.1f}% of the new sales (nominal "
                f"{concept['range_nominal']:g}%, flag below "
                f"{concept['range_nominal'] - concept['range_threshold']:g}%)"
            ]
            if "range_coverage" in concept
            else []
        ),
        f"new series: {report['new_series']}",
        *(f"note: {n}" for n in report["notes"]),
        "DRIFT DETECTED" if report["drift_detected"] else "no drift",
        *(f"  - {r}" for r in report["reasons"]),
    ]
    return "\n".join(lines)
