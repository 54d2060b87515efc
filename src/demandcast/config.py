"""Typed view of ``params.yaml``: the one place in the package that reads it.

Every stage receives a :class:`Params` object; nothing else opens the file. Unknown keys are
refused, so a typo in ``params.yaml`` fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from demandcast.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Numbers are strict: `true` is not 1 tree and "300" is not 300 (pydantic's default would coerce
# both); a float knob takes an integer (`learning_rate: 1`) but not a bool, NaN or infinity.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]


class ColumnMap(_Strict):
    """Which column of *your* file holds each canonical column. ``item: null`` = store-only."""

    date: str = "date"
    store: str = "store"
    item: str | None = "item"
    sales: str = "sales"
    open: str | None = None  # a 0/1 column: 0 = the store is closed that day (no sales, known)

    def mapped(self) -> dict[str, str]:
        """canonical name -> your column, for the columns that are mapped (not null)."""
        return {canonical: theirs for canonical, theirs in self.model_dump().items() if theirs}


# How a covariate or attribute column is read: flag = 0/1 (true/false, yes/no in any case),
# number = a float (may be missing), category = text levels, whatever they look like.
ValueKind = Literal["flag", "number", "category"]
Columns = dict[str, ValueKind]
RESERVED = frozenset({"date", "store", "item", "sales", "open", "true_mean"})


def _not_reserved(columns: Columns, where: str) -> Columns:
    clash = sorted(c for c in columns if c.lower() in RESERVED)
    if clash:
        raise ValueError(
            f"{where} {clash}: these names are reserved for the canonical columns "
            f"({', '.join(sorted(RESERVED))}); rename the column in your file"
        )
    return columns


class Attributes(_Strict):
    """A static table with one row per store (or per item): columns joined onto every row."""

    path: str
    key: Literal["store", "item"] = "store"  # which series key the file is keyed by
    column: str = "store"  # that key's column in the attribute file
    columns: Columns = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _names(cls, value: Columns) -> Columns:
        return _not_reserved(value, "data.attributes.columns")


class Change(_Strict):
    """A change injected into the synthetic data from ``start`` on (used to exercise drift)."""

    start: dt.date
    level_shift: Float = 0.0  # +0.3 = demand 30% higher
    weekly_pattern: list[Float] | None = Field(default=None, min_length=7, max_length=7)
    stores: list[Int] | None = None  # None = every store


class Synthetic(_Strict):
    seed: Int = 42
    stores: Int = Field(10, ge=1)
    items: Int = Field(50, ge=1)
    start: dt.date = dt.date(2013, 1, 1)
    days: Int = Field(1826, ge=1)
    yearly_growth: Float = 0.08
    new_items: Int = Field(0, ge=0)  # items that appear later (see `new_items_start`)
    new_items_start: dt.date | None = None
    changes: list[Change] = []
    # weekly: one row per series and week (the sum of the daily means, Poisson noise per week)
    frequency: Literal["daily", "weekly"] = "daily"
    # Known-in-advance drivers (columns open, promo, holiday; see data/synthetic.py). Share of
    # item-days on promotion (0 = none), the range of the items' true promotion uplift.
    promo_share: Float = Field(0.1, ge=0, lt=1)
    promo_uplift: tuple[Float, Float] = (0.1, 0.6)
    holidays: str | None = "DE"  # the public-holiday calendar (holidays package); None = none
    closed_sundays: Float = Field(0.3, ge=0, le=1)  # share of stores closed on Sundays
    closed_holidays: Float = Field(0.5, ge=0, le=1)  # share of stores closed on public holidays


class DataParams(_Strict):
    source: Literal["synthetic", "file"] = "synthetic"
    path: str | None = None  # CSV or Parquet, long format, one row per series and day
    columns: ColumnMap = ColumnMap()
    date_format: str | None = None  # e.g. "%d/%m/%Y"; None = ISO 8601 / pandas inference
    # auto: weekly when every date falls on one weekday, else daily (see data/validate.py)
    frequency: Literal["auto", "daily", "weekly"] = "auto"
    # Columns known in advance for every forecast day (promotions, holidays, prices): used for
    # the day they describe. The forecast window's values come from future_path (the plan).
    covariates: Columns = {}
    attributes: Attributes | None = None
    future_path: str | None = None  # the plan: open + covariates of the horizon after the data
    synthetic: Synthetic = Synthetic()

    @field_validator("covariates")
    @classmethod
    def _covariate_names(cls, value: Columns) -> Columns:
        return _not_reserved(value, "data.covariates")

    @model_validator(mode="after")
    def _path_for_file_source(self) -> DataParams:
        if self.source == "file" and not self.path:
            raise ValueError(
                "data.source is 'file' but data.path is empty: set it to your CSV/Parquet"
            )
        mapped = {v for v in self.columns.model_dump().values() if v}
        both = sorted(mapped & set(self.covariates))
        if self.attributes is not None:
            both += sorted(set(self.attributes.columns) & (mapped | set(self.covariates)))
        if both:
            raise ValueError(
                f"columns {both} are given two roles (data.columns, covariates, "
                "attributes): each column has one"
            )
        return self


class PrepareParams(_Strict):
    # A series is evaluated when it has this many days beyond 2 x horizon periods (one horizon
    # of lag, one of holdout); shorter ones are trained on and served, not evaluated.
    min_train_days: Int = Field(28, ge=1)
    # A missing period inside a series: auto = no sales (0), unless it is part of a run of at
    # least `outage_periods` missing periods (an outage: unknown); zero = always 0; missing =
    # always unknown.
    gaps: Literal["auto", "zero", "missing"] = "auto"
    outage_periods: Int | None = Field(None, ge=1)  # None: 28 days, or 4 weeks
    # Negative sales (returns): refuse the file, count them as zero, or drop those rows.
    negative_sales: Literal["refuse", "zero", "drop"] = "refuse"


class Holidays(_Strict):
    """A public-holiday calendar from the ``holidays`` package: features holiday,
    days_to_holiday, days_since_holiday. ``country: null`` = none."""

    country: str | None = None  # ISO code, e.g. DE, US, GB
    subdiv: str | None = None  # a state or province, e.g. BY


class FeatureParams(_Strict):
    # Rolling means of sales ending `horizon` days before the target day.
    # Each window ends `horizon` periods back, so a width >= 1 keeps it at least that old.
    windows: list[Annotated[Int, Field(ge=1)]] = Field([7, 28, 91, 364], min_length=1)
    yearly_lags: bool = True  # same weekday one year (364 days) earlier, when horizon <= 364 - 7
    holidays: Holidays = Holidays()


class TrainParams(_Strict):
    # log-link objectives only: the series level enters as a log base margin
    objective: Literal["count:poisson", "reg:tweedie"] = "count:poisson"
    n_estimators: Int = Field(220, ge=1)
    learning_rate: Float = Field(0.11, gt=0)
    max_depth: Int = Field(6, ge=1)
    min_child_weight: Float = Field(50.0, ge=0)
    subsample: Float = Field(1.0, gt=0, le=1)
    colsample_bytree: Float = Field(1.0, gt=0, le=1)
    reg_lambda: Float = Field(1.0, ge=0)
    max_bin: Int = Field(128, ge=2)
    seed: Int = 0
    nthread: Int = Field(2, ge=1)
    # Forecast ranges: these quantiles of sales beside the mean (outputs p10, p50, p90)
    quantiles: list[Float] = Field([0.1, 0.5, 0.9], min_length=1)

    @field_validator("quantiles")
    @classmethod
    def _probabilities(cls, value: list[float]) -> list[float]:
        if any(not 0 < q < 1 for q in value) or value != sorted(set(value)):
            raise ValueError("quantiles must be increasing probabilities between 0 and 1")
        return value


class Weight(_Strict):
    """Rows whose flag ``column`` is set weigh ``factor`` in ``holdout.wmae``."""

    column: str
    factor: Float = Field(5.0, gt=0)


class EvaluateParams(_Strict):
    # Aggregate plot data by this many series at most to keep plots small.
    plot_top_features: Int = Field(20, ge=1)
    # A series is intermittent when more than this share of its periods in the year before the
    # cutoff had no sales (metrics.json: slices.intermittent).
    intermittent_zero_share: Float = Field(0.3, ge=0, lt=1)
    weight: Weight | None = None  # e.g. {column: IsHoliday, factor: 5} -> holdout.wmae


class DriftParams(_Strict):
    """How ``drift`` judges the deployed model (see ``drift.py``)."""

    drift_share: Float = Field(0.5, gt=0, le=1)  # data drift: share of monitored columns drifting
    concept_threshold: Float = Field(0.2, ge=0)  # concept drift: relative SMAPE increase
    # The Evidently reference: "season" = the same weeks 52 weeks earlier (falls back to "recent"
    # when the history is too short); "recent" = the days just before the cutoff.
    reference: Literal["season", "recent"] = "season"
    stattest: str = "wasserstein"  # Evidently's per-column method (normed Wasserstein: effect size)
    stattest_threshold: Float | None = Field(0.2, gt=0)  # None = the method's default (0.1)
    min_days: Int = Field(7, ge=1)  # days of new sales before concept drift is judged
    # range drift: the forecast range covers this many points less than its nominal share
    coverage_drop: Float = Field(10.0, gt=0, le=100)


class GateParams(_Strict):
    """The promotion gate (see ``gate.py``): a retrained model is deployed only if its recipe's
    SMAPE <= production's x (1 + tolerance), on rows neither has trained on."""

    tolerance: Float = Field(0.01, ge=0, le=1)


class EngineParams(_Strict):
    """Where the stages run (``engine.py``): ``local``, one pandas frame in the stage's own
    process, or ``dask``, partitions of series on a Dask cluster. The results do not depend on
    it (README, "Large tables")."""

    kind: Literal["local", "dask"] = "local"
    # dask: None starts a LocalCluster sized to this machine; or a scheduler address, e.g.
    # tcp://10.0.0.5:8786 (the workers must see the repository's files at the same path)
    scheduler: str | None = None
    # dask: series partitions (buckets of whole series); auto: about 1 M rows each
    partitions: Literal["auto"] | Annotated[Int, Field(ge=1)] = "auto"
    # dask, scheduler null: the LocalCluster's worker processes; auto: one per core (the
    # machine's memory is shared among them; in training each holds its share of the rows)
    workers: Literal["auto"] | Annotated[Int, Field(ge=1)] = "auto"
    # dask: where XGBoost trains. cluster: xgboost.dask, the training rows binned in the
    # workers' memory; external: XGBoost's external memory in the train stage's process (the
    # rows read one partition at a time, binned pages cached on disk: bounded memory, one
    # machine's cores); auto: cluster when the rows fit the workers' memory (model.py)
    training: Literal["auto", "cluster", "external"] = "auto"


class Params(_Strict):
    horizon: Int = Field(90, ge=1, le=366)
    data: DataParams = DataParams()
    prepare: PrepareParams = PrepareParams()
    features: FeatureParams = FeatureParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    drift: DriftParams = DriftParams()
    gate: GateParams = GateParams()
    engine: EngineParams = EngineParams()

    def digest(self, *sections: str) -> str:
        """Stable hash of the named sections (all when none), for model metadata."""
        dump = self.model_dump(mode="json")
        chosen = {k: dump[k] for k in (sections or dump)}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run from the repository root, or pass --params)")
    return parse_params(path.read_text(), str(path))


def parse_params(text: str, source: str = str(DEFAULT_PARAMS)) -> Params:
    """Validate the text of a params file; ``source`` names it in error messages."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{source}: invalid parameters"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
