"""Deterministic synthetic store-item daily sales that know their own true mean.

    mean(store, item, day) = BASE x store_level x item_level x weekday[day] x month[day]
                             x (1 + yearly_growth) ** years_since_start x changes(day)
    sales ~ Poisson(mean)

Each series draws its noise from its own random stream, seeded by (seed, store, item), one value
per day in date order. So extending ``days`` appends days without changing any earlier value,
and a change injected from some date on leaves every earlier day untouched: the generator
behaves like a daily export that keeps growing.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from demandcast.config import Synthetic
from demandcast.data.schema import TRUE_MEAN

BASE = 20.0
# Monday..Sunday: weekend peak, as in typical store-item sales.
WEEKDAY = np.array([0.82, 0.94, 0.95, 1.0, 1.06, 1.13, 1.10])
# January..December: summer high, winter low.
MONTH = np.array([0.78, 0.82, 0.93, 1.02, 1.08, 1.15, 1.22, 1.12, 1.03, 0.98, 0.97, 0.90])


def store_level(seed: int, store: np.ndarray) -> np.ndarray:
    return np.array([np.random.default_rng([seed, 1, int(s)]).lognormal(0, 0.25) for s in store])


def item_level(seed: int, item: np.ndarray) -> np.ndarray:
    return np.array([np.random.default_rng([seed, 2, int(i)]).lognormal(0, 0.6) for i in item])


def series_keys(cfg: Synthetic) -> pd.DataFrame:
    """All (store, item) pairs with the first day each one sells."""
    items = cfg.items + cfg.new_items
    store, item = np.meshgrid(np.arange(1, cfg.stores + 1), np.arange(1, items + 1), indexing="ij")
    keys = pd.DataFrame({"store": store.ravel(), "item": item.ravel()})
    late_start = pd.Timestamp(cfg.new_items_start or cfg.start)
    keys["first_day"] = np.where(keys["item"] > cfg.items, late_start, pd.Timestamp(cfg.start))
    return keys


def true_mean(cfg: Synthetic, store: np.ndarray, item: np.ndarray, date: pd.Series) -> np.ndarray:
    """The expected sales of each row; vectorised over rows."""
    date = pd.DatetimeIndex(date)
    store = np.asarray(store, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    uniq_s, inv_s = np.unique(store, return_inverse=True)
    uniq_i, inv_i = np.unique(item, return_inverse=True)
    years = (date - pd.Timestamp(cfg.start)).days.to_numpy() / 365.25
    weekday = np.tile(WEEKDAY, (len(date), 1))
    level = np.ones(len(date))
    for change in cfg.changes:
        after = date >= pd.Timestamp(change.start)
        if change.stores is not None:
            after &= np.isin(store, change.stores)
        level[after] *= 1.0 + change.level_shift
        if change.weekly_pattern is not None:
            pattern = np.asarray(change.weekly_pattern, dtype=float)
            weekday[after] = pattern / pattern.mean()
    return (
        BASE
        * store_level(cfg.seed, uniq_s)[inv_s]
        * item_level(cfg.seed, uniq_i)[inv_i]
        * weekday[np.arange(len(date)), date.dayofweek]
        * MONTH[date.month.to_numpy() - 1]
        * (1.0 + cfg.yearly_growth) ** years
        * level
    )


def generate(cfg: Synthetic, *, with_true_mean: bool = True) -> pd.DataFrame:
    """Long-format sales: date, store, item, sales (and the true mean); one row per series and
    day, or per series and week (``cfg.frequency``: the sum of the 7 daily means, dated on the
    week's first day; only whole weeks)."""
    end = pd.Timestamp(cfg.start) + pd.Timedelta(days=cfg.days - 1)
    frames = []
    for store, item, first_day in series_keys(cfg).itertuples(index=False):
        if first_day > end:
            continue
        dates = pd.date_range(first_day, end, freq="D")
        frames.append(pd.DataFrame({"date": dates, "store": store, "item": item}))
    frame = pd.concat(frames, ignore_index=True)
    frame[TRUE_MEAN] = true_mean(
        cfg, frame["store"].to_numpy(), frame["item"].to_numpy(), frame["date"]
    )
    if cfg.frequency == "weekly":
        frame = _weekly(frame, cfg)
    frame.insert(3, "sales", _draw(frame, cfg.seed))
    return frame if with_true_mean else frame.drop(columns=TRUE_MEAN)


def _weekly(daily: pd.DataFrame, cfg: Synthetic) -> pd.DataFrame:
    """Daily means summed over whole weeks counted from ``cfg.start``."""
    start = pd.Timestamp(cfg.start)
    week = (daily["date"] - start).dt.days // 7
    whole = week < cfg.days // 7
    daily = daily.loc[whole].assign(date=start + pd.to_timedelta(week[whole] * 7, unit="D"))
    weekly = daily.groupby(["store", "item", "date"], as_index=False, sort=True)[TRUE_MEAN].sum()
    return weekly[["date", "store", "item", TRUE_MEAN]]


def _draw(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Poisson sales around the true mean: one stream per series, consumed in date order (see
    the module docstring). ``frame`` is sorted by store, item, date."""
    mean = frame[TRUE_MEAN].to_numpy()
    sales = np.empty(len(frame), dtype=np.int64)
    store_col, item_col = frame["store"].to_numpy(), frame["item"].to_numpy()
    bounds = np.flatnonzero(np.diff(item_col + 1_000_003 * store_col))
    starts = np.r_[0, bounds + 1]
    stops = np.r_[bounds + 1, len(frame)]
    for lo, hi in zip(starts, stops, strict=True):
        rng = np.random.default_rng([seed, 3, int(store_col[lo]), int(item_col[lo])])
        sales[lo:hi] = rng.poisson(mean[lo:hi])
    return sales


def last_day(cfg: Synthetic) -> dt.date:
    return cfg.start + dt.timedelta(days=cfg.days - 1)
