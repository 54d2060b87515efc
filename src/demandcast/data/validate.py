"""Check a loaded table against the contract, then fill gaps: the heart of ``prepare``.

The rules, each with the params key that changes it:

* **Dates** (``data.date_format``): ISO dates, ``YYYY-MM-DD`` (a time of day must be midnight);
  ``2019``, ``2019-01`` or ``2019-1-5`` are refused. Set ``data.date_format`` (e.g.
  ``%d/%m/%Y``) for another format: every date must then match it exactly.
* **Frequency** (``data.frequency``): ``auto`` reads a table as weekly when every date falls on
  the same weekday, else as daily. Weekly data stays weekly: it is never spread over days.
  The *step* of a table is the median number of days between its consecutive distinct dates
  (all series together, so a series that skips periods without sales does not change it).
  Under ``auto`` the step must be one period (1 day, or 7 days for weekly dates): a monthly
  table (step about 30 days; monthly data is out of scope), a biweekly or an irregular one is
  refused instead of being filled with zeros. With ``daily`` or ``weekly`` set, the file may
  leave out periods without sales (a step above one period is accepted), but a step of 7 days
  or more (``daily``) or 28 days or more (``weekly``) is still refused.
* **Returns** (``prepare.negative_sales``): negative sales refuse the file (``refuse``), or
  count as zero sales (``zero``), or their rows are dropped (``drop``).
* **Gaps** (``prepare.gaps``, ``prepare.outage_periods``): every series runs from its own first
  period to the last period of the whole table. A period missing inside a series is a period
  without sales (0), unless it is part of a run of at least ``outage_periods`` missing periods
  (default 28 days or 4 weeks): an outage, whose sales are unknown (NaN: not trained on, not
  averaged into any window, not scored). A series that stops early reads as zero demand until
  the end (a delisted item), since the periods after its last row are not *inside* it.
  ``zero`` makes every gap 0, ``missing`` makes every gap unknown.
* **Short series**: a series with less than ``2 x horizon`` periods plus
  ``prepare.min_train_days`` of history cannot be evaluated on a holdout; it is still trained
  on where it has rows, and served. The table is refused only when no series can be evaluated.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from demandcast.config import Params
from demandcast.data.covariates import join_attributes, select_typed
from demandcast.data.schema import (
    DATE,
    OPEN,
    SALES,
    frequency_of,
    refusal,
    series_columns,
    with_carried,
    with_frequency,
)
from demandcast.errors import DataError
from demandcast.frequency import DAY, WEEK, Frequency

PARAM_NAMES = {"daily": DAY, "weekly": WEEK}
# An ISO date, optionally with a time of day and a zone (refused later unless it is midnight).
ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
# With data.frequency set, a table may leave out periods without sales, but one whose dates are
# this many days apart or more (a weekly table read as daily, a monthly one) is refused.
SPARSEST_STEP_DAYS = {DAY.name: 7, WEEK.name: 28}


@dataclass(frozen=True)
class Summary:
    """``reports/prepare.json``."""

    frequency: str  # daily | weekly
    rows_in: int
    rows_out: int
    negative_sales: int  # rows with sales < 0 in the input
    negative_rule: str  # what was done with them (prepare.negative_sales)
    filled_zero: int  # missing periods read as no sales
    outage: int  # missing periods read as unknown (outages, or every gap under gaps: missing)
    series: int
    series_not_evaluated: int  # too short for a holdout: trained on and served, not scored
    start: str
    end: str
    closed: int = 0  # periods with open = 0: known zero sales, not trained on, forecast 0
    covariates: dict[str, str] = field(default_factory=dict)  # column -> kind
    attributes_missing: int = 0  # series keys without a row in the attribute file
    plan: dict[str, Any] = field(default_factory=dict)  # where the forecast window's
    # covariates come from, and the defaults used (data/plan.py)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def combine(cls, parts: list[Summary]) -> Summary:
        """The summary of a table prepared in partitions of whole series (``engine.py``)."""
        counts = ("rows_in", "rows_out", "negative_sales", "filled_zero", "outage", "series")
        first = parts[0]
        return replace(
            first,
            **{name: sum(getattr(p, name) for p in parts) for name in counts},
            series_not_evaluated=sum(p.series_not_evaluated for p in parts),
            closed=sum(p.closed for p in parts),
            start=min(p.start for p in parts),
            end=max(p.end for p in parts),
        )


def validate(
    frame: pd.DataFrame,
    source: str,
    date_format: str | None = None,
    negative_sales: str = "refuse",
    names: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, int]:
    """A copy with parsed dates and numeric sales, returns handled per ``negative_sales``, and
    the number of negative rows; or :class:`DataError` naming columns as ``names`` says
    (canonical -> the user's, from ``data.columns``)."""
    refuse = functools.partial(refusal, names=names)
    if frame.empty:
        raise DataError(f"{source}: the file has a header but no rows")
    keys = series_columns(frame)
    out = frame.copy()

    dates = parse_dates(out[DATE], date_format, source)
    bad = dates.isna().to_numpy()
    if bad.any():
        if date_format is None:
            problem = "are not dates in the form YYYY-MM-DD"
            fix = (
                "Write ISO dates (e.g. 2024-01-31), or set data.date_format in params.yaml to "
                "the format of your file (e.g. '%d/%m/%Y')."
            )
        else:
            problem = f"do not match data.date_format {date_format!r}"
            fix = "Fix those rows, or data.date_format in params.yaml."
        raise refuse(source, DATE, problem, frame, bad, fix)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    bad = (dates != dates.dt.normalize()).to_numpy()
    if bad.any():
        raise refuse(
            source,
            DATE,
            "have a time of day",
            frame,
            bad,
            "The table must be daily or weekly: aggregate to one row per series and period.",
        )
    out[DATE] = dates.astype("datetime64[ns]")

    for key in keys:
        bad = out[key].isna().to_numpy()
        if bad.any():
            raise refuse(source, key, "are empty", frame, bad, "Every row needs its series key.")

    sales = pd.to_numeric(out[SALES], errors="coerce")
    bad = sales.isna().to_numpy()
    if bad.any():
        raise refuse(
            source,
            SALES,
            "are not numbers",
            frame,
            bad,
            "Sales must be numeric; write 0 for a period without sales.",
        )
    bad = ~np.isfinite(sales.to_numpy(dtype=float))
    if bad.any():
        raise refuse(source, SALES, "are infinite", frame, bad, "Sales must be finite numbers.")
    negative = (sales < 0).to_numpy()
    if negative.any() and negative_sales == "refuse":
        raise refuse(
            source,
            SALES,
            "are negative",
            frame,
            negative,
            "Sales must be >= 0: net out returns before forecasting demand, or set "
            "prepare.negative_sales to zero (count them as no sales) or drop (drop those rows).",
        )
    out[SALES] = sales.astype("float64")
    if negative_sales == "zero":
        out.loc[negative, SALES] = 0.0
    elif negative_sales == "drop":
        out = out.loc[~negative]
        if out.empty:
            raise DataError(f"{source}: every row has negative sales; nothing is left to forecast")

    bad = out.duplicated(subset=[*keys, DATE], keep=False).to_numpy()
    if bad.any():
        raise refuse(
            source,
            "+".join([*keys, DATE]),
            "are duplicates of another row's series and date",
            out,
            bad,
            "Aggregate to one row per series and period.",
        )
    return out, int(negative.sum())


def parse_dates(values: pd.Series, date_format: str | None, source: str) -> pd.Series:
    """``values`` as datetimes, NaT where a value is not a date in ``date_format`` (None: an ISO
    date, ``YYYY-MM-DD``, optionally with a time of day; ``2019`` or ``2019-1-5`` are not)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype("string").str.strip()
    if date_format is None:
        text = text.where(text.str.fullmatch(ISO_DATE).fillna(False))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (FutureWarning, UserWarning))
            dates = pd.to_datetime(
                text.astype(object), errors="coerce", format=date_format or "ISO8601"
            )
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(
            f"{source}: column {DATE!r}: the dates cannot be read ({exc}). Write ISO dates "
            "(YYYY-MM-DD), or fix data.date_format in params.yaml."
        ) from None
    if not pd.api.types.is_datetime64_any_dtype(dates):  # a mix of time zone offsets
        raise DataError(
            f"{source}: column {DATE!r}: the dates mix time zone offsets. Write plain dates "
            "(YYYY-MM-DD): one row per series and day or week."
        )
    return dates


def detect_frequency(dates: pd.Series, setting: str, source: str) -> Frequency:
    """The table's period (``data.frequency``: auto | daily | weekly); refuses a table whose
    dates are not daily or weekly (the rule is in the module docstring)."""
    distinct = pd.DatetimeIndex(dates.drop_duplicates()).sort_values()
    weekdays = distinct.dayofweek
    one_weekday = len(weekdays) > 1 and (weekdays == weekdays[0]).all()
    if setting == "weekly" and not one_weekday:
        counts = pd.Series(weekdays).value_counts()
        raise DataError(
            f"{source}: data.frequency is weekly, but the dates fall on {len(counts)} different "
            "weekdays: a weekly table has one row per series and week, dated on the same "
            "weekday. Fix the dates, or set data.frequency: auto."
        )
    freq = (WEEK if one_weekday else DAY) if setting == "auto" else PARAM_NAMES[setting]
    steps = np.diff(distinct.to_numpy()) // np.timedelta64(1, "D")
    if len(steps) == 0:
        return freq
    step = float(np.median(steps))
    regular = step == freq.days if setting == "auto" else step < SPARSEST_STEP_DAYS[freq.name]
    if not regular:
        name = "daily" if freq == DAY else "weekly"
        examples = ", ".join(str(d.date()) for d in distinct[:3]) + (", ..." * (len(distinct) > 3))
        hint = (
            f" If your file leaves out the periods without sales, set data.frequency: {name} "
            "in params.yaml to read them as periods without sales."
            if setting == "auto" and step < SPARSEST_STEP_DAYS[freq.name]
            else ""
        )
        raise DataError(
            f"{source}: column {DATE!r}: consecutive dates are {step:g} days apart (median over "
            f"the table's {len(distinct)} dates: {examples}); read as {name}, many periods "
            "would be filled in as periods without sales. The table must be daily or weekly "
            "(monthly or irregular tables are not supported): aggregate it to one row per "
            f"series and day or week.{hint}"
        )
    return freq


def fill_gaps(
    frame: pd.DataFrame,
    freq: Frequency = DAY,
    gaps: str = "zero",
    outage_periods: int = 28,
    end: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, int, int]:
    """Apply the gap rule (module docstring); return the table on a full calendar of periods
    (to ``end``, the whole table's last date: by default ``frame``'s), how many missing
    periods became 0 and how many became unknown (NaN)."""
    keys = series_columns(frame)
    frame = frame.sort_values([*keys, DATE], ignore_index=True)
    end = frame[DATE].max() if end is None else end
    grouped = frame.groupby(keys, sort=True)[DATE]
    first, last = grouped.min(), grouped.max()
    lengths = ((end - first).dt.days // freq.days + 1).to_numpy()
    if lengths.sum() == len(frame):
        return frame, 0, 0
    index = pd.DataFrame({k: np.repeat(first.index.get_level_values(k), lengths) for k in keys})
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    index[DATE] = np.repeat(first.to_numpy(), lengths) + pd.to_timedelta(
        offsets * freq.days, unit="D"
    )
    full = index.merge(frame, on=[*keys, DATE], how="left", validate="one_to_one")
    missing = full[SALES].isna().to_numpy()
    if gaps == "zero":
        unknown = np.zeros(len(full), dtype=bool)
    elif gaps == "missing":
        unknown = missing
    else:  # auto: long runs of missing periods inside a series are outages
        series = np.repeat(np.arange(len(lengths)), lengths)
        starts = np.r_[True, (missing[1:] != missing[:-1]) | (series[1:] != series[:-1])]
        run = np.cumsum(starts) - 1
        run_length = np.bincount(run)[run]
        inside = full[DATE].to_numpy() < np.repeat(last.to_numpy(), lengths)
        unknown = missing & inside & (run_length >= outage_periods)
    zero = missing & ~unknown
    full.loc[zero, SALES] = 0.0
    return full, int(zero.sum()), int(unknown.sum())


def min_history(params: Params, freq: Frequency) -> int:
    """Periods of history a series needs to be evaluated: one horizon of lag, one of holdout,
    and ``prepare.min_train_days`` to train on."""
    return 2 * params.horizon + freq.periods(params.prepare.min_train_days)


def prepare_table(
    frame: pd.DataFrame,
    source: str,
    params: Params,
    *,
    require_evaluable: bool = True,
    attributes: pd.DataFrame | None = None,
    calendar: tuple[Frequency, pd.Timestamp] | None = None,
) -> tuple[pd.DataFrame, Summary]:
    """The prepared table (its frequency in ``attrs``) and ``reports/prepare.json``: only the
    canonical columns, ``open``, the covariates and the ``attributes``
    (``covariates.read_attributes``) joined on, all typed.

    ``require_evaluable``: refuse the table when no series is long enough for a holdout (the
    ``prepare`` stage); the drift stage reads today's data without that rule. ``calendar``:
    the period and last date of the whole table when ``frame`` is one partition of its series
    (``engine.py``); by default ``frame``'s own."""
    names = params.data.columns.mapped()
    selected = select_typed(frame, params, source, names)
    checked, negative = validate(
        selected, source, params.data.date_format, params.prepare.negative_sales, names
    )
    if calendar is None:
        freq, end = detect_frequency(checked[DATE], params.data.frequency, source), None
    else:
        freq, end = calendar
    outage_periods = params.prepare.outage_periods or freq.periods(28)
    full, zero, unknown = fill_gaps(checked, freq, params.prepare.gaps, outage_periods, end)
    if OPEN in full.columns:  # a period filled with no sales was open; an outage: unknown
        full.loc[full[OPEN].isna() & full[SALES].notna(), OPEN] = 1.0
    for column, kind in params.data.covariates.items():
        if kind == "flag":
            full[column] = full[column].fillna(0.0)
    full, no_attributes = join_attributes(full, attributes, params)
    keys = series_columns(full)
    canonical = [DATE, *keys, SALES]
    full = full[canonical + [c for c in full.columns if c not in canonical]]
    full = with_frequency(full, freq)
    attribute_kinds = params.data.attributes.columns if params.data.attributes else {}
    full = with_carried(full, params.data.covariates, attribute_kinds)

    periods = history_periods(full, freq)
    needed = min_history(params, freq)
    short = periods[periods < needed]
    if require_evaluable and len(short) == len(periods):
        longest = int(periods.max())
        raise DataError(
            f"{source}: no series has the {needed} {freq.name}s of history an evaluation needs "
            f"(2 x horizon + prepare.min_train_days); the longest has {longest}. Lower horizon "
            "or prepare.min_train_days, or add history."
        )
    summary = Summary(
        frequency="weekly" if freq == WEEK else "daily",
        rows_in=len(frame),
        rows_out=len(full),
        negative_sales=negative,
        negative_rule=params.prepare.negative_sales,
        filled_zero=zero,
        outage=unknown,
        series=len(periods),
        series_not_evaluated=len(short),
        start=str(full[DATE].min().date()),
        end=str(full[DATE].max().date()),
        closed=int((full[OPEN] == 0).sum()) if OPEN in full.columns else 0,
        covariates=dict(params.data.covariates),
        attributes_missing=no_attributes,
    )
    return full, summary


def evaluable_series(prepared: pd.DataFrame, params: Params) -> pd.DataFrame:
    """The keys of the series long enough to be evaluated (see :func:`min_history`)."""
    freq = frequency_of(prepared)
    periods = history_periods(prepared, freq)
    return periods[periods >= min_history(params, freq)].index.to_frame(index=False)


def history_periods(frame: pd.DataFrame, freq: Frequency) -> pd.Series:
    """Periods from each series' first row to the end of the table, indexed by series keys."""
    first = frame.groupby(series_columns(frame), sort=False)[DATE].min()
    return (frame[DATE].max() - first).dt.days // freq.days + 1
