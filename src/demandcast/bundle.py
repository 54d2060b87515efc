"""The model bundle: what ``train`` writes and what the API, ``evaluate`` and ``drift`` read.

A bundle is a directory holding

* ``model.ubj``     - the XGBoost booster in XGBoost's own UBJSON format (no pickle);
* ``metadata.json`` - version, cutoff, frequency, horizon, the feature registry, series keys,
  the outputs, hashes (see :class:`Meta`);
* ``forecast.npy``  - float32 features of the ``horizon`` periods after the cutoff for every
  series, series-major then period (row ``s * horizon + d`` is series ``s``, period ``d + 1``).

The forecast itself is a grid ``(series, horizon, outputs)``: :meth:`Bundle.grid`. Its outputs
are named in ``Meta.outputs`` (``["mean"]``: expected sales), so a new output (a quantile) is an
addition to that list, not a new shape. With the features of the forecast rows frozen at
training time, serving needs nothing but this directory, numpy and xgboost: no pandas, no
params.yaml, no training code. This module is deliberately that small so the API can import it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from demandcast.frequency import Frequency, from_dict

FORMAT = 2  # 2: frequency, horizon in periods, the feature registry, outputs
MODEL_FILE, META_FILE, FORECAST_FILE = "model.ubj", "metadata.json", "forecast.npy"
MEAN = "mean"  # the output holding expected sales

Kind = Literal["calendar", "sales", "covariate", "attribute", "encoding"]


@dataclass(frozen=True)
class FeatureSpec:
    """One model input, as declared by the code that builds it (see ``features.py``)."""

    name: str
    kind: Kind
    monitored: bool  # does the drift stage compare its distribution over time?


@dataclass(frozen=True)
class Meta:
    model_version: str
    trained_through: str  # the cutoff: the last period of sales the model saw (its first day)
    frequency: Frequency
    horizon: int  # periods forecast after the cutoff
    series_keys: list[str]  # ["store", "item"] or ["store"]
    series: list[list]  # key values per series, in forecast.npy order
    features: list[FeatureSpec]  # the model's inputs, in column order, base margin included
    base_margin: str  # feature holding the log base margin
    objective: str
    training_rows: int
    params_hash: str
    data_hash: str
    xgboost_version: str
    outputs: list[str] = field(default_factory=lambda: [MEAN])
    format: int = FORMAT

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def cutoff(self) -> dt.date:
        return dt.date.fromisoformat(self.trained_through)

    @property
    def forecast_start(self) -> dt.date:
        return self.cutoff + self.frequency.step()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["frequency"] = self.frequency.as_dict()
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Meta:
        values = dict(raw)
        values["frequency"] = from_dict(values["frequency"])
        values["features"] = [FeatureSpec(**spec) for spec in values["features"]]
        return cls(**values)


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the booster, its metadata, the frozen features of its forecast rows."""

    booster: Any  # xgboost.Booster
    meta: Meta
    forecast: np.ndarray  # (series * horizon, features) float32

    def predict(self, features: np.ndarray) -> np.ndarray:
        return predict(self.booster, self.meta, features)

    def grid(self) -> np.ndarray:
        """The forecast: ``(series, horizon, outputs)``."""
        n, horizon = len(self.meta.series), self.meta.horizon
        return self.predict(self.forecast).reshape(n, horizon, len(self.meta.outputs))


def model_version(cutoff: dt.date, model_bytes: bytes) -> str:
    """``YYYYMMDD-<8 hex>``: the cutoff, then the hash of the model bytes."""
    return f"{cutoff:%Y%m%d}-{hashlib.sha256(model_bytes).hexdigest()[:8]}"


def write(directory: Path, model_bytes: bytes, meta: Meta, forecast: np.ndarray) -> None:
    """Write the bundle into ``directory`` (created; the caller makes the swap atomic)."""
    expected = (len(meta.series) * meta.horizon, len(meta.features))
    if forecast.shape != expected:
        raise ValueError(f"forecast features have shape {forecast.shape}, expected {expected}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(model_bytes)
    (directory / META_FILE).write_text(json.dumps(meta.as_dict(), indent=1) + "\n")
    np.save(directory / FORECAST_FILE, forecast.astype(np.float32), allow_pickle=False)


def read_meta(directory: Path | str) -> Meta:
    path = Path(directory) / META_FILE
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise ValueError(
            f"{path}: bundle format {found!r}, this code reads {FORMAT}: retrain (dvc repro)"
        )
    try:
        return Meta.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: metadata does not fit bundle format {FORMAT}: {exc}") from None


def read(directory: Path | str) -> Bundle:
    """Load a :class:`Bundle`; raises ``ValueError`` on any inconsistency."""
    import xgboost as xgb

    directory = Path(directory)
    meta = read_meta(directory)
    booster = xgb.Booster()
    booster.load_model(bytearray((directory / MODEL_FILE).read_bytes()))
    forecast = np.load(directory / FORECAST_FILE, allow_pickle=False)
    if forecast.shape != (len(meta.series) * meta.horizon, len(meta.features)):
        raise ValueError(
            f"{directory}: forecast.npy shape {forecast.shape} does not match metadata"
        )
    if booster.num_features() != len(meta.features) - 1:  # minus the base margin column
        raise ValueError(
            f"{directory}: model expects {booster.num_features()} features, "
            f"metadata lists {len(meta.features) - 1} (+ base margin)"
        )
    if meta.outputs != [MEAN]:
        raise ValueError(f"{directory}: outputs {meta.outputs}; this code computes {[MEAN]}")
    return Bundle(booster, meta, forecast)


def predict(booster: Any, meta: Meta, features: np.ndarray) -> np.ndarray:
    """The outputs (``meta.outputs``) for rows of ``features`` (columns as ``meta.features``):
    shape ``(rows, outputs)``."""
    margin_col = meta.feature_names.index(meta.base_margin)
    inputs = np.delete(features, margin_col, axis=1)
    mean = booster.inplace_predict(
        inputs, base_margin=features[:, margin_col], validate_features=False
    )
    return np.asarray(mean).reshape(-1, 1)


def predict_mean(booster: Any, meta: Meta, features: np.ndarray) -> np.ndarray:
    """Expected sales for rows of ``features``: the ``mean`` output, shape ``(rows,)``."""
    return predict(booster, meta, features)[:, meta.outputs.index(MEAN)]
