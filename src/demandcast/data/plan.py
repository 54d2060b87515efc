"""The plan: ``open`` and the covariates of every series for each period of the forecast
window (the ``horizon`` periods after the data). They are known in advance: the promotions
planned, the days a store will be closed, the holidays.

From ``data.future_path`` (validated like the sales file: every series and period present, no
other series, values of their column's kind), from the synthetic generator, or, without either,
from documented defaults (:data:`DEFAULTS`), which ``reports/prepare.json`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from demandcast.config import Params
from demandcast.data.covariates import join_attributes, select_typed
from demandcast.data.schema import (
    DATE,
    NONE_LEVEL,
    OPEN,
    SALES,
    TRUE_MEAN,
    frequency_of,
    refusal,
    series_columns,
    series_index,
    with_frequency,
)
from demandcast.data.validate import parse_dates
from demandcast.errors import DataError

DEFAULTS = {
    "open": "as on the same weekday 52 weeks earlier (unknown then: as on that weekday "
    "the last time it is known; else open)",
    "flag": "0",
    "number": "the series' last known value",
    "category": f"the level {NONE_LEVEL!r} where the column has it, else its most common level",
}


def window(prepared: pd.DataFrame, horizon: int) -> pd.DatetimeIndex:
    """The dates of the forecast window: ``horizon`` periods after the table's last."""
    freq = frequency_of(prepared)
    end = prepared[DATE].max()
    return pd.DatetimeIndex([end + freq.step(k) for k in range(1, horizon + 1)])


def _grid(prepared: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Every series x every date of ``dates``, series-major."""
    keys = series_columns(prepared)
    series = prepared[keys].drop_duplicates().sort_values(keys, ignore_index=True)
    grid = series.loc[series.index.repeat(len(dates))].reset_index(drop=True)
    grid[DATE] = np.tile(dates.to_numpy(), len(series))
    return grid


def default_plan(prepared: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict[str, str]]:
    """The plan :data:`DEFAULTS` make, and the rule used for each column."""
    freq = frequency_of(prepared)
    keys = series_columns(prepared)
    plan = _grid(prepared, window(prepared, params.horizon))
    used: dict[str, str] = {}
    indexed = prepared.set_index([*keys, DATE])
    if OPEN in prepared.columns:
        year_before = plan.assign(**{DATE: plan[DATE] - freq.step(freq.year)})
        before = indexed[OPEN].reindex(pd.MultiIndex.from_frame(year_before[[*keys, DATE]]))
        # unknown then (an outage, or no history): the last known open on the same weekday
        weekday = [*keys, "weekday"]
        known = prepared.loc[prepared[OPEN].notna(), [*keys, DATE, OPEN]]
        last = known.assign(weekday=known[DATE].dt.dayofweek).groupby(weekday)[OPEN].last()
        at = pd.MultiIndex.from_frame(plan[keys].assign(weekday=plan[DATE].dt.dayofweek))
        values = before.to_numpy(dtype=float)
        values = np.where(np.isnan(values), last.reindex(at).to_numpy(dtype=float), values)
        plan[OPEN] = np.nan_to_num(values, nan=1.0)
        used[OPEN] = DEFAULTS["open"]
    for column, kind in params.data.covariates.items():
        if kind == "flag":
            plan[column] = 0.0
        elif kind == "number":  # the last non-missing value of each series
            last = prepared.groupby(keys, sort=False)[column].last()
            plan[column] = last.reindex(series_index(plan, keys)).to_numpy(dtype=float)
        else:
            levels = prepared[column].dropna()
            common = levels.mode().iloc[0] if len(levels) else NONE_LEVEL
            plan[column] = NONE_LEVEL if (levels == NONE_LEVEL).any() else common
        used[column] = DEFAULTS[kind]
    return plan, used


def refuse_unknown_series(
    raw: pd.DataFrame,
    plan_keys: pd.DataFrame,
    known: pd.DataFrame,
    source: str,
    names: Mapping[str, str],
) -> None:
    """Refuse the plan ``raw`` when a row's series (``plan_keys``, one row per row of ``raw``)
    is not one of ``known``'s (the sales table's series keys), naming the first."""
    keys = list(known.columns)
    listed = series_index(known.drop_duplicates(), keys)
    bad = ~np.asarray(series_index(plan_keys, keys).isin(listed))
    if bad.any():
        raise refusal(
            source,
            "+".join(keys),
            "name series that are not in the sales table",
            raw,
            bad,
            "Remove them, or add their sales.",
            names,
        )


def check_plan(
    raw: pd.DataFrame, prepared: pd.DataFrame, params: Params, source: str
) -> tuple[pd.DataFrame, int]:
    """The plan of ``raw`` (canonical column names) for the forecast window, and how many of its
    rows were outside the window (ignored); :class:`DataError` naming the file, the column,
    the count and the first bad row when a series or period is missing, a series is unknown,
    a row is repeated or a value is not of its column's kind."""
    names = params.data.columns.mapped()
    names.pop(SALES, None)
    keys = series_columns(prepared)
    needed = [*keys, DATE, *([OPEN] if OPEN in prepared.columns else [])]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        theirs = [names.get(c, c) for c in missing]
        raise DataError(
            f"{source}: the plan has no column {theirs[0]!r}; it needs "
            f"{[names.get(c, c) for c in needed]} and the covariates "
            f"{list(params.data.covariates)}"
        )
    if raw.empty:
        raise DataError(f"{source}: the plan has a header but no rows")
    typed = select_typed(raw, params, source, names)  # a plan has no sales column
    dates = parse_dates(typed[DATE], params.data.date_format, source)
    bad = dates.isna().to_numpy()
    if bad.any():
        raise refusal(
            source,
            DATE,
            "are not dates (YYYY-MM-DD, or data.date_format)",
            raw,
            bad,
            "Fix those rows.",
            names,
        )
    typed[DATE] = dates.astype("datetime64[ns]")
    for key in keys:
        bad = typed[key].isna().to_numpy()
        if bad.any():
            raise refusal(source, key, "are empty", raw, bad, "Every row needs its key.", names)
    bad = typed.duplicated([*keys, DATE], keep=False).to_numpy()
    if bad.any():
        raise refusal(
            source,
            "+".join([*keys, DATE]),
            "repeat another row's series and date",
            raw,
            bad,
            "Keep one row per series and period.",
            names,
        )
    refuse_unknown_series(raw, typed[keys], prepared[keys], source, names)
    dates_wanted = window(prepared, params.horizon)
    inside = typed[DATE].isin(dates_wanted).to_numpy()
    grid = _grid(prepared, dates_wanted)
    plan = grid.merge(typed.loc[inside], on=[*keys, DATE], how="left", indicator=True)
    absent = (plan.pop("_merge") == "left_only").to_numpy()
    if absent.any():
        first = grid.iloc[int(np.flatnonzero(absent)[0])]
        shown = {**first.to_dict(), DATE: first[DATE].date()}
        described = ", ".join(f"{names.get(c, c)}={shown[c]}" for c in [*keys, DATE])
        raise DataError(
            f"{source}: {int(absent.sum())} of {len(grid)} series x periods of the forecast "
            f"window ({dates_wanted[0].date()} .. {dates_wanted[-1].date()}) have no row; "
            f"first: {described}. The plan needs every series for every period."
        )
    return plan, int((~inside).sum())


def category_levels(prepared: pd.DataFrame, params: Params) -> dict[str, set[str]]:
    """The levels each category covariate has in the sales table."""
    return {
        column: set(prepared[column].dropna().unique())
        for column, kind in params.data.covariates.items()
        if kind == "category"
    }


def unseen_levels(plan: pd.DataFrame, levels: Mapping[str, set[str]]) -> dict[str, int]:
    """Per category covariate (``levels``: :func:`category_levels` of the sales table), the
    plan's rows whose level the sales table never has (the model reads them as missing)."""
    out = {}
    for column, known in levels.items():
        new = plan[column].notna() & ~plan[column].isin(list(known))
        if new.any():
            out[column] = int(new.sum())
    return out


def make_plan(
    raw: pd.DataFrame | None,
    source: str | None,
    prepared: pd.DataFrame,
    params: Params,
    attributes: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The plan (keys, date, open, covariates, attributes; frequency in ``attrs``) and its
    section of ``reports/prepare.json``. ``raw``: the plan as read (None: the defaults)."""
    summary: dict[str, Any] = {"source": source or "defaults"}
    if raw is None:
        plan, summary["defaults"] = default_plan(prepared, params)
    else:
        plan, summary["rows_outside_window"] = check_plan(raw, prepared, params, source or "")
    unseen = unseen_levels(plan, category_levels(prepared, params))
    if unseen:
        summary["unseen_levels"] = unseen
    plan, _ = join_attributes(plan, attributes, params)
    keep = [c for c in plan.columns if c not in (SALES, TRUE_MEAN)]
    return with_frequency(plan[keep].reset_index(drop=True), frequency_of(prepared)), summary


def describe(summary: Mapping[str, Any]) -> str:
    """One log line on where the plan came from."""
    if summary["source"] != "defaults":
        return f"plan: from {summary['source']}"
    rules = "; ".join(f"{column}: {rule}" for column, rule in summary.get("defaults", {}).items())
    return f"plan: no data.future_path, so the forecast window uses defaults ({rules or 'none'})"
