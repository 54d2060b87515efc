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

DATE, STORE, ITEM, SALES = "date", "store", "item", "sales"
# Synthetic data only: the generator's expected sales, carried through prepare so that
# evaluate and drift can report the oracle (the best achievable error).
TRUE_MEAN = "true_mean"


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
