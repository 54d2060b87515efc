"""``reports/metrics.json``, the evaluation report, as one typed model.

``evaluate`` writes it; the drift stage, the gate, ``report`` and the API read it, all through
:class:`Metrics`. Its JSON shape is what ``dvc metrics diff`` shows, so fields are only ever
added, never renamed. Unknown fields are ignored on reading, so a report written by another
revision of the code (the production model's, in the gate) still reads. Bottom layer: the API
can import it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from demandcast.errors import DataError


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Scores(_Model):
    """Errors of one forecast: SMAPE and MAPE in percent, WAPE in percent of actual sales."""

    smape: float
    mae: float
    rmse: float
    mape: float | None = None  # over rows with sales > 0; absent when there are none
    wape: float | None = None
    rows: int | None = None  # a baseline scored on fewer rows than the holdout: how many


class Holdout(Scores):
    rows: int  # scored rows: periods of unknown sales (outages) are left out
    start: str
    end: str
    wmae: float | None = None  # weighted MAE, when evaluate.weight names a flag column


class OpenScores(_Model):
    """The model on open periods (when ``data.columns.open`` is mapped): SMAPE and WAPE in
    percent, RMSPE a fraction over open periods with sales > 0."""

    smape: float | None = None
    rmspe: float | None = None
    wape: float | None = None
    mae: float | None = None
    rows: int


class Oracle(_Model):
    smape: float


class Slice(_Model):
    """The model's error on a group of series (``smape``/``wape`` absent when it is empty)."""

    series: int
    rows: int
    smape: float | None = None
    wape: float | None = None


class Slices(_Model):
    """Where the error sits: by sales volume of the series (``q1`` the slowest fifth of sellers,
    ``q5`` the fastest) and on intermittent series (share of zero-sales periods in the year
    before the cutoff above ``intermittent_zero_share``)."""

    volume: dict[str, Slice]
    intermittent: Slice
    intermittent_zero_share: float


class Intervals(_Model):
    """The forecast ranges on the holdout (percent for coverage; pinball loss per quantile)."""

    nominal: float  # the share the outer band should cover: 80 for P10..P90
    coverage: float
    coverage_by_week: list[float]  # per horizon week
    coverage_by_volume: dict[str, float] | None = None  # q1 (slowest fifth of series) .. q5
    pinball: dict[str, float]
    oracle_pinball: dict[str, float] | None = None  # synthetic data: the true Poisson quantiles
    mean_width: float


class Metrics(_Model):
    holdout: Holdout
    holdout_open: OpenScores | None = None  # open periods only (data.columns.open mapped)
    baselines: dict[str, Scores] = Field(default_factory=dict)
    oracle: Oracle | None = None  # synthetic data only: the error of the true mean
    slices: Slices | None = None
    intervals: Intervals | None = None

    def open_days_holdout(self) -> Holdout:
        """The holdout's scores on open periods, when ``open`` is mapped: what the drift stage
        compares new sales with (closed periods are known zeros, scored on neither side)."""
        scores = self.holdout_open
        if scores is None or scores.smape is None or scores.mae is None:
            return self.holdout
        return self.holdout.model_copy(
            update={"smape": scores.smape, "mae": scores.mae, "rows": scores.rows}
        )

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2) + "\n"

    @classmethod
    def read(cls, path: Path | str) -> Metrics:
        """Parse a metrics file; :class:`DataError` saying what to do when it is missing or is
        not one."""
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise DataError(f"{path}: not found; run the pipeline first (dvc repro)") from None
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise DataError(
                f"{path}: not an evaluation report ({first}); run the pipeline (dvc repro)"
            ) from None
