"""Holdout evaluation: the model, simple baselines and (for synthetic data) the oracle.

The holdout is the last ``horizon`` periods of the data; the ``eval`` bundle was trained on
everything before it and forecasts it directly from the cutoff, exactly as the served model
forecasts the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandcast import bundle
from demandcast.config import Weight
from demandcast.data.schema import DATE, OPEN, SALES, TRUE_MEAN, parse_flag, series_index
from demandcast.features import Panel, to_panel
from demandcast.metrics import (
    Holdout,
    Intervals,
    Metrics,
    OpenScores,
    Oracle,
    Scores,
    Slice,
    Slices,
)

BASELINES = ("seasonal_naive", "last_year", "mean_28")
SCORES = ("smape", "mae", "rmse", "mape", "wape")
ROUND = 4


def rmspe(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared percentage error over rows with sales > 0 (a fraction, not percent:
    the figure tables with closed days are usually judged by)."""
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    positive = y > 0
    if not positive.any():
        return float("nan")
    return float(np.sqrt(np.mean(((y[positive] - f[positive]) / y[positive]) ** 2)))


def open_scores(frame: pd.DataFrame) -> OpenScores | None:
    """The model on open periods only (``open`` mapped): SMAPE, WAPE and MAE over them, RMSPE
    over those with sales."""
    if OPEN not in frame.columns:
        return None
    rows = (frame[OPEN] != 0).to_numpy()
    if not rows.any():
        return None
    actual, predicted = frame.loc[rows, "actual"], frame.loc[rows, "predicted"]
    got = _rounded(
        {**score(actual, predicted), "rmspe": rmspe(actual, predicted)},
        ("smape", "rmspe", "wape", "mae"),
    )
    return OpenScores(**got, rows=int(rows.sum()))


def score(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """SMAPE (percent, 0-200, Kaggle: 0 where both are 0), MAE, RMSE, MAPE (percent, y > 0),
    WAPE (percent: total absolute error over total sales)."""
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    err = np.abs(y - f)
    denom = np.abs(y) + np.abs(f)
    smape = np.divide(200.0 * err, denom, out=np.zeros_like(err), where=denom > 0)
    positive = y > 0
    mape = 100.0 * float(np.mean(err[positive] / y[positive])) if positive.any() else float("nan")
    total = float(np.abs(y).sum())
    return {
        "smape": float(np.mean(smape)),
        "mae": float(np.mean(err)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": mape,
        "wape": 100.0 * float(err.sum()) / total if total > 0 else float("nan"),
    }


def _rounded(values: dict[str, float], keys: tuple[str, ...]) -> dict[str, float | None]:
    return {k: round(values[k], ROUND) if np.isfinite(values[k]) else None for k in keys}


def baselines(panel: Panel, cutoff: pd.Timestamp, horizon: int) -> dict[str, np.ndarray]:
    """Forecasts of periods ``cutoff+1 .. cutoff+horizon`` per series, (series, horizon)."""
    freq = panel.freq
    c = (cutoff - panel.start).days // freq.days  # column of the cutoff period
    y = panel.sales
    h = np.arange(horizon)
    recent = freq.periods(28)
    season = freq.season
    out = {
        # the last observed season (week), repeated: each day gets the same weekday of that week
        "seasonal_naive": y[:, c - (season - 1) + (h % season)],
        "mean_28": np.repeat(
            np.nanmean(y[:, c - recent + 1 : c + 1], axis=1, keepdims=True), horizon, 1
        ),
    }
    if c + 1 - freq.year >= 0:
        out["last_year"] = y[:, c + 1 + h - freq.year]  # same weekday, 52 weeks earlier
    return out


def series_history(panel: Panel, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Per series: mean sales and share of zero-sales periods over the year up to ``cutoff``
    (what was known when the forecast was made; for the slices)."""
    c = (cutoff - panel.start).days // panel.freq.days
    year = panel.sales[:, max(0, c + 1 - panel.freq.year) : c + 1]
    known = ~np.isnan(year)
    with np.errstate(invalid="ignore", divide="ignore"):
        volume = np.where(known, year, 0.0).sum(axis=1) / known.sum(axis=1)
        zeros = ((year == 0) & known).sum(axis=1) / known.sum(axis=1)
    return pd.DataFrame({"volume": volume, "zero_share": zeros})


def holdout_frame(
    prepared: pd.DataFrame,
    model: bundle.Bundle,
    series: pd.DataFrame | None = None,
    carry: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per series and holdout period with known sales: keys, date, horizon_day,
    actual, predicted, the baselines, the series' volume and zero share before the cutoff (and
    the oracle, and the ``carry`` columns of ``prepared``). ``series``: only these (keys).
    Periods of unknown sales (an outage) are not scored: they are left out."""
    meta = model.meta
    keys, freq = meta.series_keys, meta.frequency
    n, horizon = len(meta.series), meta.horizon
    frame = pd.DataFrame(
        np.repeat(np.array(meta.series, dtype=object), horizon, axis=0), columns=keys
    )
    for key in keys:
        frame[key] = frame[key].astype(prepared[key].dtype)
    frame["horizon_day"] = np.tile(np.arange(1, horizon + 1), n)
    frame[DATE] = pd.Timestamp(meta.forecast_start) + pd.to_timedelta(
        (frame["horizon_day"] - 1) * freq.days, "D"
    )
    chosen = np.ones(len(frame), dtype=bool)
    if series is not None:  # only these series' rows are predicted (one partition's, say)
        chosen = series_index(frame, keys).isin(series_index(series, keys))
        frame = frame.loc[chosen].reset_index(drop=True)
    periods = meta.forecast_periods()[chosen]
    outputs = model.predict(model.forecast[chosen], periods, is_open=model.open[chosen])
    for position, name in enumerate(meta.outputs):
        frame["predicted" if name == bundle.MEAN else name] = outputs[:, position]
    truth = prepared.set_index([*keys, DATE])
    index = pd.MultiIndex.from_frame(frame[[*keys, DATE]])
    frame["actual"] = truth[SALES].reindex(index).to_numpy()
    for column in (*carry, *([OPEN] if OPEN in truth.columns else [])):
        frame[column] = truth[column].reindex(index).to_numpy()
    if TRUE_MEAN in truth.columns:
        frame["oracle"] = truth[TRUE_MEAN].reindex(index).to_numpy()
    sales = prepared[[*keys, DATE, SALES]]
    if OPEN in prepared.columns:  # closed days are not demand: no baseline learns from them
        sales = sales.assign(**{SALES: prepared[SALES].where(prepared[OPEN] != 0)})
    panel = to_panel(sales, freq)
    order = series_index(panel.keys, keys)
    rows = order.get_indexer(series_index(frame, keys))
    cutoff = pd.Timestamp(meta.cutoff)
    closed = frame[OPEN].to_numpy() == 0 if OPEN in frame else np.zeros(len(frame), dtype=bool)
    for name, values in baselines(panel, cutoff, horizon).items():
        frame[name] = np.where(closed, 0.0, values[rows, frame["horizon_day"].to_numpy() - 1])
    history = series_history(panel, cutoff)
    for name in history.columns:
        frame[name] = history[name].to_numpy()[rows]
    keep = frame["actual"].notna().to_numpy()
    if not keep.any():
        raise ValueError("no holdout row has known sales: nothing to score")
    return frame.loc[keep].reset_index(drop=True)


def flag_uplift(model: bundle.Bundle, flag: str, by: str) -> pd.DataFrame:
    """What the model says a flag covariate adds (a promotion, say): for each value of the
    series key ``by`` (e.g. item), its forecast over the open forecast rows where the plan sets
    the flag, and the same rows with the flag off; ``uplift`` = their ratio - 1."""
    meta = model.meta
    column = meta.feature_names.index(flag)
    on = (model.forecast[:, column] == 1) & (model.open == 1)
    off = model.forecast[on].copy()
    off[:, column] = 0.0
    periods = meta.forecast_periods()[on]
    keys = np.repeat(np.array(meta.series, dtype=object), meta.horizon, axis=0)[on]
    frame = pd.DataFrame(
        {
            by: keys[:, meta.series_keys.index(by)],
            "plan": model.predict(model.forecast[on], periods)[:, 0],
            "flag_off": model.predict(off, periods)[:, 0],
        }
    )
    table = frame.groupby(by).sum()
    return table.assign(uplift=table["plan"] / table["flag_off"] - 1)


def _volume_quintile(frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """The sales-volume quintile (1 = the slowest fifth of the series) of each row's series."""
    per_series = frame.groupby(keys, sort=False)["volume"].first()
    rank = per_series.rank(method="first")
    quintile = np.ceil(rank / len(per_series) * 5).astype(int)
    index = series_index(frame, keys)
    return quintile.reindex(index).to_numpy()


def slices(frame: pd.DataFrame, keys: list[str], zero_share: float) -> Slices:
    """The model's SMAPE and WAPE by volume quintile of the series and on intermittent series
    (``holdout_frame`` rows)."""
    per_series = frame.groupby(keys, sort=False)[["volume", "zero_share"]].first()
    series_quintile = _volume_quintile(frame, keys)
    quintile = pd.Series(np.ceil(per_series["volume"].rank(method="first") / len(per_series) * 5))

    def one(rows: np.ndarray, series: int) -> Slice:
        if not rows.any():
            return Slice(series=0, rows=0)
        got = _rounded(
            score(frame.loc[rows, "actual"], frame.loc[rows, "predicted"]), ("smape", "wape")
        )
        return Slice(series=series, rows=int(rows.sum()), **got)

    volume = {f"q{q}": one(series_quintile == q, int((quintile == q).sum())) for q in range(1, 6)}
    intermittent = per_series["zero_share"] > zero_share
    rows = (frame["zero_share"] > zero_share).to_numpy()
    return Slices(
        volume=volume,
        intermittent=one(rows, int(intermittent.sum())),
        intermittent_zero_share=zero_share,
    )


def wmae(actual: pd.Series, forecast: pd.Series, flag: pd.Series, factor: float) -> float:
    """Weighted MAE: rows whose ``flag`` is set weigh ``factor``, the others 1."""
    weight = np.where(parse_flag(flag) == 1, factor, 1.0)
    err = np.abs(np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float))
    return float((weight * err).sum() / weight.sum())


def baseline_scores(frame: pd.DataFrame, name: str) -> Scores | None:
    """A baseline's scores on the holdout rows it covers (``rows`` says how many when that is
    not all of them); None when it covers none."""
    covered = frame[name].notna().to_numpy()
    if not covered.any():
        return None
    scores = score(frame.loc[covered, "actual"], frame.loc[covered, name])
    rows = int(covered.sum()) if not covered.all() else None
    return Scores(**_rounded(scores, ("smape", "mae", "rmse", "wape")), rows=rows)


def pinball(actual: np.ndarray, quantile: np.ndarray, prob: float) -> float:
    """Mean pinball (quantile) loss of ``quantile`` as the ``prob`` quantile of ``actual``."""
    diff = np.asarray(actual, dtype=float) - np.asarray(quantile, dtype=float)
    return float(np.mean(np.maximum(prob * diff, (prob - 1) * diff)))


def intervals(frame: pd.DataFrame, meta: bundle.Meta) -> Intervals | None:
    """How honest the ranges are on the holdout: the share of sales inside the outer band
    (P10..P90 by default; counts spread over +-0.5, see ``bundle.spread_inside``), overall and
    per horizon week, the pinball loss of each quantile (and the oracle's: the true mean's
    Poisson quantiles, on synthetic data), the mean width of the band. Over open periods:
    a closed one has no range to judge."""
    if not meta.quantiles:
        return None
    if OPEN in frame.columns:  # a closed day is a known 0, not a forecast with a range
        frame = frame.loc[frame[OPEN] != 0]
    names = meta.outputs[1:]
    low, high = frame[names[0]].to_numpy(), frame[names[-1]].to_numpy()
    inside = bundle.spread_inside(frame["actual"].to_numpy(), low, high)
    week = (frame["horizon_day"].to_numpy() - 1) * meta.frequency.days // 7
    by_week = [round(100 * float(inside[week == w].mean()), 2) for w in np.unique(week)]
    actual = frame["actual"].to_numpy()
    oracle = None
    if "oracle" in frame.columns:
        true = frame["oracle"].to_numpy()
        quantiles = bundle.count_quantiles(true, np.full(len(true), np.inf), meta.quantiles)
        oracle = {
            f"{q:g}": round(pinball(actual, quantiles[:, j], q), 4)
            for j, q in enumerate(meta.quantiles)
        }
    quintile = _volume_quintile(frame, meta.series_keys)
    by_volume = {
        f"q{q}": round(100 * float(inside[quintile == q].mean()), 2)
        for q in range(1, 6)
        if (quintile == q).any()
    }
    return Intervals(
        nominal=round(100 * (meta.quantiles[-1] - meta.quantiles[0]), 2),
        coverage=round(100 * float(inside.mean()), 2),
        coverage_by_week=by_week,
        coverage_by_volume=by_volume,
        pinball={
            f"{q:g}": round(pinball(actual, frame[name], q), 4)
            for q, name in zip(meta.quantiles, names, strict=True)
        },
        oracle_pinball=oracle,
        mean_width=round(float((high - low).mean()), 4),
    )


def report(
    frame: pd.DataFrame,
    keys: list[str],
    zero_share: float,
    weight: Weight | None = None,
    meta: bundle.Meta | None = None,
) -> Metrics:
    """``reports/metrics.json`` from the holdout frame; ``weight`` adds ``holdout.wmae``, the
    model's ``meta`` (with quantiles) the ``intervals``."""
    model = _rounded(score(frame["actual"], frame["predicted"]), SCORES)
    if weight is not None:
        flag = frame[weight.column]
        model["wmae"] = round(wmae(frame["actual"], frame["predicted"], flag, weight.factor), 4)
    scored = {name: baseline_scores(frame, name) for name in BASELINES if name in frame}
    return Metrics(
        holdout=Holdout(
            **model,
            rows=len(frame),
            start=str(frame[DATE].min().date()),
            end=str(frame[DATE].max().date()),
        ),
        holdout_open=open_scores(frame),
        baselines={name: scores for name, scores in scored.items() if scores is not None},
        oracle=(
            Oracle(smape=round(score(frame["actual"], frame["oracle"])["smape"], ROUND))
            if "oracle" in frame.columns
            else None
        ),
        slices=slices(frame, keys, zero_share),
        intervals=intervals(frame, meta) if meta is not None else None,
    )


def plot_tables(
    frame: pd.DataFrame, importance: dict[str, float], top: int, metrics: Metrics | None = None
) -> dict[str, pd.DataFrame]:
    """Small CSVs for ``dvc plots``: totals over time, error by horizon day, importance."""
    value_cols = [c for c in ("actual", "predicted", "oracle", "seasonal_naive") if c in frame]
    over_time = frame.groupby(DATE)[value_cols].sum().round(2).reset_index()
    over_time[DATE] = over_time[DATE].dt.strftime("%Y-%m-%d")
    by_day = (
        frame.groupby("horizon_day")
        .apply(
            lambda g: pd.Series(
                {
                    "model": score(g["actual"], g["predicted"])["smape"],
                    "seasonal_naive": score(g["actual"], g["seasonal_naive"])["smape"],
                    **(
                        {"oracle": score(g["actual"], g["oracle"])["smape"]}
                        if "oracle" in g
                        else {}
                    ),
                }
            ),
            include_groups=False,
        )
        .round(3)
        .reset_index()
    )
    gain = pd.DataFrame(
        sorted(importance.items(), key=lambda kv: -kv[1])[:top], columns=["feature", "gain"]
    ).round(3)
    tables = {"forecast.csv": over_time, "horizon.csv": by_day, "importance.csv": gain}
    if metrics is not None and metrics.intervals is not None:
        weeks = metrics.intervals.coverage_by_week
        tables["coverage.csv"] = pd.DataFrame(
            {
                "horizon_week": np.arange(1, len(weeks) + 1),
                "coverage": weeks,
                "nominal": metrics.intervals.nominal,
            }
        )
    return tables


def summary_table(metrics: Metrics) -> str:
    """The evaluation as a plain-text table for the terminal."""
    h = metrics.holdout
    rows: list[tuple[str, dict]] = [("model", h.model_dump())]
    rows += [(name, scores.model_dump()) for name, scores in metrics.baselines.items()]
    if metrics.oracle is not None:
        rows.append(("oracle (true mean)", metrics.oracle.model_dump()))
    lines = [
        f"holdout {h.start} .. {h.end}, {h.rows} rows",
        f"{'forecast':<20}{'SMAPE %':>10}{'MAE':>10}{'RMSE':>10}",
    ]
    for name, m in rows:
        cells = "".join(
            f"{m[k]:>10.3f}" if m.get(k) is not None else f"{'':>10}"
            for k in ("smape", "mae", "rmse")
        )
        lines.append(f"{name:<20}{cells}")
    if metrics.oracle is not None:
        lines.append(f"model SMAPE / oracle SMAPE = {h.smape / metrics.oracle.smape:.4f}")
    if metrics.holdout_open is not None:
        o = metrics.holdout_open
        lines.append(
            f"open days ({o.rows} rows): SMAPE {o.smape:.3f}, WAPE {o.wape:.3f}, RMSPE "
            + (f"{o.rmspe:.4f}" if o.rmspe is not None else "-")
        )
    ranges = metrics.intervals
    if ranges is not None:
        weeks = ranges.coverage_by_week
        lines.append(
            f"range covers {ranges.coverage:.1f}% of sales (nominal {ranges.nominal:g}%; by "
            f"horizon week {min(weeks):.1f} .. {max(weeks):.1f}), "
            f"mean width {ranges.mean_width:.2f}"
        )
        if ranges.oracle_pinball:
            ratios = ", ".join(
                f"P{float(q) * 100:g} {loss / ranges.oracle_pinball[q]:.4f}"
                for q, loss in ranges.pinball.items()
            )
            lines.append(f"pinball loss / oracle's: {ratios}")
    return "\n".join(lines)
