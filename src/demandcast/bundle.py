"""The model bundle: what ``train`` writes and what the API, ``evaluate`` and ``drift`` read.

A bundle is a directory holding

* ``model.ubj``     - the XGBoost booster in XGBoost's own UBJSON format (no pickle);
* ``metadata.json`` - version, cutoff, frequency, horizon, the feature registry, series keys,
  the outputs, hashes (see :class:`Meta`);
* ``forecast.npy``  - float32 features of the ``horizon`` periods after the cutoff for every
  series, series-major then period (row ``s * horizon + d`` is series ``s``, period ``d + 1``);
* ``manifest.json`` - the sha256 of each of those files, the booster's input names and the
  base-margin column: :func:`read` verifies all of it and refuses a bundle whose files were
  changed, or mixed from two bundles, naming the file.

The model version hashes the contents of all three files (the metadata without the version
itself), so no two different bundles share a version.

The forecast itself is a grid ``(series, horizon, outputs)``: :meth:`Bundle.grid`. Its outputs
are named in ``Meta.outputs`` (``["mean"]``: expected sales), so a new output (a quantile) is an
addition to that list, not a new shape. With the features of the forecast rows frozen at
training time, serving needs nothing but this directory, numpy and xgboost: no pandas, no
params.yaml, no training code. This module is deliberately that small so the API can import it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from demandcast.frequency import Frequency, from_dict

FORMAT = 2  # 2: frequency, horizon in periods, the feature registry, outputs
MODEL_FILE, META_FILE, FORECAST_FILE = "model.ubj", "metadata.json", "forecast.npy"
MANIFEST_FILE = "manifest.json"
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


class BundleError(ValueError):
    """A bundle that is incomplete, inconsistent or tampered with; the message names the file."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _forecast_bytes(forecast: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(forecast, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _meta_bytes(meta: Meta) -> bytes:
    return (json.dumps(meta.as_dict(), indent=1) + "\n").encode()


def model_version(meta: Meta, model_bytes: bytes, forecast_bytes: bytes) -> str:
    """``YYYYMMDD-<8 hex>``: the cutoff, then a hash of the model, its frozen forecast features
    and its metadata (all of it but the version)."""
    unversioned = _meta_bytes(dataclasses.replace(meta, model_version=""))
    digest = hashlib.sha256()
    for part in (model_bytes, forecast_bytes, unversioned):
        digest.update(_sha256(part).encode())
    return f"{meta.cutoff:%Y%m%d}-{digest.hexdigest()[:8]}"


def versioned(meta: Meta, model_bytes: bytes, forecast: np.ndarray) -> Meta:
    """``meta`` with the version of this exact content (see :func:`model_version`)."""
    version = model_version(meta, model_bytes, _forecast_bytes(forecast))
    return dataclasses.replace(meta, model_version=version)


def _manifest(meta: Meta, files: dict[str, bytes]) -> dict[str, Any]:
    names = meta.feature_names
    return {
        "format": FORMAT,
        "model_version": meta.model_version,
        "files": {name: _sha256(data) for name, data in files.items()},
        "booster_features": [n for n in names if n != meta.base_margin],
        "base_margin_column": names.index(meta.base_margin),
    }


def write(directory: Path, model_bytes: bytes, meta: Meta, forecast: np.ndarray) -> None:
    """Write the bundle into ``directory`` (created; the caller makes the swap atomic)."""
    expected = (len(meta.series) * meta.horizon, len(meta.features))
    if forecast.shape != expected:
        raise ValueError(f"forecast features have shape {forecast.shape}, expected {expected}")
    forecast_bytes = _forecast_bytes(forecast)
    if model_version(meta, model_bytes, forecast_bytes) != meta.model_version:
        raise ValueError("meta.model_version does not match the content: use bundle.versioned")
    files = {MODEL_FILE: model_bytes, META_FILE: _meta_bytes(meta), FORECAST_FILE: forecast_bytes}
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    manifest = json.dumps(_manifest(meta, files), indent=1) + "\n"
    (directory / MANIFEST_FILE).write_text(manifest)


def read_meta(directory: Path | str) -> Meta:
    path = Path(directory) / META_FILE
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise BundleError(
            f"{path}: bundle format {found!r}, this code reads {FORMAT}: retrain (dvc repro)"
        )
    try:
        return Meta.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: metadata does not fit bundle format {FORMAT}: {exc}") from None


def read(directory: Path | str) -> Bundle:
    """Load a :class:`Bundle`, verified against its manifest; :class:`BundleError` (a
    ``ValueError``) naming the file on any inconsistency."""
    import xgboost as xgb

    directory = Path(directory)
    manifest = _read_manifest(directory)
    files = {}
    for name in (MODEL_FILE, META_FILE, FORECAST_FILE):
        data = (directory / name).read_bytes()
        if _sha256(data) != manifest["files"].get(name):
            raise BundleError(
                f"{directory / name}: its sha256 differs from {MANIFEST_FILE}: the file was "
                "changed or comes from another bundle"
            )
        files[name] = data
    meta = read_meta(directory)
    if model_version(meta, files[MODEL_FILE], files[FORECAST_FILE]) != meta.model_version:
        raise BundleError(
            f"{directory}: the files do not make model {meta.model_version}: the bundle was "
            "changed (its manifest too)"
        )
    if manifest.get("model_version") != meta.model_version:
        raise BundleError(f"{directory / MANIFEST_FILE}: belongs to another model version")
    booster = xgb.Booster()
    booster.load_model(bytearray(files[MODEL_FILE]))
    forecast = np.load(io.BytesIO(files[FORECAST_FILE]), allow_pickle=False)
    if forecast.shape != (len(meta.series) * meta.horizon, len(meta.features)):
        raise BundleError(
            f"{directory / FORECAST_FILE}: shape {forecast.shape} does not match the metadata"
        )
    expected = _manifest(meta, files)
    if booster.feature_names != expected["booster_features"]:
        raise BundleError(
            f"{directory / MODEL_FILE}: the booster's inputs {booster.feature_names} are not "
            f"the metadata's {expected['booster_features']}"
        )
    if manifest.get("base_margin_column") != expected["base_margin_column"]:
        raise BundleError(f"{directory / MANIFEST_FILE}: base-margin column does not match")
    if meta.outputs != [MEAN]:
        raise BundleError(f"{directory}: outputs {meta.outputs}; this code computes {[MEAN]}")
    return Bundle(booster, meta, forecast)


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: missing: not a complete bundle (retrain: dvc repro)") from None
    except ValueError as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{path}: not a bundle manifest")
    if manifest.get("format") != FORMAT:
        raise BundleError(
            f"{path}: bundle format {manifest.get('format')!r}, this code reads {FORMAT}"
        )
    return manifest


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
