"""The model's answers: POST /predict (batch lookups, the hot path; rows that give covariates
or open are computed, see ``api/whatif.py``) and GET /forecast (one series over a range of
days)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from demandcast.api import deps
from demandcast.api.errors import (
    EXAMPLE,
    INPUTS_UP_TO,
    from_body,
    invalid,
    json_kind,
    problem,
    shorten,
)
from demandcast.api.lookup import locate_days, locate_rows, locate_series
from demandcast.api.routes.responses import error_responses, json_response
from demandcast.api.schemas import (
    ForecastResponse,
    IsoDate,
    PredictResponse,
    predict_request,
    whatif_request,
)
from demandcast.api.whatif import OPEN, predict_rows

REF = "#/components/schemas/{model}"
FORECAST_PARAMS = frozenset({"store", "item", "start", "days"})
PREDICT_BODY = {  # the route parses its body itself: see document_bodies
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
    body = await read_body(request)
    max_rows = state.settings.max_rows
    if len(body) > INPUTS_UP_TO or body.count(b"{") > max_rows + 1:  # a row is an object
        check_large_body(body, max_rows)
    try:
        rows = state.predict_request.validate_json(body).rows  # at most max_rows rows
    except ValidationError as exc:
        raise from_body(exc, body) from None
    # A JSON object may repeat a key and the parser keeps the last value. Every ':' of the body
    # is either a key's or inside a string, so when there are exactly as many as the keys parsed
    # ("rows" and those of each row) no key was repeated; otherwise look closer (slow, rare).
    # A row's covariates are an object with keys of its own.
    keys = 1 + sum(map(len, rows))
    colons = body.count(b":")
    computed = [n for n, row in enumerate(rows) if "covariates" in row or OPEN in row]
    if computed and colons != keys:
        covariates = (rows[n].get("covariates") for n in computed)
        keys += sum(len(given) for given in covariates if isinstance(given, dict))
    if colons != keys:
        refuse_repeated_keys(body)
    cells = locate_rows(model, rows)
    fields = model.output_fields  # sales, then the quantiles: p10, p50, p90
    if computed:  # answered under their own covariates and open: the booster, now
        array = model.grid.reshape(-1, len(fields))[cells]
        array[computed] = predict_rows(model, rows, computed, cells)
        values = array.tolist()
    else:  # under the plan: the grid computed at load time
        values = model.grid.reshape(-1, len(fields))[cells].tolist()
    state.predictions["/predict"].inc(len(rows))
    if len(fields) == 4:  # sales, p10, p50, p90: named one by one, a third faster than zip
        s, p10, p50, p90 = fields
        answers = [
            {**row, s: v[0], p10: v[1], p50: v[2], p90: v[3]}
            for row, v in zip(rows, values, strict=True)
        ]
    else:
        answers = [
            {**row, **dict(zip(fields, cell, strict=True))}
            for row, cell in zip(rows, values, strict=True)
        ]
    return json_response({"model_version": model.version, "predictions": answers}, model=model)


async def read_body(request: Request) -> bytes | bytearray:
    """The request body, as it arrives: a small body is one message, taken as is. Its size is
    bounded before (``metrics.RequestMetrics`` refuses a body over the limit as it is read);
    ClientDisconnect if the client hangs up first."""
    receive = request.receive
    message = await receive()
    if not message.get("more_body", False):
        if message["type"] != "http.request":
            raise ClientDisconnect()
        return message.get("body", b"")
    body = bytearray(message.get("body", b""))
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


class _Enough(Exception):
    pass


_OBJECT = object()  # what the counting parser makes of every JSON object
NESTED = "covariates"  # the key of the one object a /predict row may hold


def check_large_body(
    body: bytes | bytearray,
    max_rows: int,
    loc: str = "rows",
    others: int = 1,
    example: str = EXAMPLE,
) -> None:
    """Refuse, before pydantic parses it, a body that is not an object or has more than
    ``max_rows`` rows (``loc``: the list holding them; ``others``: objects of a valid body
    besides them and their nested ``covariates``: the body's own, a scenario). Pydantic would
    refuse them too (``max_length``), but its error carries the offending value, all of the
    body made into Python objects (200,000 rows: 80 MB, 1 s); here the rows are counted by the
    json module, which keeps none of them and stops at ``max_rows + others``. Only a body with
    more braces than that many objects gets this far."""
    kind = json_kind(body)
    if kind != "an object":
        raise invalid([problem("body", f"expected a JSON object like {example}, got {kind}")])
    # '"covariates":' is a key (a string value is never followed by ':'): its object is no row
    braces = body.count(b"{") - body.count(b'"' + NESTED.encode() + b'":')
    if braces <= max_rows + others:  # the body's and one per row, at most
        return
    objects = 0

    def count(pairs: list[tuple[str, Any]]) -> object:
        nonlocal objects
        objects += 1
        for key, value in pairs:
            if value is _OBJECT and key == NESTED:  # counted when it closed: not a row
                objects -= 1
        if objects > max_rows + others:  # rows close before the body's own object
            raise _Enough
        return _OBJECT

    # Rows are alike, so a prefix holding max_rows + 2 braces (and some more) should hold
    # max_rows + 1 whole rows; if it does not (braces inside strings), the whole body is read.
    end = int(len(body) * (max_rows + 1 + others) / braces * 1.25) + 4096
    for text in (body[:end], body) if end < len(body) else (body,):
        objects = 0
        try:
            json.loads(text, object_pairs_hook=count)
        except _Enough:
            msg = f"more than {max_rows} {loc}; at most {max_rows} per request: split the batch"
            raise invalid([problem(loc, msg)]) from None
        except ValueError:
            continue  # the prefix ends mid-row; or not JSON, or not UTF-8: pydantic says so


class _Parsed(dict):
    """A JSON object as :func:`refuse_repeated_keys` parses it: the first key it repeats."""

    repeated: str | None = None


def refuse_repeated_keys(body: bytes | bytearray) -> None:
    """ApiError(422) naming a key that an object of the (valid) body repeats, if any: the
    body's own first, then in the order of the body (``rows[3].date``)."""

    def pairs(items: list[tuple[str, Any]]) -> _Parsed:
        parsed = _Parsed(items)
        if len(parsed) < len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    parsed.repeated = key
                    break
                seen.add(key)
        return parsed

    try:
        parsed = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):  # pydantic read it; if json cannot, nothing to name
        return
    loc = _repeated(parsed, "")
    if loc is None:
        return
    msg = "given more than once in one object: send each key once (JSON parsers differ on "
    raise invalid([problem(loc, msg + "which value they keep)")])


def _repeated(value: Any, loc: str) -> str | None:
    """Where the first repeated key of a parsed body is (None: nowhere)."""
    if isinstance(value, _Parsed):
        if value.repeated is not None:
            return f"{loc}.{shorten(value.repeated)}" if loc else shorten(value.repeated)
        for key, member in value.items():
            found = _repeated(member, f"{loc}.{shorten(key)}" if loc else shorten(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for n, element in enumerate(value):
            found = _repeated(element, f"{loc}[{n}]")
            if found is not None:
                return found
    return None


router.add_api_route(
    "/predict",
    predict,
    methods=["POST"],
    route_class_override=PlainRoute,
    response_model=PredictResponse,
    responses=error_responses(413, 422, 503),
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
        problem(shorten(name), f"unexpected query parameter; use {', '.join(sorted(allowed))}")
        for name in sorted(counts.keys() - allowed)
    ]
    problems += [
        problem(shorten(name), "given more than once") for name, n in counts.items() if n > 1
    ]
    if problems:
        raise invalid(problems)


def document_bodies(app: FastAPI, max_rows: int) -> None:
    """Add the /predict and /whatif bodies to the OpenAPI schema: the routes parse them by hand
    (one strict, fast pass over the raw bytes), so FastAPI does not see them."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, model in (
                ("PredictRequest", predict_request(max_rows)),
                ("WhatIfRequest", whatif_request(max_rows)),
            ):
                body = model.model_json_schema(ref_template=REF)
                schemas.update(body.pop("$defs", {}), **{name: body})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
