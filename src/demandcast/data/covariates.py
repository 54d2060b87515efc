"""What a sales table carries beside its sales: the ``open`` flag, the covariates (known in
advance: promotions, holidays, prices) and the attributes of each store or item.

Each is read as its declared kind (``schema.typed``); any other column of the user's file is
dropped here, whatever it holds, so no unmapped column can break a later stage.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from demandcast.config import Params
from demandcast.data.load import int_if_plain, read_file
from demandcast.data.schema import (
    DATE,
    ITEM,
    OPEN,
    SALES,
    STORE,
    TRUE_MEAN,
    parse_flag,
    refusal,
    typed,
)
from demandcast.errors import DataError

FIX_KIND = {
    "flag": "A flag is 0/1, true/false or yes/no; fix those rows, or declare the column a "
    "category in params.yaml.",
    "number": "Write plain numbers (a dot for decimals, no thousands separator), or leave the "
    "cell empty when unknown; or declare the column a category in params.yaml.",
    "category": "",
}


def select_typed(
    frame: pd.DataFrame, params: Params, source: str, names: Mapping[str, str]
) -> pd.DataFrame:
    """The canonical columns, ``open`` and the covariates (typed), and nothing else: other
    columns are dropped, whatever they hold. Refuses a declared column the file does not have,
    or a value that is not of its column's kind, naming the column, count and first row."""
    covariates = params.data.covariates
    weight = params.evaluate.weight  # its flag column is kept for evaluate (read there)
    wanted = [*covariates, *([weight.column] if weight and weight.column not in covariates else [])]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: no column {missing[0]!r} (declared in params.yaml: data.covariates or "
            f"evaluate.weight); the file has {list(frame.columns)}"
        )
    mapped = (*params.data.columns.mapped(), TRUE_MEAN)
    canonical = [c for c in (DATE, STORE, ITEM, SALES, OPEN, TRUE_MEAN) if c in mapped]
    canonical = [c for c in canonical if c in frame.columns]
    out = frame[canonical + [c for c in wanted if c not in canonical]].copy()
    if OPEN in out.columns:
        out[OPEN] = _typed(frame, OPEN, "flag", source, names)
    for column, kind in covariates.items():
        out[column] = _typed(frame, column, kind, source, names)
    return out


def _typed(
    frame: pd.DataFrame, column: str, kind: str, source: str, names: Mapping[str, str]
) -> pd.Series:
    try:
        return typed(frame[column], kind)
    except ValueError:
        bad = _not_of_kind(frame[column], kind)
        raise refusal(
            source, column, f"are not of kind {kind}", frame, bad, FIX_KIND[kind], names
        ) from None


def _not_of_kind(values: pd.Series, kind: str) -> np.ndarray:
    """Which values :func:`schema.typed` cannot read as ``kind`` (one at a time: slow, for
    the error message only)."""
    bad = np.zeros(len(values), dtype=bool)
    for position, value in enumerate(values.to_numpy()):
        try:
            if kind == "flag":
                parse_flag(pd.Series([value], dtype=object))
            else:
                typed(pd.Series([value], dtype=object), kind)
        except ValueError:
            bad[position] = True
    return bad


def read_attributes(params: Params) -> pd.DataFrame | None:
    """The attribute file (``data.attributes``) keyed by the canonical ``store`` or ``item``,
    its columns typed; None when there is none."""
    spec = params.data.attributes
    if spec is None:
        return None
    path = spec.path
    raw = read_file(path, {spec.column: str})
    missing = [c for c in (spec.column, *spec.columns) if c not in raw.columns]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]!r} (data.attributes in params.yaml); the file has "
            f"{list(raw.columns)}"
        )
    out = pd.DataFrame({spec.key: raw[spec.column]})
    bad = out[spec.key].isna().to_numpy()
    if bad.any():
        raise refusal(path, spec.column, "are empty", raw, bad, "Every row needs its key.")
    out[spec.key] = int_if_plain(out[spec.key]) if out[spec.key].dtype == object else out[spec.key]
    bad = out[spec.key].duplicated(keep=False).to_numpy()
    if bad.any():
        raise refusal(
            path, spec.column, "repeat another row's key", raw, bad, "Keep one row per key."
        )
    for column, kind in spec.columns.items():
        out[column] = _typed(raw, column, kind, path, {})
    return out


def join_attributes(
    frame: pd.DataFrame, attributes: pd.DataFrame | None, params: Params
) -> tuple[pd.DataFrame, int]:
    """``frame`` with the attribute columns of its rows' store (or item), and how many of its
    series' keys have no row in the attribute file (their attributes are missing: NaN, a flag
    0). Keys match as text, so ``7`` in one file finds ``"7"`` in the other."""
    if attributes is None or params.data.attributes is None:
        return frame, 0
    key, kinds = params.data.attributes.key, params.data.attributes.columns
    if key not in frame.columns:
        raise DataError(f"data.attributes.key is {key!r}, but the sales table has no {key} column")
    table = attributes.drop(columns=key).set_index(attributes[key].astype(str))
    keys = pd.Series(frame[key].unique())
    text = keys.astype(str)
    rows = table.reindex(text.to_numpy())
    at = pd.Index(keys).get_indexer(frame[key])
    out = frame.copy()
    for column, kind in kinds.items():
        values = rows[column].to_numpy()[at]
        out[column] = np.nan_to_num(values.astype(float), nan=0.0) if kind == "flag" else values
    return out, int((~text.isin(table.index)).sum())
