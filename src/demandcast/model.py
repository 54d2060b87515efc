"""Train one global XGBoost model and package it as a bundle (see ``bundle.py``)."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from demandcast import bundle
from demandcast.config import Params
from demandcast.data.schema import (
    DATE,
    ITEM,
    SALES,
    STORE,
    frequency_of,
    plain,
    series_columns,
)
from demandcast.features import LEVEL_FLOOR, LOG_LEVEL, add_encodings, declared, trainable

log = logging.getLogger(__name__)


def data_hash(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


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
    features: pd.DataFrame, cutoff: pd.Timestamp, params: Params
) -> tuple[bytes, bundle.Meta, np.ndarray]:
    """Train on rows up to ``cutoff``; return the booster bytes, metadata and forecast rows
    (the ``horizon`` periods after ``cutoff`` for every series)."""
    horizon, freq = params.horizon, frequency_of(features)
    keys = series_columns(features)
    train_rows = trainable(features, cutoff)
    frame = add_encodings(features, train_rows)
    specs = declared(frame)
    columns = [spec.name for spec in specs]
    inputs = [c for c in columns if c != LOG_LEVEL]
    train = frame.loc[train_rows]
    dtrain = xgb.DMatrix(
        train[inputs].to_numpy(np.float32),
        label=train[SALES].to_numpy(),
        base_margin=train[LOG_LEVEL].to_numpy(),
        feature_names=inputs,
        nthread=params.train.nthread,
    )
    log.info("train: %d rows through %s, %d features", len(train), cutoff.date(), len(inputs))
    booster = xgb.train(
        booster_params(params),
        dtrain,
        num_boost_round=params.train.n_estimators,
        callbacks=[_Progress(params.train.n_estimators)],
    )
    model_bytes = bytes(booster.save_raw(raw_format="ubj"))

    future = forecast_rows(frame, cutoff, horizon)
    series = future[keys].drop_duplicates()
    if series.empty:
        raise ValueError(f"no series has {horizon} forecast rows after {cutoff.date()}")
    meta = bundle.Meta(
        model_version="",  # set below from the content: bundle.versioned
        trained_through=str(cutoff.date()),
        frequency=freq,
        horizon=horizon,
        series_keys=keys,
        series=[[plain(v) for v in row] for row in series.itertuples(index=False)],
        features=specs,
        base_margin=LOG_LEVEL,
        objective=params.train.objective,
        training_rows=int(train_rows.sum()),
        params_hash=params.digest("horizon", "features", "train"),
        data_hash=data_hash(features.loc[train_rows, [*keys, DATE, SALES]]),
        xgboost_version=xgb.__version__,
    )
    forecast = future[columns].to_numpy(np.float32)
    return model_bytes, bundle.versioned(meta, model_bytes, forecast), forecast


def forecast_rows(frame: pd.DataFrame, cutoff: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """The rows of the ``horizon`` periods after ``cutoff``, series-major (the bundle's order),
    for every series that has a row by the cutoff. A series too new to have a level
    ``horizon`` periods back (its ``log_level`` is NaN) gets its :func:`fallback_levels`."""
    freq, keys = frequency_of(frame), series_columns(frame)
    ahead = (frame[DATE] > cutoff) & (frame[DATE] <= cutoff + freq.step(horizon))
    future = frame.loc[ahead].sort_values([*keys, DATE])
    complete = future.groupby(keys, sort=False)[DATE].transform("size") == horizon
    if not complete.all():  # series that start after the cutoff: not this model's
        later = future.loc[~complete, keys].drop_duplicates()
        log.info("%d series start after %s: not in this model", len(later), cutoff.date())
        future = future.loc[complete]
    new = future[LOG_LEVEL].isna().to_numpy()
    if new.any():
        future = future.copy()
        levels = fallback_levels(frame, cutoff, future.loc[new, keys])
        future.loc[new, LOG_LEVEL] = np.log(levels).astype(np.float32)
    return future


def fallback_levels(frame: pd.DataFrame, cutoff: pd.Timestamp, rows: pd.DataFrame) -> np.ndarray:
    """The level (mean sales per period) of the series of ``rows`` as known at ``cutoff``, for a
    series too new to have one ``horizon`` periods back: its own mean over the sales it has had
    (the last year at most); with none known (an outage since launch), the item's level in the
    other stores; then the store's level; then the level of all series."""
    freq, keys = frequency_of(frame), series_columns(frame)
    start = cutoff - freq.step(freq.year)
    known = frame.loc[(frame[DATE] > start) & (frame[DATE] <= cutoff) & frame[SALES].notna()]
    index = pd.MultiIndex.from_frame(rows[keys]) if len(keys) > 1 else pd.Index(rows[keys[0]])
    level = known.groupby(keys)[SALES].mean().reindex(index).to_numpy()
    for key in (ITEM, STORE):
        if key in keys:
            by_key = known.groupby(key)[SALES].mean().reindex(rows[key]).to_numpy()
            level = np.where(np.isnan(level), by_key, level)
    overall = known[SALES].mean() if len(known) else LEVEL_FLOOR
    return np.maximum(np.nan_to_num(level, nan=overall), LEVEL_FLOOR)


def train_bundles(features: pd.DataFrame, params: Params, out_dir: Path) -> dict[str, bundle.Meta]:
    """``eval``: trained up to ``horizon`` periods before the end, forecasts the holdout.
    ``serving``: refit on all data, forecasts the ``horizon`` periods after the end."""
    last = features.loc[features[SALES].notna(), DATE].max()
    cutoffs = {"eval": last - frequency_of(features).step(params.horizon), "serving": last}
    metas = {}
    for name, cutoff in cutoffs.items():
        model_bytes, meta, forecast = fit(features, cutoff, params)
        bundle.write(out_dir / name, model_bytes, meta, forecast)
        metas[name] = meta
        log.info("train: %s model %s written to %s", name, meta.model_version, out_dir / name)
    return metas
