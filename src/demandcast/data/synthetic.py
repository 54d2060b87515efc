"""Deterministic synthetic store-item daily sales that know their own true mean.

    mean(store, item, day) = BASE x store_level x item_level x weekday[day] x month[day]
                             x (1 + yearly_growth) ** years_since_start x changes(day)
                             x (1 + uplift[item] if promo) x (PRE_HOLIDAY before a holiday)
                             x open
    sales ~ Poisson(mean)

The known-in-advance drivers a real chain's export carries, as columns:

* ``promo`` (flag): each item runs promotions of 3 to 10 days (whole weeks, 1 or 2, for a
  weekly table), chain-wide, on about ``promo_share`` of its days; its true uplift is drawn
  from ``promo_uplift`` (+10%..+60%).
* ``holiday`` (category, as in such exports: ``0`` none, ``a`` public, ``b`` Easter,
  ``c`` Christmas) from the ``holidays`` calendar of ``holidays`` (a country); the two days
  before one sell ``PRE_HOLIDAY`` times more.
* ``open`` (flag): ``closed_sundays`` of the stores close on Sundays, ``closed_holidays`` on
  public holidays; a closed day sells nothing (a true mean of 0).

:func:`plan` gives the same drivers for the days after the data: the forecast window's plan.

Each series draws its noise from its own random stream, seeded by (seed, store, item), one value
per day in date order. So extending ``days`` appends days without changing any earlier value,
and a change injected from some date on leaves every earlier day untouched: the generator
behaves like a daily export that keeps growing.
"""

from __future__ import annotations

import datetime as dt
import functools

import holidays as holiday_calendars
import numpy as np
import pandas as pd

from demandcast.config import Synthetic
from demandcast.data.schema import TRUE_MEAN

BASE = 20.0
# Monday..Sunday: weekend peak, as in typical store-item sales.
WEEKDAY = np.array([0.82, 0.94, 0.95, 1.0, 1.06, 1.13, 1.10])
# January..December: summer high, winter low.
MONTH = np.array([0.78, 0.82, 0.93, 1.02, 1.08, 1.15, 1.22, 1.12, 1.03, 0.98, 0.97, 0.90])
PRE_HOLIDAY = 1.3  # demand on the two days before a public holiday
PROMO_DAYS = (3, 10)  # the length of a promotion, days (inclusive)
CALENDAR_DAYS = 800  # drivers are drawn this many days past the data (covers any plan)


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
    drive = drivers(cfg, store, item, date)
    uplift = np.where(drive["promo"] == 1, 1.0 + promo_uplift(cfg.seed, uniq_i, cfg)[inv_i], 1.0)
    return (
        BASE
        * store_level(cfg.seed, uniq_s)[inv_s]
        * item_level(cfg.seed, uniq_i)[inv_i]
        * weekday[np.arange(len(date)), date.dayofweek]
        * MONTH[date.month.to_numpy() - 1]
        * (1.0 + cfg.yearly_growth) ** years
        * level
        * uplift
        * np.where(before_holiday(cfg, date), PRE_HOLIDAY, 1.0)
        * drive["open"]
    )


def promo_uplift(seed: int, item: np.ndarray, cfg: Synthetic) -> np.ndarray:
    """Each item's true promotion uplift (+0.25 = 25% more sales on a promotion day)."""
    low, high = cfg.promo_uplift
    return np.array([np.random.default_rng([seed, 4, int(i)]).uniform(low, high) for i in item])


def _promo_days(seed: int, item: int, share: float, days: int, unit: int = 1) -> np.ndarray:
    """One item's promotion calendar from the first day on: runs of PROMO_DAYS days (or, with
    ``unit`` 7, of 1 or 2 whole weeks, as a weekly table's promotions run) with gaps that make
    ``share`` of the days promotion days; drawn in date order (extending keeps it)."""
    periods = -(-days // unit)
    out = np.zeros(periods, dtype=bool)
    if share > 0:
        rng = np.random.default_rng([seed, 5, item])
        shortest, longest = PROMO_DAYS if unit == 1 else (1, 2)
        mean_gap = (shortest + longest) / 2 * (1 - share) / share
        period = int(rng.integers(0, int(mean_gap) + 1))
        while period < periods:
            run = int(rng.integers(shortest, longest + 1))
            out[period : period + run] = True
            period += run + 1 + int(rng.geometric(1 / max(mean_gap, 1.0)))
    return np.repeat(out, unit)[:days]


@functools.lru_cache(maxsize=8)
def _holidays(country: str | None, first_year: int, last_year: int) -> dict[dt.date, str]:
    """Public holidays as the export's category: a (public), b (Easter), c (Christmas)."""
    if country is None:
        return {}
    days = holiday_calendars.country_holidays(
        country, years=range(first_year, last_year + 1), language="en_US"
    )
    letter = {}
    for day, name in days.items():
        lowered = name.lower()
        letter[day] = (
            "c"
            if "christmas" in lowered
            else "b"
            if ("easter" in lowered or "good friday" in lowered)
            else "a"
        )
    return letter


def holiday_of(cfg: Synthetic, date: pd.DatetimeIndex) -> np.ndarray:
    """The holiday category of each date (``"0"``: none)."""
    calendar = _holidays(cfg.holidays, cfg.start.year, cfg.start.year + cfg.days // 365 + 3)
    return np.array([calendar.get(d, "0") for d in date.date], dtype=object)


def before_holiday(cfg: Synthetic, date: pd.DatetimeIndex) -> np.ndarray:
    is_holiday = holiday_of(cfg, date) != "0"
    soon = np.zeros(len(date), dtype=bool)
    for ahead in (1, 2):
        soon |= holiday_of(cfg, date + pd.Timedelta(days=ahead)) != "0"
    return soon & ~is_holiday


def drivers(
    cfg: Synthetic, store: np.ndarray, item: np.ndarray, date: pd.DatetimeIndex
) -> dict[str, np.ndarray]:
    """The known-in-advance columns of each row: open, promo (flags), holiday (category)."""
    date = pd.DatetimeIndex(date)
    store = np.asarray(store, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    offset = (date - pd.Timestamp(cfg.start)).days.to_numpy()
    span = cfg.days + CALENDAR_DAYS
    uniq_i, inv_i = np.unique(item, return_inverse=True)
    unit = 7 if cfg.frequency == "weekly" else 1
    calendars = np.stack(
        [_promo_days(cfg.seed, int(i), cfg.promo_share, span, unit) for i in uniq_i]
    )
    promo = calendars[inv_i, np.clip(offset, 0, span - 1)] & (offset >= 0) & (offset < span)
    holiday = holiday_of(cfg, date)
    uniq_s, inv_s = np.unique(store, return_inverse=True)
    draws = np.array([np.random.default_rng([cfg.seed, 6, int(s)]).random(2) for s in uniq_s])
    sunday_closed = (draws[:, 0] < cfg.closed_sundays)[inv_s] & (date.dayofweek == 6)
    holiday_closed = (draws[:, 1] < cfg.closed_holidays)[inv_s] & (holiday != "0")
    return {
        "open": np.where(sunday_closed | holiday_closed, 0.0, 1.0),
        "promo": promo.astype(float),
        "holiday": holiday,
    }


def _only(keys: pd.DataFrame, series: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of ``keys`` whose (store, item) is one of ``series`` (None: all)."""
    if series is None:
        return keys
    wanted = pd.MultiIndex.from_frame(series[["store", "item"]])
    return keys.loc[pd.MultiIndex.from_frame(keys[["store", "item"]]).isin(wanted)]


def generate(
    cfg: Synthetic, *, with_true_mean: bool = True, series: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Long-format sales: date, store, item, sales (and the true mean); one row per series and
    day, or per series and week (``cfg.frequency``: the sum of the 7 daily means, dated on the
    week's first day; only whole weeks). ``series`` (store, item): only those series, exactly
    as in the whole table (each series draws from its own streams)."""
    end = pd.Timestamp(cfg.start) + pd.Timedelta(days=cfg.days - 1)
    frames = []
    for store, item, first_day in _only(series_keys(cfg), series).itertuples(index=False):
        if first_day > end:
            continue
        dates = pd.date_range(first_day, end, freq="D")
        frames.append(pd.DataFrame({"date": dates, "store": store, "item": item}))
    frame = pd.concat(frames, ignore_index=True)
    store, item = frame["store"].to_numpy(), frame["item"].to_numpy()
    frame = frame.assign(**drivers(cfg, store, item, frame["date"]))
    frame[TRUE_MEAN] = true_mean(cfg, store, item, frame["date"])
    if cfg.frequency == "weekly":
        frame = _weekly(frame, cfg)
    frame.insert(3, "sales", _draw(frame, cfg.seed))
    return frame if with_true_mean else frame.drop(columns=TRUE_MEAN)


def plan(cfg: Synthetic, periods: int, series: pd.DataFrame | None = None) -> pd.DataFrame:
    """The drivers (open, promo, holiday) of every series (or of ``series``) for the
    ``periods`` days (or weeks) after the data: what a chain knows of its forecast window in
    advance."""
    step = 7 if cfg.frequency == "weekly" else 1
    days = cfg.days // 7 * 7 if step == 7 else cfg.days
    first = pd.Timestamp(cfg.start) + pd.Timedelta(days=days)
    keys = _only(series_keys(cfg), series)[["store", "item"]].reset_index(drop=True)
    dates = pd.date_range(first, periods=periods * step, freq="D")
    frame = keys.loc[keys.index.repeat(len(dates))].reset_index(drop=True)
    frame["date"] = np.tile(dates.to_numpy(), len(keys))
    frame = frame.assign(
        **drivers(cfg, frame["store"].to_numpy(), frame["item"].to_numpy(), frame["date"])
    )
    if step == 7:
        frame[TRUE_MEAN] = 0.0
        frame = _weekly(frame, cfg.model_copy(update={"days": days + periods * 7}))
        frame = frame.drop(columns=TRUE_MEAN)
    return frame[["date", "store", "item", "open", "promo", "holiday"]]


def _weekly(daily: pd.DataFrame, cfg: Synthetic) -> pd.DataFrame:
    """Daily means summed over whole weeks counted from ``cfg.start``."""
    start = pd.Timestamp(cfg.start)
    week = (daily["date"] - start).dt.days // 7
    whole = week < cfg.days // 7
    daily = daily.loc[whole].assign(date=start + pd.to_timedelta(week[whole] * 7, unit="D"))
    daily = daily.assign(holiday=np.where(daily["holiday"] == "0", 0.0, 1.0))
    weekly = daily.groupby(["store", "item", "date"], as_index=False, sort=True).agg(
        {TRUE_MEAN: "sum", "open": "max", "promo": "max", "holiday": "max"}
    )
    weekly["holiday"] = np.where(weekly["holiday"] > 0, "a", "0").astype(object)
    return weekly[["date", "store", "item", "open", "promo", "holiday", TRUE_MEAN]]


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
