"""Check a loaded table against the contract, then fill gaps: the heart of ``prepare``.

Gap rule: every series is made daily from its own first date to the last date of the whole
table. A day missing from the export is a day with no sales, so it gets ``sales = 0``; other
columns of filled days are left empty. Series that stop early therefore read as zero demand
until the end of the table (a delisted item), which is what a forecast should then say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from demandcast.data.schema import DATE, SALES, describe_row, plain, series_columns
from demandcast.errors import DataError


@dataclass(frozen=True)
class Summary:
    rows_in: int
    rows_out: int
    days_filled: int
    series: int
    start: str
    end: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _refuse(
    source: str, column: str, problem: str, frame: pd.DataFrame, bad: np.ndarray, fix: str
) -> DataError:
    positions = np.flatnonzero(bad)
    example = describe_row(frame, positions[0])
    return DataError(
        f"{source}: column {column!r}: {len(positions)} of {len(frame)} rows {problem}; "
        f"first at row {positions[0] + 1}: {example}. {fix}"
    )


def validate(
    frame: pd.DataFrame, source: str, min_history_days: int, date_format: str | None = None
) -> pd.DataFrame:
    """Return a copy with parsed dates and numeric sales, or raise :class:`DataError`."""
    if frame.empty:
        raise DataError(f"{source}: the file has a header but no rows")
    keys = series_columns(frame)
    out = frame.copy()

    dates = pd.to_datetime(out[DATE], errors="coerce", format=date_format or "ISO8601")
    bad = dates.isna().to_numpy()
    if bad.any():
        raise _refuse(
            source,
            DATE,
            "are not dates",
            frame,
            bad,
            "Use ISO dates (YYYY-MM-DD) or set data.date_format in params.yaml.",
        )
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    bad = (dates != dates.dt.normalize()).to_numpy()
    if bad.any():
        raise _refuse(
            source,
            DATE,
            "have a time of day",
            frame,
            bad,
            "The table must be daily: aggregate to one row per series and day.",
        )
    out[DATE] = dates.astype("datetime64[ns]")

    for key in keys:
        bad = out[key].isna().to_numpy()
        if bad.any():
            raise _refuse(source, key, "are empty", frame, bad, "Every row needs its series key.")

    sales = pd.to_numeric(out[SALES], errors="coerce")
    bad = sales.isna().to_numpy()
    if bad.any():
        raise _refuse(
            source,
            SALES,
            "are not numbers",
            frame,
            bad,
            "Sales must be numeric; write 0 for a day without sales.",
        )
    bad = (sales < 0).to_numpy()
    if bad.any():
        raise _refuse(
            source,
            SALES,
            "are negative",
            frame,
            bad,
            "Sales must be >= 0; net out returns before forecasting demand.",
        )
    bad = ~np.isfinite(sales.to_numpy(dtype=float))
    if bad.any():
        raise _refuse(source, SALES, "are infinite", frame, bad, "Sales must be finite numbers.")
    out[SALES] = sales.astype("float64")

    bad = out.duplicated(subset=[*keys, DATE], keep=False).to_numpy()
    if bad.any():
        raise _refuse(
            source,
            "+".join([*keys, DATE]),
            "are duplicates of another row's series and date",
            frame,
            bad,
            "Aggregate to one row per series and day.",
        )

    span = out.groupby(keys, sort=False)[DATE].agg(["min"])
    days = (out[DATE].max() - span["min"]).dt.days + 1
    short = days[days < min_history_days]
    if len(short):
        first = short.index[0]
        first = first if isinstance(first, tuple) else (first,)
        named = ", ".join(f"{k}={plain(v)!r}" for k, v in zip(keys, first, strict=True))
        raise DataError(
            f"{source}: {len(short)} of {len(days)} series have less than {min_history_days} days "
            f"of history (2 x horizon + prepare.min_train_days); first: {named} with "
            f"{int(short.iloc[0])} days. Drop those series, or lower horizon / min_train_days."
        )
    return out


def fill_gaps(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Apply the gap rule (module docstring); return the daily table and the days it added."""
    keys = series_columns(frame)
    end = frame[DATE].max()
    first = frame.groupby(keys, sort=True)[DATE].min()
    lengths = ((end - first).dt.days + 1).to_numpy()
    if lengths.sum() == len(frame):
        return frame.sort_values([*keys, DATE], ignore_index=True), 0
    index = pd.DataFrame({k: np.repeat(first.index.get_level_values(k), lengths) for k in keys})
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    index[DATE] = np.repeat(first.to_numpy(), lengths) + pd.to_timedelta(offsets, unit="D")
    full = index.merge(frame, on=[*keys, DATE], how="left", validate="one_to_one")
    filled = int(full[SALES].isna().sum())
    full[SALES] = full[SALES].fillna(0.0)
    return full, filled


def prepare_table(
    frame: pd.DataFrame, source: str, min_history_days: int, date_format: str | None = None
) -> tuple[pd.DataFrame, Summary]:
    checked = validate(frame, source, min_history_days, date_format)
    full, filled = fill_gaps(checked)
    canonical = [DATE, *series_columns(full), SALES]
    full = full[canonical + [c for c in full.columns if c not in canonical]]
    summary = Summary(
        rows_in=len(frame),
        rows_out=len(full),
        days_filled=filled,
        series=int(full.groupby(series_columns(full)).ngroups),
        start=str(full[DATE].min().date()),
        end=str(full[DATE].max().date()),
    )
    return full, summary
