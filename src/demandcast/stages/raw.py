"""The raw tables as params.yaml configures them: read by ``prepare`` and ``drift``; on the
dask engine, split into partitions of whole series (:func:`raw_partitions`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from demandcast.config import Params
from demandcast.data import load, synthetic
from demandcast.data.schema import DATE, ITEM, STORE
from demandcast.data.validate import detect_frequency, parse_dates
from demandcast.frequency import DAY, WEEK, Frequency

if TYPE_CHECKING:
    from demandcast.engine import Engine

PART = "_part"  # the partition of a series, in the keys of raw_partitions
ROW = "_row"  # a row's number in the file, carried to its partition (messages name it)


def load_raw(params: Params) -> tuple[pd.DataFrame, str]:
    """The raw sales table in canonical columns, and a name for it in messages."""
    if params.data.source == "synthetic":
        cfg = params.data.synthetic
        return synthetic.generate(cfg), f"synthetic(seed={cfg.seed})"
    path = str(params.data.path)  # set: config refuses source "file" without a path
    return load.read_table(path, params.data.columns), path


def load_plan(params: Params) -> tuple[pd.DataFrame | None, str | None]:
    """The raw plan of the forecast window (``data.future_path``, or the generator's for
    synthetic data) and its name; (None, None) when there is none: defaults apply."""
    if params.data.future_path is not None:
        path = params.data.future_path
        return load.read_table(path, params.data.columns, without_sales=True), path
    if params.data.source == "synthetic":
        cfg = params.data.synthetic
        return synthetic.plan(cfg, params.horizon), f"synthetic(seed={cfg.seed})"
    return None, None


@dataclass(frozen=True)
class RawPart:
    """The raw rows of one partition: a frame (or, on dask, a task that makes one), or the
    synthetic generator's ``series``."""

    frame: Any = None  # pd.DataFrame | dask Delayed
    series: pd.DataFrame | None = None  # store, item

    def load(self, params: Params) -> pd.DataFrame:
        if self.frame is not None:  # in file order, indexed by the rows' numbers in the file
            frame: pd.DataFrame = self.frame
            if ROW not in frame.columns:  # the whole file (local engine)
                return frame.reset_index(drop=True)
            return frame.set_index(ROW).sort_index().rename_axis(None)
        return synthetic.generate(params.data.synthetic, series=self.series)


def raw_partitions(
    params: Params, engine: Engine
) -> tuple[list[RawPart], pd.DataFrame, tuple[Frequency, pd.Timestamp], str]:
    """The raw table in partitions of whole series, contiguous in key order: the parts, every
    series' keys with its partition (column ``_part``), the table's period and last date (one
    partition alone cannot tell), and the table's name in messages."""
    if params.data.source == "synthetic":
        cfg = params.data.synthetic
        keys = synthetic.series_keys(cfg)[[STORE, ITEM]]
        one = synthetic.generate(cfg, series=keys.iloc[:1])
        freq = WEEK if cfg.frequency == "weekly" else DAY
        keys = _assign(keys, engine.partitions(len(keys) * len(one)))
        parts = [
            RawPart(series=group.drop(columns=PART)) for _, group in keys.groupby(PART, sort=True)
        ]
        return parts, keys, (freq, one[DATE].max()), f"synthetic(seed={cfg.seed})"
    path = str(params.data.path)
    frame = load.read_table_lazily(path, params.data.columns)
    names = [k for k in (STORE, ITEM) if k in frame.columns]
    import dask

    # one read of the file for all three: its series, its dates and the length of each block
    keys, dates, lengths = dask.compute(
        frame[names].drop_duplicates(), frame[DATE].drop_duplicates(), frame.map_partitions(len)
    )
    for key in names:  # integers only when every key of the whole table is a plain integer
        keys[key] = load.int_if_plain(keys[key])
    keys = keys.dropna().sort_values(names, ignore_index=True)
    dates = parse_dates(pd.Series(dates), params.data.date_format, path)
    dates = dates.dropna()  # rows with bad dates are refused by their partition
    freq = detect_frequency(dates, params.data.frequency, path)
    lengths = lengths.to_numpy()  # of the blocks read
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    frame = frame.map_partitions(_numbered, starts, meta=_numbered(frame._meta, starts))
    keys = _assign(keys, engine.partitions(int(lengths.sum())))
    as_text = dict.fromkeys(names, pd.StringDtype("pyarrow"))  # as dask holds text
    with_part = frame.astype(as_text).merge(keys.astype(as_text), on=names, how="left")
    with_part[PART] = with_part[PART].fillna(0).astype(int)  # no key: refused by partition 0
    for key in names:  # the table's key type: integers, or text as the local engine reads it
        with_part[key] = with_part[key].astype(keys[key].dtype)
    count = int(keys[PART].max()) + 1
    ordered = with_part.set_index(PART, divisions=[*range(count), count - 1])
    parts = [RawPart(frame=delayed) for delayed in ordered.to_delayed()]
    return parts, keys, (freq, dates.max()), path


def _numbered(
    block: pd.DataFrame, starts: np.ndarray, partition_info: dict | None = None
) -> pd.DataFrame:
    """``block`` (one block of the file dask read) with its rows' numbers in the file."""
    start = int(starts[partition_info["number"]]) if partition_info else 0
    return block.assign(**{ROW: np.arange(start, start + len(block), dtype=np.int64)})


def _assign(keys: pd.DataFrame, partitions: int) -> pd.DataFrame:
    """``keys`` (sorted) with ``_part``: ``partitions`` contiguous runs of about equal size."""
    n = len(keys)
    partitions = max(1, min(partitions, n))
    return keys.reset_index(drop=True).assign(**{PART: np.arange(n) * partitions // n})
