"""The model bundle: what ``train`` writes and what the API and ``evaluate`` read.

A bundle is a directory holding

* ``model.ubj``     - the XGBoost booster in XGBoost's own UBJSON format (no pickle);
* ``metadata.json`` - version, cutoff, horizon, feature list, series keys, hashes (see ``Meta``);
* ``forecast.npy``  - float32 features of the ``horizon`` days after the cutoff for every
  series, series-major then day (row ``s * horizon + d`` is series ``s``, day ``cutoff + d + 1``).

With the features of the forecast rows frozen at training time, serving needs nothing but this
directory, numpy and xgboost: no pandas, no params.yaml, no training code. This module is
deliberately that small so the API can import it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FORMAT = 1
MODEL_FILE, META_FILE, FORECAST_FILE = "model.ubj", "metadata.json", "forecast.npy"


@dataclass(frozen=True)
class Meta:
    model_version: str
    trained_through: str  # the cutoff: last day of sales the model saw
    horizon_days: int
    series_keys: list[str]  # ["store", "item"] or ["store"]
    series: list[list]  # key values per series, in forecast.npy order
    features: list[str]
    base_margin: str  # feature column holding the log base margin
    objective: str
    training_rows: int
    params_hash: str
    data_hash: str
    xgboost_version: str
    format: int = FORMAT

    @property
    def cutoff(self) -> dt.date:
        return dt.date.fromisoformat(self.trained_through)

    @property
    def forecast_start(self) -> dt.date:
        return self.cutoff + dt.timedelta(days=1)


def model_version(cutoff: dt.date, model_bytes: bytes) -> str:
    """``YYYYMMDD-<8 hex>``: the cutoff, then the hash of the model bytes."""
    return f"{cutoff:%Y%m%d}-{hashlib.sha256(model_bytes).hexdigest()[:8]}"


def write(directory: Path, model_bytes: bytes, meta: Meta, forecast: np.ndarray) -> None:
    """Write the bundle into ``directory`` (created; the caller makes the swap atomic)."""
    expected = (len(meta.series) * meta.horizon_days, len(meta.features))
    if forecast.shape != expected:
        raise ValueError(f"forecast features have shape {forecast.shape}, expected {expected}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(model_bytes)
    (directory / META_FILE).write_text(json.dumps(asdict(meta), indent=1) + "\n")
    np.save(directory / FORECAST_FILE, forecast.astype(np.float32), allow_pickle=False)


def read_meta(directory: Path | str) -> Meta:
    path = Path(directory) / META_FILE
    raw = json.loads(path.read_text())
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path}: bundle format {raw.get('format')!r}, this code reads {FORMAT}")
    return Meta(**raw)


def read(directory: Path | str):
    """Load ``(booster, meta, forecast)``; raises ``ValueError`` on any inconsistency."""
    import xgboost as xgb

    directory = Path(directory)
    meta = read_meta(directory)
    booster = xgb.Booster()
    booster.load_model(bytearray((directory / MODEL_FILE).read_bytes()))
    forecast = np.load(directory / FORECAST_FILE, allow_pickle=False)
    if forecast.shape != (len(meta.series) * meta.horizon_days, len(meta.features)):
        raise ValueError(
            f"{directory}: forecast.npy shape {forecast.shape} does not match metadata"
        )
    if booster.num_features() != len(meta.features) - 1:  # minus the base margin column
        raise ValueError(
            f"{directory}: model expects {booster.num_features()} features, "
            f"metadata lists {len(meta.features) - 1} (+ base margin)"
        )
    return booster, meta, forecast


def predict(booster, meta: Meta, features: np.ndarray) -> np.ndarray:
    """Expected sales for rows of ``features`` (columns as ``meta.features``)."""
    margin_col = meta.features.index(meta.base_margin)
    inputs = np.delete(features, margin_col, axis=1)
    return booster.inplace_predict(
        inputs, base_margin=features[:, margin_col], validate_features=False
    )
