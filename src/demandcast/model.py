"""Train one global XGBoost model and package it as a bundle (see ``bundle.py``).

The features table is a pandas frame (the local engine) or a lazy dask frame of partitions of
series (``engine.py``, with its ``client``): then XGBoost trains on the cluster
(``xgboost.dask``), or, when the training rows do not fit the workers' memory, with XGBoost's
external memory in this process (``engine.training``), and only the small tables a bundle
holds (the forecast rows, the last year of sales) are collected. The code below is written
once for both: pandas' API, with :func:`_collect` where a lazy result is computed."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from demandcast import bundle
from demandcast.config import Params
from demandcast.data.schema import (
    DATE,
    ITEM,
    OPEN,
    SALES,
    STORE,
    frequency_of,
    plain,
    series_columns,
    series_index,
)
from demandcast.engine import scratch
from demandcast.errors import ConfigError
from demandcast.features import (
    LEVEL_FLOOR,
    LOG_LEVEL,
    declared,
    encodings,
    trainable,
    with_encodings,
)

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)
Table = Any  # pd.DataFrame, or a dask DataFrame of partitions of series
# xgboost.dask's memory in all, per training value (rows x inputs), measured on 50 M rows x 26
# inputs (benchmarks/SCALE.md): the rows held by the workers, binned matrix and buffers
CLUSTER_BYTES_PER_VALUE = 16
CLUSTER_MEMORY_SHARE = 0.75  # engine.training auto: cluster if the estimate fits this share
# how XGBoost's collective fails when a peer (a worker) dies in training
LOST_PEER = ("allgather", "allreduce", "broadcast", "broken pipe", "connection reset", "poll error")


def _lazy(frame: Table) -> bool:
    return hasattr(frame, "dask")


def _template(frame: Table) -> pd.DataFrame:
    """The frame itself, or a lazy frame's empty pandas template (with its ``attrs``)."""
    return frame._meta if _lazy(frame) else frame


def _collect(*values: Any) -> tuple[Any, ...]:
    """``values`` with the lazy ones computed, in one pass over the data."""
    if not any(_lazy(v) for v in values):
        return values
    import dask

    return tuple(dask.compute(*values))


def _each(frame: Table, function: Callable[..., pd.DataFrame], *args: Any) -> Table:
    """``function(frame, *args)``, or lazily per partition (of whole series)."""
    if not _lazy(frame):
        return function(frame, *args)
    return frame.map_partitions(function, *args, meta=function(frame._meta, *args))


def _rows_between(frame: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    return frame.loc[(frame[DATE] >= first) & (frame[DATE] <= last)]


def _sales(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The keys, date and sales of ``frame``'s rows."""
    return frame[[*keys, DATE, SALES]]


def _train_rows(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    return frame.loc[trainable(frame, cutoff)]


def _row_hashes(frame: pd.DataFrame) -> pd.DataFrame:
    """The total of the rows' hashes (wrapping) and their number, as one row."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    total = np.array([hashes.sum(dtype=np.uint64)], dtype=np.uint64)
    return pd.DataFrame({"sum": total, "rows": np.array([len(hashes)], dtype=np.int64)})


def _digest(parts: pd.DataFrame) -> str:
    """A digest of rows from their :func:`_row_hashes`: the same for any order or partitions."""
    total = int(parts["sum"].to_numpy(dtype=np.uint64).sum(dtype=np.uint64))
    return hashlib.sha256(f"{total}:{int(parts['rows'].sum())}".encode()).hexdigest()[:16]


def booster_params(params: Params) -> dict:
    p = params.train
    return {
        "objective": p.objective,
        "tree_method": "hist",
        "eta": p.learning_rate,
        "max_depth": p.max_depth,
        "min_child_weight": p.min_child_weight,
        "subsample": p.subsample,
        "colsample_bytree": p.colsample_bytree,
        "lambda": p.reg_lambda,
        "max_bin": p.max_bin,
        "seed": p.seed,
        "nthread": p.nthread,
    }


class _Progress(xgb.callback.TrainingCallback):
    """A one-line log every ~10 seconds of training."""

    def __init__(self, rounds: int, every_s: float = 10.0):
        self.rounds, self.every_s = rounds, every_s
        self.started = self.last = time.perf_counter()

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            log.info("train: round %d/%d, %.0f s", epoch + 1, self.rounds, now - self.started)
        return False  # never stop early


def fit(
    features: Table,
    cutoff: pd.Timestamp,
    params: Params,
    dispersion: list[float | None] | None = None,
    client: Client | None = None,
) -> bundle.Trained:
    """Train on rows up to ``cutoff``: the booster, its metadata, its forecast rows (the
    ``horizon`` periods after ``cutoff`` for every series) and the last year of sales before
    them. With ``dispersion`` (see :func:`calibrate`), the bundle's outputs include the
    quantiles of ``train.quantiles``. ``features`` lazy (dask): trained on ``client``'s
    cluster."""
    template = _template(features)
    horizon, freq = params.horizon, frequency_of(template)
    keys = series_columns(template)
    rows = _each(features, _train_rows, cutoff)
    train_keys = _each(rows, _sales, keys)
    found = encodings(train_keys[[*keys, SALES]], _collect)
    if not found.rows:
        raise ValueError(f"no row to train on through {cutoff.date()}")
    train = _each(rows, with_encodings, found)  # the encodings of the rows it needs only
    specs = declared(_template(train))
    columns = [spec.name for spec in specs]
    inputs = [c for c in columns if c != LOG_LEVEL]
    types = ["c" if spec.value == "category" else "q" for spec in specs if spec.name in inputs]
    log.info("train: %d rows through %s, %d features", found.rows, cutoff.date(), len(inputs))
    if client is None:
        booster = _train_local(train, inputs, types, params)
    elif _external(client, params, found.rows, len(inputs)):
        booster = _train_external(train, inputs, types, params)
    else:
        booster = _train_dask(client, train, inputs, types, params, found.rows)
    model_bytes = bytes(booster.save_raw(raw_format="ubj"))

    # what the bundle holds, collected in one pass: the forecast rows, the last year of sales
    step, year = freq.step(), freq.step(freq.year - 1)
    ahead = _each(features, _rows_between, cutoff + step, cutoff + freq.step(horizon))
    last_year = _each(features, _rows_between, cutoff - year, cutoff)
    ahead, last_year, hashes = _collect(
        _each(ahead, with_encodings, found),
        _each(last_year, _sales, keys),
        _each(train_keys, _row_hashes),
    )
    future = forecast_rows(ahead, cutoff, horizon, history=features)
    series = future[keys].drop_duplicates()
    if series.empty:
        raise ValueError(f"no series has {horizon} forecast rows after {cutoff.date()}")
    meta = bundle.Meta(
        model_version="",  # set below from the content: bundle.versioned
        history_start=str((cutoff - year).date()),
        trained_through=str(cutoff.date()),
        frequency=freq,
        horizon=horizon,
        series_keys=keys,
        series=[[plain(v) for v in row] for row in series.itertuples(index=False)],
        features=specs,
        base_margin=LOG_LEVEL,
        objective=params.train.objective,
        training_rows=found.rows,
        params_hash=params.digest("horizon", "features", "train"),
        data_hash=_digest(hashes),
        xgboost_version=xgb.__version__,
        **_ranges(params, dispersion),
    )
    forecast = future[columns].to_numpy(np.float32)
    is_open = future[OPEN].to_numpy(np.float32) if OPEN in future else np.ones(len(future))
    history = recent_sales(last_year, series, cutoff)
    trained = bundle.Trained(model_bytes, meta, forecast, history, is_open.astype(np.float32))
    return bundle.versioned(trained)


def _train_local(
    train: pd.DataFrame, inputs: list[str], types: list[str], params: Params
) -> xgb.Booster:
    dtrain = xgb.DMatrix(
        train[inputs].to_numpy(np.float32),
        label=train[SALES].to_numpy(),
        base_margin=train[LOG_LEVEL].to_numpy(),
        feature_names=inputs,
        feature_types=types,
        enable_categorical=True,
        nthread=params.train.nthread,
    )
    return xgb.train(
        booster_params(params),
        dtrain,
        num_boost_round=params.train.n_estimators,
        callbacks=[_Progress(params.train.n_estimators)],
    )


def _cluster_need(rows: int, inputs: int) -> int:
    """Bytes xgboost.dask needs in all to train on ``rows`` x ``inputs`` (measured)."""
    return rows * inputs * CLUSTER_BYTES_PER_VALUE


def _lost_worker(error: Exception) -> bool:
    """Whether ``error`` is a worker dying in training (most often out of memory): dask gave
    up on a task whose workers died, or XGBoost's collective lost a peer."""
    if type(error).__name__ in ("KilledWorker", "CommClosedError"):
        return True
    text = str(error).lower()
    return isinstance(error, xgb.core.XGBoostError) and any(word in text for word in LOST_PEER)


def _train_dask(
    client: Client,
    train: Table,
    inputs: list[str],
    types: list[str],
    params: Params,
    rows: int,
) -> xgb.Booster:
    """``xgboost.dask`` on the cluster: each worker holds its partitions' rows, binned into a
    quantile matrix with the cluster's shared sketch; the same objective, base margin and
    params (each worker uses its own threads). A worker lost meanwhile is a ConfigError
    saying what to change."""
    try:
        return _train_on_workers(client, train, inputs, types, params)
    except Exception as error:
        if not _lost_worker(error):
            raise
        need = _cluster_need(rows, len(inputs)) / 1e9
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(
            f"train: a Dask worker was lost while XGBoost trained on the cluster ({cause}). "
            f"Most often it ran out of memory: xgboost.dask holds the {rows:,} training rows x "
            f"{len(inputs)} inputs in the workers' memory, about {need:.1f} GB in all. Set "
            "engine.training: external in params.yaml (XGBoost's external memory in the train "
            "stage's process: bounded memory), or give the cluster more memory (more workers "
            "or machines)."
        ) from error


def _train_on_workers(
    client: Client, train: Table, inputs: list[str], types: list[str], params: Params
) -> xgb.Booster:
    from xgboost import dask as dxgb

    def column(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
        return frame[names].astype(np.float32)

    # partitions of unknown length: xgboost.dask aligns them by partition (no counting pass)
    x = train.map_partitions(column, inputs).to_dask_array()
    label = train[SALES].to_dask_array()
    margin = train[LOG_LEVEL].to_dask_array()
    dtrain = dxgb.DaskQuantileDMatrix(
        client,
        x,
        label=label,
        base_margin=margin,
        feature_names=inputs,
        feature_types=types,
        enable_categorical=True,
        max_bin=params.train.max_bin,
    )
    settings = {k: v for k, v in booster_params(params).items() if k != "nthread"}
    started = time.perf_counter()
    result = dxgb.train(client, settings, dtrain, num_boost_round=params.train.n_estimators)
    log.info(
        "train: %d rounds on %d dask workers, %.0f s",
        params.train.n_estimators,
        len(client.nthreads()),
        time.perf_counter() - started,
    )
    booster: xgb.Booster = result["booster"]
    return booster


def _external(client: Client, params: Params, rows: int, inputs: int) -> bool:
    """Whether to train with XGBoost's external memory (``engine.training``; auto: when
    xgboost.dask's estimated need is over ``CLUSTER_MEMORY_SHARE`` of the workers' memory)."""
    choice = params.engine.training
    if choice != "auto":
        return choice == "external"
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [int(worker.get("memory_limit") or 0) for worker in workers]
    if not limits or 0 in limits:  # a worker without a memory limit: no estimate to go by
        return False
    need, have = _cluster_need(rows, inputs), sum(limits)
    external = need > CLUSTER_MEMORY_SHARE * have
    log.info(
        "train: %s rows x %d inputs need about %.1f GB in the cluster's memory (%.1f GB): %s "
        "(engine.training: auto)",
        f"{rows:,}",
        inputs,
        need / 1e9,
        have / 1e9,
        "XGBoost's external memory in this process" if external else "xgboost.dask",
    )
    return external


class _Parts(xgb.DataIter):
    """The training rows for XGBoost's external memory, one Parquet file at a time: it reads
    them to bin them, caches the binned pages under ``cache`` and trains on those."""

    def __init__(self, files: list[Path], inputs: list[str], types: list[str], cache: Path):
        self.files, self.inputs, self.types, self.position = files, inputs, types, 0
        super().__init__(cache_prefix=str(cache / "pages"))

    def next(self, input_data: Callable[..., None]) -> bool:
        while self.position < len(self.files):
            rows = pd.read_parquet(self.files[self.position])
            self.position += 1
            if len(rows):  # a partition may have no row to train on
                input_data(
                    data=rows[self.inputs].to_numpy(np.float32),
                    label=rows[SALES].to_numpy(),
                    base_margin=rows[LOG_LEVEL].to_numpy(),
                    feature_names=self.inputs,
                    feature_types=self.types,
                )
                return True
        return False

    def reset(self) -> None:
        self.position = 0


def _train_external(
    train: Table, inputs: list[str], types: list[str], params: Params
) -> xgb.Booster:
    """XGBoost's external memory in this process: the workers write the training rows (one
    Parquet file per partition) to a scratch folder, :class:`_Parts` reads them back one at a
    time and XGBoost bins them into pages cached on disk beside them. The same objective, base
    margin, categorical inputs and params as the other engines; memory is bounded by a part and
    the binned pages (benchmarks/SCALE.md), and this machine's threads train."""
    with scratch("train") as folder:
        rows = train[[*inputs, SALES, LOG_LEVEL]].astype(dict.fromkeys(inputs, np.float32))
        rows.to_parquet(
            str(folder / "rows"), write_index=False, name_function=lambda i: f"part-{i:05d}.parquet"
        )
        files = sorted((folder / "rows").glob("*.parquet"))
        started = time.perf_counter()
        matrix = xgb.ExtMemQuantileDMatrix(
            _Parts(files, inputs, types, folder),
            max_bin=params.train.max_bin,
            enable_categorical=True,
            nthread=params.train.nthread,
        )
        log.info(
            "train: %d parts binned into XGBoost's external memory, %.0f s",
            len(files),
            time.perf_counter() - started,
        )
        booster = xgb.train(
            booster_params(params),
            matrix,
            num_boost_round=params.train.n_estimators,
            callbacks=[_Progress(params.train.n_estimators)],
        )
        del matrix  # it removes its cached pages itself, before the folder goes
    return booster


def recent_sales(frame: Table, series: pd.DataFrame, cutoff: pd.Timestamp) -> np.ndarray:
    """The sales of the last year through ``cutoff`` of each of ``series`` (rows in that
    order), ``(series, year periods)``; NaN where unknown."""
    freq, keys = frequency_of(_template(frame)), list(series.columns)
    start = cutoff - freq.step(freq.year - 1)
    year = _each(frame, _rows_between, start, cutoff)
    (rows,) = _collect(_each(year, _sales, keys))
    index = series_index(series, keys)
    at = series_index(rows, keys)
    row = index.get_indexer(at)
    column = (rows[DATE] - start).dt.days.to_numpy() // freq.days
    history = np.full((len(series), freq.year), np.nan, dtype=np.float32)
    known = row >= 0
    history[row[known], column[known]] = rows[SALES].to_numpy()[known]
    return history


def forecast_rows(
    frame: Table, cutoff: pd.Timestamp, horizon: int, history: Table | None = None
) -> pd.DataFrame:
    """The rows of the ``horizon`` periods after ``cutoff``, series-major (the bundle's order),
    for every series that has a row by the cutoff. A series too new to have a level
    ``horizon`` periods back (its ``log_level`` is NaN) gets its :func:`fallback_levels` from
    ``history`` (default: ``frame``)."""
    template = _template(frame)
    freq, keys = frequency_of(template), series_columns(template)
    step = freq.step()
    (future,) = _collect(_each(frame, _rows_between, cutoff + step, cutoff + freq.step(horizon)))
    future = future.sort_values([*keys, DATE])
    complete = future.groupby(keys, sort=False)[DATE].transform("size") == horizon
    if not complete.all():  # series that start after the cutoff: not this model's
        later = future.loc[~complete, keys].drop_duplicates()
        log.info("%d series start after %s: not in this model", len(later), cutoff.date())
        future = future.loc[complete]
    new = future[LOG_LEVEL].isna().to_numpy()
    if new.any():
        future = future.copy()
        levels = fallback_levels(
            frame if history is None else history, cutoff, future.loc[new, keys]
        )
        future.loc[new, LOG_LEVEL] = np.log(levels).astype(np.float32)
    return future


def fallback_levels(frame: Table, cutoff: pd.Timestamp, rows: pd.DataFrame) -> np.ndarray:
    """The level (mean sales per period) of the series of ``rows`` as known at ``cutoff``, for a
    series too new to have one ``horizon`` periods back: its own mean over the sales it has had
    (the last year at most); with none known (an outage since launch), the item's level in the
    other stores; then the store's level; then the level of all series."""
    template = _template(frame)
    freq, keys = frequency_of(template), series_columns(template)
    year = _each(frame, _rows_between, cutoff - freq.step(freq.year - 1), cutoff)
    known = year[year[SALES].notnull()]
    by = [key for key in (ITEM, STORE) if key in keys]
    own, *pooled, overall = _collect(
        known.groupby(keys)[SALES].mean(),
        *(known.groupby(key)[SALES].mean() for key in by),
        known[SALES].mean(),
    )
    level = own.reindex(series_index(rows, keys)).to_numpy()
    for key, means in zip(by, pooled, strict=True):
        level = np.where(np.isnan(level), means.reindex(rows[key]).to_numpy(), level)
    overall = LEVEL_FLOOR if pd.isna(overall) else overall
    return np.maximum(np.nan_to_num(level, nan=overall), LEVEL_FLOOR)


def _ranges(params: Params, dispersion: list[float | None] | None) -> dict:
    if dispersion is None:
        return {}
    quantiles = list(params.train.quantiles)
    return {
        "outputs": bundle.output_names(quantiles),
        "quantiles": quantiles,
        "dispersion": dispersion,
    }


def forecast_actuals(features: Table, meta: bundle.Meta) -> np.ndarray:
    """The known sales of a bundle's forecast rows (its layout; NaN where not known)."""
    keys, freq = meta.series_keys, meta.frequency
    series = pd.DataFrame(meta.series, columns=keys)
    index = series.loc[series.index.repeat(meta.horizon)].reset_index(drop=True)
    periods = np.tile(np.arange(meta.horizon), len(series))
    index[DATE] = pd.Timestamp(meta.forecast_start) + pd.to_timedelta(periods * freq.days, "D")
    window = _each(features, _rows_between, index[DATE].min(), index[DATE].max())
    (rows,) = _collect(_each(window, _sales, keys))
    for key in keys:
        index[key] = index[key].astype(rows[key].dtype)
    known = rows.set_index([*keys, DATE])[SALES]
    return known.reindex(pd.MultiIndex.from_frame(index)).to_numpy(dtype=np.float64)


def calibrate(actual: np.ndarray, mean: np.ndarray, meta: bundle.Meta) -> list[float | None]:
    """The negative-binomial dispersion of sales around a model's forecast, per block of
    horizon periods (``bundle.dispersion_blocks``), from its errors on sales it had not seen:
    the method of moments, ``r = sum(mean**2) / sum((y - mean)**2 - mean)``; None (Poisson)
    where the errors are no wider than Poisson noise, or where no sales are known."""
    blocks = bundle.dispersion_blocks(meta.horizon, meta.frequency.days)
    block = np.tile(blocks, len(meta.series))
    out: list[float | None] = []
    for b in range(blocks.max() + 1):
        rows = (block == b) & np.isfinite(actual)
        excess = float(((actual[rows] - mean[rows]) ** 2 - mean[rows]).sum())
        out.append(round(float((mean[rows] ** 2).sum()) / excess, 4) if excess > 0 else None)
    return out


def unseen_dispersion(
    features: Table, cutoff: pd.Timestamp, params: Params, client: Client | None = None
) -> list[float | None]:
    """The dispersion for a model with this ``cutoff``: :func:`calibrate` on the errors the
    same recipe made on the ``horizon`` periods before it (a model fitted ``horizon`` periods
    earlier). Poisson when the history is too short for that model."""
    freq = frequency_of(_template(features))
    earlier = cutoff - freq.step(params.horizon)
    try:
        calibration = fit(features, earlier, params, client=client)
    except ValueError as exc:
        log.info("train: no calibration model at %s (%s): Poisson ranges", earlier.date(), exc)
        blocks = bundle.dispersion_blocks(params.horizon, freq.days)
        return [None] * (int(blocks.max()) + 1)
    meta = calibration.meta
    mean = bundle.predict_mean(
        bundle.load_booster(calibration.model_bytes), meta, calibration.forecast, calibration.open
    )
    return calibrate(forecast_actuals(features, meta), mean, meta)


def train_bundles(
    features: Table, params: Params, out_dir: Path, client: Client | None = None
) -> dict[str, bundle.Meta]:
    """``eval``: trained up to ``horizon`` periods before the end, forecasts the holdout.
    ``serving``: refit on all data, forecasts the ``horizon`` periods after the end.

    Each one's ranges are calibrated on the errors of the same recipe on the ``horizon``
    periods before its cutoff, which it has not seen either: the eval model's on those of a
    calibration model fitted ``horizon`` periods earlier, the serving model's on the eval
    model's holdout errors. So the holdout measures ranges made exactly as the served ones.
    ``features`` lazy (dask): every model trains on ``client``'s cluster."""
    (last,) = _collect(features[features[SALES].notnull()][DATE].max())
    eval_cutoff = last - frequency_of(_template(features)).step(params.horizon)
    dispersion = unseen_dispersion(features, eval_cutoff, params, client)
    evaluation = fit(features, eval_cutoff, params, dispersion, client)
    eval_meta = evaluation.meta
    eval_mean = bundle.predict_mean(
        bundle.load_booster(evaluation.model_bytes), eval_meta, evaluation.forecast, evaluation.open
    )
    serving_dispersion = calibrate(forecast_actuals(features, eval_meta), eval_mean, eval_meta)
    serving = fit(features, last, params, serving_dispersion, client)
    metas = {}
    for name, trained in {"eval": evaluation, "serving": serving}.items():
        bundle.write(out_dir / name, trained)
        meta = metas[name] = trained.meta
        log.info("train: %s model %s written to %s", name, meta.model_version, out_dir / name)
    return metas
