"""Request and response bodies of the API (pydantic), and the one date format it accepts.

Requests are validated strictly: a key is a JSON integer or string (never ``1.0`` or ``true``),
a date is the string ``YYYY-MM-DD`` (never a timestamp), and unknown fields are refused.
Responses are built as plain dicts for speed; their models below document them in OpenAPI.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Annotated, Any, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    create_model,
    with_config,
)
from typing_extensions import TypedDict

from demandcast.api.errors import json_type, shorten

RANGE = (
    "the {q}th percentile of sales (the model's range; present when the model has quantiles: "
    "the names follow its quantiles, see /health outputs)"
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@functools.lru_cache(maxsize=4096)  # a batch repeats a few dozen distinct dates
def _parse_date(text: str) -> dt.date:
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{shorten(text)!r} is not a date in the format YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a calendar date ({exc})") from None


def parse_date(value: Any) -> dt.date:
    """``YYYY-MM-DD`` only: no timestamps, times, week dates or compact forms."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string YYYY-MM-DD, got {json_type(value)}")
    return _parse_date(value)


IsoDate = Annotated[
    dt.date,
    PlainValidator(parse_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2018-01-05"]}),
]
_INT64 = {"ge": -(2**63), "le": 2**63 - 1}  # the keys come from int64 or string columns
Key = Annotated[
    Annotated[StrictInt, Field(**_INT64)] | StrictStr,
    Field(description="as in the model's metadata: an integer, or a string ID like 'S01'"),
]
# Covariate values and open are checked against the serving model at request time
# (``api/whatif.py``, with messages naming what is valid); the schema documents their JSON types.
_SCALAR = [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]
Covariates = Annotated[
    Any,  # an object, checked by api/whatif.py: parsed as is, a fifth faster than dict[str, Any]
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"anyOf": _SCALAR},
            "description": "values of the model's covariates (GET /health lists them) for this "
            "row instead of the plan's: a flag 0 or 1 (or false/true), a number, a category's "
            "level (a string; a number matches the level of its text)",
            "examples": [{"promo": 1}, {"promo": 0, "holiday": "a"}],
        }
    ),
]
OpenFlag = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "enum": [0, 1]}, {"type": "boolean"}],
            "description": "1 (or true): open; 0 (or false): closed, every output 0. Default: "
            "the plan's",
        }
    ),
]


@with_config(ConfigDict(extra="forbid"))
class Row(TypedDict):
    """One forecast to look up. ``item`` only for a store x item model. With ``covariates``
    or ``open``, the forecast under those values instead of the plan's (computed by the model
    at request time)."""

    store: Key
    item: NotRequired[Key]
    date: IsoDate
    covariates: NotRequired[Covariates]
    open: NotRequired[OpenFlag]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[Row] = Field(min_length=1, description="1 to DEMANDCAST_MAX_ROWS rows")


@functools.lru_cache(maxsize=8)
def predict_request(max_rows: int) -> type[PredictRequest]:
    """The POST /predict body with at most ``max_rows`` rows. Pydantic checks the count before
    it makes a Python object of any row, so a batch over the limit costs no more than its
    parse (the body's size is bounded before: see ``metrics.RequestMetrics``)."""
    rows = Field(min_length=1, max_length=max_rows, description="1 to DEMANDCAST_MAX_ROWS rows")
    return create_model("PredictRequest", __base__=PredictRequest, rows=(list[Row], rows))


class Prediction(BaseModel):
    store: Key
    item: Key | None = Field(None, description="absent for a store-only model")
    date: dt.date
    covariates: dict[str, Any] | None = Field(None, description="as in the request's row, if any")
    open: int | bool | None = Field(None, description="as in the request's row, if any")
    sales: float = Field(description="expected sales that day (or week, for a weekly model)")
    p10: float | None = Field(None, description=RANGE.format(q=10))
    p50: float | None = Field(None, description=RANGE.format(q=50))
    p90: float | None = Field(None, description=RANGE.format(q=90))


class PredictResponse(BaseModel):
    model_version: str
    predictions: list[Prediction] = Field(description="in the order of the request's rows")


class ForecastDay(BaseModel):
    date: dt.date = Field(description="the day, or the first day of the week")
    sales: float = Field(description="expected sales")
    p10: float | None = Field(None, description=RANGE.format(q=10))
    p50: float | None = Field(None, description=RANGE.format(q=50))
    p90: float | None = Field(None, description=RANGE.format(q=90))


class ForecastResponse(BaseModel):
    model_version: str
    store: Key
    item: Key | None = Field(None, description="absent for a store-only model")
    frequency: str = Field(examples=["day"], description="day or week: the period of each row")
    forecast: list[ForecastDay]


class CovariateInfo(BaseModel):
    name: str = Field(examples=["promo"])
    value: str = Field(
        examples=["flag"], description="flag (0 or 1), number, or category (one of its levels)"
    )
    levels: list[str] | None = Field(
        None, description="a category's levels (absent for a flag or a number)"
    )


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    model_version: str
    trained_through: dt.date = Field(description="the last period of sales the model saw")
    frequency: str = Field(examples=["day"], description="day or week")
    horizon: int = Field(description="periods forecast after trained_through")
    horizon_days: int = Field(description="the days those periods span")
    outputs: list[str] = Field(
        examples=[["sales", "p10", "p50", "p90"]],
        description="the fields of each forecast: expected sales, then the quantiles",
    )
    covariates: list[CovariateInfo] = Field(
        description="the inputs a request may give other values of than the plan's "
        "(POST /predict rows' covariates, POST /whatif's scenario); open may always be given"
    )


@with_config(ConfigDict(extra="forbid"))
class SeriesKeys(TypedDict):
    """A series: ``item`` only for a store x item model."""

    store: Key
    item: NotRequired[Key]


Scenario = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"anyOf": _SCALAR},
            "description": "the values to apply on every date: covariates of the model "
            "(GET /health lists them; a flag 0 or 1, a number, a category's level) and/or open "
            "(0 or 1)",
            "examples": [{"promo": 1}],
        }
    ),
]


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series: list[SeriesKeys] = Field(min_length=1, description="the series to compare")
    dates: list[IsoDate] | None = Field(
        None, min_length=1, description="forecast dates (default: every period of the horizon)"
    )
    scenario: Scenario


@functools.lru_cache(maxsize=8)
def whatif_request(max_rows: int) -> type[WhatIfRequest]:
    """The POST /whatif body with at most ``max_rows`` series and dates (series x dates is
    checked against ``max_rows`` too, once the dates are known)."""
    series = Field(min_length=1, max_length=max_rows, description="the series to compare")
    dates = Field(
        None,
        min_length=1,
        max_length=max_rows,
        description="forecast dates (default: every period of the horizon)",
    )
    return create_model(
        "WhatIfRequest",
        __base__=WhatIfRequest,
        series=(list[SeriesKeys], series),
        dates=(list[IsoDate] | None, dates),
    )


class WhatIfRow(BaseModel):
    store: Key
    item: Key | None = Field(None, description="absent for a store-only model")
    date: dt.date
    plan: float = Field(description="expected sales under the plan (as POST /predict answers)")
    scenario: float = Field(description="expected sales under the scenario")
    uplift: float = Field(description="scenario - plan")
    uplift_pct: float | None = Field(description="100 x uplift / plan; null when plan is 0")


class WhatIfTotal(BaseModel):
    plan: float = Field(description="the sum of the rows' plan")
    scenario: float = Field(description="the sum of the rows' scenario")
    uplift: float
    uplift_pct: float | None = Field(description="100 x uplift / plan; null when plan is 0")


class WhatIfResponse(BaseModel):
    model_version: str
    scenario: dict[str, Any] = Field(description="as in the request")
    rows: list[WhatIfRow] = Field(description="every series x date: series-major, in order")
    total: WhatIfTotal


class ModelInfo(BaseModel):
    model_version: str
    source: str = Field(description="the bundle directory it was loaded from")
    loaded_at: dt.datetime
    load_seconds: float
    metadata: dict[str, Any] = Field(description="the bundle's metadata.json")
    evaluation: dict[str, Any] | None = Field(
        description="holdout metrics of the pipeline run (reports/metrics.json), if available"
    )


class Reloaded(BaseModel):
    status: str = Field(examples=["reloaded"])
    model_version: str
    previous_version: str | None


class Problem(BaseModel):
    loc: str = Field(examples=["rows[0].date"], description="where in the request")
    msg: str


class ErrorBody(BaseModel):
    """Every 4xx and 503 answer has this shape."""

    detail: str = Field(description="what is wrong, in one sentence")
    errors: list[Problem] = Field([], description="one entry per problem (the first 20)")
