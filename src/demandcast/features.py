"""Features for direct multi-horizon forecasting.

Every sales-derived feature of target period ``t`` reads only periods ``<= t - horizon``. So
from history known at a cutoff ``c``, every period of ``c+1 .. c+horizon`` has all its
features, and one model forecasts the whole horizon at once: no recursion, no leakage.
:func:`window_mean` enforces the rule; ``tests/test_features.py`` proves it by perturbing the
holdout.

Sales features are ratios to the series' *level* (its mean over the last year it may see), and
``log_level`` is the model's base margin: with a Poisson objective the trees then learn
multiplicative effects (weekday, season, trend) shared by every series, whatever its size.

Model inputs are *declared*: each builder registers a :class:`~demandcast.bundle.FeatureSpec`
(name, kind, monitored by drift or not) in the table's ``attrs``, which Parquet keeps, and the
model's metadata records. Nothing is recognised by its name.

Building is two passes, so the dask engine (``engine.py``) maps both over partitions of series:

1. :func:`shared_part`: the few statistics that need every series (the store and item sums
   behind ``r_pooled_level``, the item sums behind ``lift_<flag>``, the category levels), per
   partition, added up by :meth:`Shared.combine`;
2. :func:`build` on one partition: needs only its series' history and pass 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from demandcast.bundle import FeatureSpec, Kind
from demandcast.config import FeatureParams, Holidays
from demandcast.data.schema import (
    DATE,
    ITEM,
    OPEN,
    SALES,
    STORE,
    carried_kinds,
    frequency_of,
    series_columns,
    series_index,
    with_frequency,
)
from demandcast.errors import ConfigError
from demandcast.frequency import DAY, Frequency

LOG_LEVEL = "log_level"  # the base margin column
LEVEL_FLOOR = 0.05  # sales per period; keeps log finite for series with no recent sales
SPECS = "features"  # key of a features table's attrs: the declared model inputs
# Model input order: by kind, then as declared (sales features sorted by name); base margin last.
KIND_ORDER: tuple[Kind, ...] = ("calendar", "encoding", "covariate", "attribute", "sales")
CALENDARS = {
    "day": ["dayofweek", "month", "dayofmonth", "dayofyear", "weekofyear"],
    "week": ["month", "weekofyear", "dayofyear"],
}
ENCODINGS = {"store_enc": [STORE], "item_enc": [ITEM], "series_enc": None}  # None: every key


@dataclass(frozen=True)
class Panel:
    """Sales as a (series x period) matrix on one calendar; NaN before a series starts."""

    keys: pd.DataFrame  # one row per series, columns store[, item], in panel order
    start: pd.Timestamp  # period 0
    sales: np.ndarray  # float64 (n_series, n_periods)
    freq: Frequency = DAY

    @property
    def end(self) -> pd.Timestamp:
        return self.start + self.freq.step(self.sales.shape[1] - 1)

    def first_periods(self) -> np.ndarray:
        """The first period of each series (where its row appears in the table)."""
        return (~np.isnan(self.sales)).argmax(axis=1)

    def block(self, rows: slice) -> Panel:
        """The series ``rows`` of this panel, on the same calendar."""
        keys = self.keys.iloc[rows].reset_index(drop=True)
        return Panel(keys, self.start, self.sales[rows], self.freq)


def to_panel(frame: pd.DataFrame, freq: Frequency = DAY) -> Panel:
    """Pivot a prepared (gap-free) long table into a :class:`Panel`."""
    keys = series_columns(frame)
    frame = frame.sort_values([*keys, DATE])
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(frame[keys]), sort=True)
    start = frame[DATE].min()
    days = (frame[DATE] - start).dt.days.to_numpy()
    if freq.days > 1 and (days % freq.days).any():
        raise ValueError(f"dates are not whole {freq.name}s apart")
    period = days // freq.days
    sales = np.full((len(uniques), period.max() + 1), np.nan)
    sales[codes, period] = frame[SALES].to_numpy(dtype=float)
    key_frame = uniques.to_frame(index=False)
    key_frame.columns = keys
    return Panel(keys=key_frame, start=start, sales=sales, freq=freq)


class _Cumulative:
    """Prefix sums over periods of a (series x period) matrix, for O(1) window means."""

    def __init__(self, values: np.ndarray, extra_days: int):
        padded = np.concatenate([values, np.full((values.shape[0], extra_days), np.nan)], axis=1)
        known = ~np.isnan(padded)
        zeros = np.zeros((values.shape[0], 1))
        self.sum = np.concatenate([zeros, np.cumsum(np.where(known, padded, 0.0), axis=1)], axis=1)
        self.count = np.concatenate([zeros, np.cumsum(known, axis=1)], axis=1)
        self.days = padded.shape[1]

    def window(self, end_lag: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count of periods ``t-end_lag-width+1 .. t-end_lag`` for every target t."""
        t = np.arange(self.days)
        hi = np.clip(t - end_lag + 1, 0, self.days)
        lo = np.clip(t - end_lag - width + 1, 0, self.days)
        return self.sum[:, hi] - self.sum[:, lo], self.count[:, hi] - self.count[:, lo]


def window_mean(cum: _Cumulative, horizon: int, end_lag: int, width: int) -> np.ndarray:
    if end_lag < horizon:  # the no-leakage rule, enforced at the one place windows are made
        raise ValueError(
            f"window ending {end_lag} periods back is newer than the horizon {horizon}"
        )
    total, count = cum.window(end_lag, width)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


@dataclass(frozen=True)
class Sums:
    """Sums over the series of each group (a store, an item, all series, one series) per
    period, on a calendar that ends ``horizon`` periods past the table's end: the partitions
    of a table line up at the right (every series runs to the table's end)."""

    index: pd.Index  # the groups
    arrays: dict[str, np.ndarray]  # name -> (groups, periods)

    @classmethod
    def of(cls, groups: pd.Index, codes: np.ndarray, arrays: dict[str, np.ndarray]) -> Sums:
        """The sums over rows of ``arrays`` (series x periods) by ``codes`` into ``groups``."""
        out = {}
        for name, values in arrays.items():
            total = np.zeros((len(groups), values.shape[1]))
            np.add.at(total, codes, values)
            out[name] = total
        return cls(groups, out)

    @staticmethod
    def combine(parts: Sequence[Sums]) -> Sums:
        """The sums of partitions of series (groups may span partitions)."""
        if len(parts) == 1:
            return parts[0]
        index = parts[0].index
        for part in parts[1:]:
            index = index.union(part.index)
        width = max(a.shape[1] for part in parts for a in part.arrays.values())
        out = {name: np.zeros((len(index), width)) for name in parts[0].arrays}
        for part in parts:
            rows = index.get_indexer(part.index)
            for name, values in part.arrays.items():
                out[name][rows, width - values.shape[1] :] += values
        return Sums(index, out)

    def at(self, groups: pd.Index, name: str, width: int) -> np.ndarray:
        """The sums of each of ``groups`` over the last ``width`` periods."""
        values = self.arrays[name][self.index.get_indexer(groups)]
        return values[:, values.shape[1] - width :]


@dataclass(frozen=True)
class Shared:
    """Pass 1: what the features of one partition of series need from every series."""

    pooled: dict[str, Sums]  # store, item, all: sales and known periods over the level window
    lifts: dict[str, Sums]  # flag -> sales on flagged periods and their usual sales, per item
    levels: dict[str, list[str]]  # category covariate or attribute -> its sorted levels

    @staticmethod
    def combine(parts: Sequence[Shared]) -> Shared:
        first = parts[0]
        return Shared(
            pooled={k: Sums.combine([p.pooled[k] for p in parts]) for k in first.pooled},
            lifts={k: Sums.combine([p.lifts[k] for p in parts]) for k in first.lifts},
            levels={k: sorted(set().union(*(p.levels[k] for p in parts))) for k in first.levels},
        )

    def pooled_level(self, panel: Panel, width: int) -> np.ndarray | None:
        """The pooled level (store level x item level / overall) of each series of ``panel``
        over its last ``width`` periods; None when there is nothing to pool (a store-only
        table, or one store)."""
        if not self.pooled or len(self.pooled[STORE].index) < 2:
            return None

        def level(kind: str, groups: pd.Index) -> np.ndarray:
            sums = self.pooled[kind]
            with np.errstate(invalid="ignore", divide="ignore"):  # none known yet: NaN
                return sums.at(groups, "total", width) / sums.at(groups, "count", width)

        store = level(STORE, pd.Index(panel.keys[STORE]))
        item = level(ITEM, pd.Index(panel.keys[ITEM]))
        with np.errstate(invalid="ignore", divide="ignore"):
            return store * item / level("all", pd.Index([0] * len(panel.keys)))

    def lift(self, name: str, panel: Panel, width: int) -> np.ndarray:
        """``lift_<name>`` of each series of ``panel`` (see :func:`flag_sums`)."""
        sums = self.lifts[name]
        groups = _lift_groups(panel.keys)
        flagged, usual = sums.at(groups, "sales", width), sums.at(groups, "usual", width)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(usual > 0, flagged / usual, np.nan).astype(np.float32)


def _lift_groups(keys: pd.DataFrame) -> pd.Index:
    """A flag's lift is pooled over the stores of an item (each series alone without items)."""
    return pd.Index(keys[ITEM]) if ITEM in keys.columns else series_index(keys, list(keys.columns))


def pooled_sums(panel: Panel, horizon: int) -> dict[str, Sums]:
    """Pass 1, pooled levels: per store, per item and overall, the sales and the number of
    known periods over the level window (a year) ending ``horizon`` periods back; empty for a
    store-only table."""
    if ITEM not in panel.keys.columns:
        return {}
    total, count = _Cumulative(panel.sales, horizon).window(horizon, panel.freq.year)
    out = {}
    for kind, values in ((STORE, panel.keys[STORE]), (ITEM, panel.keys[ITEM])):
        codes, groups = pd.factorize(values, sort=True)
        out[kind] = Sums.of(pd.Index(groups), codes, {"total": total, "count": count})
    everyone = np.zeros(len(panel.keys), dtype=int)
    out["all"] = Sums.of(pd.Index([0]), everyone, {"total": total, "count": count})
    return out


def shared_part(prepared: pd.DataFrame, horizon: int, freq: Frequency | None = None) -> Shared:
    """Pass 1 over one partition of whole series (or the whole table); combine the
    partitions' with :meth:`Shared.combine`."""
    freq = freq or frequency_of(prepared)
    sales = _demand(prepared)
    return _shared_of(to_panel(sales, freq), prepared, sales, horizon)


def _shared_of(panel: Panel, prepared: pd.DataFrame, sales: pd.DataFrame, horizon: int) -> Shared:
    freq = panel.freq
    kinds = carried_kinds(prepared)
    flags = {
        name: to_panel(sales.assign(**{SALES: prepared[name]}), freq).sales
        for name, kind in kinds.get("covariate", {}).items()
        if kind == "flag"
    }
    levels = {
        name: {str(v) for v in prepared[name].dropna().unique()}
        for role in ("covariate", "attribute")
        for name, kind in kinds.get(role, {}).items()
        if kind == "category"
    }
    return Shared(
        pooled_sums(panel, horizon),
        flag_sums(panel, flags, horizon),
        {k: sorted(v) for k, v in levels.items()},
    )


def _demand(prepared: pd.DataFrame) -> pd.DataFrame:
    """Keys, date and sales; closed periods: a known zero, not demand (NaN in every window)."""
    sales = prepared[[*series_columns(prepared), DATE, SALES]]
    if OPEN in prepared.columns:
        sales = sales.assign(**{SALES: prepared[SALES].where(prepared[OPEN] != 0)})
    return sales


def sales_features(
    panel: Panel, horizon: int, params: FeatureParams, shared: Shared | None = None
) -> dict[str, np.ndarray]:
    """Pass 2: every sales-derived feature of the series in ``panel`` as (series x period)
    matrices over the calendar + ``horizon`` periods."""
    freq = panel.freq
    year = freq.year
    cum = _Cumulative(panel.sales, horizon)
    level = window_mean(cum, horizon, horizon, year)  # NaN: no sales known yet (a new series)
    safe_level = np.maximum(level, LEVEL_FLOOR)
    feats: dict[str, np.ndarray] = {LOG_LEVEL: np.log(safe_level)}

    def ratio(values: np.ndarray) -> np.ndarray:
        return values / safe_level

    for width in sorted({freq.periods(days) for days in params.windows} - {year}):
        feats[f"r_mean_{width}"] = ratio(window_mean(cum, horizon, horizon, width))
    season = freq.season
    same_season = -(-horizon // season) * season  # the most recent same weekday we may see
    feats["r_same_weekday"] = ratio(window_mean(cum, horizon, same_season, 1))
    last_4 = np.stack([window_mean(cum, horizon, same_season + season * k, 1) for k in range(4)])
    with warnings.catch_warnings():  # periods with none of the 4 yet: NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        feats["r_same_weekday_4"] = ratio(np.nanmean(last_4, axis=0))
    if params.yearly_lags and horizon <= year - freq.periods(14):
        # the same day, week and month one year earlier, centred on the same time of year
        for name, days in (("day", 1), ("week", 7), ("month", 28)):
            width = freq.periods(days)
            if name == "day" or width > 1:
                feats[f"r_last_year_{name}"] = ratio(
                    window_mean(cum, horizon, year - width // 2, width)
                )
    prior_level = window_mean(cum, horizon, horizon + year, year)
    feats["r_growth"] = safe_level / np.maximum(prior_level, LEVEL_FLOOR)  # NaN stays NaN
    # Pooled estimate of the series level from its store's and its item's levels: far less noisy
    # than the series' own level when store and item effects are (close to) separable.
    pooled = shared.pooled_level(panel, level.shape[1]) if shared is not None else None
    if pooled is not None:
        feats["r_pooled_level"] = ratio(pooled)
    return feats


def calendar(dates: pd.DatetimeIndex | pd.Series, freq: Frequency = DAY) -> dict[str, np.ndarray]:
    dates = pd.DatetimeIndex(dates)
    every = {
        "dayofweek": lambda: dates.dayofweek.to_numpy(),
        "month": lambda: dates.month.to_numpy(),
        "dayofmonth": lambda: dates.day.to_numpy(),
        "dayofyear": lambda: dates.dayofyear.to_numpy(),
        "weekofyear": lambda: dates.isocalendar().week.to_numpy().astype(int),
    }
    return {name: every[name]() for name in CALENDARS[freq.name]}


def flag_sums(panel: Panel, flags: dict[str, np.ndarray], horizon: int) -> dict[str, Sums]:
    """Pass 1 for each flag covariate, the sums behind ``lift_<flag>`` (how much more an item
    sells when the flag is set): its sales on the flagged open periods up to ``horizon``
    periods back (all its history then: the more, the less noise), and what the same periods
    would have sold without the flag (the mean of the unflagged periods in the 28 days before
    each), summed over the stores of the item (each series alone in a store-only table).
    ``flags``: each flag as a (series x period) matrix on the panel's calendar."""
    groups = _lift_groups(panel.keys)
    codes, index = groups.factorize(sort=True)
    n_periods = panel.sales.shape[1]
    out = {}
    for name, flag in flags.items():
        flagged = flag == 1
        off = np.where(flagged, np.nan, panel.sales)
        recent = window_mean(_Cumulative(off, 0), 1, 1, panel.freq.periods(28))[:, :n_periods]
        usable = flagged & ~np.isnan(panel.sales) & ~np.isnan(recent)
        sums = {}
        for key, values in (("sales", panel.sales), ("usual", recent)):
            total, _ = _Cumulative(np.where(usable, values, np.nan), horizon).window(
                horizon, n_periods
            )
            sums[key] = total
        out[name] = Sums.of(pd.Index(index), codes, sums)
    return out


def _block_frame(
    panel: Panel, horizon: int, params: FeatureParams, shared: Shared, flags: list[str]
) -> pd.DataFrame:
    feats = sales_features(panel, horizon, params, shared)
    width = panel.sales.shape[1] + horizon
    feats.update({f"lift_{name}": shared.lift(name, panel, width) for name in flags})
    n_series, n_periods = panel.sales.shape
    sales = np.concatenate([panel.sales, np.full((n_series, horizon), np.nan)], axis=1)
    first = panel.first_periods()
    period = np.arange(n_periods + horizon)
    rows = period[None, :] >= first[:, None]  # from the series' first period on
    series_idx, period_idx = np.nonzero(rows)

    out = panel.keys.iloc[series_idx].reset_index(drop=True)
    dates = panel.start + pd.to_timedelta(period_idx * panel.freq.days, unit="D")
    out[DATE] = dates
    out[SALES] = sales[series_idx, period_idx]
    for name, values in calendar(dates, panel.freq).items():
        out[name] = values.astype(np.int16)
    for name, matrix in feats.items():
        out[name] = matrix[series_idx, period_idx].astype(np.float32)
    return out


def build(
    prepared: pd.DataFrame,
    horizon: int,
    params: FeatureParams,
    freq: Frequency | None = None,
    block_series: int | None = None,
    plan: pd.DataFrame | None = None,
    levels: dict[str, list[str]] | None = None,
    shared: Shared | None = None,
) -> pd.DataFrame:
    """One row per series and period, from each series' first period to ``horizon`` periods
    past the end of the data (those last rows have ``sales = NaN``: they are the forecast).

    Closed periods (``open`` = 0) are NaN in every sales window (a known zero is not demand)
    and not trained on. Covariates and attributes (``data.covariates``, recorded by prepare in
    the table's ``attrs``) are inputs of the period they describe: on the forecast rows they
    come from ``plan`` (``data/plan.py``; without one they are missing). A category is coded by
    its position in its sorted levels (``levels``, recorded in the model: a level it does not
    have is missing); ``levels`` None: the levels of ``prepared``.

    ``freq``: the period of ``prepared`` (default: the one it records). In a series' first
    ``horizon`` periods no sales are known ``horizon`` periods back: their ``log_level`` is NaN,
    they are not trained on (see :func:`trainable`), and a forecast from there falls back on
    the levels known at the cutoff (``model.forecast_rows``).

    ``prepared`` may be one partition of whole series of a larger table (the dask engine):
    ``shared`` is then pass 1 over every partition (:func:`shared_part`, combined), and the
    result is the partition's rows of the whole table's features. Pass 2 runs over blocks of
    ``block_series`` series (None: one block); the result does not depend on the block size."""
    freq = freq or frequency_of(prepared)
    kinds = carried_kinds(prepared)
    built = {*CALENDARS["day"], *HOLIDAY_FEATURES, *CLOSURE_FEATURES, *ENCODINGS, LOG_LEVEL}
    clash = sorted({name for role in kinds.values() for name in role} & built)
    if clash:
        raise ConfigError(
            f"covariates or attributes {clash} have the names of built features: rename them"
        )
    sales = _demand(prepared)
    panel = to_panel(sales, freq)
    shared = shared or _shared_of(panel, prepared, sales, horizon)
    n = len(panel.keys)
    size = block_series or n
    blocks = [
        _block_frame(panel.block(slice(lo, lo + size)), horizon, params, shared, [*shared.lifts])
        for lo in range(0, n, size)
    ]
    out = pd.concat(blocks, ignore_index=True) if len(blocks) > 1 else blocks[0]
    keys = list(panel.keys.columns)
    carried = [c for c in prepared.columns if c not in (*keys, DATE, SALES)]
    if carried:  # open, covariates, attributes, the synthetic truth; the plan's ahead
        carry = prepared[[*keys, DATE, *carried]]
        if plan is not None:
            ahead = plan[[c for c in plan.columns if c in carry.columns]]
            carry = pd.concat([carry, ahead.loc[ahead[DATE] > prepared[DATE].max()]])
        out = out.merge(carry, on=[*keys, DATE], how="left")
        front = [*keys, DATE, SALES, *carried]
        out = out[front + [c for c in out.columns if c not in front]]
    specs = [FeatureSpec(name, "calendar", False) for name in calendar(out[DATE][:0], freq)]
    if OPEN in out.columns:
        out[OPEN] = out[OPEN].fillna(1.0)
        for name, values in closure_features(out, panel).items():
            out[name] = values
            specs.append(FeatureSpec(name, "calendar", False))
    if params.holidays.country:
        for name, values in holiday_features(out[DATE], params.holidays, freq).items():
            out[name] = values
            specs.append(FeatureSpec(name, "calendar", False))
    for kind in ("covariate", "attribute"):
        for name, value_kind in kinds.get(kind, {}).items():
            if value_kind == "category":
                known = (levels or {}).get(name) or shared.levels[name]
                codes = pd.Index(known).get_indexer(out[name].astype(object))
                out[name] = np.where(codes >= 0, codes, np.nan).astype(np.float32)
                specs.append(FeatureSpec(name, kind, False, "category", list(known)))
            else:
                out[name] = out[name].astype(np.float32)
                specs.append(FeatureSpec(name, kind, False, value_kind))
    specs += [  # drift watches the sales features; a flag's lift follows its plan, not demand
        FeatureSpec(name, "sales", not name.startswith("lift_"))
        for name in blocks[0].columns
        if _is_sales(name)
    ]
    return declare(with_frequency(out, freq), specs)


HOLIDAY_FEATURES = ("public_holiday", "days_to_holiday", "days_since_holiday")
CLOSURE_FEATURES = ("to_closed", "since_closed")
CLOSURE_CAP = 15  # periods; a closure farther away reads as this far


def closure_features(frame: pd.DataFrame, panel: Panel) -> dict[str, np.ndarray]:
    """Per row of ``frame`` (keys, date, open: the history's and the plan's), the periods to
    the series' next closed period and since its last one, capped at ``CLOSURE_CAP``: sales
    move around a closure (the day before a holiday closure, the reopening after a
    refurbishment), and closures are known in advance."""
    keys = list(panel.keys.columns)
    index = series_index(panel.keys, keys)
    at = series_index(frame, keys)
    row = index.get_indexer(at)
    period = ((frame[DATE] - panel.start).dt.days // panel.freq.days).to_numpy()
    width = int(period.max()) + 1
    closed = np.zeros((len(panel.keys), width), dtype=bool)
    closed[row, period] = (frame[OPEN] == 0).to_numpy()
    columns = np.arange(width)
    far = 10**6
    nxt = np.where(closed, columns, far)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]  # the next closed at or after t
    nxt = np.concatenate([nxt[:, 1:], np.full((len(closed), 1), far)], axis=1)  # after t
    prev = np.where(closed, columns, -far)
    prev = np.maximum.accumulate(prev, axis=1)  # the last closed at or before t
    prev = np.concatenate([np.full((len(closed), 1), -far), prev[:, :-1]], axis=1)  # before t
    return {
        "to_closed": np.minimum(nxt - columns, CLOSURE_CAP)[row, period].astype(np.float32),
        "since_closed": np.minimum(columns - prev, CLOSURE_CAP)[row, period].astype(np.float32),
    }


HOLIDAY_CAP = 15  # days; farther holidays read as this far


def holiday_features(
    dates: pd.Series, params: Holidays, freq: Frequency = DAY
) -> dict[str, np.ndarray]:
    """From the ``holidays`` package's calendar of ``params.country`` (and ``subdiv``): whether
    the period holds a public holiday (for a week: how many), and the days from the period's
    first day to the next holiday and since the last one (capped at ``HOLIDAY_CAP``)."""
    import holidays as calendars

    assert params.country is not None  # the caller checks
    unique = pd.DatetimeIndex(dates.drop_duplicates()).sort_values()
    years = range(unique[0].year - 1, unique[-1].year + 2)
    try:
        days = calendars.country_holidays(params.country, subdiv=params.subdiv, years=years)
    except NotImplementedError as exc:  # an unknown country or subdivision
        raise ConfigError(f"features.holidays: {exc}") from None
    stamps = np.array(sorted(pd.Timestamp(d).value for d in days), dtype=np.int64)
    day_ns = 86_400 * 10**9
    values = unique.asi8
    after = np.searchsorted(stamps, values, side="left")
    before = np.searchsorted(stamps, values, side="right") - 1
    to_next = (stamps[np.minimum(after, len(stamps) - 1)] - values) // day_ns
    since = (values - stamps[np.maximum(before, 0)]) // day_ns
    in_period = np.searchsorted(stamps, values + freq.days * day_ns, side="left") - after
    table = {
        "public_holiday": in_period.astype(np.float32),
        "days_to_holiday": np.clip(
            np.where(after < len(stamps), to_next, HOLIDAY_CAP), 0, HOLIDAY_CAP
        ).astype(np.float32),
        "days_since_holiday": np.clip(
            np.where(before >= 0, since, HOLIDAY_CAP), 0, HOLIDAY_CAP
        ).astype(np.float32),
    }
    position = unique.get_indexer(pd.DatetimeIndex(dates))
    return {name: column[position] for name, column in table.items()}


def trainable(frame: pd.DataFrame, cutoff: pd.Timestamp) -> np.ndarray:
    """Rows a model with this ``cutoff`` trains on: known sales up to the cutoff on an open
    period, and a level known ``horizon`` periods back (not a series' first periods)."""
    rows = (frame[DATE] <= cutoff) & frame[SALES].notna() & frame[LOG_LEVEL].notna()
    if OPEN in frame.columns:
        rows &= frame[OPEN] != 0
    return rows.to_numpy()


def _is_sales(name: str) -> bool:
    return name == LOG_LEVEL or name.startswith(("r_", "lift_"))


def declare(frame: pd.DataFrame, specs: list[FeatureSpec]) -> pd.DataFrame:
    """Record ``specs`` as the model inputs of ``frame`` (in its ``attrs``, kept by Parquet)."""
    frame.attrs[SPECS] = [asdict(spec) for spec in specs]
    return frame


def declared(frame: pd.DataFrame) -> list[FeatureSpec]:
    """The model inputs declared for ``frame``, in model order (base margin last)."""
    if SPECS not in frame.attrs:
        raise ValueError("this table declares no features: build it with features.build")
    specs = [FeatureSpec(**raw) for raw in frame.attrs[SPECS]]
    missing = [s.name for s in specs if s.name not in frame.columns]
    if missing:
        raise ValueError(f"declared features {missing} are not columns of the table")

    def order(pair: tuple[int, FeatureSpec]) -> tuple:
        position, spec = pair
        kind = KIND_ORDER.index(spec.kind)
        return (spec.name == LOG_LEVEL, kind, spec.name if spec.kind == "sales" else position)

    return [spec for _, spec in sorted(enumerate(specs), key=order)]


@dataclass(frozen=True)
class Encodings:
    """Mean sales per store, item and series (log, relative to the overall mean) over the
    training rows: inputs ``store_enc``, ``item_enc``, ``series_enc``."""

    means: dict[str, pd.Series]  # name -> log relative mean, indexed by its keys
    rows: int  # training rows


def encodings(train: Any, collect: Callable[..., Sequence[Any]] = lambda *x: x) -> Encodings:
    """The :class:`Encodings` of the training rows ``train`` (keys, sales): a pandas frame, or
    a lazy one (dask) whose sums ``collect`` computes in one pass."""
    keys = [k for k in (STORE, ITEM) if k in train.columns]
    names = [
        name
        for name, by in ENCODINGS.items()
        if set(by or keys) <= set(keys) and not (name == "series_enc" and len(keys) == 1)
    ]
    sums = [train.groupby(ENCODINGS[name] or keys)[SALES].agg(["sum", "count"]) for name in names]
    total, rows, *sums = collect(train[SALES].sum(), train[SALES].count(), *sums)
    overall = max(total / rows, LEVEL_FLOOR) if rows else LEVEL_FLOOR
    means = {
        name: np.log(np.maximum(table["sum"] / table["count"], LEVEL_FLOOR) / overall)
        for name, table in zip(names, sums, strict=True)
    }
    return Encodings(means, int(rows))


def with_encodings(frame: pd.DataFrame, found: Encodings) -> pd.DataFrame:
    """``frame`` with the encodings ``found`` mapped onto its rows; unseen keys get NaN."""
    keys = series_columns(frame)
    out = frame.copy()
    added = []
    for name, means in found.means.items():
        index = series_index(out, ENCODINGS[name] or keys)
        out[name] = means.reindex(index).to_numpy(dtype=np.float32)
        added.append(FeatureSpec(name, "encoding", False))
    old = [spec for spec in declared(frame) if spec.kind != "encoding"]
    return declare(out, old + added)


def add_encodings(frame: pd.DataFrame, train_rows: np.ndarray) -> pd.DataFrame:
    """Store, item and series mean sales (log, relative to the overall mean), computed from the
    ``train_rows`` only, then mapped onto every row; unseen keys get NaN."""
    return with_encodings(frame, encodings(frame.loc[train_rows, [*series_columns(frame), SALES]]))
