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
    OPEN,
    SALES,
    STORE,
    frequency_of,
    plain,
    series_columns,
    series_index,
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
    features: pd.DataFrame,
    cutoff: pd.Timestamp,
    params: Params,
    dispersion: list[float | None] | None = None,
) -> bundle.Trained:
    """Train on rows up to ``cutoff``: the booster, its metadata, its forecast rows (the
    ``horizon`` periods after ``cutoff`` for every series) and the last year of sales before
    them. With ``dispersion`` (see :func:`calibrate`), the bundle's outputs include the
    quantiles of ``train.quantiles``."""
    horizon, freq = params.horizon, frequency_of(features)
    keys = series_columns(features)
    train_rows = trainable(features, cutoff)
    if not train_rows.any():
        raise ValueError(f"no row to train on through {cutoff.date()}")
    frame = add_encodings(features, train_rows)
    specs = declared(frame)
    columns = [spec.name for spec in specs]
    inputs = [c for c in columns if c != LOG_LEVEL]
    train = frame.loc[train_rows]
    types = ["c" if spec.value == "category" else "q" for spec in specs if spec.name in inputs]
    dtrain = xgb.DMatrix(
        train[inputs].to_numpy(np.float32),
        label=train[SALES].to_numpy(),
        base_margin=train[LOG_LEVEL].to_numpy(),
        feature_names=inputs,
        feature_types=types,
        enable_categorical=True,
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
        history_start=str((cutoff - freq.step(freq.year - 1)).date()),
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
        **_ranges(params, dispersion),
    )
    forecast = future[columns].to_numpy(np.float32)
    is_open = future[OPEN].to_numpy(np.float32) if OPEN in future else np.ones(len(future))
    history = recent_sales(frame, series, cutoff)
    trained = bundle.Trained(model_bytes, meta, forecast, history, is_open.astype(np.float32))
    return bundle.versioned(trained)


def recent_sales(frame: pd.DataFrame, series: pd.DataFrame, cutoff: pd.Timestamp) -> np.ndarray:
    """The sales of the last year through ``cutoff`` of each of ``series`` (rows in that
    order), ``(series, year periods)``; NaN where unknown."""
    freq, keys = frequency_of(frame), list(series.columns)
    start = cutoff - freq.step(freq.year - 1)
    rows = frame.loc[(frame[DATE] >= start) & (frame[DATE] <= cutoff), [*keys, DATE, SALES]]
    index = series_index(series, keys)
    at = series_index(rows, keys)
    row = index.get_indexer(at)
    column = (rows[DATE] - start).dt.days.to_numpy() // freq.days
    history = np.full((len(series), freq.year), np.nan, dtype=np.float32)
    known = row >= 0
    history[row[known], column[known]] = rows[SALES].to_numpy()[known]
    return history


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
    index = series_index(rows, keys)
    level = known.groupby(keys)[SALES].mean().reindex(index).to_numpy()
    for key in (ITEM, STORE):
        if key in keys:
            by_key = known.groupby(key)[SALES].mean().reindex(rows[key]).to_numpy()
            level = np.where(np.isnan(level), by_key, level)
    overall = known[SALES].mean() if len(known) else LEVEL_FLOOR
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


def forecast_actuals(features: pd.DataFrame, meta: bundle.Meta) -> np.ndarray:
    """The known sales of a bundle's forecast rows (its layout; NaN where not known)."""
    keys, freq = meta.series_keys, meta.frequency
    series = pd.DataFrame(meta.series, columns=keys)
    index = series.loc[series.index.repeat(meta.horizon)].reset_index(drop=True)
    periods = np.tile(np.arange(meta.horizon), len(series))
    index[DATE] = pd.Timestamp(meta.forecast_start) + pd.to_timedelta(periods * freq.days, "D")
    for key in keys:
        index[key] = index[key].astype(features[key].dtype)
    known = features.set_index([*keys, DATE])[SALES]
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
    features: pd.DataFrame, cutoff: pd.Timestamp, params: Params
) -> list[float | None]:
    """The dispersion for a model with this ``cutoff``: :func:`calibrate` on the errors the
    same recipe made on the ``horizon`` periods before it (a model fitted ``horizon`` periods
    earlier). Poisson when the history is too short for that model."""
    earlier = cutoff - frequency_of(features).step(params.horizon)
    try:
        calibration = fit(features, earlier, params)
    except ValueError as exc:
        log.info("train: no calibration model at %s (%s): Poisson ranges", earlier.date(), exc)
        blocks = bundle.dispersion_blocks(params.horizon, frequency_of(features).days)
        return [None] * (int(blocks.max()) + 1)
    meta = calibration.meta
    mean = bundle.predict_mean(
        bundle.load_booster(calibration.model_bytes), meta, calibration.forecast, calibration.open
    )
    return calibrate(forecast_actuals(features, meta), mean, meta)


def train_bundles(features: pd.DataFrame, params: Params, out_dir: Path) -> dict[str, bundle.Meta]:
    """``eval``: trained up to ``horizon`` periods before the end, forecasts the holdout.
    ``serving``: refit on all data, forecasts the ``horizon`` periods after the end.

    Each one's ranges are calibrated on the errors of the same recipe on the ``horizon``
    periods before its cutoff, which it has not seen either: the eval model's on those of a
    calibration model fitted ``horizon`` periods earlier, the serving model's on the eval
    model's holdout errors. So the holdout measures ranges made exactly as the served ones."""
    last = features.loc[features[SALES].notna(), DATE].max()
    eval_cutoff = last - frequency_of(features).step(params.horizon)
    evaluation = fit(
        features, eval_cutoff, params, unseen_dispersion(features, eval_cutoff, params)
    )
    eval_meta = evaluation.meta
    eval_mean = bundle.predict_mean(
        bundle.load_booster(evaluation.model_bytes), eval_meta, evaluation.forecast, evaluation.open
    )
    serving_dispersion = calibrate(forecast_actuals(features, eval_meta), eval_mean, eval_meta)
    serving = fit(features, last, params, serving_dispersion)
    metas = {}
    for name, trained in {"eval": evaluation, "serving": serving}.items():
        bundle.write(out_dir / name, trained)
        meta = metas[name] = trained.meta
        log.info("train: %s model %s written to %s", name, meta.model_version, out_dir / name)
    return metas
