"""Forecasts under other values of the covariates (or of ``open``) than the plan's: computed with
the booster at request time, from the frozen features of the forecast rows.

A bundle freezes the features of every series x horizon period (``forecast.npy``) with the
covariates the chain planned; the served grid is the forecast under that plan. A what-if takes
those rows, replaces the columns of the covariates it names (a flag by 0/1, a number by itself,
a category by the code of its level) and ``open``, and predicts the rows that changed in one
vectorised call (the numbers of ``bundle.predict``); a row left as the plan has it is answered
from the grid, a closed one with 0. Nothing else of a row changes: its sales features are as
old as the horizon, so a covariate of the forecast window never reaches them.

Values are checked against the model's covariates (``Model.covariates``); every invalid one is
a 422 naming the field (``rows[3].covariates.promo``) and what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from demandcast import bundle
from demandcast.api.errors import MAX_PROBLEMS, ApiError, invalid, json_type, problem, shorten
from demandcast.api.schemas import Row
from demandcast.api.store import DECIMALS, Covariate, Model

OPEN = "open"
NONE: dict[str, Any] = {}  # the covariates of a row without any (never changed)
OPEN_CODES: dict[Any, float] = {0: 0.0, 1: 1.0}  # 0.0, 1.0, false and true hash alike
LEVELS_SHOWN = 8  # a category's levels listed in a message
FLOAT32_MAX = float(np.finfo(np.float32).max)  # features are float32
FLAG = "expected 0 or 1 (or false/true)"
OPEN_VALUES = "expected 0 (closed) or 1 (open), or false/true"


def given(value: Any) -> str:
    """A client's JSON value as a message shows it: ``2``, ``the string '1'``, ``null``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**40 else "an integer of over 40 digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f"the string {shorten(value)!r}"
    return json_type(value)


def levels_text(levels: Sequence[str]) -> str:
    """``'0', 'a', 'b', 'c'``: the first LEVELS_SHOWN levels, then how many there are."""
    if not levels:
        return "none (every value of it was missing in training)"
    shown = ", ".join(repr(shorten(level)) for level in levels[:LEVELS_SHOWN])
    return shown + (f", ... ({len(levels)} levels)" if len(levels) > LEVELS_SHOWN else "")


def describe(covariate: Covariate) -> str:
    """``promo (flag: 0 or 1)``, ``price (number)``, ``holiday (category: '0', 'a', ...)``."""
    if covariate.value == "flag":
        return f"{covariate.name} (flag: 0 or 1)"
    if covariate.value == "number":
        return f"{covariate.name} (number)"
    return f"{covariate.name} (category: {levels_text(covariate.levels)})"


def takes(model: Model) -> str:
    """What covariates the model takes, for a message."""
    if not model.covariates:
        return "this model was trained without covariates: leave them out (open may be given)"
    return "this model takes " + ", ".join(map(describe, model.covariates.values()))


def unknown_covariate(model: Model, name: str) -> str:
    near = [known for known in model.covariates if known.lower() == name.lower()]
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown covariate {shorten(name)!r}{hint}; {takes(model)}"


def code_of(covariate: Covariate, value: Any) -> float:
    """The feature value of a JSON ``value`` given for ``covariate``; ValueError saying what
    is valid. A category's value is the code of its level: a JSON string, or a JSON number
    whose text is a level (``1`` matches the level ``'1'``, never ``'1.0'``)."""
    try:
        code = covariate.codes.get(value)
    except TypeError:  # an array or an object
        code = None
    if code is not None:  # codes has numbers for a flag, strings for a category: of its type
        return code
    kind = covariate.value
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "flag":
        raise ValueError(f"{FLAG} for the flag {covariate.name}, got {given(value)}")
    if kind == "number":
        if not is_number:
            raise ValueError(f"expected a number for {covariate.name}, got {json_type(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
            raise ValueError(
                f"expected a finite number for {covariate.name} (at most {FLOAT32_MAX:.4g} in "
                f"size), got {given(value)}"
            )
        return number
    levels = f"its levels are {levels_text(covariate.levels)}"
    if isinstance(value, str):
        raise ValueError(f"{given(value)} is not a level of {covariate.name}: {levels}")
    if is_number:
        text = str(value) if abs(value) < 10**40 else None
        code = covariate.codes.get(text) if text is not None else None
        if code is not None:
            return code
        raise ValueError(
            f"{given(value)} is not a level of {covariate.name} (a number matches the level "
            f"of its text): {levels}"
        )
    raise ValueError(
        f"expected a level of {covariate.name} (a string), got {given(value)}: {levels}"
    )


def open_of(value: Any) -> float:
    """1.0 or 0.0 for a JSON ``open``; ValueError saying what is valid."""
    try:
        code = OPEN_CODES.get(value)
    except TypeError:
        code = None
    if code is None:
        raise ValueError(f"{OPEN_VALUES}, got {given(value)}")
    return code


def apply(
    model: Model,
    where: str,
    changes: Mapping[str, Any],
    put: Any,
    problems: list[dict[str, str]],
) -> None:
    """Check each covariate value of ``changes`` and ``put(column, code)`` it; append the
    problems (at most MAX_PROBLEMS in all) with locations under ``where``."""
    covariates = model.covariates
    for name, value in changes.items():
        covariate = covariates.get(name)
        if covariate is None:
            if len(problems) < MAX_PROBLEMS:
                problems.append(problem(f"{where}.{shorten(name)}", unknown_covariate(model, name)))
            else:
                problems.append({})  # counted, not listed
            continue
        try:
            code = covariate.codes.get(value)  # the common case, without a call
        except TypeError:
            code = None
        if code is None:
            try:
                code = code_of(covariate, value)
            except ValueError as exc:
                if len(problems) < MAX_PROBLEMS:
                    problems.append(problem(f"{where}.{name}", str(exc)))
                else:
                    problems.append({})
                continue
        put(covariate.column, code)


def refuse(problems: list[dict[str, str]], summary: str = "") -> ApiError:
    """A 422 listing the first problems (``{}`` entries are counted, not listed)."""
    listed = [p for p in problems if p][:MAX_PROBLEMS]
    if not summary and len(problems) > 1:
        summary = f"{len(problems)} problems"
    if len(problems) > MAX_PROBLEMS:
        summary += f"; errors lists the first {MAX_PROBLEMS}"
    return invalid(listed, summary)


def predict_rows(
    model: Model, rows: Sequence[Row], computed: list[int], cells: Sequence[int]
) -> np.ndarray:
    """The outputs ``(len(computed), outputs)``, rounded as answered, of the request rows at
    positions ``computed`` (each with ``covariates`` or ``open``; ``cells`` are the grid cells
    of every row), predicted by the booster from their frozen features with the given values
    replacing the plan's. ApiError(422) naming every invalid value.

    One pass over the rows collects the values (a flag's 0/1 and a category's levels by a dict
    lookup; others, and every invalid one, by :func:`code_of`), then each column is set at once
    and the rows that changed are predicted in one call."""
    picked = np.fromiter((cells[n] for n in computed), dtype=np.intp, count=len(computed))
    frozen = model.forecast[picked]
    features = frozen.copy()
    is_open = model.is_open[picked]  # a copy
    found: dict[str, tuple[Covariate, list[int], list[float]]] = {
        name: (covariate, [], []) for name, covariate in model.covariates.items()
    }
    others: list[tuple[int, int, str, Any]] = []  # (k, n, name, value) read one by one
    opens: list[tuple[int, int, Any]] = []
    failed: list[tuple[int, str, str]] = []  # (row, loc, message)
    for k, n in enumerate(computed):
        row = rows[n]
        changes = row.get("covariates", NONE)
        if type(changes) is not dict:
            msg = f"expected a JSON object of covariate values, got {json_type(changes)}"
            failed.append((n, f"rows[{n}].covariates", msg))
        else:
            for name, value in changes.items():
                entry = found.get(name)
                if entry is not None:
                    try:
                        code = entry[0].codes.get(value)
                    except TypeError:  # an array or an object
                        code = None
                    if code is not None:
                        entry[1].append(k)
                        entry[2].append(code)
                        continue
                others.append((k, n, name, value))
        if "open" in row:
            opens.append((k, n, row["open"]))
    for k, n, name, value in others:
        covariate = model.covariates.get(name)
        try:
            if covariate is None:
                raise ValueError(unknown_covariate(model, name))
            code = code_of(covariate, value)
        except ValueError as exc:
            failed.append((n, f"rows[{n}].covariates.{shorten(name)}", str(exc)))
            continue
        found[name][1].append(k)
        found[name][2].append(code)
    for k, n, value in opens:
        try:
            is_open[k] = open_of(value)
        except ValueError as exc:
            failed.append((n, f"rows[{n}].open", str(exc)))
    if failed:
        failed.sort(key=lambda fail: fail[0])  # in the order of the rows (stable)
        problems = [problem(loc, msg) for _, loc, msg in failed[:MAX_PROBLEMS]]
        problems += [{}] * (len(failed) - len(problems))  # counted, not listed
        bad = len({n for n, _, _ in failed})
        raise refuse(
            problems, f"{bad} of {len(rows)} rows cannot be answered" if len(rows) > 1 else ""
        )
    for covariate, ks, codes in found.values():
        if ks:
            features[ks, covariate.column] = codes
    out = model.grid.reshape(len(model.is_open), -1)[picked]  # the plan's: a copy
    changed = differ(features, frozen) | (is_open != model.is_open[picked])
    out[changed & (is_open == 0)] = 0.0  # closed: every output 0
    busy = changed & (is_open != 0)
    if busy.any():
        out[busy] = np.round(outputs(model, features[busy], picked[busy] % model.horizon), DECIMALS)
    return out


def differ(features: np.ndarray, frozen: np.ndarray) -> np.ndarray:
    """Rows of ``features`` unlike the same rows of ``frozen`` (NaN alike NaN). A row like its
    frozen one is answered as the grid has it: the booster would answer the same."""
    unlike = features != frozen
    unlike &= ~(np.isnan(features) & np.isnan(frozen))
    return unlike.any(axis=1)


CHUNK_ROWS = 4096  # rows per call of count_quantiles, at least


def outputs(model: Model, features: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """``bundle.predict`` of open rows: the same numbers, its ranges computed for rows of
    similar means at a time (the exact quantiles step through the counts up to the largest of
    a call: in up to 8 calls, half the time for 45,000 rows)."""
    meta = model.meta
    mean = bundle.predict_mean(model.booster, meta, features)
    if not meta.quantiles:
        return mean[:, None]
    dispersion = meta.dispersion_of(periods)
    ranges = np.empty((len(mean), len(meta.quantiles)))
    order = np.argsort(mean, kind="stable")
    for part in np.array_split(order, max(1, min(8, len(mean) // CHUNK_ROWS))):
        ranges[part] = bundle.count_quantiles(mean[part], dispersion[part], meta.quantiles)
    return np.column_stack([mean, ranges])


def scenario_changes(
    model: Model, scenario: Mapping[str, Any], problems: list[dict[str, str]]
) -> tuple[dict[int, float], float | None]:
    """The covariate columns a scenario sets (column: code) and its open (None: the plan's);
    its invalid values are appended to ``problems`` (located under ``scenario``)."""
    columns: dict[int, float] = {}
    if not scenario:
        names = ", ".join(model.covariates)
        what = f"a covariate ({names}) or open" if names else "open (the model has no covariates)"
        problems.append(problem("scenario", f"empty: give {what} to change on those dates"))
    changes = {name: value for name, value in scenario.items() if name != OPEN}
    apply(model, "scenario", changes, columns.__setitem__, problems)
    is_open = None
    if OPEN in scenario:
        try:
            is_open = open_of(scenario[OPEN])
        except ValueError as exc:
            problems.append(problem("scenario.open", str(exc)))
    return columns, is_open


def scenario_sales(
    model: Model, cells: np.ndarray, columns: Mapping[int, float], is_open: float | None
) -> np.ndarray:
    """Expected sales of forecast ``cells`` with ``columns`` set to their codes (and open),
    rounded as answered."""
    frozen = model.forecast[cells]
    features = frozen.copy()
    for column, code in columns.items():
        features[:, column] = code
    opened = model.is_open[cells] if is_open is None else np.full(len(cells), is_open)
    sales = model.sales.reshape(-1)[cells]  # the plan's: a copy
    changed = differ(features, frozen) | (opened != model.is_open[cells])
    sales[changed & (opened == 0)] = 0.0
    busy = changed & (opened != 0)
    if busy.any():
        mean = bundle.predict_mean(model.booster, model.meta, features[busy])
        sales[busy] = np.round(mean, DECIMALS)
    return sales
