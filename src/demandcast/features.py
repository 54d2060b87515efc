"""Features for direct multi-horizon forecasting.

Every sales-derived feature of target day ``t`` reads only days ``<= t - horizon``. So from
history known at a cutoff ``c``, every day of ``c+1 .. c+horizon`` has all its features, and one
model forecasts the whole horizon at once: no recursion, no leakage. :func:`window_mean` enforces
the rule; ``tests/test_features.py`` proves it by perturbing the holdout.

Sales features are ratios to the series' *level* (mean of the last 364 days it may see), and
``log_level`` is the model's base margin: with a Poisson objective the trees then learn
multiplicative effects (weekday, season, trend) shared by every series, whatever its size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from demandcast.config import FeatureParams
from demandcast.data.schema import DATE, ITEM, SALES, STORE, series_columns

LEVEL_WINDOW = 364
LOG_LEVEL = "log_level"  # the base margin column
LEVEL_FLOOR = 0.05  # sales/day; keeps log finite for series with no recent sales
CALENDAR = ["dayofweek", "month", "dayofmonth", "dayofyear", "weekofyear"]
ENCODINGS = ["store_enc", "item_enc", "series_enc"]


@dataclass(frozen=True)
class Panel:
    """Sales as a (series x day) matrix on one daily calendar; NaN before a series starts."""

    keys: pd.DataFrame  # one row per series, columns store[, item], in panel order
    start: pd.Timestamp  # calendar day 0
    sales: np.ndarray  # float64 (n_series, n_days)

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=self.sales.shape[1] - 1)


def to_panel(frame: pd.DataFrame) -> Panel:
    """Pivot a prepared (gap-free) long table into a :class:`Panel`."""
    keys = series_columns(frame)
    frame = frame.sort_values([*keys, DATE])
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(frame[keys]), sort=True)
    start = frame[DATE].min()
    day = (frame[DATE] - start).dt.days.to_numpy()
    sales = np.full((len(uniques), day.max() + 1), np.nan)
    sales[codes, day] = frame[SALES].to_numpy(dtype=float)
    key_frame = uniques.to_frame(index=False)
    key_frame.columns = keys
    return Panel(keys=key_frame, start=start, sales=sales)


class _Cumulative:
    """Prefix sums over days of a (series x day) matrix, for O(1) window means."""

    def __init__(self, values: np.ndarray, extra_days: int):
        padded = np.concatenate([values, np.full((values.shape[0], extra_days), np.nan)], axis=1)
        known = ~np.isnan(padded)
        zeros = np.zeros((values.shape[0], 1))
        self.sum = np.concatenate([zeros, np.cumsum(np.where(known, padded, 0.0), axis=1)], axis=1)
        self.count = np.concatenate([zeros, np.cumsum(known, axis=1)], axis=1)
        self.days = padded.shape[1]

    def window(self, end_lag: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count of days ``t-end_lag-width+1 .. t-end_lag`` for every target day t."""
        t = np.arange(self.days)
        hi = np.clip(t - end_lag + 1, 0, self.days)
        lo = np.clip(t - end_lag - width + 1, 0, self.days)
        return self.sum[:, hi] - self.sum[:, lo], self.count[:, hi] - self.count[:, lo]


def window_mean(cum: _Cumulative, horizon: int, end_lag: int, width: int) -> np.ndarray:
    if end_lag < horizon:  # the no-leakage rule, enforced at the one place windows are made
        raise ValueError(f"window ending {end_lag} days back is newer than the horizon {horizon}")
    total, count = cum.window(end_lag, width)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _group_mean(cum: _Cumulative, codes: np.ndarray, end_lag: int, width: int) -> np.ndarray:
    """Mean sales per series-day over all series sharing a code (a store, an item)."""
    total, count = cum.window(end_lag, width)
    n = codes.max() + 1
    group_total = np.zeros((n, total.shape[1]))
    group_count = np.zeros((n, total.shape[1]))
    np.add.at(group_total, codes, total)
    np.add.at(group_count, codes, count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (group_total / group_count)[codes]


def sales_features(panel: Panel, horizon: int, params: FeatureParams) -> dict[str, np.ndarray]:
    """All sales-derived features as (series x day) matrices over the calendar + horizon days."""
    cum = _Cumulative(panel.sales, horizon)
    level = window_mean(cum, horizon, horizon, LEVEL_WINDOW)
    safe_level = np.maximum(np.nan_to_num(level, nan=LEVEL_FLOOR), LEVEL_FLOOR)
    feats: dict[str, np.ndarray] = {LOG_LEVEL: np.log(safe_level)}

    def ratio(values: np.ndarray) -> np.ndarray:
        return values / safe_level

    for width in params.windows:
        if width != LEVEL_WINDOW:
            feats[f"r_mean_{width}"] = ratio(window_mean(cum, horizon, horizon, width))
    same_weekday = -(-horizon // 7) * 7  # the most recent same weekday we may see
    feats["r_same_weekday"] = ratio(window_mean(cum, horizon, same_weekday, 1))
    last_4 = np.stack([window_mean(cum, horizon, same_weekday + 7 * k, 1) for k in range(4)])
    with warnings.catch_warnings():  # days with none of the 4 weeks yet: NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        feats["r_same_weekday_4"] = ratio(np.nanmean(last_4, axis=0))
    if params.yearly_lags and horizon <= LEVEL_WINDOW - 14:
        feats["r_last_year_day"] = ratio(window_mean(cum, horizon, 364, 1))
        feats["r_last_year_week"] = ratio(window_mean(cum, horizon, 361, 7))
        feats["r_last_year_month"] = ratio(window_mean(cum, horizon, 350, 28))
    prior_level = window_mean(cum, horizon, horizon + LEVEL_WINDOW, LEVEL_WINDOW)
    feats["r_growth"] = safe_level / np.maximum(prior_level, LEVEL_FLOOR)  # NaN stays NaN
    # Pooled estimate of the series level from its store's and its item's levels: far less noisy
    # than the series' own level when store and item effects are (close to) separable.
    if ITEM in panel.keys.columns and panel.keys[STORE].nunique() > 1:
        store_code = pd.factorize(panel.keys[STORE])[0]
        item_code = pd.factorize(panel.keys[ITEM])[0]
        overall = _group_mean(cum, np.zeros(len(panel.keys), dtype=int), horizon, LEVEL_WINDOW)
        pooled = (
            _group_mean(cum, store_code, horizon, LEVEL_WINDOW)
            * _group_mean(cum, item_code, horizon, LEVEL_WINDOW)
            / overall
        )
        feats["r_pooled_level"] = ratio(pooled)
    return feats


def calendar(dates: pd.DatetimeIndex | pd.Series) -> dict[str, np.ndarray]:
    dates = pd.DatetimeIndex(dates)
    return {
        "dayofweek": dates.dayofweek.to_numpy(),
        "month": dates.month.to_numpy(),
        "dayofmonth": dates.day.to_numpy(),
        "dayofyear": dates.dayofyear.to_numpy(),
        "weekofyear": dates.isocalendar().week.to_numpy().astype(int),
    }


def build(prepared: pd.DataFrame, horizon: int, params: FeatureParams) -> pd.DataFrame:
    """One row per series and day, from each series' first forecastable day to ``horizon`` days
    past the end of the data (those last rows have ``sales = NaN``: they are the forecast)."""
    panel = to_panel(prepared)
    feats = sales_features(panel, horizon, params)
    n_series, n_days = panel.sales.shape
    sales = np.concatenate([panel.sales, np.full((n_series, horizon), np.nan)], axis=1)
    first_day = (~np.isnan(sales)).argmax(axis=1)
    day = np.arange(n_days + horizon)
    rows = day[None, :] >= (first_day + horizon)[:, None]  # has at least one day of lagged data
    series_idx, day_idx = np.nonzero(rows)

    keys = list(panel.keys.columns)
    out = panel.keys.iloc[series_idx].reset_index(drop=True)
    dates = panel.start + pd.to_timedelta(day_idx, unit="D")
    out[DATE] = dates
    out[SALES] = sales[series_idx, day_idx]
    carried = [c for c in prepared.columns if c not in (*keys, DATE, SALES)]
    if carried:  # covariates and the synthetic truth, empty on the forecast days
        out = out.merge(prepared[[*keys, DATE, *carried]], on=[*keys, DATE], how="left")
    for name, values in calendar(dates).items():
        out[name] = values.astype(np.int16)
    for name, matrix in feats.items():
        out[name] = matrix[series_idx, day_idx].astype(np.float32)
    return out


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs present in a features table, in a fixed order."""
    ordered = [*CALENDAR, *ENCODINGS]
    ordered += sorted(c for c in frame.columns if c.startswith("r_"))
    ordered.append(LOG_LEVEL)
    return [c for c in ordered if c in frame.columns]


def add_encodings(frame: pd.DataFrame, train_rows: np.ndarray) -> pd.DataFrame:
    """Store, item and series mean sales (log, relative to the overall mean), computed from the
    ``train_rows`` only, then mapped onto every row; unseen keys get NaN."""
    keys = series_columns(frame)
    train = frame.loc[train_rows, [*keys, SALES]]
    overall = max(train[SALES].mean(), LEVEL_FLOOR)
    out = frame.copy()
    groups = {
        "store_enc": [STORE],
        "item_enc": [ITEM] if ITEM in keys else None,
        "series_enc": keys,
    }
    for name, by in groups.items():
        if by is None or (name == "series_enc" and len(keys) == 1):
            continue
        means = np.log(np.maximum(train.groupby(by)[SALES].mean(), LEVEL_FLOOR) / overall)
        index = pd.MultiIndex.from_frame(out[by]) if len(by) > 1 else pd.Index(out[by[0]])
        out[name] = means.reindex(index).to_numpy(dtype=np.float32)
    return out
