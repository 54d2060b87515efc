"""The served model: a bundle turned into lookup tables once, and swapped atomically.

The features of every series x horizon day are frozen in the bundle, so every forecast the
model makes under the plan is computed at load time into one ``(series, horizon)`` grid;
requests are lookups. A request that changes a covariate or ``open`` (a what-if) is computed
with the booster from the frozen features: the model keeps them and the booster for that
(``api/whatif.py``). A loaded :class:`Model` is immutable and :class:`ModelStore` replaces it
with one reference assignment: a request that took the old model finishes on the old model.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demandcast import bundle
from demandcast.metrics import Metrics

log = logging.getLogger(__name__)

SERIES_KEYS = (["store", "item"], ["store"])
DECIMALS = 3  # sales are answered to 0.001 of a unit
COVARIATE_VALUES = ("flag", "number", "category")


class ModelError(ValueError):
    """A bundle that cannot be served; the message says which file and why."""


@dataclass(frozen=True)
class Covariate:
    """An input a request may give another value of than the plan's (see ``api/whatif.py``)."""

    name: str
    value: str  # flag | number | category
    levels: tuple[str, ...]  # a category's levels (its codes are their positions); else ()
    column: int  # in the bundle's forecast features
    # JSON values taken as they are, by their code: a flag's 0/1 (false/true), a category's
    # levels; others are read by ``whatif.code_of``
    codes: dict[Any, float]

    @classmethod
    def of(cls, spec: bundle.FeatureSpec, column: int) -> Covariate:
        levels = tuple(spec.levels or ()) if spec.value == "category" else ()
        codes: dict[Any, float] = {}
        if spec.value == "flag":
            codes = {0: 0.0, 1: 1.0}  # 0.0, 1.0, False and True hash (and compare) alike
        elif spec.value == "category":
            codes = {level: float(code) for code, level in enumerate(levels)}
        return cls(spec.name, spec.value, levels, column, codes)

    def as_dict(self) -> dict[str, Any]:
        """As GET /health lists it: name, value and, for a category, its levels."""
        out: dict[str, Any] = {"name": self.name, "value": self.value}
        if self.value == "category":
            out["levels"] = list(self.levels)
        return out


@dataclass(frozen=True, eq=False)
class Model:
    meta: bundle.Meta
    grid: np.ndarray  # (series, horizon, outputs): the bundle's forecast, as answered
    sales: np.ndarray  # (series, horizon) expected sales (the mean output); row s: meta.series[s]
    index: dict[tuple, int]  # series key values -> row of ``sales``
    key_values: tuple[frozenset, ...]  # distinct values of each series key, for messages
    first_day: int  # proleptic ordinal of the first forecast day (the period after the cutoff)
    step: int  # days per period (1: daily, 7: weekly)
    history: np.ndarray  # (series, periods) recent sales, NaN where unknown; row s: meta.series[s]
    history_first_day: int  # proleptic ordinal of the first history period
    evaluation: dict | None  # holdout metrics of the pipeline run (reports/metrics.json)
    source: str
    loaded_at: float  # unix time
    load_seconds: float
    # What-ifs: the booster and the frozen features of every forecast row (series-major, as
    # ``grid``), the plan's open (1/0) of each, and the covariates a request may change.
    booster: Any  # xgboost.Booster
    forecast: np.ndarray  # (series * horizon, features) float32
    is_open: np.ndarray  # (series * horizon,) float32
    covariates: dict[str, Covariate]  # by name, in the model's order

    @property
    def version(self) -> str:
        return self.meta.model_version

    @property
    def horizon(self) -> int:
        return self.meta.horizon

    @property
    def first_date(self) -> dt.date:
        return dt.date.fromordinal(self.first_day)

    @property
    def last_date(self) -> dt.date:
        return self.date_of(self.horizon - 1)

    def date_of(self, period: int) -> dt.date:
        """The date (first day) of forecast period ``period`` (0 = the first)."""
        return dt.date.fromordinal(self.first_day + period * self.step)

    @property
    def output_fields(self) -> list[str]:
        """The answer's field for each output: ``sales`` for the mean, then ``p10``..."""
        return ["sales" if name == bundle.MEAN else name for name in self.meta.outputs]

    def history_dates(self) -> list[dt.date]:
        """The date of each column of ``history``."""
        first, step = self.history_first_day, self.step
        return [dt.date.fromordinal(first + i * step) for i in range(self.history.shape[1])]

    def period_of(self, date: dt.date) -> int | None:
        """The forecast period starting on ``date`` (may be outside the horizon), or None when
        no period starts that day (a weekly model's mid-week date)."""
        days = date.toordinal() - self.first_day
        return days // self.step if days % self.step == 0 else None


def load(model_dir: Path, metrics_path: Path | None = None) -> Model:
    """Read, check and precompute a bundle; raise :class:`ModelError` if it cannot be served."""
    started = time.perf_counter()
    try:
        loaded, grid = _read(Path(model_dir))
    except ModelError:
        raise
    except bundle.BundleError as exc:  # says which file and why
        raise ModelError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise ModelError(f"{exc.filename}: not found (run the pipeline: make run)") from exc
    except Exception as exc:  # whatever breaks while reading a bundle means "refuse it"
        first_line = (str(exc).strip().splitlines() or [""])[0]  # not XGBoost's C++ stack
        raise ModelError(
            f"{model_dir}: unreadable bundle: {type(exc).__name__}: {first_line}"
        ) from exc
    meta = loaded.meta
    series = [tuple(values) for values in meta.series]
    names = meta.feature_names
    return Model(
        meta=meta,
        grid=grid,
        sales=np.ascontiguousarray(grid[:, :, meta.outputs.index(bundle.MEAN)]),
        index={values: row for row, values in enumerate(series)},
        key_values=tuple(frozenset(column) for column in zip(*series, strict=True)),
        first_day=meta.forecast_start.toordinal(),
        step=meta.frequency.days,
        history=loaded.history.astype(np.float64),
        history_first_day=dt.date.fromisoformat(
            meta.history_start or meta.trained_through
        ).toordinal(),
        evaluation=read_evaluation(metrics_path),
        source=str(model_dir),
        loaded_at=time.time(),
        load_seconds=time.perf_counter() - started,
        booster=loaded.booster,
        forecast=np.ascontiguousarray(loaded.forecast, dtype=np.float32),
        is_open=np.ascontiguousarray(loaded.open, dtype=np.float32),
        covariates={
            spec.name: Covariate.of(spec, names.index(spec.name)) for spec in meta.covariates
        },
    )


def _read(model_dir: Path) -> tuple[bundle.Bundle, np.ndarray]:
    """The checked bundle and its ``(series, horizon, outputs)`` forecast grid, as answered."""
    loaded = bundle.read(model_dir)
    _check(model_dir, loaded.meta)
    grid = loaded.grid()
    if not np.isfinite(grid).all() or (grid < 0).any():
        raise ModelError(f"{model_dir}: the model predicts non-finite or negative sales")
    return loaded, np.round(grid.astype(np.float64), DECIMALS)


def _check(model_dir: Path, meta: bundle.Meta) -> None:
    """What the API needs beyond an intact bundle (``bundle.read`` verifies the manifest)."""

    def refuse(problem: str) -> ModelError:
        return ModelError(f"{model_dir}: {problem}")

    if meta.series_keys not in SERIES_KEYS:
        raise refuse(f"series_keys {meta.series_keys}: the API serves {SERIES_KEYS}")
    if meta.horizon < 1 or not meta.series:
        raise refuse("the bundle forecasts nothing (no series or a horizon of 0 days)")
    for values in meta.series:
        if len(values) != len(meta.series_keys) or not all(_is_key(v) for v in values):
            raise refuse(f"series {values!r} does not match series_keys {meta.series_keys}")
    if len({tuple(values) for values in meta.series}) != len(meta.series):
        raise refuse("the series list has duplicates")
    for spec in meta.covariates:
        if spec.value not in COVARIATE_VALUES:
            raise refuse(
                f"covariate {spec.name!r} is a {spec.value!r}: the API reads {COVARIATE_VALUES}"
            )


def _is_key(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def read_evaluation(path: Path | None) -> dict | None:
    """The pipeline's evaluation report, or None (it is optional: the model serves without it)."""
    if path is None:
        return None
    if not Path(path).exists():
        log.info("no evaluation report at %s; GET /model shows evaluation: null", path)
        return None
    try:
        report = Metrics.read(path)
    except (OSError, ValueError) as exc:
        log.warning("ignoring the evaluation report %s: %s", path, exc)
        return None
    return report.model_dump(mode="json", exclude_none=True)


class ModelStore:
    """The model being served. ``current`` is read without locking; ``reload`` swaps it."""

    def __init__(self, model_dir: Path, metrics_path: Path | None = None) -> None:
        self.model_dir = model_dir
        self.metrics_path = metrics_path
        self.current: Model | None = None
        self.problem = "no model loaded yet"  # why ``current`` is None
        self._lock = threading.Lock()  # one load at a time

    def reload(self) -> Model:
        """Load the bundle again and serve it, or raise :class:`ModelError` and keep the old one.

        A new model must keep the series keys of the one it replaces: clients' requests
        depend on them (changing them takes a restart)."""
        with self._lock:
            old = self.current
            try:
                new = load(self.model_dir, self.metrics_path)
                if old is not None and new.meta.series_keys != old.meta.series_keys:
                    raise ModelError(
                        f"{self.model_dir}: series keys {new.meta.series_keys} differ from the "
                        f"serving model's {old.meta.series_keys}; restart the API to change them"
                    )
            except ModelError as exc:
                if old is None:
                    self.problem = str(exc)
                    log.error("no model to serve: %s", exc)
                else:
                    log.error("refused the new model, still serving %s: %s", old.version, exc)
                raise
            self.current = new  # the swap: one reference assignment
            log.info(
                "serving model %s (trained through %s, %d series x %d days) from %s, "
                "loaded in %.2f s",
                new.version,
                new.meta.trained_through,
                len(new.meta.series),
                new.horizon,
                new.source,
                new.load_seconds,
            )
            return new
