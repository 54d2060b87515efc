"""Holdout evaluation: the model, simple baselines and (for synthetic data) the oracle.

The holdout is the last ``horizon`` days of the data; the ``eval`` bundle was trained on
everything before it and forecasts it directly from the cutoff, exactly as the served model
forecasts the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandcast import bundle
from demandcast.data.schema import DATE, SALES, TRUE_MEAN
from demandcast.features import Panel, to_panel


def score(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """SMAPE (percent, 0-200, Kaggle: 0 where both are 0), MAE, RMSE, MAPE (percent, y > 0)."""
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    err = np.abs(y - f)
    denom = np.abs(y) + np.abs(f)
    smape = np.divide(200.0 * err, denom, out=np.zeros_like(err), where=denom > 0)
    positive = y > 0
    mape = 100.0 * float(np.mean(err[positive] / y[positive])) if positive.any() else float("nan")
    return {
        "smape": float(np.mean(smape)),
        "mae": float(np.mean(err)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": mape,
    }


def baselines(panel: Panel, cutoff: pd.Timestamp, horizon: int) -> dict[str, np.ndarray]:
    """Forecasts of days ``cutoff+1 .. cutoff+horizon`` per series, shape (series, horizon)."""
    c = (cutoff - panel.start).days  # column of the cutoff day
    y = panel.sales
    h = np.arange(horizon)
    out = {
        # the last observed week, repeated: each day gets the same weekday of that week
        "seasonal_naive": y[:, c - 6 + (h % 7)],
        "mean_28": np.repeat(np.nanmean(y[:, c - 27 : c + 1], axis=1, keepdims=True), horizon, 1),
    }
    if c + 1 - 364 >= 0:
        out["last_year"] = y[:, c + 1 + h - 364]  # same weekday, 52 weeks earlier
    return out


def holdout_frame(
    prepared: pd.DataFrame, booster, meta: bundle.Meta, forecast: np.ndarray
) -> pd.DataFrame:
    """One row per series and holdout day: keys, date, horizon_day, actual, predicted, ..."""
    keys = meta.series_keys
    n, horizon = len(meta.series), meta.horizon_days
    frame = pd.DataFrame(
        np.repeat(np.array(meta.series, dtype=object), horizon, axis=0), columns=keys
    )
    for key in keys:
        frame[key] = frame[key].astype(prepared[key].dtype)
    frame["horizon_day"] = np.tile(np.arange(1, horizon + 1), n)
    frame[DATE] = pd.Timestamp(meta.forecast_start) + pd.to_timedelta(frame["horizon_day"] - 1, "D")
    frame["predicted"] = bundle.predict(booster, meta, forecast)
    truth = prepared.set_index([*keys, DATE])
    index = pd.MultiIndex.from_frame(frame[[*keys, DATE]])
    frame["actual"] = truth[SALES].reindex(index).to_numpy()
    if TRUE_MEAN in truth.columns:
        frame["oracle"] = truth[TRUE_MEAN].reindex(index).to_numpy()
    panel = to_panel(prepared[[*keys, DATE, SALES]])
    order = pd.MultiIndex.from_frame(panel.keys) if len(keys) > 1 else pd.Index(panel.keys[keys[0]])
    series_index = (
        pd.MultiIndex.from_frame(frame[keys]) if len(keys) > 1 else pd.Index(frame[keys[0]])
    )
    rows = order.get_indexer(series_index)
    for name, values in baselines(panel, pd.Timestamp(meta.cutoff), horizon).items():
        frame[name] = values[rows, frame["horizon_day"].to_numpy() - 1]
    if frame["actual"].isna().any():
        raise ValueError("holdout rows without actual sales: the data ends before the horizon")
    return frame


def report(frame: pd.DataFrame) -> dict:
    """``reports/metrics.json``: fixed shape so ``dvc metrics diff`` stays readable."""
    model = score(frame["actual"], frame["predicted"])
    out = {
        "holdout": {
            **{k: round(v, 4) for k, v in model.items()},
            "rows": len(frame),
            "start": str(frame[DATE].min().date()),
            "end": str(frame[DATE].max().date()),
        },
        "baselines": {},
    }
    for name in ("seasonal_naive", "last_year", "mean_28"):
        if name in frame.columns:
            base = score(frame["actual"], frame[name])
            out["baselines"][name] = {k: round(base[k], 4) for k in ("smape", "mae", "rmse")}
    if "oracle" in frame.columns:
        out["oracle"] = {"smape": round(score(frame["actual"], frame["oracle"])["smape"], 4)}
    return out


def plot_tables(
    frame: pd.DataFrame, importance: dict[str, float], top: int
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
    return {"forecast.csv": over_time, "horizon.csv": by_day, "importance.csv": gain}


def summary_table(metrics: dict) -> str:
    """The evaluation as a plain-text table for the terminal."""
    rows = [("model", metrics["holdout"])]
    rows += list(metrics["baselines"].items())
    if "oracle" in metrics:
        rows.append(("oracle (true mean)", metrics["oracle"]))
    h = metrics["holdout"]
    lines = [
        f"holdout {h['start']} .. {h['end']}, {h['rows']} rows",
        f"{'forecast':<20}{'SMAPE %':>10}{'MAE':>10}{'RMSE':>10}",
    ]
    for name, m in rows:
        cells = "".join(
            f"{m[k]:>10.3f}" if k in m else f"{'':>10}" for k in ("smape", "mae", "rmse")
        )
        lines.append(f"{name:<20}{cells}")
    if "oracle" in metrics:
        lines.append(f"model SMAPE / oracle SMAPE = {h['smape'] / metrics['oracle']['smape']:.4f}")
    return "\n".join(lines)
