"""From a request to cells of the model's sales grid, or the reason a person can act on.

The fast path is a dict lookup and a date subtraction per row; explanations are built only for
the rows that fail, and for at most ``MAX_PROBLEMS`` of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from demandcast.api.errors import MAX_PROBLEMS, ApiError, invalid, problem
from demandcast.api.schemas import Row
from demandcast.api.store import Model

_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")  # the pipeline's rule for integer IDs


class Issue(NamedTuple):
    field: str
    msg: str
    unknown: bool  # well-formed keys that name no series (as opposed to a missing/extra key)


def locate_rows(model: Model, rows: Sequence[Row]) -> list[int]:
    """The cell of every request row in the flattened sales grid (``series * horizon + day``);
    ApiError(422) naming the rows the model cannot answer."""
    index, first, horizon, step = model.index, model.first_day, model.horizon, model.step
    by_store = len(model.meta.series_keys) == 1
    cells: list[int] = []
    bad: list[int] = []
    for n, row in enumerate(rows):
        found = index.get((row["store"],) if by_store else (row["store"], row.get("item")))
        period, off = divmod(row["date"].toordinal() - first, step)
        if found is None or off or not 0 <= period < horizon or (by_store and "item" in row):
            bad.append(n)
        else:
            cells.append(found * horizon + period)
    if bad:
        problems = [p for n in bad[:MAX_PROBLEMS] for p in _row_problems(model, n, rows[n])]
        summary = f"{len(bad)} of {len(rows)} rows cannot be answered" if len(rows) > 1 else ""
        if len(bad) > MAX_PROBLEMS:
            summary += f"; errors lists the first {MAX_PROBLEMS}"
        raise invalid(problems, summary)
    return cells


def _row_problems(model: Model, n: int, row: Row) -> list[dict[str, str]]:
    found = []
    issue = series_issue(model, dict(row))
    if issue:
        found.append(problem(f"rows[{n}].{issue.field}", issue.msg))
    late = date_issue(model, row["date"])
    if late:
        found.append(problem(f"rows[{n}].date", late))
    return found


def series_issue(model: Model, given: dict[str, object]) -> Issue | None:
    """Why the key values in ``given`` name no series of the model (None if they name one)."""
    keys = model.meta.series_keys
    if "item" in given and "item" not in keys:
        return Issue("item", "unexpected: this model forecasts one series per store", False)
    for key in keys:
        if key not in given:
            return Issue(key, f"required: this model's series are {' x '.join(keys)}", False)
    values = tuple(given[key] for key in keys)
    if values in model.index:
        return None
    for position, key in enumerate(keys):
        if values[position] not in model.key_values[position]:
            return Issue(key, _unknown(key, values[position], model.key_values[position]), True)
    return Issue(keys[-1], f"store {values[0]!r} has no item {values[1]!r} in the model", True)


def _unknown(key: str, value: object, known: frozenset) -> str:
    shown = sorted(known, key=lambda v: (isinstance(v, str), v))
    listed = ", ".join(repr(v) for v in shown[:5]) + (", ..." if len(shown) > 5 else "")
    hint = ""
    if not any(type(v) is type(value) for v in shown):
        hint = f" ({key} IDs are {'strings' if isinstance(shown[0], str) else 'integers'} here)"
    return f"unknown {key} {value!r}{hint}; the model has {len(shown)} {key}s: {listed}"


def date_issue(model: Model, date: dt.date) -> str | None:
    """Why the model has no forecast for ``date`` (None if it has one)."""
    period = model.period_of(date)
    if period is None:
        return (
            f"{date} does not start a forecast {model.meta.frequency.name}: {forecast_range(model)}"
        )
    if 0 <= period < model.horizon:
        return None
    where = "before the first forecast day" if period < 0 else "past the forecast horizon"
    return f"{date} is {where}: {forecast_range(model)}"


def forecast_range(model: Model) -> str:
    return (
        f"this model (trained through {model.meta.trained_through}) forecasts "
        f"{model.first_date} .. {model.last_date} ({model.horizon} {model.meta.frequency.name}s)"
    )


def locate_series(model: Model, store: str, item: str | None) -> int:
    """The grid row of a series named by query parameters (text, converted to the key type)."""
    given: dict[str, object] = {"store": _query_key(store, model.key_values[0])}
    if item is not None:
        known = model.key_values[1] if len(model.key_values) > 1 else frozenset()
        given["item"] = _query_key(item, known)
    issue = series_issue(model, given)
    if issue:
        status = 404 if issue.unknown else 422
        raise ApiError(status, f"{issue.field}: {issue.msg}", [problem(issue.field, issue.msg)])
    return model.index[tuple(given.values())]


def _query_key(text: str, known: frozenset) -> object:
    """``"7"`` means the integer 7 unless the model has the string ``"7"``."""
    return int(text) if text not in known and _PLAIN_INT.fullmatch(text) else text


def locate_days(model: Model, start: dt.date | None, days: int | None) -> range:
    """Grid columns of ``days`` periods from ``start`` (default: the whole horizon)."""
    first = 0 if start is None else model.period_of(start)
    if first is None or not 0 <= first < model.horizon:
        assert start is not None  # period 0 is always in the horizon
        raise invalid([problem("start", str(date_issue(model, start)))])
    count = model.horizon - first if days is None else days
    if first + count > model.horizon:
        begin = model.date_of(first)
        unit = f"{model.meta.frequency.name}s"
        msg = f"{count} {unit} from {begin} go past the horizon; at most {model.horizon - first}"
        msg += f": {forecast_range(model)}"
        raise invalid([problem("days", msg)])
    return range(first, first + count)


def locate_series_list(
    model: Model, series: Sequence[Mapping[str, object]], problems: list[dict[str, str]]
) -> list[int]:
    """The grid row of each series named by its keys (POST /whatif's ``series``); the ones the
    model does not have, and repeats, are appended to ``problems`` (at most MAX_PROBLEMS)."""
    index, by_store = model.index, len(model.meta.series_keys) == 1
    rows: list[int] = []
    first: dict[int, int] = {}  # grid row -> its first position in ``series``
    for n, given in enumerate(series):
        key = (given["store"],) if by_store else (given["store"], given.get("item"))
        found = None if by_store and "item" in given else index.get(key)
        if found is None:
            issue = series_issue(model, dict(given))
            if issue is not None:
                _add(problems, f"series[{n}].{issue.field}", issue.msg)
            continue
        if found in first:
            _add(
                problems,
                f"series[{n}]",
                f"the same series as series[{first[found]}]: give each once",
            )
            continue
        first[found] = n
        rows.append(found)
    return rows


def locate_dates_list(
    model: Model, dates: Sequence[dt.date] | None, problems: list[dict[str, str]]
) -> list[int]:
    """The forecast period of each date (POST /whatif's ``dates``; None: every period of the
    horizon); dates outside the horizon, and repeats, are appended to ``problems``."""
    if dates is None:
        return list(range(model.horizon))
    periods: list[int] = []
    first: dict[int, int] = {}
    for n, date in enumerate(dates):
        issue = date_issue(model, date)
        if issue is not None:
            _add(problems, f"dates[{n}]", issue)
            continue
        period = model.period_of(date)
        assert period is not None  # date_issue says so
        if period in first:
            _add(problems, f"dates[{n}]", f"{date} again (dates[{first[period]}]): give each once")
            continue
        first[period] = n
        periods.append(period)
    return periods


def _add(problems: list[dict[str, str]], loc: str, msg: str) -> None:
    """Append a problem; past MAX_PROBLEMS, an empty entry (counted, not listed)."""
    problems.append(problem(loc, msg) if len(problems) < MAX_PROBLEMS else {})
