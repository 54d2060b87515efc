"""The canonical long format every stage after ``prepare`` relies on.

| column  | type           | notes                                                    |
|---------|----------------|----------------------------------------------------------|
| date    | datetime64[ns] | daily, no gaps inside a series after ``prepare``         |
| store   | int or str     | series key                                               |
| item    | int or str     | series key, absent for a store-only table                |
| sales   | float >= 0     | the target                                               |

Other columns are passed through untouched (reserved for known-in-advance covariates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from demandcast.frequency import FREQUENCIES, Frequency

DATE, STORE, ITEM, SALES = "date", "store", "item", "sales"
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


def describe_row(frame: pd.DataFrame, position: int, columns: Sequence[str] | None = None) -> str:
    """One row as ``col=value, ...`` for error messages."""
    row = frame.iloc[position]
    cols = list(columns) if columns is not None else list(frame.columns)
    return ", ".join(f"{c}={plain(row[c])!r}" for c in cols)


def plain(value: Any) -> Any:
    """numpy scalars -> Python values, for messages and JSON."""
    return value.item() if isinstance(value, np.generic) else value
