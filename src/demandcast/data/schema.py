"""The canonical long format every stage after ``prepare`` relies on.

| column  | type           | notes                                                    |
|---------|----------------|----------------------------------------------------------|
| date    | datetime64[ns] | daily, no gaps inside a series after ``prepare``         |
| store   | int or str     | series key                                               |
| item    | int or str     | series key, absent for a store-only table                |
| sales   | float >= 0     | the target; NaN = unknown (an outage)                    |
| open    | float 0/1      | optional (``data.columns.open``): 0 = closed, sales 0    |

Then the covariates (``data.covariates``) and attributes (``data.attributes``) under their own
names, typed by :func:`typed`: flags and numbers as float, categories as text. Nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from demandcast.errors import DataError
from demandcast.frequency import FREQUENCIES, Frequency

DATE, STORE, ITEM, SALES = "date", "store", "item", "sales"
OPEN = "open"  # optional: 1.0 = open, 0.0 = closed (a known zero-sales day)
# Synthetic data only: the generator's expected sales, carried through prepare so that
# evaluate and drift can report the oracle (the best achievable error).
TRUE_MEAN = "true_mean"
FREQUENCY = "frequency"  # key of a table's attrs: the period of its rows (day or week)


def with_frequency(frame: pd.DataFrame, freq: Frequency) -> pd.DataFrame:
    """Record the table's period in its ``attrs`` (Parquet keeps them); returns ``frame``."""
    frame.attrs[FREQUENCY] = freq.name
    return frame


def frequency_of(frame: pd.DataFrame) -> Frequency:
    """The period recorded in a prepared or features table (see :func:`with_frequency`)."""
    name = frame.attrs.get(FREQUENCY)
    if name not in FREQUENCIES:
        raise ValueError("this table records no frequency: make it with prepare_table")
    return FREQUENCIES[name]


CARRIED = "carried"  # key of a prepared table's attrs: {"covariate": {name: kind}, ...}


def with_carried(
    frame: pd.DataFrame, covariates: Mapping[str, str], attributes: Mapping[str, str]
) -> pd.DataFrame:
    """Record which columns are covariates and attributes, with their kinds (flag, number,
    category), in the table's ``attrs``; returns ``frame``."""
    frame.attrs[CARRIED] = {"covariate": dict(covariates), "attribute": dict(attributes)}
    return frame


def carried_kinds(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """The covariate and attribute columns a prepared table records, by role, with kinds."""
    return frame.attrs.get(CARRIED, {})


FLAG_TRUE = frozenset({"1", "1.0", "true", "yes", "y", "t"})
FLAG_FALSE = frozenset({"0", "0.0", "false", "no", "n", "f", ""})


def parse_flag(values: pd.Series) -> np.ndarray:
    """A flag column as 1.0 / 0.0 (NaN where empty): reads 0/1, true/false, yes/no in any
    case. ``ValueError`` naming the first value it cannot read."""
    text = values.astype("string").str.strip().str.lower()
    out = np.full(len(values), np.nan)
    known = text.notna().to_numpy()
    on = text.isin(FLAG_TRUE).to_numpy() & known
    off = text.isin(FLAG_FALSE).to_numpy() & known
    out[on], out[off] = 1.0, 0.0
    bad = known & ~on & ~off
    if bad.any():
        raise ValueError(
            f"{values.iloc[int(np.flatnonzero(bad)[0])]!r} is not a flag (0/1, true/false, yes/no)"
        )
    return out


def series_columns(frame: pd.DataFrame) -> list[str]:
    """The key columns present: ``[store, item]``, or ``[store]`` for a store-only table."""
    return [c for c in (STORE, ITEM) if c in frame.columns]


def series_index(frame: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.Index:
    """The series key values of ``frame``'s rows as an index (a MultiIndex for store x item),
    for lookups between tables; ``keys``: these columns (default: :func:`series_columns`)."""
    keys = list(keys) if keys is not None else series_columns(frame)
    return pd.MultiIndex.from_frame(frame[keys]) if len(keys) > 1 else pd.Index(frame[keys[0]])


def describe_row(frame: pd.DataFrame, position: int, columns: Sequence[str] | None = None) -> str:
    """One row as ``col=value, ...`` for error messages."""
    row = frame.iloc[position]
    cols = list(columns) if columns is not None else list(frame.columns)
    return ", ".join(f"{c}={plain(row[c])!r}" for c in cols)


def refusal(
    source: str,
    column: str,
    problem: str,
    frame: pd.DataFrame,
    bad: np.ndarray,
    fix: str,
    names: Mapping[str, str] | None = None,
) -> DataError:
    """A refusal naming the file, the column, how many rows and the first of them, in the
    user's column names (``names``: canonical -> theirs; ``column`` may join several by +).
    The row is the file's data row: ``frame``'s integer index + 1 (a part of a file keeps its
    rows' numbers there: ``stages/raw.py``), else the position + 1."""
    names = {k: v for k, v in (names or {}).items() if k != v}
    positions = np.flatnonzero(bad)
    example = describe_row(frame.rename(columns=names), positions[0])
    label = "+".join(names.get(part, part) for part in column.split("+"))
    index = frame.index
    row = index[positions[0]] if pd.api.types.is_integer_dtype(index) else positions[0]
    return DataError(
        f"{source}: column {label!r}: {len(positions)} of {len(frame)} rows {problem}; "
        f"first at row {row + 1}: {example}. {fix}"
    )


def plain(value: Any) -> Any:
    """numpy scalars -> Python values, for messages and JSON."""
    return value.item() if isinstance(value, np.generic) else value


NONE_LEVEL = "none"  # the category level a plan defaults to (see data/covariates.py)


def typed(values: pd.Series, kind: str) -> pd.Series:
    """A covariate or attribute column read as its ``kind``: ``flag`` -> 1.0/0.0 (empty: 0),
    ``number`` -> float (empty: NaN), ``category`` -> text (``0`` and ``a`` are both levels;
    empty: missing). ``ValueError`` naming the first value that is not of the kind."""
    if kind == "flag":
        return pd.Series(np.nan_to_num(parse_flag(values), nan=0.0), index=values.index)
    if kind == "number":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("float64")
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = (numbers.isna() & text.notna() & (text != "")).to_numpy()
        bad |= np.isinf(numbers.to_numpy())
        if bad.any():
            first = values.iloc[int(np.flatnonzero(bad)[0])]
            raise ValueError(f"{plain(first)!r} is not a number")
        return numbers
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if (whole == np.round(whole)).all():
            values = values.astype("Int64")
    text = values.astype("string").str.strip()
    return text.where(text.notna() & (text != ""), None).astype(object)
