"""The model's answers: POST /predict (batch lookups, the hot path) and GET /forecast (one
series over a range of days)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from demandcast.api import deps
from demandcast.api.errors import from_validation, invalid, problem
from demandcast.api.lookup import locate_days, locate_rows, locate_series
from demandcast.api.routes.responses import error_responses, json_response
from demandcast.api.schemas import ForecastResponse, IsoDate, PredictRequest, PredictResponse

REF = "#/components/schemas/{model}"
FORECAST_PARAMS = frozenset({"store", "item", "start", "days"})
PREDICT_BODY = {  # the route parses its body itself: see document_predict_body
    "required": True,
    "content": {"application/json": {"schema": {"$ref": REF.format(model="PredictRequest")}}},
}


class PlainRoute(APIRoute):
    """A route whose endpoint takes the Request and returns the Response itself. FastAPI still
    documents it (signature, response_model, responses) but skips dependency injection and
    response serialization on every request. For the hot path, POST /predict: it makes the
    difference between about 75% and 100% of a bare endpoint's throughput (benchmarks/API.md).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


router = APIRouter()


async def predict(request: Request) -> Response:
    """Expected sales of each row's series and date, in the order of the rows."""
    state = await deps.state(request)  # not injected: see PlainRoute
    model = state.serving()
    try:
        rows = state.predict_request.validate_json(await request.body()).rows
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None
    max_rows = state.settings.max_rows
    if len(rows) > max_rows:
        msg = f"{len(rows)} rows; at most {max_rows} per request: split the batch"
        raise invalid([problem("rows", msg)])
    cells = locate_rows(model, rows)
    state.predictions["/predict"].inc(len(rows))
    if model.grid.shape[2] == 1:  # the mean only: one take of the flat mean grid
        sales = model.sales.take(cells).tolist()
        answers = [{**row, "sales": value} for row, value in zip(rows, sales, strict=True)]
    else:  # the mean and the quantiles: sales, p10, p50, p90
        fields = model.output_fields
        values = model.grid.reshape(-1, len(fields))[cells].tolist()
        answers = [
            {**row, **dict(zip(fields, cell, strict=True))}
            for row, cell in zip(rows, values, strict=True)
        ]
    return json_response({"model_version": model.version, "predictions": answers}, model=model)


router.add_api_route(
    "/predict",
    predict,
    methods=["POST"],
    route_class_override=PlainRoute,
    response_model=PredictResponse,
    responses=error_responses(422, 503),
    openapi_extra={"requestBody": PREDICT_BODY},
)


@router.get("/forecast", response_model=ForecastResponse, responses=error_responses(404, 422, 503))
async def forecast(
    request: Request,
    store: Annotated[str, Query(description="store ID", examples=["1"])],
    item: Annotated[str | None, Query(description="item ID (store x item models)")] = None,
    start: Annotated[IsoDate | None, Query(description="default: the first day")] = None,
    days: Annotated[int | None, Query(ge=1, description="default: to the horizon")] = None,
) -> Response:
    """The forecast of one series, from ``start`` (default: the first period after the
    cutoff) for ``days`` periods (default: to the end of the horizon): expected ``sales`` and
    its range (``p10``, ``p50``, ``p90``) for each day (or week, for a weekly model)."""
    # Not Depends(deps.serving): FastAPI runs dependencies before it validates the query, and a
    # malformed query is a 422 whether or not a model is loaded.
    state = await deps.state(request)
    model = state.serving()
    check_query(request, FORECAST_PARAMS)
    row = locate_series(model, store, item)
    columns = locate_days(model, start, days)
    values = model.grid[row, columns.start : columns.stop].tolist()
    state.predictions["/forecast"].inc(len(values))
    fields = model.output_fields
    answers = [
        {"date": model.date_of(period), **dict(zip(fields, cell, strict=True))}
        for period, cell in zip(columns, values, strict=True)
    ]
    body = {
        "model_version": model.version,
        **dict(zip(model.meta.series_keys, model.meta.series[row], strict=True)),
        "frequency": model.meta.frequency.name,
        "forecast": answers,
    }
    return json_response(body, model=model)


def check_query(request: Request, allowed: frozenset[str]) -> None:
    """Refuse unknown and repeated query parameters (a typo must not be silently ignored)."""
    counts = Counter(name for name, _ in request.query_params.multi_items())
    problems = [
        problem(name, f"unexpected query parameter; use {', '.join(sorted(allowed))}")
        for name in sorted(counts.keys() - allowed)
    ]
    problems += [problem(name, "given more than once") for name, n in counts.items() if n > 1]
    if problems:
        raise invalid(problems)


def document_predict_body(app: FastAPI, max_rows: int) -> None:
    """Add the /predict body to the OpenAPI schema: the route parses it by hand (one strict,
    fast pass over the raw bytes), so FastAPI does not see it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            body = PredictRequest.model_json_schema(ref_template=REF)
            body["properties"]["rows"]["maxItems"] = max_rows
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                body.pop("$defs"), PredictRequest=body
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
