"""The model bundle: what ``train`` writes and what the API, ``evaluate`` and ``drift`` read.

A bundle is a directory holding

* ``model.ubj``     - the XGBoost booster in XGBoost's own UBJSON format (no pickle);
* ``metadata.json`` - version, cutoff, frequency, horizon, the feature registry, series keys,
  the outputs, hashes (see :class:`Meta`);
* ``forecast.npy``  - float32 features of the ``horizon`` periods after the cutoff for every
  series, series-major then period (row ``s * horizon + d`` is series ``s``, period ``d + 1``);
* ``open.npy``      - float32 1/0 per forecast row (same layout): 0 = the store is closed that
  day by the plan, and every output of that row is 0;
* ``history.npy``   - float32 sales of the last year up to the cutoff per series (NaN where
  unknown), for people looking at the forecast (the page); the model never reads it;
* ``manifest.json`` - the sha256 of each of those files, the booster's input names and the
  base-margin column: :func:`read` verifies all of it and refuses a bundle whose files were
  changed, or mixed from two bundles, naming the file.

The model version hashes the contents of all three files (the metadata without the version
itself), so no two different bundles share a version.

The forecast itself is a grid ``(series, horizon, outputs)``: :meth:`Bundle.grid`. Its outputs
are named in ``Meta.outputs``: ``mean`` (expected sales), then one per quantile (``p10``, ``p50``,
``p90``: see :func:`count_quantiles`), so a new output is an
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from demandcast.frequency import Frequency, from_dict

FORMAT = 3  # 2: frequency, horizon, feature registry, outputs; 3: open.npy, categories
MODEL_FILE, META_FILE, FORECAST_FILE = "model.ubj", "metadata.json", "forecast.npy"
HISTORY_FILE, OPEN_FILE = "history.npy", "open.npy"
CONTENT_FILES = (MODEL_FILE, META_FILE, FORECAST_FILE, OPEN_FILE, HISTORY_FILE)
MANIFEST_FILE = "manifest.json"
MEAN = "mean"  # the output holding expected sales

Kind = Literal["calendar", "sales", "covariate", "attribute", "encoding"]


@dataclass(frozen=True)
class FeatureSpec:
    """One model input, as declared by the code that builds it (see ``features.py``)."""

    name: str
    kind: Kind
    monitored: bool  # does the drift stage compare its distribution over time?
    # covariates and attributes: how the value is read (number | flag | category); a
    # category's values are codes: positions in ``levels`` (NaN = missing or unknown level)
    value: str = "number"
    levels: list[str] | None = None


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
    quantiles: list[float] = field(default_factory=list)  # the probabilities of outputs[1:]
    # Negative-binomial dispersion of the sales around the mean, per block of horizon periods
    # (a week of days, or each week); None = Poisson. Calibrated on unseen data (model.py).
    dispersion: list[float | None] = field(default_factory=list)
    history_start: str | None = None  # date of the first period of history.npy
    format: int = FORMAT

    def dispersion_of(self, periods: np.ndarray) -> np.ndarray:
        """The dispersion of rows forecasting these horizon periods (0 = the first)."""
        blocks = dispersion_blocks(self.horizon, self.frequency.days)
        per_period = np.array([np.inf if d is None else d for d in self.dispersion])[blocks]
        return per_period[np.asarray(periods)]

    def forecast_periods(self, rows: int | None = None) -> np.ndarray:
        """The horizon period (0-based) of each row of the forecast layout: series-major,
        ``rows // len(series)`` periods each (default: the whole horizon)."""
        n = len(self.series)
        periods = self.horizon if rows is None else rows // max(n, 1)
        if rows is not None and (rows != n * periods or periods > self.horizon):
            raise ValueError(f"{rows} rows are not whole series of this bundle's forecast")
        return np.tile(np.arange(periods), n)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def covariates(self) -> list[FeatureSpec]:
        """The inputs a forecast may be asked with other values of (what-if): the covariates."""
        return [f for f in self.features if f.kind == "covariate"]

    def feature_types(self) -> list[str]:
        """XGBoost's type of each booster input (base margin excluded): ``c`` for a category,
        ``q`` for a number."""
        return [
            "c" if f.value == "category" else "q"
            for f in self.features
            if f.name != self.base_margin
        ]

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
    history: np.ndarray  # (series, periods) float32: the sales before the forecast
    open: np.ndarray  # (series * horizon,) float32: 0 = closed by the plan

    def predict(
        self,
        features: np.ndarray,
        periods: np.ndarray | None = None,
        is_open: np.ndarray | None = None,
    ) -> np.ndarray:
        return predict(self.booster, self.meta, features, periods, is_open)

    def grid(self) -> np.ndarray:
        """The forecast under the plan: ``(series, horizon, outputs)``."""
        n, horizon = len(self.meta.series), self.meta.horizon
        outputs = self.predict(self.forecast, is_open=self.open)
        return outputs.reshape(n, horizon, len(self.meta.outputs))


class BundleError(ValueError):
    """A bundle that is incomplete, inconsistent or tampered with; the message names the file."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Trained:
    """A bundle as ``model.fit`` makes it, before it is written (or loaded)."""

    model_bytes: bytes
    meta: Meta
    forecast: np.ndarray
    history: np.ndarray
    open: np.ndarray

    def loaded(self) -> Bundle:
        booster = load_booster(self.model_bytes)
        return Bundle(booster, self.meta, self.forecast, self.history, self.open)

    def files(self) -> dict[str, bytes]:
        return {
            MODEL_FILE: self.model_bytes,
            META_FILE: _meta_bytes(self.meta),
            FORECAST_FILE: _npy_bytes(self.forecast),
            OPEN_FILE: _npy_bytes(self.open),
            HISTORY_FILE: _npy_bytes(self.history),
        }


def _meta_bytes(meta: Meta) -> bytes:
    return (json.dumps(meta.as_dict(), indent=1) + "\n").encode()


def load_booster(model_bytes: bytes) -> Any:
    """An ``xgboost.Booster`` from the bytes of ``model.ubj``."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(model_bytes))
    return booster


def model_version(files: dict[str, bytes]) -> str:
    """``YYYYMMDD-<8 hex>``: the cutoff, then a hash of every file of the bundle (the
    metadata without its version)."""
    meta = Meta.from_dict(json.loads(files[META_FILE]))
    unversioned = {**files, META_FILE: _meta_bytes(dataclasses.replace(meta, model_version=""))}
    digest = hashlib.sha256()
    for name in CONTENT_FILES:
        digest.update(_sha256(unversioned[name]).encode())
    return f"{meta.cutoff:%Y%m%d}-{digest.hexdigest()[:8]}"


def versioned(trained: Trained) -> Trained:
    """``trained`` with the version of its exact content (see :func:`model_version`)."""
    version = model_version(trained.files())
    return dataclasses.replace(
        trained, meta=dataclasses.replace(trained.meta, model_version=version)
    )


def _manifest(meta: Meta, files: dict[str, bytes]) -> dict[str, Any]:
    names = meta.feature_names
    return {
        "format": FORMAT,
        "model_version": meta.model_version,
        "files": {name: _sha256(data) for name, data in files.items()},
        "booster_features": [n for n in names if n != meta.base_margin],
        "base_margin_column": names.index(meta.base_margin),
    }


def write(directory: Path, trained: Trained) -> None:
    """Write the bundle into ``directory`` (created; the caller makes the swap atomic)."""
    meta = trained.meta
    expected = (len(meta.series) * meta.horizon, len(meta.features))
    if trained.forecast.shape != expected:
        raise ValueError(f"forecast features have shape {trained.forecast.shape}, not {expected}")
    if trained.open.shape != (expected[0],):
        raise ValueError(f"open has shape {trained.open.shape}, not {(expected[0],)}")
    if trained.history.shape[0] != len(meta.series):
        raise ValueError(f"history has {trained.history.shape[0]} series, not {len(meta.series)}")
    files = trained.files()
    if model_version(files) != meta.model_version:
        raise ValueError("meta.model_version does not match the content: use bundle.versioned")
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

    directory = Path(directory)
    if not (directory / META_FILE).exists():  # no bundle at all, rather than a broken one
        raise FileNotFoundError(2, "no bundle here", str(directory / META_FILE))
    manifest = _read_manifest(directory)
    files = {}
    for name in CONTENT_FILES:
        data = (directory / name).read_bytes()
        if _sha256(data) != manifest["files"].get(name):
            raise BundleError(
                f"{directory / name}: its sha256 differs from {MANIFEST_FILE}: the file was "
                "changed or comes from another bundle"
            )
        files[name] = data
    meta = read_meta(directory)
    if model_version(files) != meta.model_version:
        raise BundleError(
            f"{directory}: the files do not make model {meta.model_version}: the bundle was "
            "changed (its manifest too)"
        )
    if manifest.get("model_version") != meta.model_version:
        raise BundleError(f"{directory / MANIFEST_FILE}: belongs to another model version")
    booster = load_booster(files[MODEL_FILE])
    forecast = np.load(io.BytesIO(files[FORECAST_FILE]), allow_pickle=False)
    history = np.load(io.BytesIO(files[HISTORY_FILE]), allow_pickle=False)
    is_open = np.load(io.BytesIO(files[OPEN_FILE]), allow_pickle=False)
    if is_open.shape != (len(meta.series) * meta.horizon,) or not np.isin(is_open, (0, 1)).all():
        raise BundleError(f"{directory / OPEN_FILE}: not one 0/1 per forecast row")
    if history.ndim != 2 or history.shape[0] != len(meta.series):
        raise BundleError(f"{directory / HISTORY_FILE}: shape {history.shape} does not match")
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
    if meta.outputs != output_names(meta.quantiles) or len(meta.dispersion) != (
        int(dispersion_blocks(meta.horizon, meta.frequency.days)[-1]) + 1 if meta.quantiles else 0
    ):
        raise BundleError(
            f"{directory / META_FILE}: outputs {meta.outputs} do not match quantiles "
            f"{meta.quantiles} and dispersion {meta.dispersion}"
        )
    if booster.feature_types != meta.feature_types():
        raise BundleError(
            f"{directory / MODEL_FILE}: the booster's input types {booster.feature_types} are "
            f"not the metadata's {meta.feature_types()}"
        )
    return Bundle(booster, meta, forecast, history, is_open)


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


def predict(
    booster: Any,
    meta: Meta,
    features: np.ndarray,
    periods: np.ndarray | None = None,
    is_open: np.ndarray | None = None,
) -> np.ndarray:
    """The outputs (``meta.outputs``) for rows of ``features`` (columns as ``meta.features``):
    shape ``(rows, outputs)``. ``periods``: the horizon period (0-based) each row forecasts,
    which sets its range; default: the rows are the forecast layout (whole series, series-major,
    see :meth:`Meta.forecast_periods`). ``is_open``: 0 for a closed row, whose every output is
    0 (default: all open)."""
    margin_col = meta.feature_names.index(meta.base_margin)
    inputs = np.delete(features, margin_col, axis=1)
    mean = np.asarray(
        booster.inplace_predict(
            inputs, base_margin=features[:, margin_col], validate_features=False
        ),
        dtype=np.float64,
    )
    if is_open is not None:
        mean = np.where(np.asarray(is_open) == 0, 0.0, mean)
    if not meta.quantiles:
        return mean.reshape(-1, 1)
    if periods is None:
        periods = meta.forecast_periods(len(mean))
    ranges = count_quantiles(mean, meta.dispersion_of(periods), meta.quantiles)
    if is_open is not None:
        ranges[np.asarray(is_open) == 0] = 0.0
    return np.column_stack([mean, ranges])


def output_names(quantiles: Sequence[float]) -> list[str]:
    """``["mean", "p10", "p50", "p90"]`` for quantiles 0.1, 0.5, 0.9."""
    return [MEAN, *(f"p{round(100 * q):g}" for q in quantiles)]


def dispersion_blocks(horizon: int, days_per_period: int) -> np.ndarray:
    """The dispersion block of each horizon period (0-based): weeks of days, or single weeks."""
    return np.arange(horizon) * days_per_period // 7


def count_quantiles(mean: np.ndarray, dispersion: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Quantiles ``(rows, probs)`` of sales counts: negative binomial with this mean and
    dispersion ``r`` (variance ``mean + mean**2 / r``; ``inf``/NaN = Poisson).

    Counts are discrete, so a count ``y`` is read as spread evenly over ``[y - 0.5, y + 0.5)``
    (``[0, 0.5)`` for 0: sales are never negative), a continuity correction: the quantiles are
    continuous, and the band of a calibrated model covers its nominal share exactly
    (:func:`spread_inside` counts the same way). Exact while the distribution stays below
    ``EXACT_LIMIT``; beyond, the Wilson-Hilferty approximation of the gamma distribution with
    the same mean and variance (the shape of a large negative binomial count).
    """
    mean = np.maximum(np.asarray(mean, dtype=np.float64), 1e-9)
    r = np.asarray(dispersion, dtype=np.float64)
    r = np.where(np.isfinite(r) & (r > 0), r, np.inf)
    var = mean + np.where(np.isfinite(r), mean**2 / np.where(np.isfinite(r), r, 1.0), 0.0)
    probs_arr = np.asarray(probs, dtype=np.float64)
    out = np.empty((len(mean), len(probs_arr)))
    top = mean + 8 * np.sqrt(var) + 10
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p0 = np.where(np.isfinite(r), r * np.log(r / (r + mean)), -mean)
    exact = (top < EXACT_LIMIT) & (log_p0 > -700)  # P(Y = 0) must not underflow
    if (~exact).any():
        z = _normal_ppf(probs_arr)[None, :]
        shape = (mean[~exact] ** 2 / var[~exact])[:, None]
        scale = (var[~exact] / mean[~exact])[:, None]
        cube = np.maximum(1 - 1 / (9 * shape) + z * np.sqrt(1 / (9 * shape)), 0.0) ** 3
        out[~exact] = shape * scale * cube
    if exact.any():
        out[exact] = _exact_quantiles(mean[exact], r[exact], probs_arr, int(top[exact].max()) + 1)
    return np.maximum(out, 0.0)


EXACT_LIMIT = 1500  # counts beyond this use the normal approximation


def _exact_quantiles(mean: np.ndarray, r: np.ndarray, probs: np.ndarray, k_max: int) -> np.ndarray:
    poisson = ~np.isfinite(r)
    rr = np.where(poisson, 1.0, r)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p0 = np.where(poisson, -mean, rr * np.log(rr / (rr + mean)))
        step = np.where(poisson, 0.0, mean / (rr + mean))
    p = np.exp(log_p0)
    below = np.zeros_like(mean)  # P(Y < k)
    out = np.full((len(mean), len(probs)), np.nan)
    for k in range(k_max):
        upto = below + p  # P(Y <= k)
        for j, prob in enumerate(probs):
            hit = np.isnan(out[:, j]) & (upto >= prob)
            if hit.any():
                share = np.clip((prob - below[hit]) / np.maximum(p[hit], 1e-300), 0.0, 1.0)
                out[hit, j] = 0.5 * share if k == 0 else k - 0.5 + share
        below = upto
        ratio = np.where(poisson, mean / (k + 1), (k + rr) / (k + 1) * step)
        p = p * ratio
    missing = np.isnan(out)
    if missing.any():  # numerically out of reach (cannot happen below EXACT_LIMIT): the mean
        out[missing] = np.broadcast_to(mean[:, None], out.shape)[missing]
    return out


def spread_inside(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The share of each count's continuity spread (see :func:`count_quantiles`) that lies in
    ``[low, high]``: the coverage of a band, counted without the bias of discrete counts."""
    y = np.asarray(actual, dtype=np.float64)
    start = np.where(y <= 0, 0.0, y - 0.5)
    end = y + 0.5
    overlap = np.minimum(end, high) - np.maximum(start, low)
    return np.clip(overlap, 0.0, None) / (end - start)


def _normal_ppf(probs: np.ndarray) -> np.ndarray:
    """Standard normal quantiles (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = [
        -3.969683028665376e01,
        2.209460984245205e02,
        -2.759285104469687e02,
        1.383577518672690e02,
        -3.066479806614716e01,
        2.506628277459239e00,
    ]
    b = [
        -5.447609879822406e01,
        1.615858368580409e02,
        -1.556989798598866e02,
        6.680131188771972e01,
        -1.328068155288572e01,
    ]
    c = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e00,
        -2.549732539343734e00,
        4.374664141464968e00,
        2.938163982698783e00,
    ]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00]
    out = np.empty_like(probs)
    for i, p in enumerate(probs):
        if p < 0.02425:
            q = np.sqrt(-2 * np.log(p))
            out[i] = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
                (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
            )
        elif p <= 1 - 0.02425:
            q = p - 0.5
            s = q * q
            out[i] = (
                (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5])
                * q
                / (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1)
            )
        else:
            q = np.sqrt(-2 * np.log(1 - p))
            out[i] = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
                (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
            )
    return out


def predict_mean(
    booster: Any, meta: Meta, features: np.ndarray, is_open: np.ndarray | None = None
) -> np.ndarray:
    """Expected sales for rows of ``features``: the ``mean`` output, shape ``(rows,)``."""
    plain = dataclasses.replace(meta, outputs=[MEAN], quantiles=[], dispersion=[])
    return predict(booster, plain, features, is_open=is_open)[:, 0]
