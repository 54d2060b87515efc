"""Read a user's long-format daily sales file (CSV or Parquet) into the canonical columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from demandcast.config import ColumnMap
from demandcast.data.schema import DATE, ITEM, SALES, STORE
from demandcast.errors import DataError

READERS = {".csv": "csv", ".txt": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Path | str, columns: ColumnMap) -> pd.DataFrame:
    """Load ``path`` and rename the mapped columns to the canonical names; values are untouched.

    Key columns are read as text from CSV, then turned into integers only when every value is a
    plain integer without leading zeros, so IDs like ``"007"`` survive.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found (data.path in params.yaml)")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")
    wanted = {canonical: theirs for canonical, theirs in columns.model_dump().items() if theirs}
    if kind == "csv":
        try:
            keys = {wanted[k]: str for k in (STORE, ITEM) if k in wanted}
            frame = pd.read_csv(path, dtype=keys, keep_default_na=True)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    else:
        frame = pd.read_parquet(path)
    missing = [
        f"{theirs!r} (for {canonical})"
        for canonical, theirs in wanted.items()
        if theirs not in frame.columns
    ]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)}; the file has "
            f"{list(frame.columns)}. Fix data.columns in params.yaml to name your columns."
        )
    clash = [
        c
        for c in (DATE, STORE, ITEM, SALES)
        if c in frame.columns and c not in wanted.values() and c in wanted
    ]
    frame = frame.drop(columns=clash).rename(columns={v: k for k, v in wanted.items()})
    for key in (STORE, ITEM):
        if key in frame.columns and frame[key].dtype == object:
            frame[key] = _int_if_plain(frame[key])
    return frame


def _int_if_plain(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    plain = text.str.fullmatch(r"0|-?[1-9][0-9]{0,17}")
    if len(text) and bool(plain.fillna(False).all()):
        return text.astype("int64")
    return text.astype(object).where(text.notna(), None)
